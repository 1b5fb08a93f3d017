/**
 * The per-server auth router (electron/broker/auth/router.ts): the probe's verdict for each kind of server, the
 * dispatch on each path, and the administrator's policy — against in-memory servers behind a fake fetch.
 */
import { describe, expect, it } from 'vitest';
import { AuthRouter, headerSecretKey } from '../../electron/broker/auth/router';
import type { ManagedConfig } from '../../electron/broker/config/managed';
import { parseLanyardConfig } from '../../electron/broker/config/validate';
import type { LanyardConfig, LanyardConfigInput } from '../../electron/broker/config/schema';
import { LanyardError } from '../../electron/broker/errors';
import type { OAuthPath, OAuthServerRef } from '../../electron/broker/oauth/types';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { ErrorCodes } from '../../shared/errors';

const ORIGIN = 'http://127.0.0.1:4999';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ID_JAG = 'urn:ietf:params:oauth:grant-profile:id-jag';

interface Sent {
  url: string;
  method: string;
  headers: Headers;
}

/** Four servers on one origin: an API-key one, an open one, an OAuth-only one and a Cross-App Access one. */
function fakeNet() {
  const sent: Sent[] = [];
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const as = (name: string, extra: Record<string, unknown>) => ({
    issuer: `${ORIGIN}/as/${name}`,
    authorization_endpoint: `${ORIGIN}/as/${name}/authorize`,
    token_endpoint: `${ORIGIN}/as/${name}/token`,
    response_types_supported: ['code'],
    ...extra,
  });
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const headers = new Headers(init?.headers);
    sent.push({ url: url.href, method: init?.method ?? 'GET', headers });
    const p = url.pathname;
    if (p === '/key/mcp')
      return headers.get('x-api-key') === 'right-key' ? json({ jsonrpc: '2.0', id: 0, result: {} }) : new Response('no', { status: 401 });
    if (p === '/open/mcp') return json({ jsonrpc: '2.0', id: 0, result: {} });
    for (const name of ['oauth', 'xaa']) {
      if (p === `/${name}/mcp` && headers.get('authorization') === 'Bearer oauth-readonly')
        return new Response('', { status: 403, headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="read write"' } });
      if (p === `/${name}/mcp`)
        return headers.get('authorization') === `Bearer ${name}-token`
          ? json({ jsonrpc: '2.0', id: 0, result: {} })
          : new Response('', {
              status: 401,
              headers: { 'www-authenticate': `Bearer resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/${name}/mcp"` },
            });
      if (p === `/.well-known/oauth-protected-resource/${name}/mcp`)
        return json({ resource: `${ORIGIN}/${name}/mcp`, authorization_servers: [`${ORIGIN}/as/${name}`] });
      if (p === `/.well-known/oauth-authorization-server/as/${name}`)
        return json(
          name === 'xaa'
            ? as(name, {
                grant_types_supported: ['authorization_code', JWT_BEARER],
                authorization_grant_profiles_supported: [ID_JAG],
                code_challenge_methods_supported: ['S256'],
              })
            : as(name, { grant_types_supported: ['authorization_code', 'refresh_token'], code_challenge_methods_supported: ['S256'] }),
        );
    }
    return new Response('not found', { status: 404 });
  };
  return { fetch: fetchFn, sent };
}

function config(input: Partial<LanyardConfigInput> = {}): LanyardConfig {
  const parsed = parseLanyardConfig({
    version: 1,
    servers: [
      { id: 'key', name: 'Key', url: `${ORIGIN}/key/mcp`, header: { name: 'X-Api-Key' } },
      { id: 'open', name: 'Open', url: `${ORIGIN}/open/mcp` },
      { id: 'oauth', name: 'Oauthy', url: `${ORIGIN}/oauth/mcp` },
      { id: 'xaa', name: 'Xaa', url: `${ORIGIN}/xaa/mcp`, asClient: { clientId: 'c' } },
    ],
    ...input,
  });
  if (!parsed.ok) throw new Error(parsed.issues.join('; '));
  return parsed.config;
}

class FakeOAuth implements OAuthPath {
  granted = false;
  token = 'oauth-token';
  stepUps: Array<string | undefined> = [];
  authorizeCalls: Array<{ id: string; openBrowser: boolean | undefined; scope?: string | undefined }> = [];
  getTokenCalls = 0;
  async getToken(server: OAuthServerRef) {
    this.getTokenCalls++;
    if (!this.granted) throw new LanyardError(ErrorCodes.AUTHORIZATION_REQUIRED, 'no grant', 'authorize', { serverId: server.id });
    return { accessToken: this.token, tokenType: 'Bearer', expiresAt: Date.now() + 60_000, scopes: [] };
  }
  async authorize(server: OAuthServerRef, options?: { openBrowser?: boolean; challenge?: { scope?: string | undefined } | undefined }) {
    this.authorizeCalls.push({
      id: server.id,
      openBrowser: options?.openBrowser,
      ...(options?.challenge ? { scope: options.challenge.scope } : {}),
    });
    return { authorizeUrl: `${ORIGIN}/as/oauth/authorize?client_id=x&state=abc`, done: new Promise<void>(() => {}) };
  }
  async invalidate() {}
  async stepUp(_server: OAuthServerRef, scope: string | undefined) {
    this.stepUps.push(scope);
  }
  status() {
    return this.granted ? { state: 'authorized' as const, scopes: [] } : { state: 'authorization_required' as const, scopes: [] };
  }
  forgotten: string[] = [];
  async forget(id: string) {
    this.forgotten.push(id);
  }
  onEvent() {
    return () => {};
  }
}

/** A signed-in Cross-App Access engine whose IdP answers the exchange with `refusal` (or a token). */
function fakeEngine(refusal?: LanyardError) {
  const calls: string[] = [];
  const engine = {
    identity: { state: { status: 'signed_in' } },
    tokens: {
      authorizedFetch: (serverId: string, base: typeof fetch) => async (input: string | URL, init?: RequestInit) => {
        calls.push(serverId);
        if (refusal) throw refusal;
        const headers = new Headers(init?.headers);
        headers.set('authorization', 'Bearer xaa-token');
        return base(input, { ...init, headers });
      },
      status: (serverId: string) => ({ serverId, authRequired: true, scopes: [], idJagsThisMonth: 0 }),
    },
  };
  return { engine: engine as unknown as NonNullable<ReturnType<ConstructorParameters<typeof AuthRouter>[0]['engine']>>, calls };
}

function router(options: {
  cfg?: LanyardConfig;
  managed?: ManagedConfig;
  locked?: string[];
  oauth?: OAuthPath;
  engine?: ReturnType<typeof fakeEngine>['engine'];
  secrets?: MemorySecretStore;
}) {
  const net = fakeNet();
  const cfg = options.cfg ?? config();
  const recorded: Array<[string, string]> = [];
  const secrets = options.secrets ?? new MemorySecretStore();
  const r = new AuthRouter({
    config: () => cfg,
    managed: () => options.managed,
    locked: () => options.locked ?? [],
    engine: () => options.engine,
    oauth: options.oauth,
    secrets,
    record: (id, path) => recorded.push([id, path]),
    fetch: net.fetch,
  });
  return { router: r, net, recorded, secrets };
}

const initialize = {
  method: 'POST',
  headers: { authorization: 'Bearer the-ides-local-token', 'content-type': 'application/json' },
  body: '{}',
};

async function errorOf(p: Promise<unknown>): Promise<LanyardError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LanyardError) return e;
    throw e;
  }
  throw new Error('expected a LanyardError');
}

describe('the probe says which path applies to each server, and why', () => {
  it('an API-key server: 401 without resource_metadata means a key', async () => {
    const { router: r } = router({});
    const probe = await r.probe(`${ORIGIN}/key/mcp`);
    expect(probe.path).toBe('header');
    expect(probe.paths.map((p) => [p.path, p.applies])).toEqual([
      ['xaa', false],
      ['oauth', false],
      ['header', true],
      ['none', false],
    ]);
    expect(probe.paths[2]!.reason).toMatch(/answered 401 without resource_metadata.*an API key is likely/);
  });

  it('an open server: none', async () => {
    const probe = await router({}).router.probe(`${ORIGIN}/open/mcp`);
    expect(probe.path).toBe('none');
    expect(probe.paths[3]).toMatchObject({ applies: true, reason: 'the server answered without asking for credentials' });
  });

  it('an OAuth-only server: oauth, because its AS offers authorization code + PKCE and no ID-JAG grant', async () => {
    const probe = await router({}).router.probe(`${ORIGIN}/oauth/mcp`);
    expect(probe.path).toBe('oauth');
    expect(probe.paths[0]!.reason).toMatch(/does not offer the ID-JAG grant/);
    expect(probe.paths[1]).toMatchObject({ applies: true, reason: 'its authorization server offers authorization code + PKCE' });
  });

  it('a Cross-App Access server: xaa with an IdP configured; oauth without one', async () => {
    const withIdp = router({ cfg: config({ idp: { issuer: 'http://127.0.0.1:4998', clientId: 'lanyard' } }) });
    const a = await withIdp.router.probe(`${ORIGIN}/xaa/mcp`);
    expect(a.path).toBe('xaa');
    expect(a.paths[0]!.reason).toBe('advertises the ID-JAG grant at its authorization server');
    const b = await router({}).router.probe(`${ORIGIN}/xaa/mcp`);
    expect(b.path).toBe('oauth');
    expect(b.paths[0]!.reason).toMatch(/no identity provider is configured/);
  });
});

describe('dispatch on each path', () => {
  it('header: the key from the keychain goes in the configured header, never the IDE Authorization; the probe is recorded', async () => {
    const secrets = new MemorySecretStore({ [headerSecretKey('key')]: 'right-key' });
    const { router: r, net, recorded } = router({ secrets });
    const response = await r.authorizedFetch('key', net.fetch)(`${ORIGIN}/key/mcp`, initialize);
    expect(response.status).toBe(200);
    const last = net.sent.at(-1)!;
    expect(last.headers.get('x-api-key')).toBe('right-key');
    expect(last.headers.get('authorization')).toBeNull();
    expect(recorded).toEqual([['key', 'header']]);
    await r.loadKeys(config().servers);
    expect(r.view(config().servers[0]!)).toMatchObject({ authPath: 'header', authState: 'ready', headerName: 'X-Api-Key' });
  });

  it('header: a rejected key is KEY_REQUIRED "the server rejected the stored key", and status asks for a key', async () => {
    const secrets = new MemorySecretStore({ [headerSecretKey('key')]: 'wrong-key' });
    const { router: r, net } = router({ secrets });
    const error = await errorOf(r.authorizedFetch('key', net.fetch)(`${ORIGIN}/key/mcp`, initialize));
    expect(error.code).toBe(ErrorCodes.KEY_REQUIRED);
    expect(error.message).toMatch(/rejected the stored key/);
    expect(error.fix).toMatch(/Set key/);
    expect(`${error.message} ${error.fix}`).not.toContain('wrong-key');
    expect(r.view(config().servers[0]!)).toMatchObject({ authState: 'key_required', action: 'set_key' });
    await r.storeKey('key', 'right-key');
    expect((await r.authorizedFetch('key', net.fetch)(`${ORIGIN}/key/mcp`, initialize)).status).toBe(200);
  });

  it('none: works with no IdP configured, and the IDE Authorization never reaches the server', async () => {
    const { router: r, net } = router({});
    expect((await r.authorizedFetch('open', net.fetch)(`${ORIGIN}/open/mcp`, initialize)).status).toBe(200);
    expect(net.sent.at(-1)!.headers.get('authorization')).toBeNull();
    expect(r.needsSignIn('open')).toBe(false);
  });

  it('oauth without a grant: AUTHORIZATION_REQUIRED at once, "Authorize <server> in Lanyard" with the link; no browser opened', async () => {
    const oauth = new FakeOAuth();
    const { router: r, net } = router({ oauth });
    const error = await errorOf(r.authorizedFetch('oauth', net.fetch)(`${ORIGIN}/oauth/mcp`, initialize));
    expect(error.code).toBe(ErrorCodes.AUTHORIZATION_REQUIRED);
    expect(error.message).toMatch(/^Authorize Oauthy in Lanyard/);
    expect(error.fix).toContain(`${ORIGIN}/as/oauth/authorize?client_id=x&state=abc`);
    expect(oauth.authorizeCalls).toEqual([{ id: 'oauth', openBrowser: false }]);
    // Nothing was sent to the MCP server with a credential: only the unauthenticated probe.
    expect(net.sent.filter((s) => s.url.endsWith('/oauth/mcp') && s.headers.get('authorization'))).toEqual([]);
    oauth.granted = true;
    expect((await r.authorizedFetch('oauth', net.fetch)(`${ORIGIN}/oauth/mcp`, initialize)).status).toBe(200);
  });

  it('oauth 403 insufficient_scope: step-up, then "Authorize … in Lanyard" with the link of a flow asking for more', async () => {
    const oauth = new FakeOAuth();
    oauth.granted = true;
    oauth.token = 'oauth-readonly';
    const { router: r, net } = router({ oauth });
    const error = await errorOf(r.authorizedFetch('oauth', net.fetch)(`${ORIGIN}/oauth/mcp`, initialize));
    expect(error.code).toBe(ErrorCodes.AUTHORIZATION_REQUIRED);
    expect(error.message).toMatch(/^Authorize Oauthy in Lanyard: .*needs more access \(read write\)/);
    expect(oauth.stepUps).toEqual(['read write']);
    expect(oauth.authorizeCalls).toEqual([{ id: 'oauth', openBrowser: false, scope: 'read write' }]);
  });

  it('xaa refused by the IdP policy: POLICY_BLOCKED "blocked by your administrator" with the reason, and no fallback', async () => {
    const refusal = new LanyardError(ErrorCodes.EXCHANGE_DENIED, 'denied', 'ask', {
      serverId: 'xaa',
      oauth: { error: 'invalid_target', description: 'resource not assigned to you' },
    });
    const { engine, calls } = fakeEngine(refusal);
    const oauth = new FakeOAuth();
    const cfg = config({ idp: { issuer: 'http://127.0.0.1:4998', clientId: 'lanyard' } });
    const secrets = new MemorySecretStore({ [headerSecretKey('xaa')]: 'some-key' });
    const { router: r, net } = router({ cfg, engine, oauth, secrets });
    for (let i = 0; i < 2; i++) {
      const error = await errorOf(r.authorizedFetch('xaa', net.fetch)(`${ORIGIN}/xaa/mcp`, initialize));
      expect(error.code).toBe(ErrorCodes.POLICY_BLOCKED);
      expect(error.message).toMatch(/blocked by your administrator.*invalid_target: resource not assigned to you/);
    }
    expect(calls).toEqual(['xaa', 'xaa']);
    expect(oauth.getTokenCalls).toBe(0);
    expect(oauth.authorizeCalls).toEqual([]);
    expect(net.sent.filter((s) => s.headers.get('x-api-key') || s.headers.get('authorization'))).toEqual([]);
    expect(r.view(cfg.servers[3]!)).toMatchObject({ authPath: 'xaa', authState: 'blocked' });
  });
});

describe('a recorded path that stopped fitting', () => {
  it('an open server that starts answering 401 is probed again at the next call (within policy)', async () => {
    const cfg = config();
    cfg.servers[0]!.authPath = 'none';
    const secrets = new MemorySecretStore({ [headerSecretKey('key')]: 'right-key' });
    const net = fakeNet();
    const unrecorded: string[] = [];
    const r = new AuthRouter({
      config: () => cfg,
      engine: () => undefined,
      secrets,
      fetch: net.fetch,
      unrecord: (id, path) => {
        unrecorded.push(`${id}:${path}`);
        delete cfg.servers[0]!.authPath;
      },
    });
    const error = await errorOf(r.authorizedFetch('key', net.fetch)(`${ORIGIN}/key/mcp`, initialize));
    expect(error.message).toMatch(/now asks for credentials/);
    expect(unrecorded).toEqual(['key:none']);
    expect((await r.authorizedFetch('key', net.fetch)(`${ORIGIN}/key/mcp`, initialize)).status).toBe(200);
    expect(r.pathOf('key')).toBe('header');
  });
});

describe('policy', () => {
  it('managed fallback:false: an OAuth-only server is POLICY_BLOCKED naming the rule, and nothing is recorded', async () => {
    const oauth = new FakeOAuth();
    const { router: r, net, recorded } = router({ oauth, managed: { fallback: false, lock: [] } });
    const error = await errorOf(r.authorizedFetch('oauth', net.fetch)(`${ORIGIN}/oauth/mcp`, initialize));
    expect(error.code).toBe(ErrorCodes.POLICY_BLOCKED);
    expect(error.message).toMatch(/your administrator allows only Cross-App Access \(or no authentication\).*fallback: false/);
    expect(recorded).toEqual([]);
    expect(oauth.authorizeCalls).toEqual([]);
    // An open server is still allowed.
    expect((await r.authorizedFetch('open', net.fetch)(`${ORIGIN}/open/mcp`, initialize)).status).toBe(200);
  });

  it('a managed authPath pins the server: no probe, no other path', async () => {
    const cfg = config();
    const managed: ManagedConfig = { servers: [{ ...cfg.servers[2]!, authPath: 'none' }], lock: [] };
    const { router: r, net } = router({ cfg, managed, oauth: new FakeOAuth() });
    const response = await r.authorizedFetch('oauth', net.fetch)(`${ORIGIN}/oauth/mcp`, initialize);
    expect(response.status).toBe(401);
    expect(net.sent.map((s) => new URL(s.url).pathname)).toEqual(['/oauth/mcp']);
    expect(r.view(cfg.servers[2]!)).toMatchObject({ authPath: 'none', authPathPinned: true });
  });

  it('a recorded path that policy now forbids is blocked, not silently used', async () => {
    const cfg = config();
    cfg.servers[2]!.authPath = 'oauth';
    const { router: r, net } = router({ cfg, oauth: new FakeOAuth(), managed: { fallback: false, lock: [] } });
    expect((await errorOf(r.authorizedFetch('oauth', net.fetch)(`${ORIGIN}/oauth/mcp`, initialize))).code).toBe(ErrorCodes.POLICY_BLOCKED);
    expect(r.view(cfg.servers[2]!)).toMatchObject({ authState: 'blocked', authPathPinned: true });
  });
});
