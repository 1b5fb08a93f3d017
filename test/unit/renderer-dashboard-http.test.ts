/**
 * electron/broker/control/dashboard.ts over real HTTP on 127.0.0.1: the one-time link → a session the page holds and
 * sends as a header (never a cookie), who `authenticate` lets in (token, or session header + own origin, or an
 * event-stream ticket), and serving the built renderer with its CSP.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDashboard,
  DASHBOARD_CSP,
  DASHBOARD_SESSION_HEADER,
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
function send(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const own = () => `http://127.0.0.1:${port}`;
const codeOf = (link: string) => new URL(link).hash.replace(/^#code=/, '');
const exchange = (code: string, origin: string | null = own()) =>
  send('POST', '/dashboard/session', origin === null ? {} : { origin }, JSON.stringify({ code }));

/** Opens a session as the page does; returns the headers the page sends with it. */
async function login(): Promise<Record<string, string>> {
  const reply = await exchange(codeOf(dashboard.oneTimeLink()));
  expect(reply.status).toBe(200);
  expect(reply.headers['set-cookie']).toBeUndefined();
  return { [DASHBOARD_SESSION_HEADER]: JSON.parse(reply.body).session, origin: own() };
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
  it('points at our port, with a long random code in the fragment (never sent to a server)', () => {
    const link = new URL(dashboard.oneTimeLink());
    expect(link.origin).toBe(`http://127.0.0.1:${port}`);
    expect(link.pathname).toBe('/');
    expect(link.search).toBe('');
    expect(codeOf(link.href)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(dashboard.oneTimeLink()).not.toBe(dashboard.oneTimeLink());
  });

  it('is exchanged by the page for a session in the JSON body: no cookie, not the code, not the local token', async () => {
    const code = codeOf(dashboard.oneTimeLink());
    const reply = await exchange(code);
    expect(reply.status).toBe(200);
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['set-cookie']).toBeUndefined();
    const body = JSON.parse(reply.body);
    expect(body).toMatchObject({ session: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), header: DASHBOARD_SESSION_HEADER });
    expect(body.session).not.toBe(code);
    expect(body.session).not.toBe(TOKEN);
  });

  it('works once, and only from our own page', async () => {
    const code = codeOf(dashboard.oneTimeLink());
    expect((await exchange(code, `http://127.0.0.1:${port + 1}`)).status).toBe(403);
    expect((await exchange(code, null)).status).toBe(403);
    expect((await exchange(code)).status).toBe(200);
    const again = await exchange(code);
    expect(again.status).toBe(403);
    expect(JSON.parse(again.body).fix).toMatch(/`lanyard serve`/);
  });

  it('refuses a login body past 1 KiB (without spending the code) and answers instead of hanging', async () => {
    const code = codeOf(dashboard.oneTimeLink());
    const big = await send('POST', '/dashboard/session', { origin: own() }, JSON.stringify({ code, pad: 'x'.repeat(64 * 1024) }));
    expect(big.status).toBe(403);
    expect(JSON.parse(big.body).fix).toMatch(/`lanyard serve`/);
    expect((await exchange(code)).status).toBe(200);
  });

  it('expires after two minutes', async () => {
    const code = codeOf(dashboard.oneTimeLink());
    clock += 2 * 60_000 + 1;
    expect((await exchange(code)).status).toBe(403);
  });

  it('old /dashboard/login?code= links hand the code to the page; made-up codes get the expired page', async () => {
    const code = codeOf(dashboard.oneTimeLink());
    const reply = await send('GET', `/dashboard/login?code=${code}`);
    expect(reply.status).toBe(302);
    expect(reply.headers.location).toBe(`/#code=${code}`);
    expect(reply.headers['set-cookie']).toBeUndefined();
    const bad = await send('GET', `/dashboard/login?code=${'b'.repeat(43)}`);
    expect(bad.status).toBe(403);
    expect(bad.body).toContain('This link has expired');
    expect(bad.body).toContain('<code>lanyard serve</code>');
    expect(bad.body).not.toContain('lanyard dashboard');
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

  it('accepts the session header from our own page', async () => {
    const headers = await login();
    expect((await send('POST', '/api/status', headers)).status).toBe(200);
  });

  it('the session header needs our exact Origin (other loopback ports, other sites, none)', async () => {
    const headers = await login();
    const session = headers[DASHBOARD_SESSION_HEADER]!;
    expect((await send('POST', '/api/signOut', { [DASHBOARD_SESSION_HEADER]: session })).status).toBe(401);
    for (const origin of [`http://127.0.0.1:${port + 1}`, 'https://evil.example.com', 'null', `http://localhost:${port + 1}`])
      expect((await send('POST', '/api/signOut', { [DASHBOARD_SESSION_HEADER]: session, origin })).status).toBe(401);
  });

  it('never accepts a cookie, whatever it holds', async () => {
    const headers = await login();
    const session = headers[DASHBOARD_SESSION_HEADER]!;
    for (const cookie of [`lanyard_dashboard=${session}`, `${DASHBOARD_SESSION_HEADER}=${session}`, `lanyard_session=${TOKEN}`])
      expect((await send('POST', '/api/status', { cookie, origin: own() })).status).toBe(401);
  });

  it('refuses a session addressed to another host (DNS rebinding)', async () => {
    const headers = await login();
    expect((await send('POST', '/api/status', { ...headers, host: `evil.example.com:${port}` })).status).toBe(401);
  });

  it('the event stream opens with a single-use ticket from /dashboard/ticket', async () => {
    const headers = await login();
    expect((await send('GET', '/api/events')).status).toBe(401);
    expect((await send('POST', '/dashboard/ticket', { [DASHBOARD_SESSION_HEADER]: headers[DASHBOARD_SESSION_HEADER]! })).status).toBe(401);
    const ticket = JSON.parse((await send('POST', '/dashboard/ticket', headers)).body).ticket as string;
    expect((await send('GET', `/api/events?ticket=${ticket}`)).status).toBe(200);
    expect((await send('GET', `/api/events?ticket=${ticket}`)).status).toBe(401);
    const late = JSON.parse((await send('POST', '/dashboard/ticket', headers)).body).ticket as string;
    clock += 30_001;
    expect((await send('GET', `/api/events?ticket=${late}`)).status).toBe(401);
    expect((await send('POST', `/api/status?ticket=${late}`)).status).toBe(401);
  });

  it('refuses unknown sessions, and ends one after 30 minutes unused or 8 hours in any case', async () => {
    expect((await send('POST', '/api/status', { [DASHBOARD_SESSION_HEADER]: 'c'.repeat(43), origin: own() })).status).toBe(401);
    expect((await send('POST', '/api/status', { [DASHBOARD_SESSION_HEADER]: TOKEN, origin: own() })).status).toBe(401);
    const idle = await login();
    clock += 30 * 60_000 + 1;
    expect((await send('POST', '/api/status', idle)).status).toBe(401);
    const busy = await login();
    for (let i = 0; i < 47; i++) {
      clock += 10 * 60_000;
      expect((await send('POST', '/api/status', busy)).status).toBe(200);
    }
    clock += 10 * 60_000;
    expect((await send('POST', '/api/status', busy)).status).toBe(401);
  });

  it('logout ends the session (POST from our origin only)', async () => {
    const headers = await login();
    expect((await send('POST', '/dashboard/logout', { [DASHBOARD_SESSION_HEADER]: headers[DASHBOARD_SESSION_HEADER]! })).status).toBe(403);
    const out = await send('POST', '/dashboard/logout', headers);
    expect(out.status).toBe(204);
    expect(out.headers['set-cookie']).toBeUndefined();
    expect((await send('POST', '/api/status', headers)).status).toBe(401);
  });

  it('revokeAll signs every browser out', async () => {
    const headers = await login();
    dashboard.revokeAll();
    expect((await send('POST', '/api/status', headers)).status).toBe(401);
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
  it('lets a dashboard session through on session-or-token routes only, with Host and Origin still checked', async () => {
    const localAuth = await LocalAuth.open(new MemorySecretStore());
    const guard = withDashboardSessions(localAuth, dashboard);
    const session = await login();
    const bare = { [DASHBOARD_SESSION_HEADER]: session[DASHBOARD_SESSION_HEADER]! };
    const req = (headers: Record<string, string>, method = 'POST') => ({ method, headers: { host: `127.0.0.1:${port}`, ...headers } });
    const api = { port, auth: 'session-or-token' as const };
    expect(guard.check(req(session), api)).toBeNull();
    // A session never opens the MCP endpoints, which need the local token.
    expect(guard.check(req(session), { port, auth: 'token' })?.status).toBe(401);
    expect(guard.check(req({}), api)?.status).toBe(401);
    expect(guard.check(req(bare), api)?.status).toBe(401);
    expect(guard.check(req({ ...bare, origin: 'https://evil.example.com' }), api)?.status).toBe(403);
    expect(guard.check(req({ ...session, host: `evil.example.com:${port}` }), api)?.status).toBe(421);
    expect(guard.check(req({ authorization: `Bearer ${localAuth.token}` }, 'POST'), api)).toBeNull();
    expect(guard.allowedOrigins()).toEqual([]);
  });
});
