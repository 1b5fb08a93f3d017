/**
 * An identity profile's endpoints (`/p/<profile>/…`) are wired as the default profile's (Broker.gatewayOptions): a
 * paired remote device's calls are named in the profile's Activity, the profile's servers' transport verdicts are kept
 * in its own discovery state across a restart, and a signed-out profile's IDE is told the sign-in command of that
 * profile. Real sandbox (IdP, authorization servers, SDK MCP servers) and the real keychain:
 * `LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/identity-profiles-wiring.test.ts`.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlApi } from '../../shared/contract';
import { createHttpControlClient } from '../../shared/control-client';
import { openConfigStore } from '../../electron/broker/config/store';
import { discoveryStateFile } from '../../electron/broker/exchange/discovery-state';
import { startHeadless, type HeadlessBroker } from '../../electron/broker/headless';
import { createSecretStore } from '../../electron/broker/secrets';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { silentLogger } from '../../electron/broker/util/log';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { tempHome } from '../helpers/engine';

let sandbox: Sandbox;
let home: string;
let cleanup: () => Promise<void>;
let broker: HeadlessBroker | undefined;
let secrets: SecretStore;
const clients: Client[] = [];

const profileHome = () => path.join(home, 'identities', 'work');

function start(): Promise<HeadlessBroker> {
  return startHeadless({
    version: 'test',
    home,
    port: 0,
    log: silentLogger,
    openUrl: async (url) => {
      await fetch(await sandbox.idp.completeLogin(url, 'alice'));
    },
  });
}

function control(b: HeadlessBroker): ControlApi {
  return createHttpControlClient({ baseUrl: `${b.url}/p/work`, headers: { authorization: `Bearer ${b.gateway.localAuth.token}` } });
}

async function ide(b: HeadlessBroker, endpoint: string, token: string, name = 'Profile IDE'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${b.url}${endpoint}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  );
  clients.push(client);
  return client;
}

/** The tool's text, whether it succeeded or not (a failed call's text says what to do). */
async function callText(client: Client, tool: string): Promise<{ isError: boolean; text: string }> {
  try {
    const result = (await client.callTool({ name: tool, arguments: {} })) as { isError?: boolean; content: Array<{ text?: string }> };
    return { isError: result.isError === true, text: result.content.map((c) => c.text ?? '').join('') };
  } catch (e) {
    return { isError: true, text: e instanceof Error ? e.message : String(e) };
  }
}

beforeAll(async () => {
  sandbox = await startSandbox();
  ({ home, cleanup } = await tempHome());
  const rootConfig = openConfigStore(home);
  rootConfig.update(() => ({ version: 1, servers: [], gateway: { port: 0 } }));
  rootConfig.close();
  // The "work" profile as `lanyard login --profile work` and `servers add --profile work` leave it.
  const config = openConfigStore(profileHome());
  config.update(() => ({
    version: 1,
    idp: { issuer: sandbox.idp.issuer, clientId: sandbox.idp.client.clientId, clientAuth: { method: sandbox.idp.client.authMethod } },
    servers: sandbox.lanyardConfig().servers.filter((s) => s.id === 'todo'),
  }));
  config.close();
  secrets = createSecretStore({ home: profileHome() });
  for (const [key, value] of Object.entries(sandbox.lanyardSecrets())) if (!key.startsWith('idp:')) await secrets.set(key, value);
  if (sandbox.idp.client.clientSecret) await secrets.set('idp:client_secret', sandbox.idp.client.clientSecret);
  broker = await start();
}, 90_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await broker?.stop();
  await secrets?.deleteAll().catch(() => undefined);
  await sandbox?.stop();
  await cleanup?.();
});

describe("an identity profile's endpoints are wired as the default profile's", () => {
  it("a paired remote device's calls on /p/<profile>/mcp are named in that profile's Activity", async () => {
    const b = broker!;
    await control(b).signIn({});
    const { token } = await (await b.broker.remoteAccess()).devices.issue('devbox (SSH)');
    const remote = await ide(b, '/p/work/mcp', token, 'Remote IDE');
    const who = await callText(remote, 'todo__whoami');
    expect(who.isError, who.text).toBe(false);
    expect((JSON.parse(who.text) as { sub: string }).sub).toBe('00u-alice');
    const activity = await control(b).recentActivity({ limit: 50 });
    expect(activity.filter((a) => a.kind === 'tool_call').map((a) => a.summary)).toEqual([
      expect.stringContaining('(remote: devbox (SSH))'),
    ]);
    // The IDE's session is in the profile's Activity too, as on the default profile.
    expect(activity.some((a) => a.kind === 'ide' && a.summary.includes('Remote IDE 1.0.0 connected'))).toBe(true);
  }, 60_000);

  it("keeps the profile's transport verdict in its own discovery state across a restart", async () => {
    await broker!.stop();
    broker = undefined;
    const file = discoveryStateFile(profileHome());
    const saved = () => readFile(file, 'utf8').then((t) => JSON.parse(t) as { servers: Record<string, { transport?: { kind?: string } }> });
    expect((await saved()).servers.todo?.transport).toMatchObject({ kind: 'streamable-http' });
    // The default profile learnt nothing of the profile's server.
    expect(await readFile(discoveryStateFile(home), 'utf8').catch(() => '')).not.toContain('"todo"');

    broker = await start();
    const client = await ide(broker, '/p/work/mcp', broker.gateway.localAuth.token);
    const who = await callText(client, 'todo__whoami');
    expect(who.isError, who.text).toBe(false);
  }, 60_000);

  it('a signed-out profile tells its IDE to run `lanyard login --profile <name>`, on /mcp and on the relay', async () => {
    const b = broker!;
    await control(b).signOut({});
    const token = b.gateway.localAuth.token;
    // The relay (/p/work/mcp/todo): the token service's "not signed in" answers the IDE's initialize, with the profile's
    // own command in its fix.
    const relayed = await ide(b, '/p/work/mcp/todo', token).then(
      () => 'connected',
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    expect(relayed).toMatch(/not signed in/i);
    expect(relayed).toContain('`lanyard login --profile work`');
    // The aggregated endpoint: its sign-in tool and a call to a server that needs the sign-in.
    const aggregated = await ide(b, '/p/work/mcp', token);
    const signIn = (await aggregated.listTools()).tools.find((t) => t.name === 'lanyard_sign_in');
    expect(signIn?.description).toContain('lanyard login --profile work');
    const called = await callText(aggregated, 'todo__whoami');
    expect(called.isError).toBe(true);
    expect(called.text).toContain('lanyard login --profile work');
  }, 60_000);
});
