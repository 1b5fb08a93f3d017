/**
 * The Electron shell's security settings, in one module, written against small structural interfaces so the unit
 * tests can drive every rule with plain fakes (test/unit/main-security.test.ts). This file may only `import type`
 * from 'electron': tests import it under plain Node, where loading 'electron' throws.
 *
 * SECURITY-SENSITIVE: do not weaken anything here (no dev exceptions, no "allow" fall-throughs) without a review and a
 * test that pins the new behaviour. Background: https://www.electronjs.org/docs/latest/tutorial/security
 */
import type { WebPreferences } from 'electron';

// ---------------------------------------------------------------------------------------------------------------
// webPreferences

/**
 * The `webPreferences` of every Lanyard window.
 *
 * The renderer is an ordinary sandboxed web page: no Node, an isolated preload world, the same-origin policy on. The
 * preload is therefore a sandboxed preload and must be CommonJS (electron.vite.config.ts builds it that way).
 */
export function secureWebPreferences(preloadPath: string): WebPreferences {
  return {
    preload: preloadPath,
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
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Content-Security-Policy

/** Options for {@link buildCsp}. */
export interface CspOptions {
  /**
   * Port of the local broker on 127.0.0.1 that the renderer may call, or `'*'` for any loopback port (the static
   * `<meta>` policy, written before the port is known; the response header then narrows it). Omitted: `'self'` only.
   */
  brokerPort?: number | '*';
  /** For a `<meta http-equiv>` tag: leaves out directives browsers ignore there (frame-ancestors). */
  meta?: boolean;
  /**
   * `electron-vite dev` only: the dev server injects React Fast Refresh's inline preamble (allowed by its exact
   * sha256 hash, never by 'unsafe-inline') and inserts CSS as `<style>` elements.
   */
  dev?: { scriptHashes: readonly string[] };
}

const SCRIPT_HASH = /^sha256-[A-Za-z0-9+/]{43}=$/;

/**
 * The renderer's Content-Security-Policy: only the app's own scripts, styles and images, no eval, no plugins, no
 * framing, and network access only to itself and the loopback broker. Applied both as a response header (main) and as
 * the `<meta>` tag of renderer/index.html (electron.vite.config.ts writes it from this function).
 */
export function buildCsp(options: CspOptions = {}): string {
  const connect = ["'self'"];
  if (options.brokerPort !== undefined) connect.push(`http://127.0.0.1:${checkPort(options.brokerPort)}`);

  const script = ["'self'"];
  const style = ["'self'"];
  if (options.dev) {
    for (const hash of options.dev.scriptHashes) {
      if (!SCRIPT_HASH.test(hash)) throw new TypeError(`Not a CSP sha256 source: ${JSON.stringify(hash)}`);
      script.push(`'${hash}'`);
    }
    style.push("'unsafe-inline'");
  }

  const directives: Array<[string, string[]]> = [
    ['default-src', ["'self'"]],
    ['script-src', script],
    ['style-src', style],
    ['img-src', ["'self'", 'data:']],
    ['font-src', ["'self'"]],
    ['connect-src', connect],
    ['object-src', ["'none'"]],
    ['worker-src', ["'none'"]],
    ['frame-src', ["'none'"]],
    ['base-uri', ["'none'"]],
    ['form-action', ["'none'"]],
  ];
  if (!options.meta) directives.push(['frame-ancestors', ["'none'"]]);
  return directives.map(([name, sources]) => `${name} ${sources.join(' ')}`).join('; ');
}

function checkPort(port: number | '*'): string {
  if (port === '*') return '*';
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`Not a TCP port: ${String(port)}`);
  return String(port);
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions: permissions and the CSP header

/** The part of Electron's `Session` that {@link hardenSession} configures. `session.defaultSession` satisfies it. */
export interface HardenableSession {
  setPermissionRequestHandler(
    handler: ((webContents: unknown, permission: string, callback: (granted: boolean) => void) => void) | null,
  ): void;
  setPermissionCheckHandler(handler: ((webContents: unknown, permission: string) => boolean) | null): void;
  setDevicePermissionHandler(handler: ((details: unknown) => boolean) | null): void;
  webRequest: {
    onHeadersReceived(
      listener:
        | ((
            details: { responseHeaders?: Record<string, string | string[]> },
            callback: (response: { responseHeaders?: Record<string, string | string[]> }) => void,
          ) => void)
        | null,
    ): void;
  };
}

/**
 * Denies every permission (camera, notifications, clipboard, USB, ...) a page asks for or checks, and stamps the CSP
 * on every response the session receives. Lanyard's UI needs none of these permissions; a future need is added here,
 * by name, with a test.
 */
export function hardenSession(session: HardenableSession, csp: string): void {
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
  session.setDevicePermissionHandler(() => false);
  session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: withCsp(details.responseHeaders ?? {}, csp) });
  });
}

/** Returns the headers with any Content-Security-Policy (in any letter case) replaced by `csp`. */
export function withCsp(headers: Record<string, string | string[]>, csp: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== 'content-security-policy') out[name] = value;
  }
  out['Content-Security-Policy'] = [csp];
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Navigation, new windows, <webview>

/** The event Electron passes to navigation listeners. */
export interface NavigationEvent {
  preventDefault(): void;
  readonly url?: string;
}

/** The part of Electron's `WebContents` that {@link guardWebContents} uses. Every `WebContents` satisfies it. */
export interface GuardableContents {
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
  on(event: 'will-navigate', listener: (event: NavigationEvent) => void): unknown;
  on(event: 'will-redirect', listener: (event: NavigationEvent) => void): unknown;
  on(event: 'will-attach-webview', listener: (event: NavigationEvent) => void): unknown;
}

/**
 * Keeps every window on the page it was opened with: navigations and redirects are cancelled, `<webview>`s are never
 * attached, and `window.open` / `target=_blank` never creates a window — a safe link (see {@link isSafeExternalUrl})
 * opens in the user's browser instead. Call it from `app.on('web-contents-created')` so it covers every webContents.
 */
export function guardWebContents(contents: GuardableContents, openExternal: OpenExternal): void {
  contents.setWindowOpenHandler(({ url }) => {
    void openExternalSafe(url, openExternal);
    return { action: 'deny' };
  });
  const block = (event: NavigationEvent): void => event.preventDefault();
  contents.on('will-navigate', block);
  contents.on('will-redirect', block);
  contents.on('will-attach-webview', block);
}

// ---------------------------------------------------------------------------------------------------------------
// Opening URLs outside the app

/** `shell.openExternal`. */
export type OpenExternal = (url: string) => Promise<void>;

/**
 * Parses `raw` and returns the URL if Lanyard may hand it to the OS: `https:` anywhere, `http:` only to a loopback
 * address (127.0.0.0/8, [::1], localhost), never with embedded credentials. Everything else (javascript:, file:,
 * custom schemes, malformed text) is refused. Used for every link and every server-supplied URL.
 */
export function isSafeExternalUrl(raw: string): URL | null {
  if (typeof raw !== 'string' || raw.length > 8192) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.username !== '' || url.password !== '') return null;
  if (url.protocol === 'https:') return url.hostname === '' ? null : url;
  if (url.protocol === 'http:') return isLoopbackHost(url.hostname) ? url : null;
  return null;
}

/** True for the hostnames of a WHATWG-parsed URL that always mean this machine. */
export function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '[::1]') return true;
  const octets = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(hostname);
  return octets !== null && octets[1] === '127' && octets.slice(2).every((o) => Number(o) <= 255);
}

/**
 * The one way Lanyard opens a URL in the user's browser. Returns false (and opens nothing) when the URL is not safe;
 * a failing `openExternal` is reported as false too, never thrown.
 */
export async function openExternalSafe(raw: string, openExternal: OpenExternal): Promise<boolean> {
  const url = isSafeExternalUrl(raw);
  if (url === null) return false;
  try {
    await openExternal(url.href);
    return true;
  } catch {
    return false;
  }
}

/**
 * The broker's `openUrl` in the app: it exists to show the IdP's sign-in page, so it opens only URLs on the configured
 * IdP's origin (and only a URL {@link isSafeExternalUrl} accepts: https, or http to a loopback address such as the
 * sandbox IdP). A compromised or confused caller cannot make the app open an arbitrary page in the user's browser,
 * where the user would expect their company's sign-in.
 */
export function isAllowedSignInUrl(raw: string, idpIssuer: string | undefined): boolean {
  const url = isSafeExternalUrl(raw);
  if (url === null || idpIssuer === undefined) return false;
  let issuer: URL;
  try {
    issuer = new URL(idpIssuer);
  } catch {
    return false;
  }
  return url.origin === issuer.origin;
}

/**
 * Builds the broker's `openUrl`: refuses (with an Error the sign-in flow reports) anything {@link isAllowedSignInUrl}
 * rejects. `issuer` is read at call time, so a changed IdP setting applies at once.
 */
export function createSignInOpener(issuer: () => string | undefined, openExternal: OpenExternal): (url: string) => Promise<void> {
  return async (url) => {
    if (!isAllowedSignInUrl(url, issuer())) {
      throw new Error('Refused to open a sign-in URL outside the configured identity provider.');
    }
    if (!(await openExternalSafe(url, openExternal))) throw new Error('The system browser could not be opened.');
  };
}
