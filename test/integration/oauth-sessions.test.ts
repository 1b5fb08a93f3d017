/**
 * The OAuth 2.1 path's engine (electron/broker/oauth/oauth-sessions.ts) end to end against a real authorization
 * server over HTTP: the sandbox's oidc-provider (authorization code with PKCE required, `iss` in the response, rotating
 * refresh tokens, RFC 7009 revocation), driven through its sign-in page as a user would, with the real OS keychain.
 * The MCP server side is a protected-resource metadata document and a 401 challenge naming that authorization server.
 *
 * Run alone: LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/oauth-sessions.test.ts
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { oauthKeys } from '../../electron/broker/oauth/grant-store';
import { createOAuthSessions, type OAuthSessions, type OAuthSessionsDeps } from '../../electron/broker/oauth/oauth-sessions';
import type { OAuthEvent, OAuthServerRef } from '../../electron/broker/oauth/types';
import { keychainNamespace } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import { createLogger } from '../../electron/broker/util/log';
import { startIdp, type SandboxIdp } from '../fixtures/sandbox/idp';
import { SecretRecorder, tempHome, TestClock } from '../helpers/engine';

/** An MCP server's front door for the OAuth path: its RFC 9728 metadata and the 401 challenge that points at it. */
async function startProtectedServer(asIssuer: () => string, options: { ownAsWithoutPkce?: boolean } = {}) {
  let origin = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    if (url.pathname === '/.well-known/oauth-protected-resource/mcp') {
      return json(200, { resource: `${origin}/mcp`, authorization_servers: [options.ownAsWithoutPkce ? origin : asIssuer()] });
    }
    if (options.ownAsWithoutPkce && url.pathname === '/.well-known/oauth-authorization-server') {
      // An authorization server whose metadata does not advertise PKCE (no code_challenge_methods_supported).
      return json(200, {
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        registration_endpoint: `${origin}/register`,
        response_types_supported: ['code'],
      });
    }
    if (url.pathname === '/mcp') {
      return json(
        401,
        { error: 'invalid_token' },
        { 'www-authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp", scope="openid"` },
      );
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/mcp`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let idp: SandboxIdp;
let mcp: Awaited<ReturnType<typeof startProtectedServer>>;
let noPkce: Awaited<ReturnType<typeof startProtectedServer>>;
let home: string;
let cleanup: () => Promise<void>;
let secrets: KeychainSecretStore;

beforeAll(async () => {
  idp = await startIdp({ accessTokenTtlSeconds: 120, rotateRefreshTokens: true });
  mcp = await startProtectedServer(() => idp.issuer);
  noPkce = await startProtectedServer(() => idp.issuer, { ownAsWithoutPkce: true });
  ({ home, cleanup } = await tempHome());
  secrets = new KeychainSecretStore({ service: keychainNamespace(home) });
});

afterAll(async () => {
  await secrets?.deleteAll();
  await Promise.all([idp?.stop(), mcp?.stop(), noPkce?.stop()]);
  await cleanup?.();
});

afterEach(async () => {
  await secrets.deleteAll();
  await idp.setFault(null);
});

/** The server as the broker hands it to the engine: Lanyard's client pre-registered at the sandbox's AS (public). */
const server = (): OAuthServerRef => ({ id: 'calendar', url: mcp.url, oauthClient: { clientId: 'lanyard-desktop', method: 'none' } });

interface Harness {
  sessions: OAuthSessions;
  clock: TestClock;
  opened: string[];
  events: OAuthEvent[];
  logLines: string[];
  recorder: SecretRecorder;
}

/**
 * The engine as the broker builds it, with the real keychain. `browser` is what the user's browser does with the
 * authorization URL; by default: sign in as alice on the AS's page, approve, and land on Lanyard's loopback listener.
 */
function harness(
  options: { browser?: (url: string) => Promise<void>; clock?: TestClock; deps?: Partial<OAuthSessionsDeps> } = {},
): Harness {
  const clock = options.clock ?? new TestClock();
  const opened: string[] = [];
  const events: OAuthEvent[] = [];
  const logLines: string[] = [];
  const recorder = new SecretRecorder();
  const sessions = createOAuthSessions({
    secrets,
    clientMetadataUrl: () => undefined,
    now: clock.now,
    fetch: recorder.wrap(fetch),
    log: createLogger({ level: 'debug', sink: (line) => logLines.push(line) }),
    openUrl: async (url) => {
      opened.push(url);
      await (options.browser ?? signInAndApprove)(url);
    },
    ...options.deps,
  });
  sessions.onEvent((e) => events.push(e));
  return { sessions, clock, opened, events, logLines, recorder };
}

async function signInAndApprove(url: string): Promise<void> {
  const callback = await idp.completeLogin(url, 'alice');
  await fetch(callback);
}

/** A browser whose redirect back to Lanyard was tampered with on the way (a forged or replayed response). */
const tampered = (edit: (callback: URL) => void) => async (url: string) => {
  const callback = new URL(await idp.completeLogin(url, 'alice'));
  edit(callback);
  await fetch(callback);
};

const codeOf = (e: unknown) => (e instanceof LanyardError ? e.code : String(e));

async function authorized(h: Harness): Promise<void> {
  const { done } = await h.sessions.authorize(server());
  await done;
}

describe('OAuth 2.1 path against a real authorization server', () => {
  it('authorizes once in the browser, serves the token, and after a restart reads the grant back without a browser', async () => {
    const h = harness();
    const { authorizeUrl, done } = await h.sessions.authorize(server());
    const params = new URL(authorizeUrl).searchParams;
    expect(params.get('code_challenge_method')).toBe('S256');
    expect(params.get('resource')).toBe(mcp.url);
    expect(params.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    await done;
    expect(h.opened).toHaveLength(1);
    const token = await h.sessions.getToken(server());
    expect(token.tokenType).toBe('Bearer');
    expect(h.sessions.status('calendar')).toMatchObject({ state: 'authorized', asIssuer: idp.issuer, clientId: 'lanyard-desktop' });
    expect(idp.counters.logins).toBeGreaterThanOrEqual(1);

    // Restart: a new engine on the same keychain; a browser would be a failure.
    const restarted = harness({
      browser: () => {
        throw new Error('no browser after a restart');
      },
    });
    expect(await restarted.sessions.load('calendar')).toMatchObject({ state: 'authorized' });
    expect((await restarted.sessions.getToken(server())).accessToken).toBe(token.accessToken);
    expect(restarted.opened).toHaveLength(0);

    // Nothing the AS issued reaches a log line.
    const issued = [...h.recorder.values];
    expect(issued.length).toBeGreaterThan(0);
    for (const line of [...h.logLines, ...restarted.logLines]) for (const secret of issued) expect(line).not.toContain(secret.slice(0, 24));
  });

  it('runs one browser flow per server however many callers ask, each getting the link at once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const h = harness({
      browser: async (url) => {
        await gate;
        await signInAndApprove(url);
      },
    });
    const calls = await Promise.all([1, 2, 3, 4].map(() => h.sessions.authorize(server())));
    expect(new Set(calls.map((c) => c.authorizeUrl)).size).toBe(1);
    expect(h.sessions.status('calendar')).toMatchObject({ state: 'authorizing', authorizeUrl: calls[0]!.authorizeUrl });
    await expect(h.sessions.getToken(server())).rejects.toMatchObject({ code: ErrorCodes.AUTHORIZATION_REQUIRED });
    release();
    await Promise.all(calls.map((c) => c.done));
    expect(h.opened).toHaveLength(1);
    expect(h.sessions.status('calendar').state).toBe('authorized');
  });

  it('refuses a response whose state does not match, without redeeming its code', async () => {
    const h = harness({ browser: tampered((cb) => cb.searchParams.set('state', 'forged')) });
    const before = idp.counters.logins;
    const { done } = await h.sessions.authorize(server());
    const error = await done.catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.AUTHORIZATION_FAILED);
    expect((error as Error).message).toMatch(/state mismatch/);
    expect(idp.counters.logins).toBe(before);
    expect(h.sessions.status('calendar').state).toBe('authorization_required');
    expect(await secrets.get(oauthKeys.serverRecord('calendar'))).toBeUndefined();
  });

  it('refuses a response whose iss names another authorization server (RFC 9207), without redeeming its code', async () => {
    const h = harness({ browser: tampered((cb) => cb.searchParams.set('iss', 'https://evil.example')) });
    const before = idp.counters.logins;
    const { done } = await h.sessions.authorize(server());
    const error = await done.catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.AUTHORIZATION_FAILED);
    expect((error as Error).message).toMatch(/`iss` check/);
    expect((error as Error).message).not.toContain('evil.example');
    expect(idp.counters.logins).toBe(before);
  });

  it('refuses an authorization server that does not advertise PKCE S256, before any browser opens', async () => {
    const h = harness();
    const error = await h.sessions.authorize({ id: 'nopkce', url: noPkce.url }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.AUTHORIZATION_FAILED);
    expect((error as Error).message).toMatch(/PKCE/);
    expect(h.opened).toHaveLength(0);
    expect(h.sessions.status('nopkce')).toMatchObject({ state: 'error', lastError: { code: ErrorCodes.AUTHORIZATION_FAILED } });
  });

  it('gives up with a clear error when the browser never comes back, and a new authorization works afterwards', async () => {
    const closed = harness({ browser: async () => {}, deps: { authorizeTimeoutMs: 400 } });
    const { done } = await closed.sessions.authorize(server());
    const error = await done.catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.AUTHORIZATION_FAILED);
    expect((error as Error).message).toMatch(/timed out/);
    expect((error as LanyardError).fix).toMatch(/Authorize/);
    expect(closed.sessions.status('calendar').state).not.toBe('authorizing');
    await expect(closed.sessions.getToken(server())).rejects.toMatchObject({ code: ErrorCodes.AUTHORIZATION_REQUIRED });

    const cancelled = harness({ browser: async () => {} });
    const flow = await cancelled.sessions.authorize(server());
    await cancelled.sessions.forget('calendar');
    expect((await flow.done.catch((e: unknown) => e)) as Error).toMatchObject({ message: expect.stringMatching(/cancelled/) });

    const retried = harness();
    await authorized(retried);
    expect(retried.sessions.status('calendar').state).toBe('authorized');
  });

  it('refreshes once for many concurrent callers, storing the rotated refresh token before serving', async () => {
    const h = harness();
    await authorized(h);
    const first = await h.sessions.getToken(server());
    const grantKey = oauthKeys.grant({ issuer: idp.issuer, clientId: 'lanyard-desktop', resource: mcp.url });
    const before = JSON.parse((await secrets.get(grantKey))!) as { refreshToken: string };
    const refreshesBefore = idp.counters.refreshes;

    h.clock.advance(100); // inside the renewal margin of a 120 s token
    const tokens = await Promise.all(Array.from({ length: 12 }, () => h.sessions.getToken(server())));
    expect(idp.counters.refreshes - refreshesBefore).toBe(1);
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
    expect(tokens[0]!.accessToken).not.toBe(first.accessToken);
    const after = JSON.parse((await secrets.get(grantKey))!) as { refreshToken: string };
    expect(after.refreshToken).toBeTruthy();
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(h.events.some((e) => e.type === 'oauth_refreshed')).toBe(true);
  });

  it('asks for authorization again when the refresh token was revoked, and wipes the dead grant', async () => {
    const h = harness();
    await authorized(h);
    await idp.revokeRefreshTokens('alice');
    h.clock.advance(130); // the access token has expired: a refresh is the only way on
    const error = await h.sessions.getToken(server()).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCodes.AUTHORIZATION_REQUIRED);
    expect((error as LanyardError).fix).toMatch(/Authorize/);
    expect(h.sessions.status('calendar').state).toBe('authorization_required');
    expect(h.events.some((e) => e.type === 'oauth_authorization_required')).toBe(true);
    expect(await secrets.get(oauthKeys.grant({ issuer: idp.issuer, clientId: 'lanyard-desktop', resource: mcp.url }))).toBeUndefined();
  });

  it('keeps serving a still-valid token while the authorization server fails, then refreshes when it is back', async () => {
    const h = harness();
    await authorized(h);
    const current = await h.sessions.getToken(server());
    await idp.setFault('5xx');
    h.clock.advance(100); // due for renewal, not expired
    expect((await h.sessions.getToken(server())).accessToken).toBe(current.accessToken);
    expect(h.sessions.status('calendar')).toMatchObject({ state: 'authorized', lastError: { code: ErrorCodes.AS_UNREACHABLE } });
    await idp.setFault(null);
    h.clock.advance(2); // past the first backoff step
    const renewed = await h.sessions.getToken(server());
    expect(renewed.accessToken).not.toBe(current.accessToken);
    expect(h.sessions.status('calendar').lastError).toBeUndefined();
  });

  it('steps up: the next authorization asks for what was granted plus what the server challenged', async () => {
    const h = harness();
    await authorized(h);
    await h.sessions.stepUp(server(), 'email');
    const { authorizeUrl, done } = await h.sessions.authorize(server());
    expect(new URL(authorizeUrl).searchParams.get('scope')?.split(' ')).toEqual(
      expect.arrayContaining(['openid', 'offline_access', 'email']),
    );
    await done;
    expect((await h.sessions.getToken(server())).scopes).toEqual(expect.arrayContaining(['email']));
  });

  it('revokes at the authorization server (RFC 7009) and wipes the keychain on forget', async () => {
    const h = harness();
    await authorized(h);
    const revocationsBefore = idp.counters.revocations;
    await h.sessions.forget('calendar');
    expect(idp.counters.revocations - revocationsBefore).toBeGreaterThanOrEqual(1);
    expect(await secrets.get(oauthKeys.serverRecord('calendar'))).toBeUndefined();
    expect(await secrets.get(oauthKeys.grant({ issuer: idp.issuer, clientId: 'lanyard-desktop', resource: mcp.url }))).toBeUndefined();
    await expect(h.sessions.getToken(server())).rejects.toMatchObject({ code: ErrorCodes.AUTHORIZATION_REQUIRED });
    expect(h.events.at(-1)).toEqual({ type: 'oauth_revoked', serverId: 'calendar' });
  });
});
