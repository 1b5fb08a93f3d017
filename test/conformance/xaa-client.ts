/**
 * The MCP conformance suite's client under test, built on Lanyard's own engine (not a second implementation): the
 * identity session performs leg 1 (RFC 8693 → ID-JAG) and the token service does discovery, leg 2 (RFC 7523) and the
 * bearer injection, exactly as the broker does for an IDE. The suite runs it as `<command> <server-url>` with the
 * scenario's data in MCP_CONFORMANCE_CONTEXT.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { IdentitySession } from '../../electron/broker/identity/identity-session';
import { TokenService } from '../../electron/broker/exchange/token-service';
import { UsageCounter } from '../../electron/broker/exchange/usage';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { secretKeys } from '../../electron/broker/secrets/secret-store';

interface XaaContext {
  client_id?: string;
  client_secret?: string;
  idp_client_id?: string;
  idp_id_token?: string;
  idp_issuer?: string;
  idp_token_endpoint?: string;
}

async function main(): Promise<void> {
  const serverUrl = process.argv.at(-1);
  if (!serverUrl || !/^https?:\/\//.test(serverUrl)) throw new Error('usage: xaa-client <server-url>');
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as XaaContext;
  const secrets = new MemorySecretStore();
  const serverId = 'conformance';

  const identity = new IdentitySession({
    settings: {
      issuer: context.idp_issuer ?? 'http://127.0.0.1/unused',
      clientId: context.idp_client_id ?? 'unused',
      clientAuth: { method: 'none' },
      scopes: ['openid'],
      tokenExchangeEndpoint: context.idp_token_endpoint,
    },
    secrets,
    openUrl: () => {
      throw new Error('the conformance client never opens a browser');
    },
  });
  if (context.idp_id_token) await identity.importSession({ idToken: context.idp_id_token });

  if (context.client_secret) await secrets.set(secretKeys.serverClientSecret(serverId), context.client_secret);
  const tokens = new TokenService({
    identity,
    secrets,
    usage: new UsageCounter(undefined),
    getServer: (id) =>
      id === serverId
        ? {
            id,
            url: serverUrl,
            ...(context.client_id ? { asClient: { clientId: context.client_id, method: 'client_secret_basic' as const } } : {}),
          }
        : undefined,
  });

  const client = new Client({ name: 'lanyard-conformance', version: '0.1.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { fetch: tokens.authorizedFetch(serverId) });
  await client.connect(transport);
  const listed = await client.listTools();
  const first = listed.tools[0];
  if (first && !first.inputSchema?.required?.length) await client.callTool({ name: first.name, arguments: {} });
  await client.close();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`lanyard conformance client: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
