/**
 * electron/main/security.ts, driven through plain fakes of the few Electron APIs it touches. It imports only types
 * from 'electron', so this runs under Node without the Electron binary.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  buildCsp,
  createSignInOpener,
  guardWebContents,
  hardenSession,
  isAllowedSignInUrl,
  isLoopbackHost,
  isSafeExternalUrl,
  openExternalSafe,
  secureWebPreferences,
  withCsp,
  type GuardableContents,
  type HardenableSession,
  type NavigationEvent,
} from '../../electron/main/security';

const root = resolve(import.meta.dirname, '../..');

/** 'a b; c d e' → { a: ['b'], c: ['d', 'e'] }, failing on a repeated directive (browsers ignore the repeat). */
function parseCsp(csp: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of csp.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name === undefined || name === '') continue;
    if (name in out) throw new Error(`directive ${name} appears twice`);
    out[name] = sources;
  }
  return out;
}

describe('secureWebPreferences', () => {
  it('isolates, sandboxes and keeps Node out of every window', () => {
    expect(secureWebPreferences('/app/out/preload/index.cjs')).toEqual({
      preload: '/app/out/preload/index.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
      safeDialogs: true,
      spellcheck: false,
    });
  });
});

describe('buildCsp', () => {
  it('allows only our own code: no eval, no inline script, no plugins, no framing', () => {
    const csp = buildCsp();
    expect(csp).not.toMatch(/unsafe-eval|unsafe-inline|wasm-unsafe-eval|\*/);
    const d = parseCsp(csp);
    expect(d['default-src']).toEqual(["'self'"]);
    expect(d['script-src']).toEqual(["'self'"]);
    expect(d['style-src']).toEqual(["'self'"]);
    expect(d['img-src']).toEqual(["'self'", 'data:']);
    expect(d['object-src']).toEqual(["'none'"]);
    expect(d['base-uri']).toEqual(["'none'"]);
    expect(d['form-action']).toEqual(["'none'"]);
    expect(d['frame-ancestors']).toEqual(["'none'"]);
    expect(d['frame-src']).toEqual(["'none'"]);
  });

  it('limits connect-src to self and, when given, the loopback broker', () => {
    expect(parseCsp(buildCsp())['connect-src']).toEqual(["'self'"]);
    expect(parseCsp(buildCsp({ brokerPort: 4399 }))['connect-src']).toEqual(["'self'", 'http://127.0.0.1:4399']);
    expect(parseCsp(buildCsp({ brokerPort: '*', meta: true }))['connect-src']).toEqual(["'self'", 'http://127.0.0.1:*']);
  });

  it.each([0, -1, 65536, 80.5, Number.NaN])('rejects the broker port %s', (port) => {
    expect(() => buildCsp({ brokerPort: port })).toThrow(RangeError);
  });

  it('leaves frame-ancestors out of the <meta> form, where browsers ignore it', () => {
    const d = parseCsp(buildCsp({ meta: true }));
    expect(d['frame-ancestors']).toBeUndefined();
    expect(d['script-src']).toEqual(["'self'"]);
  });

  it('in dev allows exactly the hashed preamble and inline styles, still no eval or inline script', () => {
    const hash = `sha256-${'A'.repeat(43)}=`;
    const d = parseCsp(buildCsp({ dev: { scriptHashes: [hash] } }));
    expect(d['script-src']).toEqual(["'self'", `'${hash}'`]);
    expect(d['style-src']).toEqual(["'self'", "'unsafe-inline'"]);
    expect(JSON.stringify(d)).not.toContain('unsafe-eval');
  });

  it.each(["'unsafe-inline'", 'sha256-abc', `sha256-${'A'.repeat(43)}=; script-src *`, ''])('rejects the script hash %j', (hash) => {
    expect(() => buildCsp({ dev: { scriptHashes: [hash] } })).toThrow(TypeError);
  });

  it("is exactly the policy in renderer/index.html's <meta> tag", async () => {
    const html = await readFile(resolve(root, 'renderer/index.html'), 'utf8');
    const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"/i.exec(html);
    expect(meta?.[1]).toBe(buildCsp({ meta: true, brokerPort: '*' }));
  });
});

describe('hardenSession', () => {
  function fakeSession() {
    const s = {
      request: null as Parameters<HardenableSession['setPermissionRequestHandler']>[0],
      check: null as Parameters<HardenableSession['setPermissionCheckHandler']>[0],
      device: null as Parameters<HardenableSession['setDevicePermissionHandler']>[0],
      headers: null as Parameters<HardenableSession['webRequest']['onHeadersReceived']>[0],
    };
    const session: HardenableSession = {
      setPermissionRequestHandler: (h) => void (s.request = h),
      setPermissionCheckHandler: (h) => void (s.check = h),
      setDevicePermissionHandler: (h) => void (s.device = h),
      webRequest: { onHeadersReceived: (l) => void (s.headers = l) },
    };
    hardenSession(session, "default-src 'self'");
    return s;
  }

  it.each(['media', 'notifications', 'geolocation', 'clipboard-read', 'openExternal', 'unknown'])(
    'denies the %s permission when asked and when checked',
    (permission) => {
      const s = fakeSession();
      const callback = vi.fn();
      s.request?.({}, permission, callback);
      expect(callback).toHaveBeenCalledExactlyOnceWith(false);
      expect(s.check?.({}, permission)).toBe(false);
    },
  );

  it('denies device access (HID, serial, USB)', () => {
    expect(fakeSession().device?.({ deviceType: 'usb' })).toBe(false);
  });

  it('stamps the CSP on responses, replacing any the server sent', () => {
    const s = fakeSession();
    const callback = vi.fn();
    s.headers?.({ responseHeaders: { 'content-security-policy': ['script-src *'], 'Content-Type': ['text/html'] } }, callback);
    expect(callback).toHaveBeenCalledExactlyOnceWith({
      responseHeaders: { 'Content-Type': ['text/html'], 'Content-Security-Policy': ["default-src 'self'"] },
    });
  });

  it('adds the CSP to responses that had no headers', () => {
    expect(withCsp({}, 'x')).toEqual({ 'Content-Security-Policy': ['x'] });
  });
});

describe('guardWebContents', () => {
  function fakeContents() {
    let windowOpen: ((details: { url: string }) => { action: 'deny' }) | undefined;
    const listeners = new Map<string, (event: NavigationEvent) => void>();
    const contents: GuardableContents = {
      setWindowOpenHandler: (handler) => void (windowOpen = handler),
      on: (event: string, listener: (event: NavigationEvent) => void) => listeners.set(event, listener),
    };
    const openExternal = vi.fn(async (_url: string) => undefined);
    guardWebContents(contents, openExternal);
    return { windowOpen: (url: string) => windowOpen?.({ url }), listeners, openExternal };
  }

  it('denies every new window and opens only safe links in the browser', async () => {
    const c = fakeContents();
    expect(c.windowOpen('https://docs.example.com/mcp')).toEqual({ action: 'deny' });
    expect(c.windowOpen('javascript:alert(1)')).toEqual({ action: 'deny' });
    expect(c.windowOpen('file:///etc/passwd')).toEqual({ action: 'deny' });
    await vi.waitFor(() => expect(c.openExternal).toHaveBeenCalledTimes(1));
    await new Promise((r) => setTimeout(r, 10));
    expect(c.openExternal.mock.calls).toEqual([['https://docs.example.com/mcp']]);
  });

  it.each(['will-navigate', 'will-redirect', 'will-attach-webview'])('cancels %s', (name) => {
    const c = fakeContents();
    const event = { url: 'https://evil.example/', preventDefault: vi.fn() };
    const listener = c.listeners.get(name);
    expect(listener).toBeTypeOf('function');
    listener?.(event);
    expect(event.preventDefault).toHaveBeenCalledOnce();
  });

  it('does not open the target of a blocked navigation', async () => {
    const c = fakeContents();
    c.listeners.get('will-navigate')?.({ url: 'https://example.com/', preventDefault: () => undefined });
    await new Promise((r) => setTimeout(r, 10));
    expect(c.openExternal).not.toHaveBeenCalled();
  });
});

describe('openExternalSafe', () => {
  it.each([
    ['https://example.com/path?q=1#h', 'https://example.com/path?q=1#h'],
    ['HTTPS://Example.COM', 'https://example.com/'],
    // An empty userinfo is dropped by the parser; what is opened is the normalised URL, not the raw text.
    ['https://@example.com/', 'https://example.com/'],
    ['http://127.0.0.1:8080/callback', 'http://127.0.0.1:8080/callback'],
    ['http://127.1:9/', 'http://127.0.0.1:9/'],
    ['http://localhost:3000/', 'http://localhost:3000/'],
    ['http://[::1]:4000/', 'http://[::1]:4000/'],
  ])('opens %s (as %s)', async (raw, opened) => {
    const openExternal = vi.fn(async (_url: string) => undefined);
    await expect(openExternalSafe(raw, openExternal)).resolves.toBe(true);
    expect(openExternal).toHaveBeenCalledExactlyOnceWith(opened);
  });

  it.each([
    'javascript:alert(1)',
    ' javascript:alert(document.cookie)',
    'JaVaScRiPt:alert(1)',
    'file:///etc/passwd',
    'file://C:/Windows/System32/calc.exe',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox(1)',
    'smb://attacker/share',
    'ms-msdt:/id PCWDiagnostic',
    'lanyard://open',
    'http://example.com/',
    'http://10.0.0.1/',
    'http://0.0.0.0:8080/',
    'http://127.0.0.1.evil.example/',
    'http://localhost.evil.example/',
    'https://user:secret@example.com/',
    'not a url',
    '',
    'https://',
    '//example.com/path',
    `https://example.com/${'a'.repeat(9000)}`,
  ])('refuses %j and opens nothing', async (raw) => {
    const openExternal = vi.fn(async (_url: string) => undefined);
    await expect(openExternalSafe(raw, openExternal)).resolves.toBe(false);
    expect(openExternal).not.toHaveBeenCalled();
  });

  it('reports a failing openExternal as false instead of throwing', async () => {
    await expect(openExternalSafe('https://example.com/', () => Promise.reject(new Error('no browser')))).resolves.toBe(false);
  });

  it('agrees with isSafeExternalUrl and isLoopbackHost', () => {
    expect(isSafeExternalUrl('https://example.com')?.href).toBe('https://example.com/');
    expect(isSafeExternalUrl('ftp://example.com')).toBeNull();
    expect(isLoopbackHost('127.255.255.254')).toBe(true);
    expect(isLoopbackHost('128.0.0.1')).toBe(false);
    expect(isLoopbackHost('127.0.0.300')).toBe(false);
    expect(isLoopbackHost('example.com')).toBe(false);
  });
});

describe('electron/main/security.ts', () => {
  it("imports nothing but types from 'electron' (tests load it under plain Node)", async () => {
    const source = await readFile(resolve(root, 'electron/main/security.ts'), 'utf8');
    const imports = [...source.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)';/gms)];
    expect(imports.length).toBeGreaterThan(0);
    for (const [statement, typeOnly, from] of imports) {
      if (from === 'electron' || from?.startsWith('electron/')) expect(typeOnly, statement).toBeDefined();
    }
  });
});

describe('the sign-in opener (the broker openUrl in the app)', () => {
  it('allows only the configured IdP origin, over https or loopback http', () => {
    expect(isAllowedSignInUrl('https://acme.okta.com/oauth2/v1/authorize?client_id=x', 'https://acme.okta.com')).toBe(true);
    expect(isAllowedSignInUrl('https://acme.okta.com/oauth2/default/v1/authorize', 'https://acme.okta.com/oauth2/default')).toBe(true);
    expect(isAllowedSignInUrl('http://127.0.0.1:4321/oauth2/v1/authorize', 'http://127.0.0.1:4321')).toBe(true);
    expect(isAllowedSignInUrl('https://evil.example.com/authorize', 'https://acme.okta.com')).toBe(false);
    expect(isAllowedSignInUrl('https://acme.okta.com.evil.example.com/', 'https://acme.okta.com')).toBe(false);
    expect(isAllowedSignInUrl('http://127.0.0.1:9999/authorize', 'http://127.0.0.1:4321')).toBe(false);
    expect(isAllowedSignInUrl('http://acme.okta.com/authorize', 'http://acme.okta.com')).toBe(false);
    expect(isAllowedSignInUrl('javascript:alert(1)', 'https://acme.okta.com')).toBe(false);
    expect(isAllowedSignInUrl('https://acme.okta.com/authorize', undefined)).toBe(false);
    expect(isAllowedSignInUrl('https://acme.okta.com/authorize', 'not a url')).toBe(false);
  });

  it('opens an allowed URL and refuses anything else without opening it', async () => {
    const opened: string[] = [];
    const open = createSignInOpener(
      () => 'https://acme.okta.com',
      async (url) => {
        opened.push(url);
      },
    );
    await open('https://acme.okta.com/oauth2/v1/authorize?state=s');
    await expect(open('https://evil.example.com/login')).rejects.toThrow(/outside the configured identity provider/);
    expect(opened).toEqual(['https://acme.okta.com/oauth2/v1/authorize?state=s']);
  });

  it('reads the issuer at call time and reports a browser that would not open', async () => {
    const config: { issuer?: string } = {};
    const open = createSignInOpener(
      () => config.issuer,
      async () => {
        throw new Error('no browser');
      },
    );
    await expect(open('https://acme.okta.com/authorize')).rejects.toThrow(/outside/);
    config.issuer = 'https://acme.okta.com';
    await expect(open('https://acme.okta.com/authorize')).rejects.toThrow(/could not be opened/);
  });
});
