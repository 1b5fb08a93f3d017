/**
 * The MCP conformance suite's client for the authorization-code scenarios, built on Lanyard's OAuth 2.1 engine
 * (electron/broker/oauth/oauth-sessions.ts), not on a second implementation. The suite runs it as
 * `<command> <server-url>` with the scenario in MCP_CONFORMANCE_SCENARIO, its data in MCP_CONFORMANCE_CONTEXT and the
 * protocol revision in MCP_CONFORMANCE_PROTOCOL_VERSION.
 *
 * Around the engine it plays the two parts the broker's other pieces play for an IDE:
 * - the gateway: send with the engine's token (Bearer, or DPoP with a proof per request); on 401 drop the token and
 *   renew it, else run the authorization with the server's challenge; on 403 insufficient_scope step up (the engine
 *   bounds the number of step-ups) and authorize again;
 * - the user's browser: `openUrl` follows the authorization server's redirect to Lanyard's loopback listener, as a
 *   browser does after the user clicks "Allow".
 * Its keychain is in memory: the real keychain is covered by test/integration/oauth-sessions.test.ts.
 */
import { Client, StreamableHTTPClientTransport, extractWWWAuthenticateParams, type FetchLike } from '@modelcontextprotocol/client';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { createOAuthSessions } from '../../electron/broker/oauth/oauth-sessions';
import { oauthKeys } from '../../electron/broker/oauth/grant-store';
import type { OAuthServerRef } from '../../electron/broker/oauth/types';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { sealCredential } from '../../electron/broker/secrets/secret-store';

/** Lanyard's Client ID Metadata Document URL as the suite's CIMD scenario expects it (any https URL with a path works). */
const CLIENT_METADATA_URL = 'https://conformance-test.local/client-metadata.json';

interface Context {
  client_id?: string;
  client_secret?: string;
}

/** What the user's browser does: load the authorization URL, follow the AS's redirect to the loopback listener. */
async function browser(url: string): Promise<void> {
  let next = url;
  for (let hops = 0; hops < 5; hops++) {
    const response = await fetch(next, { redirect: 'manual' });
    await response.body?.cancel().catch(() => {});
    const location = response.headers.get('location');
    if (!location) return;
    next = new URL(location, next).href;
    if (new URL(next).hostname === '127.0.0.1' && new URL(next).pathname === '/callback') {
      const landed = await fetch(next);
      await landed.body?.cancel().catch(() => {});
      return;
    }
  }
}

async function main(): Promise<void> {
  const serverUrl = process.argv.at(-1);
  if (!serverUrl || !/^https?:\/\//.test(serverUrl)) throw new Error('usage: oauth-client <server-url>');
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as Context;
  const secrets = new MemorySecretStore();
  const server: OAuthServerRef = {
    id: 'conformance',
    url: serverUrl,
    ...(context.client_id
      ? {
          oauthClient: {
            clientId: context.client_id,
            method: context.client_secret ? ('client_secret_basic' as const) : ('none' as const),
          },
        }
      : {}),
  };
  if (context.client_id && context.client_secret) {
    // As `servers add --oauth-client-id` stores it: sealed to the client id, bound to the issuer at first use.
    await secrets.set(oauthKeys.preRegisteredSecret(server.id), sealCredential(context.client_secret, { clientId: context.client_id }));
  }
  const sessions = createOAuthSessions({
    secrets,
    openUrl: browser,
    clientMetadataUrl: () => CLIENT_METADATA_URL,
    authorizeTimeoutMs: 20_000,
  });

  const authorize = async (response: Response): Promise<void> => {
    const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(response);
    const { done } = await sessions.authorize(server, {
      challenge: { ...(resourceMetadataUrl ? { resourceMetadataUrl: resourceMetadataUrl.href } : {}), ...(scope ? { scope } : {}) },
    });
    await done;
  };

  const gatewayFetch: FetchLike = async (input, init) => {
    for (let round = 0; round < 8; round++) {
      const token = await sessions.getToken(server).catch((e: unknown) => {
        if (e instanceof LanyardError && e.code === ErrorCodes.AUTHORIZATION_REQUIRED) return undefined;
        throw e;
      });
      const response = token ? await sessions.authorizedFetch(server)(input, init) : await fetch(input, init);
      if (response.status === 401) {
        await response.body?.cancel().catch(() => {});
        if (token) {
          // A refused token: drop it; the next getToken renews it with the refresh token, or asks for authorization.
          await sessions.invalidate(server.id, token.accessToken);
          const renewed = await sessions.getToken(server).catch(() => undefined);
          if (renewed) continue;
        }
        await authorize(response);
        continue;
      }
      const challenge = response.status === 403 ? extractWWWAuthenticateParams(response) : undefined;
      if (challenge?.error === 'insufficient_scope') {
        await response.body?.cancel().catch(() => {});
        await sessions.stepUp(server, challenge.scope);
        await authorize(response);
        continue;
      }
      return response;
    }
    throw new Error('the server kept refusing Lanyard');
  };

  const version = process.env.MCP_CONFORMANCE_PROTOCOL_VERSION;
  const modern = version !== undefined && !['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'].includes(version);
  const client = new Client(
    { name: 'lanyard-conformance', version: '0.1.0' },
    { capabilities: {}, ...(modern ? { versionNegotiation: { mode: { pin: version } } } : {}) },
  );
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { fetch: gatewayFetch });
  await client.connect(transport);
  await client.listTools();
  await client.callTool({ name: 'test-tool', arguments: {} });
  await client.close();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`lanyard conformance client: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
