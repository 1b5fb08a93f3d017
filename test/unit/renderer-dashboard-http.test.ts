/**
 * electron/broker/control/dashboard.ts over real HTTP on 127.0.0.1: the one-time link → HttpOnly cookie login, who
 * `authenticate` lets in (token, or cookie + own origin), and serving the built renderer with its CSP.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDashboard,
  DASHBOARD_COOKIE,
  DASHBOARD_CSP,
  withDashboardSessions,
  type Dashboard,
} from '../../electron/broker/control/dashboard';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { buildCsp } from '../../electron/main/security';

const TOKEN = 'a'.repeat(43);
let dir: string;
let server: Server;
let port: number;
let dashboard: Dashboard;
let clock = Date.now();

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A raw request, so tests control Host, Origin and Cookie exactly (fetch would not let them). */
function send(method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function login(): Promise<string> {
  const link = new URL(dashboard.oneTimeLink());
  const reply = await send('GET', `${link.pathname}${link.search}`);
  expect(reply.status).toBe(302);
  const cookie = String(reply.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  expect(cookie.startsWith(`${DASHBOARD_COOKIE}=`)).toBe(true);
  return cookie;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lanyard-dash-'));
  await mkdir(join(dir, 'renderer/assets'), { recursive: true });
  await writeFile(
    join(dir, 'renderer/index.html'),
    '<!doctype html><title>Lanyard</title><script type="module" src="./assets/app.js"></script>',
  );
  await writeFile(join(dir, 'renderer/assets/app.js'), 'console.log(1)');
  await writeFile(join(dir, 'renderer/assets/.secret'), 'no');
  await writeFile(join(dir, 'package.json'), '{"name":"outside"}');
  server = createServer((req, res) => {
    // The mount the gateway does: /api/ behind authenticate, everything else to the dashboard.
    if (req.url?.startsWith('/api/')) {
      if (!dashboard.authenticate(req)) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"value":{}}');
      return;
    }
    void dashboard.handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  dashboard = createDashboard({
    rendererDir: join(dir, 'renderer'),
    localAuth: { matches: (t) => t === TOKEN },
    port: () => port,
    now: () => clock,
  });
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('one-time link', () => {
  it('points at our port with a long random code', () => {
    const link = new URL(dashboard.oneTimeLink());
    expect(link.origin).toBe(`http://127.0.0.1:${port}`);
    expect(link.pathname).toBe('/dashboard/login');
    expect(link.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(dashboard.oneTimeLink()).not.toBe(dashboard.oneTimeLink());
  });

  it('sets an HttpOnly, SameSite=Strict, Path=/ session cookie and redirects to / (no code left in the URL)', async () => {
    const link = new URL(dashboard.oneTimeLink());
    const reply = await send('GET', `${link.pathname}${link.search}`);
    expect(reply.status).toBe(302);
    expect(reply.headers.location).toBe('/');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['referrer-policy']).toBe('no-referrer');
    const cookie = reply.headers['set-cookie']?.[0] ?? '';
    expect(cookie).toMatch(new RegExp(`^${DASHBOARD_COOKIE}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/$`));
    // The session id is not the code and not the local token.
    expect(cookie).not.toContain(link.searchParams.get('code'));
    expect(cookie).not.toContain(TOKEN);
  });

  it('works once', async () => {
    const link = new URL(dashboard.oneTimeLink());
    expect((await send('GET', `${link.pathname}${link.search}`)).status).toBe(302);
    const again = await send('GET', `${link.pathname}${link.search}`);
    expect(again.status).toBe(403);
    expect(again.body).toContain('This link has expired');
    expect(again.headers['set-cookie']).toBeUndefined();
  });

  it('expires after two minutes', async () => {
    const link = new URL(dashboard.oneTimeLink());
    clock += 2 * 60_000 + 1;
    expect((await send('GET', `${link.pathname}${link.search}`)).status).toBe(403);
  });

  it('refuses made-up codes, and POST', async () => {
    expect((await send('GET', `/dashboard/login?code=${'b'.repeat(43)}`)).status).toBe(403);
    expect((await send('GET', '/dashboard/login')).status).toBe(403);
    expect((await send('POST', '/dashboard/login?code=x')).status).toBe(405);
  });

  it('the expired-link page carries a strict CSP of its own', async () => {
    const reply = await send('GET', '/dashboard/login?code=nope');
    expect(reply.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'/);
  });
});

describe('authenticate (the /api/ route)', () => {
  it('accepts the local token (the CLI) and refuses a wrong one', async () => {
    expect((await send('POST', '/api/status', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await send('POST', '/api/status', { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await send('POST', '/api/status')).status).toBe(401);
  });

  it('accepts the session cookie from our own pages', async () => {
    const cookie = await login();
    expect((await send('GET', '/api/events', { cookie })).status).toBe(200);
    expect((await send('POST', '/api/status', { cookie, origin: `http://127.0.0.1:${port}` })).status).toBe(200);
  });

  it('CSRF: a cookie POST needs our exact Origin (other loopback ports are the same *site*)', async () => {
    const cookie = await login();
    expect((await send('POST', '/api/signOut', { cookie })).status).toBe(401);
    expect((await send('POST', '/api/signOut', { cookie, origin: `http://127.0.0.1:${port + 1}` })).status).toBe(401);
    expect((await send('POST', '/api/signOut', { cookie, origin: 'https://evil.example.com' })).status).toBe(401);
    expect((await send('POST', '/api/signOut', { cookie, origin: 'null' })).status).toBe(401);
    expect((await send('GET', '/api/events', { cookie, origin: `http://localhost:${port + 1}` })).status).toBe(401);
  });

  it('refuses a cookie addressed to another host (DNS rebinding)', async () => {
    const cookie = await login();
    expect((await send('GET', '/api/events', { cookie, host: `evil.example.com:${port}` })).status).toBe(401);
  });

  it('refuses unknown and expired sessions', async () => {
    expect((await send('GET', '/api/events', { cookie: `${DASHBOARD_COOKIE}=${'c'.repeat(43)}` })).status).toBe(401);
    expect((await send('GET', '/api/events', { cookie: `${DASHBOARD_COOKIE}=${TOKEN}` })).status).toBe(401);
    const cookie = await login();
    clock += 12 * 60 * 60_000 + 1;
    expect((await send('GET', '/api/events', { cookie })).status).toBe(401);
  });

  it('logout ends the session (POST from our origin only)', async () => {
    const cookie = await login();
    expect((await send('POST', '/dashboard/logout', { cookie })).status).toBe(403);
    const out = await send('POST', '/dashboard/logout', { cookie, origin: `http://127.0.0.1:${port}` });
    expect(out.status).toBe(204);
    expect(out.headers['set-cookie']?.[0]).toMatch(/Max-Age=0/);
    expect((await send('GET', '/api/events', { cookie })).status).toBe(401);
  });

  it('revokeAll signs every browser out', async () => {
    const cookie = await login();
    dashboard.revokeAll();
    expect((await send('GET', '/api/events', { cookie })).status).toBe(401);
  });
});

describe('static files', () => {
  it('serves / as the renderer page with the CSP header, which equals the Electron window policy', async () => {
    const reply = await send('GET', '/');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toBe(buildCsp());
    expect(reply.headers['x-frame-options']).toBe('DENY');
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    expect(reply.headers['cache-control']).toBe('no-cache');
    expect(reply.body).toContain('<title>Lanyard</title>');
  });

  it('serves hashed assets as immutable, with the right type; HEAD has no body', async () => {
    const reply = await send('GET', '/assets/app.js');
    expect(reply).toMatchObject({ status: 200, body: 'console.log(1)' });
    expect(reply.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const head = await send('HEAD', '/assets/app.js');
    expect(head).toMatchObject({ status: 200, body: '' });
  });

  it.each([
    '/../package.json',
    '/%2e%2e/package.json',
    '/assets/..%2f..%2fpackage.json',
    '/assets/.secret',
    '/nope.js',
    '/assets/',
    '/%00',
    '/%E0%A4%A',
  ])('does not serve %s', async (path) => {
    const reply = await send('GET', path);
    expect([400, 404]).toContain(reply.status);
    expect(reply.body).not.toContain('outside');
  });

  it('refuses other methods and foreign Host headers', async () => {
    expect((await send('POST', '/')).status).toBe(405);
    expect((await send('GET', '/', { host: 'evil.example.com' })).status).toBe(421);
  });

  it('explains a missing build instead of a bare 404', async () => {
    const empty = createDashboard({ rendererDir: join(dir, 'missing'), localAuth: { matches: () => false }, port });
    const s = createServer((req, res) => void empty.handler(req, res));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = (s.address() as AddressInfo).port;
    const reply = await new Promise<Reply>((resolve, reject) => {
      request({ host: '127.0.0.1', port: p, path: '/', headers: { host: `127.0.0.1:${port}` } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
        .on('error', reject)
        .end();
    });
    await new Promise((r) => s.close(r));
    expect(reply.status).toBe(503);
    expect(reply.body).toContain('npm run build');
  });
});

describe('withDashboardSessions (the front door guard)', () => {
  it('lets a dashboard session through on cookie-or-token routes only, with Host and Origin still checked', async () => {
    const localAuth = await LocalAuth.open(new MemorySecretStore());
    const guard = withDashboardSessions(localAuth, dashboard);
    const cookie = await login();
    const req = (headers: Record<string, string>, method = 'GET') => ({ method, headers: { host: `127.0.0.1:${port}`, ...headers } });
    const api = { port, auth: 'cookie-or-token' as const };
    expect(guard.check(req({ cookie }), api)).toBeNull();
    expect(guard.check(req({ cookie, origin: `http://127.0.0.1:${port}` }, 'POST'), api)).toBeNull();
    // A session never opens the MCP endpoints, which need the local token.
    expect(guard.check(req({ cookie }), { port, auth: 'token' })?.status).toBe(401);
    expect(guard.check(req({}), api)?.status).toBe(401);
    expect(guard.check(req({ cookie }, 'POST'), api)?.status).toBe(401);
    expect(guard.check(req({ cookie, origin: 'https://evil.example.com' }, 'POST'), api)?.status).toBe(403);
    expect(guard.check(req({ cookie, host: `evil.example.com:${port}` }), api)?.status).toBe(421);
    expect(guard.check(req({ authorization: `Bearer ${localAuth.token}` }, 'POST'), api)).toBeNull();
    expect(guard.allowedOrigins()).toEqual([]);
  });
});
