import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

/**
 * The headless dashboard (`lanyard serve`): the same React renderer the tray app shows, served by the local endpoint
 * on 127.0.0.1, and the way a browser gets in without a token in its address bar.
 *
 * Getting in: `oneTimeLink()` makes `http://127.0.0.1:<port>/dashboard/login?code=<random>` (printed by the CLI,
 * valid 2 minutes, single use). Opening it swaps the code for a random session id in an HttpOnly, SameSite=Strict
 * cookie and redirects to `/`, so what stays in the browser's history is a dead code, never a credential. The session
 * lives in this process's memory only (a restart signs every browser out) and is not the local token: it opens the
 * dashboard's control API, never `/mcp`.
 *
 * CSRF: the cookie is SameSite=Strict, so other sites' pages never send it. Other pages on 127.0.0.1 (any port) are
 * the same *site* for SameSite — cookies ignore ports — so every request that authenticates by cookie must also come
 * from our own origin: an `Origin` header, when present, must be exactly `http://<our host>:<our port>`; a state-
 * changing request (anything but GET/HEAD) must carry one (browsers always send Origin on POST). Cross-origin reads
 * are stopped by the same-origin policy (no CORS headers are ever sent). The CLI authenticates with the local token in
 * `Authorization: Bearer`, as for `/mcp`.
 *
 * Mounted by the gateway's HTTP front door (gateway/http-server.ts), whose guard checks Host and Origin and the local
 * token, then strips Authorization before any handler runs — so the session check has to sit in the guard too:
 *   localAuth: withDashboardSessions(localAuth, dashboard),
 *   routes: [{ prefix: '/api/', auth: 'cookie-or-token', handler: createControlHttpHandler(control) },
 *            { prefix: '/', auth: 'none', handler: dashboard.handler }]
 */

export const DASHBOARD_COOKIE = 'lanyard_dashboard';
export const DASHBOARD_LOGIN_PATH = '/dashboard/login';
export const DASHBOARD_LOGOUT_PATH = '/dashboard/logout';

/**
 * The dashboard page's Content-Security-Policy header: only its own scripts, styles and images, no eval or inline
 * script, network only to itself (the control API and the event stream), never framed. Equal to the Electron
 * window's policy (electron/main/security.ts buildCsp(); a unit test keeps them equal).
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; worker-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface DashboardOptions {
  /** The built renderer (electron-vite's out/renderer); relative paths resolve against the working directory. */
  rendererDir: string;
  /** Checks the local token (the gateway's LocalAuth satisfies this). */
  localAuth: { matches(token: string | undefined): boolean };
  /** The port the local endpoint listens on, read when needed (it may bind port 0 in tests). */
  port: number | (() => number);
  now?: () => number;
  /** How long a one-time link works (default 2 minutes). */
  codeTtlMs?: number;
  /** How long a browser session lasts (default 12 hours). */
  sessionTtlMs?: number;
}

export interface Dashboard {
  /** A fresh single-use login link for the browser. */
  oneTimeLink(): string;
  /** True for the local token in `Authorization: Bearer`, or a live session cookie from our own origin. */
  authenticate(req: Pick<IncomingMessage, 'headers' | 'method'>): boolean;
  /** Serves `/dashboard/login`, `/dashboard/logout` and the renderer's files. */
  handler(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Ends every browser session (e.g. after the local token is rotated). */
  revokeAll(): void;
}

const MAX_PENDING_CODES = 16;
const MAX_SESSIONS = 64;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Headers on every dashboard response: no sniffing, no framing, no referrer, no cross-origin embedding. */
const BASE_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function createDashboard(options: DashboardOptions): Dashboard {
  const rendererDir = path.resolve(options.rendererDir);
  const now = options.now ?? Date.now;
  const codeTtl = options.codeTtlMs ?? 2 * 60_000;
  const sessionTtl = options.sessionTtlMs ?? 12 * 60 * 60_000;
  const port = (): number => (typeof options.port === 'function' ? options.port() : options.port);
  /** Codes and session ids are kept as SHA-256 digests: a heap dump or a debug print shows nothing usable. */
  const codes = new Map<string, number>();
  const sessions = new Map<string, number>();

  const digest = (value: string) => createHash('sha256').update(value).digest('base64url');
  const prune = (map: Map<string, number>) => {
    const t = now();
    for (const [key, expires] of map) if (expires <= t) map.delete(key);
  };
  const ownHosts = () => [`127.0.0.1:${port()}`, `localhost:${port()}`, `[::1]:${port()}`];
  const isOwnHost = (host: string | undefined) => host !== undefined && ownHosts().includes(host.toLowerCase());

  function oneTimeLink(): string {
    prune(codes);
    // Bounded: an old unused link is dropped before a new one is made.
    while (codes.size >= MAX_PENDING_CODES) codes.delete(codes.keys().next().value as string);
    const code = randomBytes(32).toString('base64url');
    codes.set(digest(code), now() + codeTtl);
    return `http://127.0.0.1:${port()}${DASHBOARD_LOGIN_PATH}?code=${code}`;
  }

  function sessionOf(req: Pick<IncomingMessage, 'headers'>): string | undefined {
    const id = cookieValue(req.headers.cookie, DASHBOARD_COOKIE);
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const key = digest(id);
    const expires = sessions.get(key);
    if (expires === undefined) return undefined;
    if (expires <= now()) {
      sessions.delete(key);
      return undefined;
    }
    return key;
  }

  /** The request comes from our own pages: Origin (when present) is exactly the origin the request was sent to. */
  function sameOrigin(req: Pick<IncomingMessage, 'headers' | 'method'>): boolean {
    const host = req.headers.host;
    if (!isOwnHost(host)) return false;
    const origin = req.headers.origin;
    if (origin === undefined) return isSafeMethod(req.method);
    return origin.toLowerCase() === `http://${(host ?? '').toLowerCase()}`;
  }

  function authenticate(req: Pick<IncomingMessage, 'headers' | 'method'>): boolean {
    if (options.localAuth.matches(bearer(req.headers.authorization))) return true;
    return sessionOf(req) !== undefined && sameOrigin(req);
  }

  async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (!isOwnHost(req.headers.host)) {
      return sendText(res, 421, "This is Lanyard's local dashboard; open it at http://127.0.0.1 with the port Lanyard printed.");
    }
    if (url.pathname === DASHBOARD_LOGIN_PATH) return login(req, res, url);
    if (url.pathname === DASHBOARD_LOGOUT_PATH) return logout(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'Method not allowed.', { allow: 'GET, HEAD' });
    return serveFile(req, res, url.pathname);
  }

  function login(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (req.method !== 'GET') return sendText(res, 405, 'Method not allowed.', { allow: 'GET' });
    prune(codes);
    const code = url.searchParams.get('code') ?? '';
    const key = digest(code);
    if (!/^[A-Za-z0-9_-]{43}$/.test(code) || !codes.has(key)) {
      return sendPage(
        res,
        403,
        'This link has expired',
        'Dashboard links work once, for two minutes. Ask Lanyard for a new one: run <code>lanyard serve</code> again (or <code>lanyard dashboard</code>) and open the link it prints.',
      );
    }
    codes.delete(key);
    prune(sessions);
    while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
    const id = randomBytes(32).toString('base64url');
    sessions.set(digest(id), now() + sessionTtl);
    res.writeHead(302, {
      ...BASE_HEADERS,
      location: '/',
      'cache-control': 'no-store',
      // No Max-Age: a browser-session cookie; the server forgets it after sessionTtl or on restart anyway. No Secure:
      // the dashboard is plain http on loopback, which browsers treat as a secure context.
      'set-cookie': `${DASHBOARD_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/`,
    });
    res.end();
  }

  function logout(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') return sendText(res, 405, 'Method not allowed.', { allow: 'POST' });
    if (!sameOrigin(req) || req.headers.origin === undefined) return sendText(res, 403, 'Cross-origin request refused.');
    const key = sessionOf(req);
    if (key !== undefined) sessions.delete(key);
    res.writeHead(204, {
      ...BASE_HEADERS,
      'cache-control': 'no-store',
      'set-cookie': `${DASHBOARD_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`,
    });
    res.end();
  }

  async function serveFile(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    let relative: string;
    try {
      relative = decodeURIComponent(pathname === '/' ? '/index.html' : pathname);
    } catch {
      return sendText(res, 400, 'Bad path.');
    }
    const file = path.resolve(rendererDir, `.${relative}`);
    // Only files inside the renderer directory, never a dotfile, never a NUL trick.
    if (relative.includes('\0') || !file.startsWith(rendererDir + path.sep) || relative.split('/').some((part) => part.startsWith('.'))) {
      return sendText(res, 404, 'Not found.');
    }
    const type = MIME[path.extname(file).toLowerCase()];
    let body: Buffer;
    try {
      if (type === undefined || !(await stat(file)).isFile()) return sendText(res, 404, 'Not found.');
      body = await readFile(file);
    } catch {
      if (relative === '/index.html') {
        return sendPage(
          res,
          503,
          'The dashboard is not built',
          'Lanyard could not find its dashboard files. Build them with <code>npm run build</code>, then reload.',
        );
      }
      return sendText(res, 404, 'Not found.');
    }
    const isHtml = type.startsWith('text/html');
    res.writeHead(200, {
      ...BASE_HEADERS,
      'content-type': type,
      'content-length': String(body.length),
      // The page always revalidates; Vite's hashed assets never change under the same name.
      'cache-control': isHtml || !relative.startsWith('/assets/') ? 'no-cache' : 'public, max-age=31536000, immutable',
      ...(isHtml ? { 'content-security-policy': DASHBOARD_CSP } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  return {
    oneTimeLink,
    authenticate,
    handler,
    revokeAll: () => {
      sessions.clear();
      codes.clear();
    },
  };
}

/** The shape of the gateway front door's guard (LocalAuth), structurally, so this module imports nothing from it. */
export interface FrontDoorGuard<Ctx extends { auth: string; preflight?: boolean }, R> {
  check(req: Pick<IncomingMessage, 'headers'>, context: Ctx): R | null;
  allowedOrigins(): readonly string[];
}

/**
 * The front door's guard, with one addition: on `cookie-or-token` routes (the control API) a live dashboard session
 * from our own origin counts as authenticated. Host and Origin are still checked by the wrapped guard (the request is
 * passed on as an `auth: 'none'` one), and everything else — the local token, other routes — is unchanged.
 */
export function withDashboardSessions<Ctx extends { auth: string; preflight?: boolean }, R>(
  guard: FrontDoorGuard<Ctx, R>,
  dashboard: Pick<Dashboard, 'authenticate'>,
): FrontDoorGuard<Ctx, R> {
  return {
    allowedOrigins: () => guard.allowedOrigins(),
    check(req, context) {
      // The front door hands over the whole IncomingMessage; its method decides whether an Origin is required.
      const method = (req as Partial<Pick<IncomingMessage, 'method'>>).method;
      if (context.auth === 'cookie-or-token' && !context.preflight && dashboard.authenticate({ headers: req.headers, method })) {
        return guard.check(req, { ...context, auth: 'none' });
      }
      return guard.check(req, context);
    },
  };
}

function isSafeMethod(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD';
}

function bearer(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value)?.[1];
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(`${text}\n`);
}

const PAGE_STYLE =
  'body{margin:0;min-height:100vh;display:grid;place-items:center;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;background:#f4f5f8;color:#1b1e27}main{max-width:30rem;margin:1rem;padding:2rem;background:#fff;border:1px solid #dfe2ea;border-radius:12px}h1{font-size:1.25rem;margin:0 0 .5rem}code{background:#eef0f5;padding:.1em .35em;border-radius:4px}@media (prefers-color-scheme:dark){body{background:#15171d;color:#e8eaf0}main{background:#1d2027;border-color:#30343e}code{background:#2a2e38}}';
const PAGE_STYLE_HASH = `'sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}'`;

/** A small self-contained page (its one inline style allowed by hash; no script at all). `html` is trusted text. */
function sendPage(res: ServerResponse, status: number, title: string, html: string): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    ...BASE_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src ${PAGE_STYLE_HASH}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  });
  res.end(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Lanyard — ${title}</title><style>${PAGE_STYLE}</style></head><body><main><h1>${title}</h1><p>${html}</p></main></body></html>`,
  );
}
