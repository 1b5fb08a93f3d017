/**
 * The local endpoint's guard (docs/protocol.md "The local endpoint", edge cases 23 and 24): Host, Origin and local-token matrix,
 * constant-time comparison, token storage and rotation.
 */
import type * as NodeCrypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

const { timingSafeEqualSpy } = vi.hoisted(() => ({ timingSafeEqualSpy: vi.fn() }));
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof NodeCrypto>();
  timingSafeEqualSpy.mockImplementation(original.timingSafeEqual);
  return { ...original, timingSafeEqual: timingSafeEqualSpy };
});
import {
  bearerFrom,
  generateLocalToken,
  guardRequest,
  LOCAL_TOKEN_SECRET_KEY,
  LocalAuth,
  tokenMatcher,
  tokensEqual,
  type RouteAuth,
} from '../../electron/broker/gateway/local-auth';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { silentLogger } from '../../electron/broker/util/log';

const PORT = 47821;
const TOKEN = generateLocalToken();

function guard(
  headers: Record<string, string | undefined>,
  options: { auth?: RouteAuth; allowedOrigins?: string[]; preflight?: boolean } = {},
) {
  return guardRequest(headers, {
    port: PORT,
    auth: options.auth ?? 'token',
    preflight: options.preflight ?? false,
    allowedOrigins: options.allowedOrigins ?? [],
    matches: (t) => t !== undefined && tokensEqual(t, TOKEN),
  });
}

describe('local token', () => {
  it('is 32 random bytes in base64url', () => {
    const a = generateLocalToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(generateLocalToken()).not.toBe(a);
  });

  it('compares in constant time, equal only for identical strings', () => {
    expect(tokensEqual(TOKEN, TOKEN)).toBe(true);
    expect(tokensEqual(`${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokensEqual(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(tokensEqual('', TOKEN)).toBe(false);
    expect(tokensEqual('', '')).toBe(false);
    expect(
      tokensEqual(
        TOKEN.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
        TOKEN,
      ),
    ).toBe(false);
  });

  it('always compares equal-length buffers with crypto.timingSafeEqual, whatever the presented length', () => {
    timingSafeEqualSpy.mockClear();
    for (const candidate of ['', 'short', TOKEN, `${TOKEN}${TOKEN}`, `X${TOKEN.slice(1)}`]) tokensEqual(candidate, TOKEN);
    expect(timingSafeEqualSpy).toHaveBeenCalledTimes(5);
    for (const [a, b] of timingSafeEqualSpy.mock.calls) expect((a as Buffer).length).toBe((b as Buffer).length);
  });

  it('matches the kept token like tokensEqual, one equal-length timingSafeEqual per check whatever is presented', () => {
    const matches = tokenMatcher(TOKEN);
    const candidates = ['', 'short', TOKEN, `${TOKEN}${TOKEN}`, `X${TOKEN.slice(1)}`, TOKEN.slice(0, -1), `${TOKEN}x`, 'é'.repeat(22)];
    timingSafeEqualSpy.mockClear();
    for (const candidate of candidates) expect(matches(candidate)).toBe(tokensEqual(candidate, TOKEN));
    expect(candidates.map(matches)).toEqual(candidates.map((c) => c === TOKEN));
    expect(timingSafeEqualSpy).toHaveBeenCalledTimes(candidates.length * 3);
    for (const [a, b] of timingSafeEqualSpy.mock.calls) expect((a as Buffer).length).toBe((b as Buffer).length);
    expect(matches(undefined)).toBe(false);
    expect(tokenMatcher('')('')).toBe(false);
  });

  it('parses bearer credentials strictly', () => {
    expect(bearerFrom(`Bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerFrom(`bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerFrom(`Basic ${TOKEN}`)).toBeUndefined();
    expect(bearerFrom(`Bearer ${TOKEN} extra`)).toBeUndefined();
    expect(bearerFrom('Bearer')).toBeUndefined();
    expect(bearerFrom(undefined)).toBeUndefined();
  });
});

describe('request guard matrix', () => {
  const good = { host: `127.0.0.1:${PORT}`, authorization: `Bearer ${TOKEN}` };

  it('reads the configured origins only for a request that has an Origin (a broken config cannot refuse the others)', () => {
    const origins = vi.fn((): readonly string[] => ['https://app.example']);
    const check = (headers: Record<string, string>) =>
      guardRequest(headers, { port: PORT, auth: 'token', allowedOrigins: origins, matches: (t) => t === TOKEN });
    expect(check(good)).toBeNull();
    expect(origins).not.toHaveBeenCalled();
    expect(check({ ...good, origin: 'https://app.example' })).toBeNull();
    expect(check({ ...good, origin: 'https://evil.example' })).toMatchObject({ status: 403, reason: 'origin' });
    expect(check({ ...good, origin: `http://localhost:${PORT}` })).toBeNull();
    expect(origins).toHaveBeenCalledTimes(2);
  });

  it.each([`127.0.0.1:${PORT}`, `localhost:${PORT}`, `[::1]:${PORT}`, `LOCALHOST:${PORT}`])('accepts Host %s', (host) => {
    expect(guard({ ...good, host })).toBeNull();
  });

  it.each([
    ['a foreign name (DNS rebinding)', `evil.example.com:${PORT}`],
    ['a foreign name without port', 'evil.example.com'],
    ['loopback without our port', '127.0.0.1'],
    ['loopback with another port', `127.0.0.1:${PORT + 1}`],
    ['another loopback address', `127.0.0.2:${PORT}`],
    ['the wildcard address', `0.0.0.0:${PORT}`],
    ['a suffix trick', `localhost.evil.com:${PORT}`],
    ['no Host at all', undefined],
  ])('refuses Host: %s → 421, before looking at the token', (_label, host) => {
    const r = guard({ ...good, host });
    expect(r?.status).toBe(421);
    expect(r?.reason).toBe('host');
    expect(r?.message).toMatch(/Fix:/);
  });

  it('accepts requests without Origin (non-browser clients) and from our own loopback pages', () => {
    expect(guard(good)).toBeNull();
    for (const origin of [`http://127.0.0.1:${PORT}`, `http://localhost:${PORT}`, `http://[::1]:${PORT}`])
      expect(guard({ ...good, origin })).toBeNull();
  });

  it.each([
    'http://evil.example.com',
    `http://evil.example.com:${PORT}`,
    `https://127.0.0.1:${PORT}`,
    `http://127.0.0.1:${PORT + 1}`,
    'http://localhost',
    'null',
    'file://',
    'vscode-webview://abc',
  ])('refuses Origin %s with 403', (origin) => {
    const r = guard({ ...good, origin });
    expect(r?.status).toBe(403);
    expect(r?.reason).toBe('origin');
    expect(r?.message).toContain('gateway.allowedOrigins');
  });

  it('accepts an Origin the user allowed, exactly as configured', () => {
    expect(guard({ ...good, origin: 'https://app.example.com' }, { allowedOrigins: ['https://app.example.com'] })).toBeNull();
    expect(guard({ ...good, origin: 'https://app.example.com:8443' }, { allowedOrigins: ['https://app.example.com'] })?.status).toBe(403);
  });

  it.each([
    ['missing', undefined],
    ['wrong', `Bearer ${generateLocalToken()}`],
    ['truncated', `Bearer ${TOKEN.slice(0, 20)}`],
    ['another scheme', `Basic ${TOKEN}`],
    ['empty bearer', 'Bearer '],
  ])('refuses a %s token with 401, a JSON-RPC friendly message and a Bearer realm challenge', (_label, authorization) => {
    const r = guard({ host: good.host, authorization });
    expect(r?.status).toBe(401);
    expect(r?.reason).toBe('token');
    expect(r?.message).toMatch(/^Missing or wrong Lanyard local token\..*Fix:/);
    expect(r?.headers['WWW-Authenticate']).toBe('Bearer realm="lanyard"');
    expect(r?.message).not.toContain(TOKEN);
  });

  it('public routes and CORS preflights skip only the token, never Host or Origin', () => {
    expect(guard({ host: good.host }, { auth: 'none' })).toBeNull();
    expect(
      guard({ host: good.host, origin: 'https://app.example.com' }, { preflight: true, allowedOrigins: ['https://app.example.com'] }),
    ).toBeNull();
    expect(guard({ host: 'evil.example.com' }, { auth: 'none' })?.status).toBe(421);
    expect(guard({ host: good.host, origin: 'http://evil.example.com' }, { preflight: true })?.status).toBe(403);
  });

  it('no route accepts a cookie, even one holding the local token (cookies reach every port on 127.0.0.1)', () => {
    const cookie = `lanyard_session=${TOKEN}`;
    expect(guard({ host: good.host, cookie }, { auth: 'session-or-token' })?.status).toBe(401);
    expect(guard({ host: good.host, cookie }, { auth: 'token' })?.status).toBe(401);
  });
});

describe('LocalAuth', () => {
  it('creates the token at first start, keeps it in the secret store, and reuses it after a restart', async () => {
    const secrets = new MemorySecretStore();
    const first = await LocalAuth.open(secrets);
    expect(secrets.snapshot()[LOCAL_TOKEN_SECRET_KEY]).toBe(first.token);
    const second = await LocalAuth.open(secrets);
    expect(second.token).toBe(first.token);
  });

  it('replaces a stored value that is not a token it wrote', async () => {
    const secrets = new MemorySecretStore({ [LOCAL_TOKEN_SECRET_KEY]: 'short' });
    const auth = await LocalAuth.open(secrets);
    expect(auth.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(secrets.snapshot()[LOCAL_TOKEN_SECRET_KEY]).toBe(auth.token);
  });

  it('rotates: the old token stops working at once, the new one is stored and announced', async () => {
    const secrets = new MemorySecretStore();
    const auth = await LocalAuth.open(secrets);
    const old = auth.token;
    const seen: string[] = [];
    auth.onRotate((t) => seen.push(t));
    const next = await auth.rotate();
    expect(next).not.toBe(old);
    expect(auth.matches(old)).toBe(false);
    expect(auth.matches(next)).toBe(true);
    expect(seen).toEqual([next]);
    expect(secrets.snapshot()[LOCAL_TOKEN_SECRET_KEY]).toBe(next);
    const headers = { host: `127.0.0.1:${PORT}`, authorization: `Bearer ${old}` };
    expect(auth.check({ headers }, { port: PORT, auth: 'token' })?.status).toBe(401);
    expect(auth.check({ headers: { ...headers, authorization: `Bearer ${next}` } }, { port: PORT, auth: 'token' })).toBeNull();
  });

  it('a rotation listener that throws is logged; the others still hear the new token and the rotation stands', async () => {
    const warnings: unknown[] = [];
    const log = { ...silentLogger, warn: (...args: unknown[]) => void warnings.push(args) };
    const auth = await LocalAuth.open(new MemorySecretStore(), { log });
    const seen: string[] = [];
    auth.onRotate(() => {
      throw new Error('runtime file not writable');
    });
    auth.onRotate((t) => seen.push(t));
    const next = await auth.rotate();
    expect(seen).toEqual([next]);
    expect(auth.matches(next)).toBe(true);
    expect(warnings).toHaveLength(1);
  });

  it('reads allowed origins on every request, so a settings change applies without a restart', async () => {
    let allowed: string[] = [];
    const auth = await LocalAuth.open(new MemorySecretStore(), { allowedOrigins: () => allowed });
    const headers = { host: `127.0.0.1:${PORT}`, authorization: `Bearer ${auth.token}`, origin: 'https://app.example.com' };
    expect(auth.check({ headers }, { port: PORT, auth: 'token' })?.status).toBe(403);
    allowed = ['https://app.example.com'];
    expect(auth.check({ headers }, { port: PORT, auth: 'token' })).toBeNull();
  });
});
