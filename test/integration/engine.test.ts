/**
 * Sign in once: the identity session and the ID-JAG token engine, built by the production createEngine, against the
 * real sandbox (oidc-provider IdP over HTTP, resource authorization servers that validate ID-JAGs, SDK-built MCP
 * servers) and the real OS keychain (gnome-keyring through Secret Service; `npm test` provides the session).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, scanForSecrets, tempHome, type EngineHarness } from '../helpers/engine';

const codeOf = (e: unknown) => (e instanceof LanyardError ? e.code : String(e));

async function connect(engine: EngineHarness, sandbox: Sandbox, serverId: string): Promise<Client> {
  const client = new Client({ name: 'engine-test', version: '1' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(sandbox.server(serverId).mcp.url), {
    fetch: engine.tokens.authorizedFetch(serverId),
  });
  await client.connect(transport);
  return client;
}

describe('sign in once, tokens for every server (okta-org IdP, public client)', () => {
  let sandbox: Sandbox;
  let home: string;
  let cleanup: () => Promise<void>;
  let engine: EngineHarness;

  // One sandbox for the block (its counters only ever grow: tests compare before and after); each test gets its own
  // Lanyard home, keychain namespace and engine, and sets up the state it needs itself.
  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, extraServers: 10, toolsPerExtraServer: 3 });
  });
  beforeEach(async () => {
    ({ home, cleanup } = await tempHome());
    engine = await createEngine(sandbox, { home });
  });
  afterEach(async () => {
    await engine?.secrets.deleteAll();
    await cleanup?.();
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  /** Signed in as alice, with a token for `todo` minted by a first tool call. */
  async function signedInWithTodoToken(): Promise<void> {
    await engine.signIn('alice');
    const client = await connect(engine, sandbox, 'todo');
    await client.callTool({ name: 'whoami', arguments: {} });
    await client.close();
  }

  it('starts signed out and says how to sign in', async () => {
    expect(engine.identity.state.status).toBe('signed_out');
    const error = await engine.tokens.getToken('todo').catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.NOT_SIGNED_IN);
    expect((error as LanyardError).fix).toMatch(/Sign in/);
  });

  it('first sign-in goes through the IdP login page in the browser, with PKCE, state, nonce', async () => {
    const loginsBefore = sandbox.idp.counters.logins;
    const states: Array<{ status: string; authorizeUrl?: string | undefined }> = [];
    const off = engine.identity.onChange((s) => states.push(s));
    await engine.signIn('alice');
    off();
    // While the browser is out, the status carries the link (for a user whose browser did not open).
    expect(states.find((s) => s.status === 'signing_in' && s.authorizeUrl)?.authorizeUrl).toBe(engine.opened[0]);
    expect(engine.opened).toHaveLength(1);
    const authorize = new URL(engine.opened[0]!);
    expect(authorize.href.startsWith(sandbox.idp.authorizationEndpoint)).toBe(true);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('state')).toBeTruthy();
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    expect(authorize.searchParams.get('scope')).toBe('openid profile email offline_access');
    expect(new URL(authorize.searchParams.get('redirect_uri')!).hostname).toBe('127.0.0.1');
    const state = engine.identity.state;
    expect(state.status).toBe('signed_in');
    if (state.status === 'signed_in') expect(state.user.email).toBe('alice@example.com');
    expect(sandbox.idp.counters.logins).toBe(loginsBefore + 1);
  });

  it('gets a per-user token by cross-app access and calls a protected tool with it', async () => {
    await engine.signIn('alice');
    const exchangesBefore = sandbox.idp.counters.exchanges;
    const client = await connect(engine, sandbox, 'todo');
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const who = JSON.parse((result.content as Array<{ text: string }>)[0]!.text) as { sub: string; clientId: string; scopes: string[] };
    expect(who.sub).toBe('00u-alice');
    expect(who.clientId).toBe('lanyard-at-todo');
    expect(who.scopes).toContain('todo:read');
    await client.close();
    expect(sandbox.idp.counters.exchanges).toBe(exchangesBefore + 1);
    expect(engine.tokens.status('todo').idJagsThisMonth).toBe(1);
  });

  it('reuses the cached token: a second connection mints nothing', async () => {
    await signedInWithTodoToken();
    const exchangesBefore = sandbox.idp.counters.exchanges;
    const client = await connect(engine, sandbox, 'todo');
    await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    await client.close();
    expect(sandbox.idp.counters.exchanges).toBe(exchangesBefore);
  });

  it('restarts without a browser and without minting again (session and tokens come from the keychain)', async () => {
    await signedInWithTodoToken();
    const exchangesBefore = sandbox.idp.counters.exchanges;
    const refreshesBefore = sandbox.idp.counters.refreshes;
    const restarted = await engine.restart();
    expect(restarted.identity.state.status).toBe('signed_in');
    const token = await restarted.tokens.getToken('todo');
    expect(token?.accessToken).toBeTruthy();
    expect(restarted.opened).toHaveLength(0);
    expect(sandbox.idp.counters.exchanges).toBe(exchangesBefore);
    expect(sandbox.idp.counters.refreshes).toBe(refreshesBefore);
  });

  it('200 concurrent first calls across 10 servers: exactly one refresh and one exchange per server', async () => {
    await engine.signIn('alice');
    const gen = sandbox.servers.filter((s) => s.id.startsWith('gen-'));
    expect(gen).toHaveLength(10);
    // The ID token is now within the refresh margin for Lanyard (as after a long idle): every caller needs a refresh.
    engine.clock.advance(500);
    const refreshesBefore = sandbox.idp.counters.refreshes;
    const exchangesBefore = sandbox.idp.counters.exchanges;
    const grantsBefore = gen[0]!.as.counters.grants;
    const calls = Array.from({ length: 200 }, (_, i) => engine.tokens.getToken(gen[i % 10]!.id));
    const tokens = await Promise.all(calls);
    expect(sandbox.idp.counters.refreshes - refreshesBefore).toBe(1);
    expect(sandbox.idp.counters.exchanges - exchangesBefore).toBe(10);
    expect(gen[0]!.as.counters.grants - grantsBefore).toBe(10);
    // Every caller of one server got the same token; different servers got different ones.
    for (let i = 0; i < 10; i++) expect(new Set(tokens.filter((_, j) => j % 10 === i).map((t) => t!.accessToken)).size).toBe(1);
    expect(new Set(tokens.map((t) => t!.accessToken)).size).toBe(10);
  });

  it('silently refreshes an expiring ID token (refresh with openid gives a new ID token; rotated refresh token kept)', async () => {
    await engine.signIn('alice');
    const before = sandbox.idp.counters.refreshes;
    await engine.identity.getIdToken();
    expect(sandbox.idp.counters.refreshes).toBe(before);
    // Ten minutes later (the ID token lives ten minutes here): within the margin, so the next caller refreshes.
    engine.clock.advance(1100);
    await engine.identity.getIdToken();
    expect(sandbox.idp.counters.refreshes).toBe(before + 1);
    // The rotated refresh token reached the keychain: a restarted engine refreshes with it (the old one is dead).
    const restarted = await engine.restart();
    await expect(restarted.identity.getIdToken({ forceRefresh: true })).resolves.toBeTruthy();
    expect(sandbox.idp.counters.refreshes).toBe(before + 2);
    expect(restarted.identity.state.status).toBe('signed_in');
  });

  it('steps up on insufficient_scope with the union of scopes, then the tool call succeeds', async () => {
    await engine.signIn('alice');
    const insufficientBefore = sandbox.server('todo').mcp.counters.insufficientScope;
    const client = await connect(engine, sandbox, 'todo');
    const result = await client.callTool({ name: 'admin_purge', arguments: {} });
    expect(result.isError).not.toBe(true);
    const status = engine.tokens.status('todo');
    expect(status.scopes).toEqual(expect.arrayContaining(['todo:read', 'todo:write']));
    expect(sandbox.server('todo').mcp.counters.insufficientScope).toBeGreaterThanOrEqual(insufficientBefore + 1);
    await client.close();
  });

  it('no token or secret is in any file Lanyard wrote', async () => {
    // Everything that writes: sign-in, a minted token, a refresh with a rotated refresh token, a restart.
    await signedInWithTodoToken();
    engine.clock.advance(1100);
    await engine.identity.getIdToken();
    await (await engine.restart()).tokens.getToken('todo');
    for (const [, v] of Object.entries(sandbox.lanyardSecrets())) engine.recorder.add(v);
    expect(engine.recorder.values.size).toBeGreaterThan(10);
    expect(await scanForSecrets(home, engine.recorder.values)).toEqual([]);
  });
});

describe('failures a user can meet', () => {
  let sandbox: Sandbox;
  const homes: Array<() => Promise<void>> = [];
  const engines: EngineHarness[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, accessTokenTtlSeconds: 120 });
  });
  afterEach(async () => {
    await sandbox.idp.setFault(null);
  });
  afterAll(async () => {
    for (const e of engines) await e.secrets.deleteAll();
    await sandbox?.stop();
    for (const c of homes) await c();
  });

  async function freshEngine(): Promise<EngineHarness> {
    const { home, cleanup } = await tempHome();
    homes.push(cleanup);
    const engine = await createEngine(sandbox, { home });
    engines.push(engine);
    return engine;
  }

  it('a revoked refresh token gives one "sign in again" state, for every caller, and never opens the browser', async () => {
    const engine = await freshEngine();
    await engine.signIn('alice');
    const transitions: string[] = [];
    engine.identity.onChange((s) => transitions.push(s.status));
    await sandbox.idp.revokeRefreshTokens('alice');
    engine.clock.advance(500);
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => engine.identity.getIdToken()));
    expect(results.every((r) => r.status === 'rejected' && codeOf(r.reason) === ErrorCodes.SESSION_EXPIRED)).toBe(true);
    expect(transitions.filter((t) => t === 'expired')).toHaveLength(1);
    expect(engine.identity.state.status).toBe('expired');
    expect(engine.opened).toHaveLength(1); // the original sign-in only
    // Still expired after a restart: the dead grant is not retried.
    const restarted = await engine.restart();
    expect(restarted.identity.state.status).toBe('expired');
    await expect(restarted.identity.getIdToken()).rejects.toMatchObject({ code: ErrorCodes.SESSION_EXPIRED });
  });

  it('the IdP down: cached tokens keep working until they expire, then a clear error; recovers by itself', async () => {
    const engine = await freshEngine();
    await engine.signIn('alice');
    const token = await engine.tokens.getToken('wiki');
    await sandbox.idp.setFault('down');
    // Within the token's life: served from the cache, the IdP is not needed.
    await expect(engine.tokens.getToken('wiki')).resolves.toMatchObject({ accessToken: token!.accessToken });
    // Inside the renewal margin the renewal fails transiently, and the still-valid token is served.
    engine.clock.advance(90);
    await expect(engine.tokens.getToken('wiki')).resolves.toMatchObject({ accessToken: token!.accessToken });
    // Past its expiry (and the ID token's margin): a clear, transient error.
    engine.clock.advance(600);
    const error = await engine.tokens.getToken('wiki').catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.IDP_UNREACHABLE);
    expect((error as LanyardError).transient).toBe(true);
    expect((error as LanyardError).fix).toMatch(/network|VPN/i);
    await sandbox.idp.setFault(null);
    engine.clock.advance(120); // past the backoff window
    await expect(engine.tokens.getToken('wiki')).resolves.toMatchObject({ accessToken: expect.any(String) });
    engine.clock.offsetMs = 0;
  });

  it('the IdP narrowing the scopes gives a clear insufficient-scope error naming the missing scope', async () => {
    const engine = await freshEngine();
    await engine.signIn('bob'); // bob may only read todo
    const client = await connect(engine, sandbox, 'todo');
    const error = await client.callTool({ name: 'admin_purge', arguments: {} }).catch((e: unknown) => e);
    await client.close();
    const reason = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}` : String(error);
    expect(reason).toMatch(/todo:write/);
    expect(engine.tokens.status('todo').lastError?.code).toBe(ErrorCodes.INSUFFICIENT_SCOPE);
  });

  it('policy refusal at the IdP becomes exchange_denied with the IdP reason and a fix for the admin', async () => {
    const engine = await freshEngine();
    await engine.signIn('alice');
    const saved = sandbox.idp.policy.splice(
      0,
      sandbox.idp.policy.length,
      ...sandbox.idp.policy.filter((r) => !(r.user === 'alice' && r.resource === sandbox.server('wiki').mcp.resource)),
    );
    try {
      const error = await engine.tokens.getToken('wiki').catch((e: unknown) => e);
      expect(codeOf(error)).toBe(ErrorCodes.EXCHANGE_DENIED);
      expect((error as LanyardError).message).toMatch(/invalid_target/);
      expect((error as LanyardError).fix).toMatch(/admin/);
    } finally {
      sandbox.idp.policy.splice(0, sandbox.idp.policy.length, ...saved);
    }
  });

  it('a client id the IdP does not map for this server is named precisely before anything is sent to the AS', async () => {
    const { home, cleanup } = await tempHome();
    homes.push(cleanup);
    const servers = sandbox
      .lanyardConfig()
      .servers.map((s) => (s.id === 'todo' ? { ...s, asClient: { ...s.asClient, clientId: 'wrong-client' } } : s));
    const engine = await createEngine(sandbox, { home, servers });
    engines.push(engine);
    await engine.signIn('alice');
    const grantsBefore = sandbox.server('todo').as.counters.grants;
    const error = await engine.tokens.getToken('todo').catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.AS_CLIENT_REJECTED);
    expect((error as LanyardError).message).toContain('lanyard-at-todo');
    expect(sandbox.server('todo').as.counters.grants).toBe(grantsBefore);
  });
});

describe('other IdP shapes and client authentication', () => {
  it('path issuer, private_key_jwt at the IdP and at both ASes, Okta quirks (token_type Bearer, no resource claim)', async () => {
    const sandbox = await startSandbox({
      idp: { shape: 'path-issuer', clientAuth: 'private_key_jwt', quirks: { tokenTypeBearer: true, omitResourceClaim: true } },
      asClientAuth: { todo: 'private_key_jwt', wiki: 'private_key_jwt' },
    });
    const { home, cleanup } = await tempHome();
    const engine = await createEngine(sandbox, { home });
    try {
      expect(new URL(sandbox.idp.issuer).pathname).toBe('/oauth2/default');
      await engine.signIn('alice');
      for (const id of ['todo', 'wiki']) {
        const client = await connect(engine, sandbox, id);
        const result = await client.callTool({ name: 'whoami', arguments: {} });
        expect((result.content as Array<{ text: string }>)[0]!.text).toContain('00u-alice');
        await client.close();
      }
    } finally {
      await engine.secrets.deleteAll();
      await sandbox.stop();
      await cleanup();
    }
  });

  it('client_secret_basic at the IdP, and sign-out revokes at the IdP and wipes the keychain', async () => {
    const sandbox = await startSandbox({ idp: { clientAuth: 'client_secret_basic' } });
    const { home, cleanup } = await tempHome();
    const engine = await createEngine(sandbox, { home });
    try {
      await engine.signIn('alice');
      await engine.tokens.getToken('todo');
      await engine.identity.signOut();
      expect(engine.identity.state.status).toBe('signed_out');
      expect(sandbox.idp.counters.revocations).toBe(1);
      expect(await engine.secrets.get('idp:session')).toBeUndefined();
      const restarted = await engine.restart();
      expect(restarted.identity.state.status).toBe('signed_out');
      await expect(restarted.tokens.getToken('todo')).rejects.toMatchObject({ code: ErrorCodes.NOT_SIGNED_IN });
    } finally {
      await engine.secrets.deleteAll();
      await sandbox.stop();
      await cleanup();
    }
  });
});
