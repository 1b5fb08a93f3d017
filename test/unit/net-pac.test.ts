/**
 * PAC-style proxy lists (a PAC file's answer, Chromium's session.resolveProxy), the system resolver the Electron app
 * injects, the PAC engine's failure handling (a script that throws or loops, a file that cannot be loaded, the last
 * good copy, back-off), and network errors met on the way to a token shown as "unreachable".
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { ManagedConfigSchema, mergeManagedConfig } from '../../electron/broker/config/managed';
import { LanyardConfigSchema } from '../../electron/broker/config/schema';
import { LanyardError } from '../../electron/broker/errors';
import { classifyUpstreamError } from '../../electron/broker/gateway/upstream/errors';
import { createNetworkStack, SYSTEM_PROXY_SOURCE, type NetworkSettings } from '../../electron/broker/net/network-stack';
import { createPacEngine, pacBackoffMs, PAC_REFRESH_MS } from '../../electron/broker/net/pac';
import { parseProxyList } from '../../electron/broker/net/proxy-list';
import { readSystemPac } from '../../electron/broker/net/system-pac';
import { presentTray, type TrayMenuItem } from '../../electron/main/tray-presenter';
import { server, status } from './renderer-fixtures';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'lanyard-pac-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const failure = (e: unknown) => e as LanyardError;
const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as LanyardError,
  );

describe('PAC-style proxy lists', () => {
  it('reads PROXY, HTTP, HTTPS and DIRECT in order, and skips SOCKS and QUIC entries', () => {
    const parsed = parseProxyList('PROXY a.corp:8080; HTTPS b.corp:443;SOCKS5 c.corp:1080; QUIC q.corp:443; DIRECT');
    expect(parsed.candidates.map((c) => (c.kind === 'proxy' ? c.proxy.href : 'direct'))).toEqual([
      'http://a.corp:8080/',
      'https://b.corp/',
      'direct',
    ]);
    expect(parsed.unsupported).toEqual(['SOCKS5 c.corp:1080', 'QUIC q.corp:443']);
    expect(parseProxyList('PROXY user:pw@x:1; nonsense').invalid).toHaveLength(2);
  });
});

/** A network stack whose system resolver answers from `answers` (and counts the questions). */
function systemStack(answer: (url: string) => string, settings: NetworkSettings = {}, env: Record<string, string> = {}) {
  const asked: string[] = [];
  const stack = createNetworkStack({
    env,
    settings: () => settings,
    systemProxy: async (url) => {
      asked.push(url);
      return answer(url);
    },
  });
  return { stack, asked };
}

describe("the system's proxy resolver (the Electron app's session.resolveProxy)", () => {
  it('routes MCP traffic the way the system says, asks once per origin, and never for loopback', async () => {
    const { stack, asked } = systemStack(() => 'PROXY proxy.corp:8080; DIRECT');
    const route = await stack.route(new URL('https://mcp.corp.example/mcp'));
    expect(route.decision).toMatchObject({ kind: 'proxy', source: SYSTEM_PROXY_SOURCE, fallbacks: [{ kind: 'direct' }] });
    expect(route.decision.kind === 'proxy' && route.decision.proxy.href).toBe('http://proxy.corp:8080/');
    await stack.route(new URL('https://mcp.corp.example/other?x=1'));
    expect(asked).toEqual(['https://mcp.corp.example/mcp']);
    expect((await stack.route(new URL('http://127.0.0.1:4000/mcp'))).decision).toEqual({ kind: 'direct', reason: 'loopback' });
    expect(asked).toHaveLength(1);
    await stack.close();
  });

  it('HTTPS_PROXY and network.proxy still win over the system', async () => {
    const env = systemStack(() => 'PROXY system.corp:1', {}, { HTTPS_PROXY: 'http://env.corp:2' });
    expect((await env.stack.route(new URL('https://a.example/'))).decision).toMatchObject({ kind: 'proxy', source: 'HTTPS_PROXY' });
    const configured = systemStack(() => 'PROXY system.corp:1', { proxy: 'http://configured.corp:3' });
    expect((await configured.stack.route(new URL('https://a.example/'))).decision).toMatchObject({ source: 'network.proxy' });
    expect([...env.asked, ...configured.asked]).toEqual([]);
    await env.stack.close();
    await configured.stack.close();
  });

  it('a SOCKS-only answer is a clear error; SOCKS then DIRECT goes direct', async () => {
    const socks = systemStack(() => 'SOCKS5 socks.corp:1080');
    const error = failure(await rejection(socks.stack.route(new URL('https://a.example/'))));
    expect(error).toBeInstanceOf(LanyardError);
    expect(error.code).toBe(ErrorCodes.PROXY_UNREACHABLE);
    expect(error.message).toContain('SOCKS5 socks.corp:1080');
    const fallback = systemStack(() => 'SOCKS5 socks.corp:1080; DIRECT');
    expect((await fallback.stack.route(new URL('https://a.example/'))).decision).toMatchObject({ kind: 'direct', reason: 'resolved' });
    await socks.stack.close();
    await fallback.stack.close();
  });

  it('"PROXY a; PROXY b; DIRECT": a proxy that cannot be reached is skipped for the next entry, and for the next requests', async () => {
    const tried: string[] = [];
    const stack = createNetworkStack({
      env: {},
      settings: () => ({}),
      systemProxy: async () => 'PROXY 127.0.0.1:9; PROXY 127.0.0.1:10; DIRECT',
      // The platform fetch: every proxy refuses the connection (as a proxy that is down does); direct works.
      fetch: (async (_input: unknown, init?: { dispatcher?: unknown }) => {
        const dispatcher = init?.dispatcher;
        if (dispatcher instanceof ProxyAgent) {
          tried.push('proxy');
          throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
        }
        tried.push('direct');
        return new Response('ok');
      }) as unknown as typeof fetch,
    });
    const response = await stack.fetch('https://idp.corp.example/token', { method: 'POST', body: 'grant_type=x' });
    expect(await response.text()).toBe('ok');
    expect(tried).toEqual(['proxy', 'proxy', 'direct']);
    // Both proxies are remembered as down: the next request goes direct at once.
    expect((await stack.route(new URL('https://idp.corp.example/'))).decision).toMatchObject({ kind: 'direct', reason: 'resolved' });
    await stack.close();
  });
});

describe('network.pac (headless), evaluated in the QuickJS sandbox', () => {
  it('a script that loops is stopped within its time limit, one that throws is reported, both as PAC_FAILED', async () => {
    const file = path.join(dir, 'bad.pac');
    await writeFile(
      file,
      `function FindProxyForURL(url, host) {
        if (host === "loops.example") { while (true) {} }
        if (host === "throws.example") throw new Error("no rule for " + host);
        if (host === "socks.example") return "SOCKS5 socks.corp:1080";
        if (host === "resolves-then-loops.example") { dnsResolve("localhost"); while (true) {} }
        return "DIRECT";
      }`,
    );
    const stack = createNetworkStack({ env: {}, settings: () => ({ pac: file }) });
    const started = Date.now();
    const loops = failure(await rejection(stack.route(new URL('https://loops.example/'))));
    expect(loops.code).toBe(ErrorCodes.PAC_FAILED);
    expect(loops.message).toMatch(/ran longer than 1000 ms and was stopped/);
    expect(Date.now() - started).toBeLessThan(5_000);
    // After a DNS lookup the script resumes on the host's promise: stopped there too, with no unhandled rejection.
    const resumed = failure(await rejection(stack.route(new URL('https://resolves-then-loops.example/'))));
    expect(resumed.code).toBe(ErrorCodes.PAC_FAILED);
    expect(resumed.message).toMatch(/ran longer than 1000 ms and was stopped/);
    const throws = failure(await rejection(stack.route(new URL('https://throws.example/'))));
    expect(throws.code).toBe(ErrorCodes.PAC_FAILED);
    expect(throws.message).toContain('no rule for throws.example');
    expect(throws.fix).toMatch(/network\.proxy/);
    const socks = failure(await rejection(stack.route(new URL('https://socks.example/'))));
    expect(socks.code).toBe(ErrorCodes.PAC_FAILED);
    expect(socks.message).toMatch(/SOCKS is not supported/);
    // The sandbox still answers for other hosts after an interrupted call.
    expect((await stack.route(new URL('https://fine.example/'))).decision).toMatchObject({ kind: 'direct', reason: 'resolved' });
    expect((await stack.route(new URL('http://localhost:1/'))).decision).toEqual({ kind: 'direct', reason: 'loopback' });
    await stack.close();
  });

  it('the time limit is for the script itself: a DNS lookup on the host gives it its full time again', async () => {
    const file = path.join(dir, 'dns.pac');
    await writeFile(
      file,
      `function FindProxyForURL(url, host) {
        var start = Date.now();
        while (Date.now() - start < 700) {}
        if (dnsResolve("localhost") === null) return "PROXY nowhere.corp:1";
        start = Date.now();
        while (Date.now() - start < 700) {}
        return "DIRECT";
      }`,
    );
    const stack = createNetworkStack({ env: {}, settings: () => ({ pac: file }) });
    expect((await stack.route(new URL('https://busy.example/'))).decision).toMatchObject({ kind: 'direct', reason: 'resolved' });
    await stack.close();
  });

  it('a file that cannot be loaded: PAC_FAILED; the next try waits for its back-off; the last good copy stays in use', async () => {
    let now = 1_000_000;
    let fetches = 0;
    let serve: { status: number; text?: string } = { status: 404 };
    const engine = createPacEngine({
      location: 'https://pac.corp.example/proxy.pac',
      now: () => now,
      fetchUrl: async () => {
        fetches++;
        if (serve.status !== 200) throw new Error(`HTTP ${serve.status}`);
        return serve.text!;
      },
    });
    const url = new URL('https://mcp.corp.example/');
    const missing = failure(await rejection(engine.find(url)));
    expect(missing.code).toBe(ErrorCodes.PAC_FAILED);
    expect(missing.message).toContain('https://pac.corp.example/proxy.pac could not be read (HTTP 404)');
    // No retry storm: until the back-off has passed, no fetch.
    await rejection(engine.find(url));
    expect(fetches).toBe(1);
    now += pacBackoffMs(1) + 1;
    serve = { status: 200, text: 'function FindProxyForURL(u, h) { return "PROXY p.corp:8080"; }' };
    expect(await engine.find(url)).toBe('PROXY p.corp:8080');
    expect(fetches).toBe(2);

    // At the refresh the file has a syntax error: the last good copy keeps answering, and the failure is kept for doctor.
    now += PAC_REFRESH_MS + 1;
    serve = { status: 200, text: 'function FindProxyForURL(u, h) { return "PROXY' };
    expect(await engine.find(url)).toBe('PROXY p.corp:8080');
    const state = engine.state();
    expect(state.loadedAt).toBeDefined();
    expect(state.lastError?.code).toBe(ErrorCodes.PAC_FAILED);
    expect(state.lastError?.message).toMatch(/does not run/);
    expect(fetches).toBe(3);
    expect(await engine.find(url)).toBe('PROXY p.corp:8080');
    expect(fetches).toBe(3);
    engine.close();
  });
});

describe("headless: the desktop's PAC setting", () => {
  it('reads GNOME, macOS and Windows settings, only when the PAC is switched on', async () => {
    const answers = (map: Record<string, string>) => async (file: string, args: string[]) => map[[file, ...args].join(' ')] ?? '';
    const gnome = answers({
      'gsettings get org.gnome.system.proxy mode': "'auto'\n",
      'gsettings get org.gnome.system.proxy autoconfig-url': "'http://wpad.corp.example/wpad.dat'\n",
    });
    expect(await readSystemPac('linux', gnome)).toEqual({ location: 'http://wpad.corp.example/wpad.dat', from: 'GNOME proxy settings' });
    expect(await readSystemPac('linux', answers({ 'gsettings get org.gnome.system.proxy mode': "'none'" }))).toBeUndefined();
    // gsettings missing (no GNOME): nothing.
    expect(await readSystemPac('linux', answers({}))).toBeUndefined();
    const mac = '<dictionary> {\n  ProxyAutoConfigEnable : 1\n  ProxyAutoConfigURLString : https://pac.corp.example/proxy.pac\n}';
    expect(await readSystemPac('darwin', answers({ '/usr/sbin/scutil --proxy': mac }))).toEqual({
      location: 'https://pac.corp.example/proxy.pac',
      from: 'macOS proxy settings',
    });
    expect(await readSystemPac('darwin', answers({ '/usr/sbin/scutil --proxy': mac.replace(': 1', ': 0') }))).toBeUndefined();
    const reg =
      '\r\nHKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\r\n    AutoConfigURL    REG_SZ    http://pac.corp.example/p.pac\r\n';
    expect(
      await readSystemPac(
        'win32',
        answers({ 'reg query HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings /v AutoConfigURL': reg }),
      ),
    ).toEqual({ location: 'http://pac.corp.example/p.pac', from: 'Windows proxy settings' });
  });

  it('decides the hops nothing configured decides; HTTPS_PROXY and network.pac come first', async () => {
    const file = path.join(dir, 'desktop.pac');
    await writeFile(file, 'function FindProxyForURL(url, host) { return "PROXY desktop.corp:8080; DIRECT"; }');
    let reads = 0;
    const systemPac = async () => {
      reads++;
      return { location: file, from: 'GNOME proxy settings' };
    };
    const stack = createNetworkStack({ env: {}, settings: () => ({}), systemPac });
    // The first relay request cannot know the desktop's setting yet: it waits for it (a sender, not the direct agent).
    expect(stack.upstream(new URL('https://mcp.corp.example/mcp'))?.send).toBeTypeOf('function');
    const route = await stack.route(new URL('https://mcp.corp.example/mcp'));
    expect(route.decision).toMatchObject({ kind: 'proxy', source: `PAC ${file} (GNOME proxy settings)` });
    expect(stack.pac()).toMatchObject({ location: file, from: 'GNOME proxy settings' });
    expect(reads).toBe(1);
    await stack.close();

    const env = createNetworkStack({ env: { HTTPS_PROXY: 'http://env.corp:1' }, settings: () => ({}), systemPac });
    expect((await env.route(new URL('https://mcp.corp.example/'))).decision).toMatchObject({ source: 'HTTPS_PROXY' });
    expect(env.pac()).toBeUndefined();
    await env.close();
    expect(reads).toBe(1);
  });
});

describe('config: network.pac and the managed lock', () => {
  it('accepts a URL, a file: URL or an absolute path; refuses credentials in the URL', () => {
    for (const pac of ['https://pac.corp.example/proxy.pac', 'file:///etc/proxy.pac', '/etc/proxy.pac', 'C:\\proxy.pac'])
      expect(LanyardConfigSchema.safeParse({ version: 1, network: { pac } }).success).toBe(true);
    for (const pac of ['https://u:p@pac.corp.example/proxy.pac', 'proxy.pac', 'ftp://x/proxy.pac'])
      expect(LanyardConfigSchema.safeParse({ version: 1, network: { pac } }).success).toBe(false);
  });

  it('with "network" locked, only the managed network settings count', () => {
    const user = LanyardConfigSchema.parse({ version: 1, network: { proxy: 'http://mine:1', caFile: '/tmp/mine.pem' } });
    const locked = mergeManagedConfig(user, ManagedConfigSchema.parse({ network: { pac: 'https://pac.corp/p.pac' }, lock: ['network'] }));
    expect(locked.network).toEqual({ pac: 'https://pac.corp/p.pac' });
    const open = mergeManagedConfig(user, ManagedConfigSchema.parse({ network: { pac: 'https://pac.corp/p.pac' } }));
    expect(open.network).toMatchObject({ proxy: 'http://mine:1', pac: 'https://pac.corp/p.pac' });
  });
});

describe('network errors on the way to a token are transport, not auth', () => {
  const network = [
    new LanyardError(ErrorCodes.TLS_UNTRUSTED, 'untrusted', 'fix'),
    new LanyardError(ErrorCodes.PROXY_AUTH_REQUIRED, '407', 'fix'),
    new LanyardError(ErrorCodes.PROXY_UNREACHABLE, 'down', 'fix', { transient: true }),
    new LanyardError(ErrorCodes.PAC_FAILED, 'pac', 'fix'),
    new LanyardError(ErrorCodes.IDP_UNREACHABLE, 'idp down', 'fix', { transient: true }),
    new LanyardError(ErrorCodes.AS_UNREACHABLE, 'as down', 'fix'),
  ];
  it.each(network.map((e) => [e.code, e] as const))('%s', (_code, error) => {
    expect(classifyUpstreamError('todo', error)).toEqual({ kind: 'transport', error });
  });
  it('credentials refused stay auth', () => {
    expect(classifyUpstreamError('todo', new LanyardError(ErrorCodes.AS_GRANT_REJECTED, 'no', 'fix')).kind).toBe('auth');
  });

  it('the tray says "Unreachable" for a server failing on the network, "Error" otherwise', () => {
    const view = presentTray(
      status({
        servers: [
          server({ id: 'todo', name: 'Todo', health: 'error', lastError: { code: ErrorCodes.PAC_FAILED, message: 'm', fix: 'f' } }),
          server({ id: 'wiki', name: 'Wiki', health: 'error', lastError: { code: ErrorCodes.AS_GRANT_REJECTED, message: 'm', fix: 'f' } }),
        ],
      }),
    );
    const label = (id: string) =>
      (view.items.find((i) => i.type === 'item' && i.id === id) as Extract<TrayMenuItem, { type: 'item' }>).label;
    expect(label('server:todo')).toBe('Todo — Unreachable');
    expect(label('server:wiki')).toBe('Wiki — Error');
  });
});
