import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { IdeName } from '../../../shared/contract';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { SERVER_ID_PATTERN } from '../config/schema';
import { LanyardError } from '../errors';
import { ideFromPath } from '../governance/profiles/endpoint';
import { splitIdentityPath } from '../identities/names';
import { enterRemoteCaller } from '../remote/caller';
import { silentLogger, type Logger } from '../util/log';
import type { LocalAuthRejection, RequestGuardContext, RouteAuth } from './local-auth';
import { BodyTooLargeError, DEFAULT_MAX_BODY_BYTES, readJsonBody, refuseTooLarge, sendJson, sendJsonRpcError } from './http-util';
import type { Relay } from './relay';

/**
 * The local MCP endpoint's HTTP front door, bound to 127.0.0.1 on a fixed port:
 *   /mcp                 → the aggregator (all enabled servers, namespaced)
 *   /mcp/<server-id>/…   → the transparent relay to one server
 *   /mcp/only/<id>       → the aggregated pipeline carrying one server, unprefixed (diagnostics, conformance)
 *   /healthz             → `{"ok":true}` and nothing else (no token needed, nothing secret)
 *   /p/<profile>/…       → the same endpoints (and /api) of another identity profile (identities/)
 *   extra routes         → the control API and dashboard, added by the composition root
 * Every request passes the local-auth guard (Host, Origin, local token) first, and the IDE's Authorization header is
 * removed before any handler sees the request, so no code path can forward it upstream.
 *
 * Bad input never takes the broker down: every request runs inside its own catch, oversized bodies get 413, malformed
 * JSON gets a JSON-RPC parse error, and malformed HTTP is answered by the server-level 'clientError' handler.
 */

/** What the aggregated endpoint exposes to the front door (created by gateway/aggregate). */
export interface GatewayAggregator {
  /**
   * Handles one request to /mcp (or to an IDE's /ide/<ide>/mcp, with its `profile`); for POST the body was already
   * read and parsed (`parsedBody`).
   */
  handleRequest(req: IncomingMessage, res: ServerResponse, parsedBody?: unknown, profile?: IdeName): Promise<void>;
  /** Handles one request to /mcp/only/<server-id> (the diagnostic one-server endpoint); same body handling. */
  handleOnlyRequest?(serverId: string, req: IncomingMessage, res: ServerResponse, parsedBody?: unknown): Promise<void>;
}

/** The guard the front door runs (LocalAuth implements it). */
export interface GatewayRequestGuard {
  check(req: Pick<IncomingMessage, 'headers'>, context: RequestGuardContext): LocalAuthRejection | null;
  allowedOrigins(): readonly string[];
}

export interface GatewayRoute {
  /** Path prefix, e.g. '/api' (matches '/api' and '/api/…') or '/' (everything no other route takes). */
  prefix: string;
  auth: RouteAuth;
  handler(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

/** One identity profile's endpoints behind `/p/<name>/` (identities/profile-gateway.ts). */
export interface IdentityEndpoints {
  aggregator: GatewayAggregator;
  relay: Relay;
  /** Its control API, served at `/p/<name>/api/…` with the route auth of the default profile's `/api`. */
  control: GatewayRoute['handler'];
}

export interface GatewayServerOptions {
  /** gateway.port; 0 = any free port (tests). */
  port: number;
  /** Loopback only, by design; the option exists to make that visible at the call site. */
  host?: '127.0.0.1';
  localAuth: GatewayRequestGuard;
  aggregator: GatewayAggregator;
  relay: Relay;
  routes?: GatewayRoute[];
  /** Resolves an identity profile's endpoints, or rejects with a LanyardError (invalid or unknown name). */
  identities?: (name: string) => Promise<IdentityEndpoints>;
  maxBodyBytes?: number;
  log?: Logger;
}

export interface GatewayServer {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `http://127.0.0.1:<port>/mcp`, what IDE configs point at. */
  mcpUrl: string;
  close(): Promise<void>;
}

const MCP_METHODS = ['GET', 'POST', 'DELETE'];
/** Headers a browser page on an allowed origin may send and read (CORS), for the MCP endpoints. */
const CORS_ALLOW_HEADERS = 'Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name';
const CORS_EXPOSE_HEADERS = 'Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate';

type RouteMatch =
  | { kind: 'health' }
  | { kind: 'aggregate'; profile?: IdeName; only?: string }
  | { kind: 'relay'; serverId: string; subpath: string }
  | { kind: 'custom'; route: GatewayRoute }
  | { kind: 'identity'; name: string; rest: string; inner: RouteMatch }
  | { kind: 'not-found' };

/** Splits a request path into the endpoint it addresses (exported for tests). */
export function matchRoute(pathname: string, routes: readonly GatewayRoute[] = []): RouteMatch {
  if (pathname === '/healthz') return { kind: 'health' };
  // Another identity profile: the same endpoints under /p/<name>/, its control API included (the dashboard's switcher).
  const identity = splitIdentityPath(pathname);
  if (identity) {
    const inner = matchRoute(
      identity.rest,
      routes.filter((r) => r.prefix === '/api'),
    );
    const served = inner.kind === 'aggregate' || inner.kind === 'relay' || inner.kind === 'custom';
    return served ? { kind: 'identity', ...identity, inner } : { kind: 'not-found' };
  }
  if (pathname === '/mcp' || pathname === '/mcp/') return { kind: 'aggregate' };
  // An IDE's own endpoint (`lanyard connect` writes it): the aggregate, shaped by that IDE's profile.
  const ide = pathname.startsWith('/ide/') ? ideFromPath(pathname) : undefined;
  if (ide) return { kind: 'aggregate', profile: ide };
  if (pathname.startsWith('/mcp/only/')) {
    const id = pathname.slice('/mcp/only/'.length).replace(/\/$/, '');
    return SERVER_ID_PATTERN.test(id) ? { kind: 'aggregate', only: id } : { kind: 'not-found' };
  }
  if (pathname.startsWith('/mcp/')) {
    const rest = pathname.slice('/mcp/'.length);
    const slash = rest.indexOf('/');
    const serverId = slash < 0 ? rest : rest.slice(0, slash);
    const subpath = slash < 0 ? '' : rest.slice(slash);
    if (!SERVER_ID_PATTERN.test(serverId)) return { kind: 'not-found' };
    return { kind: 'relay', serverId, subpath: subpath === '/' ? '' : subpath };
  }
  let best: GatewayRoute | undefined;
  for (const route of routes) {
    const prefix = route.prefix.replace(/\/+$/, '');
    const hit = prefix === '' || pathname === prefix || pathname.startsWith(`${prefix}/`);
    if (hit && (!best || prefix.length > best.prefix.replace(/\/+$/, '').length)) best = route;
  }
  return best ? { kind: 'custom', route: best } : { kind: 'not-found' };
}

/** Removes a header from both the parsed and the raw header list (adapters that rebuild a Request read rawHeaders). */
function stripHeader(req: IncomingMessage, name: string): void {
  delete req.headers[name];
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  }
}

/**
 * Starts the gateway on 127.0.0.1. Rejects with PORT_IN_USE when the port is taken (another Lanyard, or another
 * program), with the fix in the error.
 */
export async function startGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const host = options.host ?? '127.0.0.1';
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = (options.log ?? silentLogger).child('gateway');
  const routes = options.routes ?? [];
  const sockets = new Set<Socket>();
  let port = options.port;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let pathname: string;
    let search: string;
    try {
      ({ pathname, search } = new URL(req.url ?? '/', 'http://127.0.0.1'));
    } catch {
      req.resume();
      sendJsonRpcError(res, 400, -32600, 'Malformed request URL.');
      return;
    }
    const method = req.method ?? 'GET';
    const outer = matchRoute(pathname, routes);
    const match = outer.kind === 'identity' ? outer.inner : outer;
    const auth: RouteAuth =
      match.kind === 'custom' ? match.route.auth : match.kind === 'health' || match.kind === 'not-found' ? 'none' : 'token';
    const origin = req.headers.origin;
    const preflight = method === 'OPTIONS' && origin !== undefined && req.headers['access-control-request-method'] !== undefined;

    const mcp = match.kind === 'aggregate' || match.kind === 'relay';
    const rejection = options.localAuth.check(req, { port, auth, preflight, mcp });
    if (rejection) {
      req.resume();
      log.info('request refused', { reason: rejection.reason, status: rejection.status, path: match.kind });
      sendJsonRpcError(
        res,
        rejection.status,
        -32001,
        rejection.message,
        {
          code: rejection.reason.startsWith('remote-') ? ErrorCodes.REMOTE_TOKEN_REFUSED : ErrorCodes.LOCAL_AUTH_FAILED,
          reason: rejection.reason,
        },
        rejection.headers,
      );
      return;
    }
    // The IDE's credential for Lanyard ends here: nothing past this point can forward it.
    stripHeader(req, 'authorization');
    // A paired remote device's request: what it causes (audit records, activity) names the device.
    enterRemoteCaller(req);

    // A page on an allowed origin (gateway.allowedOrigins) may call the MCP endpoints from a browser: CORS.
    const crossOrigin = origin !== undefined && options.localAuth.allowedOrigins().includes(origin);
    if (crossOrigin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS);
    }
    if (preflight && (match.kind === 'aggregate' || match.kind === 'relay')) {
      req.resume();
      res.writeHead(204, {
        'Access-Control-Allow-Methods': MCP_METHODS.join(', '),
        'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    if (preflight) {
      // A preflight carries no token, so it is answered here and goes no further: in particular not to an identity
      // profile's lookup (which would say which profiles exist, or start one) nor to a control handler.
      req.resume();
      sendJsonRpcError(res, 405, -32000, 'Cross-origin requests are allowed on the MCP endpoints only.', undefined, {
        Allow: MCP_METHODS.join(', '),
      });
      return;
    }

    let aggregator = options.aggregator;
    let relay = options.relay;
    let custom = match.kind === 'custom' ? match.route.handler : undefined;
    if (outer.kind === 'identity') {
      // Only after the guard: an unauthenticated caller learns nothing about which profiles exist.
      const endpoints = await resolveIdentity(outer.name, options.identities);
      if ('error' in endpoints) {
        req.resume();
        sendJsonRpcError(res, 404, -32601, endpoints.error.message, endpoints.error);
        return;
      }
      ({ aggregator, relay } = endpoints);
      custom = endpoints.control;
      // The profile's handlers see the path inside the profile (/mcp, /api/status), as the default profile's do.
      req.url = `${outer.rest}${search}`;
    }

    switch (match.kind) {
      case 'health':
        req.resume();
        if (method !== 'GET' && method !== 'HEAD') {
          sendJsonRpcError(res, 405, -32000, `Method ${method} is not allowed on /healthz.`, undefined, { Allow: 'GET, HEAD' });
          return;
        }
        sendJson(res, 200, { ok: true });
        return;
      case 'aggregate': {
        if (!MCP_METHODS.includes(method)) {
          req.resume();
          sendJsonRpcError(res, 405, -32000, `Method ${method} is not allowed on an MCP endpoint.`, undefined, {
            Allow: MCP_METHODS.join(', '),
          });
          return;
        }
        const only = match.only;
        const serve = (body?: unknown) =>
          only === undefined
            ? aggregator.handleRequest(req, res, body, match.profile)
            : aggregator.handleOnlyRequest
              ? aggregator.handleOnlyRequest(only, req, res, body)
              : Promise.resolve(sendJsonRpcError(res, 404, -32601, 'This gateway has no /mcp/only endpoint.'));
        if (method !== 'POST') {
          await serve();
          return;
        }
        let body: unknown;
        try {
          body = await readJsonBody(req, maxBodyBytes);
        } catch (e) {
          if (e instanceof BodyTooLargeError) refuseTooLarge(req, res, maxBodyBytes);
          else sendJsonRpcError(res, 400, -32700, 'Parse error: the request body is not valid JSON.');
          return;
        }
        await serve(body);
        return;
      }
      case 'relay':
        await relay.handleRequest(req, res, { serverId: match.serverId, subpath: match.subpath, search });
        return;
      case 'custom':
        await (custom ?? match.route.handler)(req, res);
        return;
      case 'identity':
        return;
      case 'not-found':
        req.resume();
        sendJsonRpcError(
          res,
          404,
          -32601,
          `Nothing at ${pathname.slice(0, 100)}. Lanyard serves MCP at /mcp (all servers) and /mcp/<server-id> (one server).`,
        );
        return;
    }
  };

  // requireHostHeader: false — a request without Host is refused by the guard (421, with the fix), not by Node's bare 400.
  const server: Server = createServer({ requireHostHeader: false }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      // One request failing must never affect the others (or the process).
      log.error('request handler failed', { error: e });
      if (!res.headersSent)
        sendJsonRpcError(res, 500, -32603, "Internal error in Lanyard's gateway. Run `lanyard doctor`; if it persists, report it.");
      else res.destroy();
    });
  });
  // Malformed HTTP (bad request line, oversized headers, garbage) never reaches the handler: answer and close.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    const body = JSON.stringify({
      jsonrpc: '2.0',
      error: { code: -32600, message: `Malformed HTTP request (${status.slice(4)}).` },
      id: null,
    });
    socket.end(
      `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
  // CONNECT bypasses the request handler; without a listener Node drops the connection unanswered. (An Upgrade
  // request without an 'upgrade' listener is served as an ordinary request, so none is added.)
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      error: { code: -32600, message: "CONNECT is not supported by Lanyard's local endpoint." },
      id: null,
    });
    socket.on('error', () => undefined);
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nAllow: GET, POST, DELETE\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(listenError(err, options.port));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options.port, host);
  });
  server.on('error', (e) => log.error('gateway server error', { error: e }));
  port = (server.address() as AddressInfo).port;
  log.info('gateway listening', { url: `http://${host}:${port}/mcp` });

  return {
    port,
    url: `http://${host}:${port}`,
    mcpUrl: `http://${host}:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        // Open SSE streams and keep-alive sockets would hold close() forever.
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** A profile's endpoints, or the error to answer with (the name's problem and its fix; never a stack). */
async function resolveIdentity(
  name: string,
  identities: GatewayServerOptions['identities'],
): Promise<IdentityEndpoints | { error: { code: ErrorInfo['code']; message: string; fix: string } }> {
  if (!identities)
    return {
      error: {
        code: ErrorCodes.IDENTITY_PROFILE_UNKNOWN,
        message: 'This endpoint serves no identity profiles.',
        fix: 'Use /mcp, or the endpoint of the Lanyard that holds the profile.',
      },
    };
  try {
    return await identities(name);
  } catch (e) {
    if (e instanceof LanyardError) return { error: { code: e.code, message: e.message, fix: e.fix } };
    throw e;
  }
}

function listenError(err: NodeJS.ErrnoException, port: number): Error {
  if (err.code === 'EADDRINUSE') {
    return new LanyardError(
      ErrorCodes.PORT_IN_USE,
      `Port ${port} on 127.0.0.1 is already in use, so Lanyard's local endpoint cannot start.`,
      "Another Lanyard is probably running (check the tray or `lanyard status`); otherwise another program uses the port: change gateway.port in Lanyard's settings.",
      { cause: err },
    );
  }
  if (err.code === 'EACCES') {
    return new LanyardError(
      ErrorCodes.PORT_IN_USE,
      `Lanyard may not listen on port ${port}.`,
      "Choose a port between 1024 and 65535 for gateway.port in Lanyard's settings.",
      { cause: err },
    );
  }
  return err;
}
