/**
 * Every auth path through the real gateway (the broker's front door, `/mcp` and `/mcp/<id>`), the real keychain and
 * the sandbox (IdP, resource authorization servers, Cross-App Access MCP servers), plus SDK-built servers of the other
 * kinds started here: an API-key server, an open one, and an OAuth-only one whose OAuth path is a stand-in that counts
 * what the router asks of it (the OAuth engine itself is tested in test/integration/oauth-*.test.ts).
 *
 * Run inside the private keyring session:
 *   LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/auth-paths.test.ts
 */
import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerSecretKey } from '../../electron/broker/auth/router';
import { Broker, type RunningGateway } from '../../electron/broker/broker';
import { createManagedPolicy, unmanaged } from '../../electron/broker/config/managed';
import { LanyardError } from '../../electron/broker/errors';
import type { OAuthEvent, OAuthPath, OAuthServerRef } from '../../electron/broker/oauth/types';
import { keychainNamespace } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import { silentLogger } from '../../electron/broker/util/log';
import { ErrorCodes } from '../../shared/errors';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { API_KEY, OAUTH_TOKEN, startOtherServers } from '../helpers/auth-servers';

const AUTHORIZE_LINK_PATH = '/as/authorize?client_id=lanyard&state=s1&code_challenge=c1';

/** The OAuth path's stand-in: a grant appears when the test "completes" the browser step. */
class CountingOAuth implements OAuthPath {
  granted = false;
  getTokenCalls = 0;
  authorizeCalls: Array<{ id: string; openBrowser: boolean }> = [];
  forgotten: string[] = [];
  private readonly listeners = new Set<(e: OAuthEvent) => void>();
  constructor(private readonly origin: () => string) {}
  async getToken(server: OAuthServerRef) {
    this.getTokenCalls++;
    if (!this.granted) throw new LanyardError(ErrorCodes.AUTHORIZATION_REQUIRED, 'No grant yet.', 'Authorize.', { serverId: server.id });
    return { accessToken: OAUTH_TOKEN, tokenType: 'Bearer', expiresAt: Date.now() + 600_000, scopes: [] };
  }
  async authorize(server: OAuthServerRef, options: { openBrowser?: boolean } = {}) {
    this.authorizeCalls.push({ id: server.id, openBrowser: options.openBrowser ?? true });
    return { authorizeUrl: `${this.origin()}${AUTHORIZE_LINK_PATH}`, done: new Promise<void>(() => undefined) };
  }
  async invalidate() {}
  async stepUp() {}
  status() {
    return this.granted
      ? { state: 'authorized' as const, scopes: [] }
      : this.authorizeCalls.length
        ? { state: 'authorizing' as const, authorizeUrl: `${this.origin()}${AUTHORIZE_LINK_PATH}`, scopes: [] }
        : { state: 'authorization_required' as const, scopes: [] };
  }
  async forget(id: string) {
    this.forgotten.push(id);
  }
  onEvent(listener: (e: OAuthEvent) => void) {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
  grant(serverId: string) {
    this.granted = true;
    for (const l of this.listeners) l({ type: 'oauth_authorized', serverId, scopes: ['read'], expiresAt: undefined });
  }
}

const text = (result: unknown): string =>
  ((result as { content: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

async function ide(gateway: RunningGateway, pathSuffix = ''): Promise<Client> {
  const client = new Client({ name: 'test-ide', version: '1.0.0' }, { capabilities: {} });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${gateway.server.mcpUrl}${pathSuffix}`), {
      requestInit: { headers: { Authorization: `Bearer ${gateway.localAuth.token}` } },
    }),
  );
  return client;
}

/** A raw JSON-RPC POST to the relay, answered at once (the router fails before any upstream connection). */
async function relayPost(gateway: RunningGateway, id: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${gateway.server.mcpUrl}/${id}`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${gateway.localAuth.token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

let sandbox: Sandbox;
let others: Awaited<ReturnType<typeof startOtherServers>>;
let root: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sandbox = await startSandbox();
  others = await startOtherServers();
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-paths-'));
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await others?.close();
  await sandbox?.stop();
  await rm(root, { recursive: true, force: true });
});

async function startBroker(name: string, options: { managed?: Parameters<typeof createManagedPolicy>[0]; withIdp?: boolean } = {}) {
  const home = path.join(root, name);
  await mkdir(home, { recursive: true });
  const secrets = new KeychainSecretStore({ service: keychainNamespace(home) });
  const oauth = new CountingOAuth(() => others.origin);
  const opened: string[] = [];
  const broker = await Broker.create({
    version: 'test',
    home,
    secrets,
    managed: options.managed ? createManagedPolicy(options.managed) : unmanaged,
    log: silentLogger,
    openUrl: async (url) => {
      opened.push(url);
      // The OAuth stand-in's link: the test plays the user's browser step itself (oauth.grant).
      if (url.startsWith(others.origin)) return;
      const callback = await sandbox.idp.completeLogin(url, 'alice');
      await fetch(callback);
    },
    oauth,
  });
  if (options.withIdp !== false) {
    for (const [k, v] of Object.entries(sandbox.lanyardSecrets())) await secrets.set(k, v);
    const sc = sandbox.lanyardConfig();
    broker.config.update((draft) => ({ ...draft, idp: sc.idp, servers: sc.servers }));
    await broker.reconfigure();
  }
  const gateway = await broker.startGateway({ port: 0, timeouts: { listBudgetMs: 5_000 } });
  cleanups.push(async () => {
    await gateway.stop();
    await secrets.deleteAll();
    await broker.close();
  });
  return { broker, gateway, secrets, oauth, home, opened };
}

describe('signed out (or with no IdP), OAuth, API-key and open servers work through /mcp and /mcp/<id>', () => {
  let b: Awaited<ReturnType<typeof startBroker>>;
  const clients: Client[] = [];

  beforeAll(async () => {
    b = await startBroker('signed-out');
    await b.broker.control.addServer({ url: `${others.origin}/key/mcp`, id: 'key', header: { name: 'X-Api-Key', value: API_KEY } });
    await b.broker.control.addServer({ url: `${others.origin}/open/mcp`, id: 'open' });
    await b.broker.control.addServer({ url: `${others.origin}/oauth/mcp`, id: 'oauthy', name: 'Oauthy' });
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
  });

  it('the key lives in the keychain only; the config records the paths the probe chose', async () => {
    expect(b.secrets.kind).toBe('os-keychain');
    expect(await b.secrets.get(headerSecretKey('key'))).toBe(API_KEY);
    const file = await readFile(b.broker.config.path, 'utf8');
    expect(file).not.toContain(API_KEY);
    expect(JSON.parse(file).servers.find((s: { id: string }) => s.id === 'key')).toMatchObject({
      authPath: 'header',
      header: { name: 'X-Api-Key' },
    });
  });

  it('/mcp lists the key and open servers beside lanyard_sign_in, and calls them with the key, never the IDE token', async () => {
    const client = await ide(b.gateway);
    clients.push(client);
    await expect
      .poll(async () => (await client.listTools()).tools.map((t) => t.name).sort(), { timeout: 10_000 })
      .toEqual(expect.arrayContaining(['key__echo', 'open__echo', 'lanyard_sign_in']));
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.some((n) => n.startsWith('todo__') || n.startsWith('wiki__'))).toBe(false);
    expect(text(await client.callTool({ name: 'key__echo', arguments: { text: 'hi' } }))).toBe('key: hi');
    expect(text(await client.callTool({ name: 'open__echo', arguments: { text: 'yo' } }))).toBe('open: yo');
    const toServers = others.received.filter((r) => r.path === '/key/mcp' || r.path === '/open/mcp');
    expect(toServers.length).toBeGreaterThan(0);
    for (const r of toServers) expect(JSON.stringify(r.headers)).not.toContain(b.gateway.localAuth.token);
    expect(others.received.filter((r) => r.path === '/key/mcp' && r.headers['x-api-key'] === API_KEY).length).toBeGreaterThan(0);
    expect(others.received.filter((r) => r.path === '/open/mcp' && r.headers['x-api-key'])).toEqual([]);
  });

  it('the relay reaches the key server signed out', async () => {
    const client = await ide(b.gateway, '/key');
    clients.push(client);
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'relay' } }))).toBe('key: relay');
  });

  it('an OAuth server without a grant answers at once "Authorize <server> in Lanyard" with the link; no browser per call', async () => {
    const started = Date.now();
    const r = await relayPost(b.gateway, 'oauthy', {
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'x' } },
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    const result = r.json.result as { isError: boolean; content: Array<{ text: string }> };
    expect(result.isError).toBe(true);
    expect(result.content[0]!.text).toMatch(/^Authorize Oauthy in Lanyard/);
    expect(result.content[0]!.text).toContain(`${others.origin}${AUTHORIZE_LINK_PATH}`);
    expect(result.content[0]!.text).toContain(ErrorCodes.AUTHORIZATION_REQUIRED);

    const list = await relayPost(b.gateway, 'oauthy', { jsonrpc: '2.0', id: 8, method: 'tools/list', params: {} });
    expect((list.json.error as { data: Record<string, unknown> }).data).toEqual({
      code: ErrorCodes.AUTHORIZATION_REQUIRED,
      fix: expect.stringContaining(AUTHORIZE_LINK_PATH),
      serverId: 'oauthy',
    });
    // Started without a browser, every time; no token was ever sent to the server.
    expect(b.oauth.authorizeCalls.length).toBeGreaterThan(0);
    expect(b.oauth.authorizeCalls.every((c) => c.openBrowser === false)).toBe(true);
    expect(b.opened).toEqual([]);
    expect(others.received.filter((r) => r.path === '/oauth/mcp' && r.headers.authorization)).toEqual([]);

    // On /mcp its tools are missing, and Lanyard's status tool says why and what to do, with the same link.
    const agg = await ide(b.gateway);
    clients.push(agg);
    await expect
      .poll(async () => (await agg.listTools()).tools.find((t) => t.name === 'lanyard_status')?.description ?? '', { timeout: 10_000 })
      .toMatch(/oauthy: Authorize Oauthy in Lanyard/);
    expect(text(await agg.callTool({ name: 'lanyard_status', arguments: {} }))).toMatch(
      /oauthy \(Oauthy\): error — Authorize Oauthy in Lanyard/,
    );

    const status = (await b.broker.control.listServers()).find((s) => s.id === 'oauthy')!;
    expect(status).toMatchObject({ authPath: 'oauth', authState: 'authorizing', action: 'authorize' });
  });

  it('authorizeServer opens the browser once and returns the link; once authorized, calls go through', async () => {
    const { authorizeUrl } = await b.broker.control.authorizeServer({ id: 'oauthy' });
    expect(authorizeUrl).toBe(`${others.origin}${AUTHORIZE_LINK_PATH}`);
    expect(b.oauth.authorizeCalls.at(-1)).toEqual({ id: 'oauthy', openBrowser: true });
    // The flow was under way (started without a browser by the IDE's calls): the click opens its link, once.
    expect(b.opened.filter((u) => u === authorizeUrl)).toEqual([authorizeUrl]);
    const agg = await ide(b.gateway);
    clients.push(agg);
    let listChanged = 0;
    agg.setNotificationHandler('notifications/tools/list_changed', () => void listChanged++);
    await agg.listTools();
    b.oauth.grant('oauthy');
    // Lanyard lists it again at once (not at the IDE's next tools/list) and tells the IDE: its tools appear.
    await expect.poll(() => listChanged, { timeout: 3_000 }).toBeGreaterThan(0);
    expect((await agg.listTools()).tools.some((t) => t.name === 'oauthy__echo')).toBe(true);
    const client = await ide(b.gateway, '/oauthy');
    clients.push(client);
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'ok' } }))).toBe('oauth: ok');
    expect((await b.broker.control.recentActivity({ limit: 50 })).map((a) => a.summary)).toContain('Authorized oauthy (read)');
  });

  it('status: each server shows its path, state and the one action', async () => {
    const byId = Object.fromEntries((await b.broker.control.listServers()).map((s) => [s.id, s]));
    expect(byId.key).toMatchObject({ authPath: 'header', authState: 'ready', headerName: 'X-Api-Key' });
    expect(byId.open).toMatchObject({ authPath: 'none', authState: 'ready' });
    expect(byId.oauthy).toMatchObject({ authPath: 'oauth', authState: 'ready' });
    expect(byId.todo).toMatchObject({ authState: 'sign_in_required', action: 'sign_in' });
    expect(JSON.stringify(byId)).not.toContain(API_KEY);
  });

  it('a key the server rejects: KEY_REQUIRED at once with the fix, on /mcp and the relay; the other servers keep working', async () => {
    await b.broker.control.setServerKey({ id: 'key', value: 'sk-wrong-key-0000000000' });
    const client = await ide(b.gateway);
    clients.push(client);
    await client.listTools();
    const result = await client.callTool({ name: 'key__echo', arguments: { text: 'hi' } });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/rejected the stored key/);
    expect(text(result)).toMatch(/Set key/);
    expect(text(result)).toContain(ErrorCodes.KEY_REQUIRED);
    expect(text(result)).not.toContain('sk-wrong-key');
    const relay = await relayPost(b.gateway, 'key', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    expect((relay.json.error as { data: { code: string } }).data.code).toBe(ErrorCodes.KEY_REQUIRED);
    expect((await b.broker.control.listServers()).find((s) => s.id === 'key')).toMatchObject({
      authState: 'key_required',
      action: 'set_key',
    });
    expect(text(await client.callTool({ name: 'open__echo', arguments: { text: 'still' } }))).toBe('open: still');
    await b.broker.control.setServerKey({ id: 'key', value: API_KEY });
    expect(text(await (await ide(b.gateway, '/key')).callTool({ name: 'echo', arguments: { text: 'back' } }))).toBe('key: back');
  });

  it('removeServer forgets the OAuth grant and deletes the key', async () => {
    await b.broker.control.removeServer({ id: 'oauthy' });
    expect(b.oauth.forgotten).toContain('oauthy');
    await b.broker.control.removeServer({ id: 'key' });
    expect(await b.secrets.get(headerSecretKey('key'))).toBeUndefined();
  });
});

describe('with no IdP configured at all', () => {
  it('API-key and open servers are listed and called (no sign-in placeholder)', async () => {
    const b = await startBroker('no-idp', { withIdp: false });
    await b.broker.control.addServer({ url: `${others.origin}/key/mcp`, id: 'key', header: { name: 'X-Api-Key', value: API_KEY } });
    await b.broker.control.addServer({ url: `${others.origin}/open/mcp`, id: 'open' });
    const client = await ide(b.gateway);
    await expect
      .poll(async () => (await client.listTools()).tools.map((t) => t.name).sort(), { timeout: 10_000 })
      .toEqual(['key__echo', 'open__echo']);
    expect(text(await client.callTool({ name: 'key__echo', arguments: { text: 'a' } }))).toBe('key: a');
    await client.close();
  });
});

describe('Cross-App Access refused by the IdP policy never falls back', () => {
  it('POLICY_BLOCKED "blocked by your administrator" with the IdP reason; no OAuth, no key; other servers unaffected', async () => {
    const b = await startBroker('xaa-denied');
    // A key stored for wiki must never be used: its path is Cross-App Access.
    await b.secrets.set(headerSecretKey('wiki'), API_KEY);
    await b.broker.control.signIn();
    const wiki = sandbox.server('wiki');
    const saved = [...sandbox.idp.policy];
    sandbox.idp.policy.splice(0, sandbox.idp.policy.length, ...saved.filter((r) => !(r.user === 'alice' && r.audience === wiki.as.issuer)));
    try {
      const client = await ide(b.gateway);
      await expect
        .poll(async () => (await client.listTools()).tools.some((t) => t.name.startsWith('todo__')), { timeout: 10_000 })
        .toBe(true);
      for (let i = 0; i < 2; i++) {
        const result = await client.callTool({ name: 'wiki__echo', arguments: { text: 'x' } });
        expect(result.isError).toBe(true);
        expect(text(result)).toMatch(/blocked by your administrator/);
        expect(text(result)).toMatch(/invalid_target/);
        expect(text(result)).toContain(ErrorCodes.POLICY_BLOCKED);
      }
      expect(b.oauth.getTokenCalls).toBe(0);
      expect(b.oauth.authorizeCalls).toEqual([]);
      const status = (await b.broker.control.listServers()).find((s) => s.id === 'wiki')!;
      expect(status).toMatchObject({ authPath: 'xaa', authState: 'blocked' });
      expect(JSON.parse(await readFile(b.broker.config.path, 'utf8')).servers.find((s: { id: string }) => s.id === 'wiki').authPath).toBe(
        'xaa',
      );
      // todo still works for alice.
      expect(text(await client.callTool({ name: 'todo__whoami', arguments: {} }))).toMatch(/alice/);
      await client.close();
    } finally {
      sandbox.idp.policy.splice(0, sandbox.idp.policy.length, ...saved);
    }
  });
});

describe('the administrator’s policy: pin, forbid, lock', () => {
  it('pins a managed server, forbids an OAuth fallback naming the rule, and refuses path changes while locked', async () => {
    const dir = await mkdtemp(path.join(root, 'managed-'));
    const file = path.join(dir, 'managed.json');
    await writeFile(
      file,
      JSON.stringify({
        fallback: false,
        lock: ['authPaths'],
        servers: [{ id: 'pinned', name: 'Pinned', url: `${others.origin}/key/mcp`, authPath: 'header', header: { name: 'X-Api-Key' } }],
      }),
    );
    await chmod(file, 0o644);
    const mark = others.received.length;
    const b = await startBroker('managed', { managed: { path: file, ttlMs: 0 }, withIdp: false });
    await b.secrets.set(headerSecretKey('pinned'), API_KEY);
    await b.broker.control.addServer({ url: `${others.origin}/oauth/mcp`, id: 'oauthy' });
    await b.broker.control.addServer({ url: `${others.origin}/open/mcp`, id: 'open' });

    const client = await ide(b.gateway);
    await expect
      .poll(async () => (await client.listTools()).tools.map((t) => t.name), { timeout: 10_000 })
      .toEqual(expect.arrayContaining(['pinned__echo', 'open__echo']));
    expect(text(await client.callTool({ name: 'pinned__echo', arguments: { text: 'p' } }))).toBe('key: p');
    // The pinned server was never probed: only authenticated MCP requests reached it.
    expect(others.received.slice(mark).filter((r) => r.path === '/key/mcp' && r.headers['x-api-key'] !== API_KEY)).toEqual([]);

    const blocked = await relayPost(b.gateway, 'oauthy', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    const error = blocked.json.error as { message: string; data: { code: string } };
    expect(error.data.code).toBe(ErrorCodes.POLICY_BLOCKED);
    expect(error.message).toMatch(/your administrator allows only Cross-App Access.*fallback: false/);
    expect(b.oauth.authorizeCalls).toEqual([]);

    const statuses = Object.fromEntries((await b.broker.control.listServers()).map((s) => [s.id, s]));
    expect(statuses.pinned).toMatchObject({ authPath: 'header', authPathPinned: true, authState: 'ready' });
    expect(statuses.oauthy).toMatchObject({ authState: 'blocked', authPathPinned: true });

    const refused = await b.broker.control.setServerKey({ id: 'open', value: API_KEY, headerName: 'X-Api-Key' }).catch((e: unknown) => e);
    expect((refused as LanyardError).code).toBe(ErrorCodes.POLICY_BLOCKED);
    // Forcing a path the probe would not choose (even one policy allows) is the administrator's call while paths are locked.
    const locked = await b.broker.control
      .addServer({ url: `${others.origin}/key/mcp?x=1`, id: 'open2', authPath: 'none' })
      .catch((e: unknown) => e);
    expect((locked as LanyardError).code).toBe(ErrorCodes.MANAGED_LOCKED);
    // The path the probe chooses is no change: it is recorded.
    const chosen = await b.broker.control.addServer({ url: `${others.origin}/open/mcp?x=2`, id: 'open3', authPath: 'none' });
    expect(chosen).toMatchObject({ authPath: 'none', authState: 'ready' });
    await client.close();
  });
});
