/**
 * Identity profiles (`/p/<profile>/…`, docs/architecture.md "Identity profiles"): two profiles on one broker, each
 * signed in at its own IdP as a different person, both with the same MCP server (one URL, its authorization server
 * trusting both IdPs). Every call reaches the server as the right subject, signing out of one leaves the other
 * working, and each keeps its session in its own keychain namespace. Run with
 * `LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/identity-profiles.test.ts`.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { spawn, spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlApi } from '../../shared/contract';
import { createHttpControlClient } from '../../shared/control-client';
import { ErrorCodes } from '../../shared/errors';
import { openConfigStore } from '../../electron/broker/config/store';
import { startHeadless, type HeadlessBroker } from '../../electron/broker/headless';
import { IDP_SECRET_KEYS } from '../../electron/broker/identity/idp-client';
import { keychainNamespace } from '../../electron/broker/paths';
import { createSecretStore } from '../../electron/broker/secrets';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { createSwitchingControl } from '../../electron/broker/identities/switching-control';
import { silentLogger } from '../../electron/broker/util/log';
import { startSandbox, type Sandbox, type SandboxIdp } from '../fixtures/sandbox';
import { startIdp, type SandboxUser } from '../fixtures/sandbox/idp';
import { tempHome } from '../helpers/engine';

const CAROL: SandboxUser = {
  username: 'carol',
  password: 'carol-sandbox',
  sub: '00u-carol-contractor',
  email: 'carol@contractor.example',
  name: 'Carol Contractor',
};

const root = path.resolve(import.meta.dirname, '../..');
// Built next to the real bundle (its npm imports resolve from the project's node_modules), never over it.
const cliDir = path.join(root, 'out', `cli-identity-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let sandbox: Sandbox;
let idpB: SandboxIdp;
let home: string;
let cleanup: () => Promise<void>;
let broker: HeadlessBroker;
const stores: SecretStore[] = [];
const clients: Client[] = [];

const profileHome = (name: string) => path.join(home, 'identities', name);

/** A profile's home configured as `lanyard login --profile` and `servers add --profile` would leave it. */
async function prepareProfile(name: string, idp: SandboxIdp): Promise<SecretStore> {
  const config = openConfigStore(profileHome(name));
  config.update(() => ({
    version: 1,
    idp: { issuer: idp.issuer, clientId: idp.client.clientId, clientAuth: { method: idp.client.authMethod } },
    servers: sandbox.lanyardConfig().servers.filter((s) => s.id === 'todo'),
  }));
  config.close();
  const secrets = createSecretStore({ home: profileHome(name) });
  stores.push(secrets);
  for (const [key, value] of Object.entries(sandbox.lanyardSecrets())) if (!key.startsWith('idp:')) await secrets.set(key, value);
  if (idp.client.clientSecret) await secrets.set('idp:client_secret', idp.client.clientSecret);
  return secrets;
}

function control(profile: string): ControlApi {
  return createHttpControlClient({
    baseUrl: profile === '' ? broker.url : `${broker.url}/p/${profile}`,
    headers: { authorization: `Bearer ${broker.gateway.localAuth.token}` },
  });
}

async function ide(endpoint: string): Promise<Client> {
  const client = new Client({ name: 'identity-test-ide', version: '1' }, { capabilities: {} });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${broker.url}${endpoint}`), {
      requestInit: { headers: { authorization: `Bearer ${broker.gateway.localAuth.token}` } },
    }),
  );
  clients.push(client);
  return client;
}

async function whoami(client: Client, tool: string): Promise<{ sub?: string; email?: string }> {
  const result = (await client.callTool({ name: tool, arguments: {} })) as { isError?: boolean; content: Array<{ text?: string }> };
  const text = result.content.map((c) => c.text ?? '').join('');
  if (result.isError) throw new Error(text);
  return JSON.parse(text) as { sub?: string; email?: string };
}

/** The built CLI against this test's home; stdin closed unless given. */
function lanyard(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, LANYARD_HOME: home, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

/** Runs a stdio MCP command as an IDE would and returns what the todo server's whoami answered through it. */
function whoamiOverStdio(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
  tool = 'todo__whoami',
): Promise<{ sub?: string }> {
  const lines = [
    {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'stdio-ide', version: '1' } },
    },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: {} } },
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`stdio timed out: ${out} ${err}`));
    }, 20_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const answer = out
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as { id?: number; result?: { isError?: boolean; content: Array<{ text: string }> } })
        .find((m) => m.id === 2);
      if (!answer) return;
      clearTimeout(timer);
      child.stdin.end();
      const text = answer.result?.content[0]?.text;
      // A JSON-RPC error or a tool error (signed out, no such tool) fails the test at once, with what it said.
      if (answer.result === undefined || answer.result.isError || text === undefined)
        reject(new Error(`no whoami answer: ${JSON.stringify(answer)}`));
      else resolve(JSON.parse(text) as { sub?: string });
    });
    child.stdin.write(`${JSON.stringify(lines[0])}\n`);
    setTimeout(() => child.stdin.write(`${JSON.stringify(lines[1])}\n${JSON.stringify(lines[2])}\n`), 300);
  });
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  sandbox = await startSandbox();
  // A second tenant: its own IdP and user, allowed on the same todo server, whose AS trusts both IdPs.
  idpB = await startIdp({ users: [CAROL], clientAuth: 'client_secret_basic' });
  const todo = sandbox.server('todo');
  todo.as.trustIdp({ issuer: idpB.issuer, jwksUri: idpB.jwksUri });
  idpB.policy.push({
    user: 'carol',
    audience: todo.as.issuer,
    resource: todo.mcp.resource,
    scopes: ['todo:read'],
    clientIdAtAs: todo.asClient.clientId,
  });
  ({ home, cleanup } = await tempHome());
  const rootConfig = openConfigStore(home);
  rootConfig.update(() => ({ version: 1, servers: [], gateway: { port: 0 } }));
  rootConfig.close();
  await prepareProfile('work', sandbox.idp);
  await prepareProfile('contractor', idpB);
  broker = await startHeadless({
    version: 'test',
    home,
    port: 0,
    log: silentLogger,
    // The "browser": whichever IdP the link belongs to, filled in as its user would.
    openUrl: async (url) => {
      const callback = url.startsWith(idpB.issuer) ? await idpB.completeLogin(url, 'carol') : await sandbox.idp.completeLogin(url, 'alice');
      await fetch(callback);
    },
  });
}, 120_000);

afterAll(async () => {
  await rm(cliDir, { recursive: true, force: true });
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await broker?.stop();
  await Promise.all(stores.map((s) => s.deleteAll().catch(() => undefined)));
  await idpB?.stop();
  await sandbox?.stop();
  await cleanup?.();
});

describe('two identity profiles on one broker', () => {
  it('starts no profile until one is used', async () => {
    expect(broker.broker.identities?.names()).toEqual(['contractor', 'work']);
    // Nothing loaded: the default start-up is today's.
    const loaded = () => (broker.broker.identities as unknown as { brokers: Map<string, unknown> }).brokers.size;
    expect(loaded()).toBe(0);
    // A CORS preflight carries no token: it neither starts a profile nor learns which profiles exist.
    for (const p of ['/p/work/api/status', '/p/nobody/api/status', '/p/work/mcp']) {
      const res = await fetch(`${broker.url}${p}`, {
        method: 'OPTIONS',
        headers: { Origin: broker.url, 'Access-Control-Request-Method': 'POST' },
      });
      const body = await res.text();
      expect(res.status, p).not.toBe(200);
      expect(body, p).not.toContain('contractor');
    }
    expect(loaded()).toBe(0);
  });

  it('signs each profile in at its own IdP and reaches the shared server as that profile’s user', async () => {
    await control('work').signIn({});
    await control('contractor').signIn({});
    expect((await control('work').status({})).session).toMatchObject({ status: 'signed_in', user: { email: 'alice@example.com' } });
    expect((await control('contractor').status({})).session).toMatchObject({ status: 'signed_in', user: { email: CAROL.email } });

    const work = await ide('/p/work/mcp');
    const contractor = await ide('/p/contractor/mcp');
    expect((await whoami(work, 'todo__whoami')).sub).toBe('00u-alice');
    expect((await whoami(contractor, 'todo__whoami')).sub).toBe(CAROL.sub);
    // The relay and an IDE's own endpoint inside a profile, too.
    expect((await whoami(await ide('/p/contractor/mcp/todo'), 'whoami')).sub).toBe(CAROL.sub);
    expect((await whoami(await ide('/p/work/ide/cursor/mcp'), 'todo__whoami')).sub).toBe('00u-alice');
    // The default profile has neither server nor session: nothing of the others leaks into /mcp.
    const plain = await ide('/mcp');
    expect((await plain.listTools()).tools.filter((t) => t.name.startsWith('todo'))).toEqual([]);
  }, 60_000);

  it('keeps each session in its own keychain namespace', async () => {
    expect(keychainNamespace(profileHome('work'))).not.toBe(keychainNamespace(profileHome('contractor')));
    expect(keychainNamespace(profileHome('work'))).not.toBe(keychainNamespace(home));
    const sessionOf = async (dir: string) =>
      JSON.parse((await createSecretStore({ home: dir }).get(IDP_SECRET_KEYS.session)) ?? 'null') as { issuer?: string } | null;
    expect(await sessionOf(profileHome('work'))).toMatchObject({ issuer: sandbox.idp.issuer });
    expect(await sessionOf(profileHome('contractor'))).toMatchObject({ issuer: idpB.issuer });
    expect(await sessionOf(home)).toBeNull();
  });

  it('signing out of one profile leaves the other working', async () => {
    await control('work').signOut({});
    expect((await control('work').status({})).session.status).toBe('signed_out');
    const contractor = await ide('/p/contractor/mcp');
    expect((await whoami(contractor, 'todo__whoami')).sub).toBe(CAROL.sub);
    // The signed-out profile never borrows the other's token: its call fails with the sign-in it needs.
    await expect(ide('/p/work/mcp/todo').then((work) => whoami(work, 'whoami'))).rejects.toThrow(/not signed in/i);
    expect(await createSecretStore({ home: profileHome('work') }).get(IDP_SECRET_KEYS.session)).toBeUndefined();
  }, 60_000);

  it('`lanyard status` lists every identity profile with its sign-in and endpoint; `--profile` names that profile’s command and endpoint', async () => {
    const status = await lanyard(['status']);
    const line = (name: string) => status.stdout.split('\n').find((l) => l.trimStart().startsWith(`${name} `)) ?? '';
    expect(status.stdout).toContain('Identity profiles:');
    expect(line('default')).toContain(`${broker.url}/mcp`);
    expect(line('contractor')).toContain(`signed in as ${CAROL.email}`);
    expect(line('contractor')).toContain(`${broker.url}/p/contractor/mcp`);
    expect(line('work')).toContain('not signed in → lanyard login --profile work');
    expect(line('work')).toContain(`${broker.url}/p/work/mcp`);
    const json = JSON.parse((await lanyard(['status', '--json'])).stdout) as {
      identities: Array<{ name: string | null; endpoint: string }>;
    };
    expect(json.identities.map((p) => [p.name, p.endpoint])).toEqual([
      [null, `${broker.url}/mcp`],
      ['contractor', `${broker.url}/p/contractor/mcp`],
      ['work', `${broker.url}/p/work/mcp`],
    ]);
    // One profile's status: its own sign-in command, and the endpoint its IDEs use.
    const work = await lanyard(['status', '--profile', 'work']);
    expect(work.stdout).toContain('not signed in → run `lanyard login --profile work`');
    expect(work.stdout).toMatch(new RegExp(`Broker: +running .* ${broker.url}/p/work/mcp\n`));
    // `lanyard doctor --profile`: the endpoint line is that profile's.
    const doctor = JSON.parse((await lanyard(['doctor', '--profile', 'contractor', '--json'])).stdout) as {
      checks: Array<{ id: string; ok: boolean; detail: string }>;
    };
    expect(doctor.checks.find((c) => c.id === 'endpoint')).toMatchObject({
      ok: true,
      detail: expect.stringContaining(`${broker.url}/p/contractor/mcp;`),
    });
  }, 60_000);

  it('answers an unknown or invalid profile name with a clear error, and only to a caller with the local token', async () => {
    const post = (p: string, token?: string) =>
      fetch(`${broker.url}${p}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      });
    const token = broker.gateway.localAuth.token;
    const unknown = await post('/p/nobody/mcp', token);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { data: { code: ErrorCodes.IDENTITY_PROFILE_UNKNOWN } } });
    for (const bad of ['/p/..%2F..%2Fwork/mcp', '/p/Work/mcp', '/p/a.b/mcp', '/p/%00/mcp']) {
      const res = await post(bad, token);
      expect(res.status, bad).toBe(404);
      expect(await res.json()).toMatchObject({ error: { data: { code: ErrorCodes.IDENTITY_PROFILE_INVALID } } });
    }
    // No local token: refused before anything says which profiles exist.
    expect((await post('/p/work/mcp')).status).toBe(401);
    expect((await post('/p/nobody/mcp')).status).toBe(401);
  });

  it('`--profile` takes every CLI command to that profile on the running broker, `stdio` included', async () => {
    const status = await lanyard(['status', '--profile', 'contractor', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ session: { status: 'signed_in', user: { email: CAROL.email } } });
    // Before the command, too.
    expect(JSON.parse((await lanyard(['--profile=contractor', 'servers', 'list', '--json'])).stdout)).toEqual([
      expect.objectContaining({ id: 'todo' }),
    ]);

    // What an IDE entry written by `lanyard connect <ide> --profile contractor` runs.
    expect(await whoamiOverStdio(process.execPath, [cli, 'stdio', '--profile', 'contractor'], { LANYARD_HOME: home })).toMatchObject({
      sub: CAROL.sub,
    });

    // A profile that does not exist, and a name that is not allowed: what is wrong and what to do.
    const unknown = await lanyard(['servers', 'list', '--profile', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/There is no identity profile "nobody" \(known: contractor, work\)/);
    expect(unknown.stderr).toContain('lanyard login --profile nobody');
    const invalid = await lanyard(['status', '--profile', '../work']);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('is not a valid identity profile name');
  }, 60_000);

  it('`lanyard login --profile <new> --issuer …` creates a profile on the running broker and signs it in', async () => {
    const login = await lanyard([
      'login',
      '--profile',
      'fresh',
      '--issuer',
      sandbox.idp.issuer,
      '--client-id',
      sandbox.idp.client.clientId,
    ]);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain('Signed in as alice@example.com');
    expect(broker.broker.identities?.names()).toEqual(['contractor', 'fresh', 'work']);
    expect((await control('fresh').status({})).session.status).toBe('signed_in');
    // Its own keychain namespace; the others are untouched.
    expect(await createSecretStore({ home: profileHome('fresh') }).get(IDP_SECRET_KEYS.session)).toBeDefined();
    stores.push(createSecretStore({ home: profileHome('fresh') }));
    expect((await control('contractor').status({})).session).toMatchObject({ status: 'signed_in', user: { email: CAROL.email } });
  }, 60_000);

  it('`lanyard connect <ide> --profile` writes a `lanyard-<profile>` entry next to the default one, and it reaches that profile', async () => {
    const userHome = path.join(home, 'user-home');
    const env = { HOME: userHome };
    expect((await lanyard(['connect', 'cursor'], env)).code).toBe(0);
    const connect = await lanyard(['connect', 'cursor', '--profile', 'contractor'], env);
    expect(connect.code, connect.stderr).toBe(0);
    const file = path.join(userHome, '.cursor', 'mcp.json');
    type Entry = { command: string; args: string[]; env?: Record<string, string> };
    const servers = () => readFile(file, 'utf8').then((t) => (JSON.parse(t) as { mcpServers: Record<string, Entry> }).mcpServers);
    const both = await servers();
    expect(Object.keys(both).sort()).toEqual(['lanyard', 'lanyard-contractor']);
    expect(both['lanyard-contractor']!.args.slice(-5)).toEqual(['stdio', '--profile', 'contractor', '--ide', 'cursor']);
    expect(both.lanyard!.args).not.toContain('--profile');
    // The entry as Cursor would run it: the contractor's identity, through the running broker of the default home.
    const entry = both['lanyard-contractor']!;
    expect(await whoamiOverStdio(entry.command, entry.args, entry.env ?? {})).toMatchObject({ sub: CAROL.sub });

    // Disconnecting the profile takes out its entry only.
    expect((await lanyard(['disconnect', 'cursor', '--profile', 'contractor'], env)).code).toBe(0);
    expect(Object.keys(await servers())).toEqual(['lanyard']);
  }, 60_000);

  it('the desktop app switches its tray and dashboard between profiles, and sees each one’s state', async () => {
    const app = createSwitchingControl(broker.broker.control, broker.broker.identities!, silentLogger);
    const before = await app.status({});
    // The default profile (not set up here) is current; every profile's state is in the status the tray shows.
    expect(before.session.status).toBe('not_configured');
    expect(before.identities?.map((p) => [p.name, p.status, p.user ?? null, p.current])).toEqual([
      [null, 'not_configured', null, true],
      ['contractor', 'signed_in', CAROL.email, false],
      ['fresh', 'signed_in', 'alice@example.com', false],
      ['work', 'signed_out', null, false],
    ]);
    const pushed: string[] = [];
    const off = app.onEvent((name, payload) => {
      if (name === 'status') pushed.push((payload as { session: { status: string } }).session.status);
    });
    await app.selectIdentityProfile({ name: 'contractor' });
    expect((await app.status({})).session).toMatchObject({ status: 'signed_in', user: { email: CAROL.email } });
    expect((await app.listServers({})).map((s) => s.id)).toEqual(['todo']);
    expect((await app.listIdentityProfiles({})).find((p) => p.current)?.name).toBe('contractor');
    // The switch is pushed to the surface at once.
    await expect.poll(() => pushed.at(-1)).toBe('signed_in');
    off();
    await expect(app.selectIdentityProfile({ name: 'nobody' })).rejects.toMatchObject({ code: ErrorCodes.IDENTITY_PROFILE_UNKNOWN });
    // The CLI's /api is not redirected by the app's choice: it still answers for the default profile.
    expect((await control('').status({})).session.status).toBe('not_configured');
  });

  it('the browser dashboard opens a profile’s control API and live events with its own session', async () => {
    const code = /#code=([A-Za-z0-9_-]+)/.exec(broker.dashboardLink())![1]!;
    const host = { origin: broker.url };
    const session = (
      (await (
        await fetch(`${broker.url}/dashboard/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...host },
          body: JSON.stringify({ code }),
        })
      ).json()) as { session: string }
    ).session;
    const headers = { 'X-Lanyard-Session': session, 'content-type': 'application/json', ...host };
    const listed = (await (
      await fetch(`${broker.url}/p/contractor/api/listIdentityProfiles`, { method: 'POST', headers, body: '{}' })
    ).json()) as {
      ok: boolean;
      value: Array<{ name: string | null }>;
    };
    expect(listed.ok).toBe(true);
    expect(listed.value.map((p) => p.name)).toEqual([null, 'contractor', 'fresh', 'work']);
    const ticket = ((await (await fetch(`${broker.url}/dashboard/ticket`, { method: 'POST', headers })).json()) as { ticket: string })
      .ticket;
    const controller = new AbortController();
    const events = await fetch(`${broker.url}/p/contractor/api/events?ticket=${encodeURIComponent(ticket)}`, { signal: controller.signal });
    expect(events.status).toBe(200);
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    controller.abort();
  });
});
