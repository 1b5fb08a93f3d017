import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { BodyTooLargeError, readJsonBody, sendJson } from '../gateway/http-util';

/**
 * The headless dashboard (`lanyard serve`): the same React renderer the tray app shows, served by the local endpoint
 * on 127.0.0.1, and the way a browser gets in without a token in its address bar.
 *
 * Getting in: `oneTimeLink()` makes `http://127.0.0.1:<port>/#code=<random>` (printed by the CLI, valid 2 minutes,
 * single use). The code is in the fragment, which browsers never send to a server; the page POSTs it to
 * `/dashboard/session` from our own origin and gets a session credential back in the JSON body, keeps it in its own
 * origin's sessionStorage (one tab, gone when the tab closes) and sends it as `X-Lanyard-Session` on each control API
 * call. The live event stream (EventSource cannot send headers) opens with a 30-second single-use ticket from
 * `/dashboard/ticket`. The session lives in this process's memory only (a restart signs every browser out), ends after
 * 30 minutes unused and 8 hours in any case, and is not the local token: it opens the control API, never `/mcp`.
 *
 * Why no cookie: cookies are not isolated by port, and SameSite treats all of loopback as one site, so a cookie set
 * here is sent to every server on 127.0.0.1 — any local dev server, or another user's listener, would receive it and
 * could replay it with a forged Origin from outside a browser. A header value held by the page is readable only by
 * scripts of this exact origin (scheme, host and port). The dashboard never sends Set-Cookie.
 *
 * Binding to the page: the session header is accepted only with an `Origin` that is exactly `http://<our host>:<our
 * port>` (browsers send it on every POST, which is all the control API uses). Cross-origin reads are stopped by the
 * same-origin policy (no CORS headers are ever sent). The CLI authenticates with the local token in
 * `Authorization: Bearer`, as for `/mcp`.
 *
 * Mounted by the gateway's HTTP front door (gateway/http-server.ts), whose guard checks Host and Origin and the local
 * token, then strips Authorization before any handler runs — so the session check has to sit in the guard too:
 *   localAuth: withDashboardSessions(localAuth, dashboard),
 *   routes: [{ prefix: '/api/', auth: 'session-or-token', handler: createControlHttpHandler(control) },
 *            { prefix: '/', auth: 'none', handler: dashboard.handler }]
 */

export const DASHBOARD_LOGIN_PATH = '/dashboard/login';
export const DASHBOARD_SESSION_PATH = '/dashboard/session';
export const DASHBOARD_TICKET_PATH = '/dashboard/ticket';
export const DASHBOARD_LOGOUT_PATH = '/dashboard/logout';
/** The request header that carries the dashboard session (lower-case, as Node presents it). */
export const DASHBOARD_SESSION_HEADER = 'x-lanyard-session';
/** Where a dashboard link expired or was used: how to get a new one. */
export const DASHBOARD_NEW_LINK_FIX =
  'Links work once, for two minutes. Stop `lanyard serve` (Ctrl+C) and start it again: it prints a new link.';

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
  /** A session unused this long ends (default 30 minutes). */
  sessionIdleMs?: number;
  /** A session ends this long after the link was opened, used or not (default 8 hours). */
  sessionMaxMs?: number;
  /** How long an event-stream ticket works (default 30 seconds). */
  ticketTtlMs?: number;
}

export interface Dashboard {
  /** A fresh single-use login link for the browser. */
  oneTimeLink(): string;
  /**
   * True for the local token in `Authorization: Bearer`, a live session in `X-Lanyard-Session` from our own origin, or
   * (for `GET /api/events` only) a live single-use ticket.
   */
  authenticate(req: Pick<IncomingMessage, 'headers' | 'method'> & { url?: string | undefined }): boolean;
  /** Serves `/dashboard/*` and the renderer's files. */
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
  const idleTtl = options.sessionIdleMs ?? 30 * 60_000;
  const maxTtl = options.sessionMaxMs ?? 8 * 60 * 60_000;
  const ticketTtl = options.ticketTtlMs ?? 30_000;
  const port = (): number => (typeof options.port === 'function' ? options.port() : options.port);
  /** Codes, session ids and tickets are kept as SHA-256 digests: a heap dump or a debug print shows nothing usable. */
  const codes = new Map<string, number>();
  const sessions = new Map<string, { lastUsed: number; ends: number }>();
  const tickets = new Map<string, { expires: number; session: string }>();

  const digest = (value: string) => createHash('sha256').update(value).digest('base64url');
  const isSecret = (value: string | undefined): value is string => value !== undefined && /^[A-Za-z0-9_-]{43}$/.test(value);
  const prune = () => {
    const t = now();
    for (const [key, expires] of codes) if (expires <= t) codes.delete(key);
    for (const [key, s] of sessions) if (s.ends <= t || s.lastUsed + idleTtl <= t) sessions.delete(key);
    for (const [key, ticket] of tickets) if (ticket.expires <= t || !sessions.has(ticket.session)) tickets.delete(key);
  };
  const ownHosts = () => [`127.0.0.1:${port()}`, `localhost:${port()}`, `[::1]:${port()}`];
  const isOwnHost = (host: string | undefined) => host !== undefined && ownHosts().includes(host.toLowerCase());

  function oneTimeLink(): string {
    prune();
    // Bounded: an old unused link is dropped before a new one is made.
    while (codes.size >= MAX_PENDING_CODES) codes.delete(codes.keys().next().value as string);
    const code = randomBytes(32).toString('base64url');
    codes.set(digest(code), now() + codeTtl);
    return `http://127.0.0.1:${port()}/#code=${code}`;
  }

  /** The request comes from our own page: an `Origin` header that is exactly the origin the request was sent to. */
  function fromOurPage(req: Pick<IncomingMessage, 'headers'>): boolean {
    const host = req.headers.host;
    const origin = req.headers.origin;
    return isOwnHost(host) && origin !== undefined && origin.toLowerCase() === `http://${(host ?? '').toLowerCase()}`;
  }

  /** The live session named by the request's header (and sent from our page), touched; or undefined. */
  function sessionOf(req: Pick<IncomingMessage, 'headers'>): string | undefined {
    const raw = req.headers[DASHBOARD_SESSION_HEADER];
    const id = Array.isArray(raw) ? undefined : raw;
    if (!isSecret(id) || !fromOurPage(req)) return undefined;
    prune();
    const key = digest(id);
    const session = sessions.get(key);
    if (session === undefined) return undefined;
    session.lastUsed = now();
    return key;
  }

  function authenticate(req: Pick<IncomingMessage, 'headers' | 'method'> & { url?: string | undefined }): boolean {
    if (options.localAuth.matches(bearer(req.headers.authorization))) return true;
    if (sessionOf(req) !== undefined) return true;
    // EventSource cannot send headers: the event stream alone may open with a single-use ticket instead.
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // An identity profile's stream (`/p/<name>/api/events`, the dashboard's switcher) opens the same way.
    if (req.method === 'GET' && /^(\/p\/[^/]+)?\/api\/events$/.test(url.pathname) && isOwnHost(req.headers.host)) {
      const ticket = url.searchParams.get('ticket') ?? undefined;
      if (!isSecret(ticket)) return false;
      prune();
      const key = digest(ticket);
      const found = tickets.get(key);
      tickets.delete(key);
      const session = found && sessions.get(found.session);
      if (session === undefined) return false;
      session.lastUsed = now();
      return true;
    }
    return false;
  }

  async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (!isOwnHost(req.headers.host)) {
      return sendText(res, 421, "This is Lanyard's local dashboard; open it at http://127.0.0.1 with the port Lanyard printed.");
    }
    if (url.pathname === DASHBOARD_LOGIN_PATH) return login(req, res, url);
    if (url.pathname === DASHBOARD_SESSION_PATH) return startSession(req, res);
    if (url.pathname === DASHBOARD_TICKET_PATH) return ticket(req, res);
    if (url.pathname === DASHBOARD_LOGOUT_PATH) return logout(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'Method not allowed.', { allow: 'GET, HEAD' });
    return serveFile(req, res, url.pathname);
  }

  /** Links printed before the code moved into the fragment: hand the code to the page, which exchanges it. */
  function login(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (req.method !== 'GET') return sendText(res, 405, 'Method not allowed.', { allow: 'GET' });
    prune();
    const code = url.searchParams.get('code') ?? undefined;
    if (!isSecret(code) || !codes.has(digest(code))) return expiredPage(res);
    res.writeHead(302, { ...BASE_HEADERS, location: `/#code=${code}`, 'cache-control': 'no-store' });
    res.end();
  }

  async function startSession(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return sendText(res, 405, 'Method not allowed.', { allow: 'POST' });
    if (!fromOurPage(req)) return sendJson(res, 403, { error: 'Cross-origin request refused.' }, BASE_HEADERS);
    const body = await readLoginBody(req, res);
    const code = typeof body?.code === 'string' ? body.code : undefined;
    prune();
    const key = isSecret(code) ? digest(code) : undefined;
    if (key === undefined || !codes.has(key)) {
      return sendJson(
        res,
        403,
        { error: 'This dashboard link has expired or was already used.', fix: DASHBOARD_NEW_LINK_FIX },
        BASE_HEADERS,
      );
    }
    codes.delete(key);
    while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
    const id = randomBytes(32).toString('base64url');
    sessions.set(digest(id), { lastUsed: now(), ends: now() + maxTtl });
    sendJson(res, 200, { session: id, header: DASHBOARD_SESSION_HEADER, idleMs: idleTtl, maxMs: maxTtl }, BASE_HEADERS);
  }

  function ticket(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') return sendText(res, 405, 'Method not allowed.', { allow: 'POST' });
    const session = sessionOf(req);
    if (session === undefined)
      return sendJson(res, 401, { error: 'Not signed in to the dashboard.', fix: DASHBOARD_NEW_LINK_FIX }, BASE_HEADERS);
    while (tickets.size >= MAX_SESSIONS) tickets.delete(tickets.keys().next().value as string);
    const value = randomBytes(32).toString('base64url');
    tickets.set(digest(value), { expires: now() + ticketTtl, session });
    sendJson(res, 200, { ticket: value }, BASE_HEADERS);
  }

  function logout(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') return sendText(res, 405, 'Method not allowed.', { allow: 'POST' });
    if (!fromOurPage(req)) return sendText(res, 403, 'Cross-origin request refused.');
    const key = sessionOf(req);
    if (key !== undefined) sessions.delete(key);
    res.writeHead(204, { ...BASE_HEADERS, 'cache-control': 'no-store' });
    res.end();
  }

  function expiredPage(res: ServerResponse): void {
    sendPage(
      res,
      403,
      'This link has expired',
      'Dashboard links work once, for two minutes. To get a new one, stop <code>lanyard serve</code> (Ctrl+C) and start it again, then open the link it prints.',
    );
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
      tickets.clear();
    },
  };
}

/** The shape of the gateway front door's guard (LocalAuth), structurally, so this module imports nothing from it. */
export interface FrontDoorGuard<Ctx extends { auth: string; preflight?: boolean }, R> {
  check(req: Pick<IncomingMessage, 'headers'>, context: Ctx): R | null;
  allowedOrigins(): readonly string[];
}

/**
 * The front door's guard, with one addition: on `session-or-token` routes (the control API) a live dashboard session
 * from our own origin (or an event-stream ticket) counts as authenticated. Host and Origin are still checked by the wrapped guard (the request is
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
      const { method, url } = req as Partial<Pick<IncomingMessage, 'method' | 'url'>>;
      if (context.auth === 'session-or-token' && !context.preflight && dashboard.authenticate({ headers: req.headers, method, url })) {
        return guard.check(req, { ...context, auth: 'none' });
      }
      return guard.check(req, context);
    },
  };
}

function bearer(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value)?.[1];
}

/** The login code's body: a JSON object of at most 1 KiB, or undefined (too large, not JSON, not an object). */
async function readLoginBody(req: IncomingMessage, res: ServerResponse): Promise<Record<string, unknown> | undefined> {
  try {
    const value = await readJsonBody(req, 1024);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch (e) {
    if (e instanceof BodyTooLargeError) {
      // The rest of a refused body is never read: the connection closes once the answer is out.
      res.setHeader('Connection', 'close');
      res.once('finish', () => req.destroy());
    }
    return undefined;
  }
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
