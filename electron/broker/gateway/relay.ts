import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes, isNetworkErrorCode, type ErrorInfo } from '../../../shared/errors';
import { LanyardError, redactText } from '../errors';
import type { CallGuard } from '../governance/call-guard';
import { guardRelayed, outcomeOf, RelayClients, relayOutcome, type RelayGuarding } from '../governance/relay-guard';
import type { FetchLike } from '../util/http';
import { silentLogger, type Logger } from '../util/log';
import { classifyNetworkError } from '../util/network-errors';
import {
  BodyTooLargeError,
  DEFAULT_MAX_BODY_BYTES,
  jsonRpcErrorFor,
  refuseTooLarge,
  sendJson,
  sendJsonRpcError,
  toolErrorText,
} from './http-util';
import { forwardRequestHeader, relayedResponseHeaders } from './relay-headers';
import type { RelayToolGate } from '../governance/pins/relay-gate';
import { isEventStream, nodeBodyOf, nodeFetch, pipeBody, pipeNode, ReplayableBody, UpstreamCancel } from './relay-transport';

/**
 * `/mcp/<server-id>`: a transparent per-server proxy. It renames nothing and interprets nothing: method, body and the
 * MCP headers go to the server's configured URL (subpath and query preserved), the response comes back chunk by chunk
 * (SSE included, nothing buffered), and the upstream's `Mcp-Session-Id` passes through unchanged in both directions —
 * every IDE session initializes its own upstream session, so two IDE sessions never share one.
 *
 * What it changes: credentials and browser state. The IDE's `Authorization` (the local token) and cookies never leave
 * the machine; the server's bearer token comes from the token service, which also re-mints once on 401 and steps up
 * on 403 insufficient_scope. Headers cross in both directions only through the allow-lists in relay-headers.ts: no
 * upstream `WWW-Authenticate` (the IDE must never start its own OAuth flow against Lanyard), no `Set-Cookie` or other
 * header a client would keep for 127.0.0.1. When Lanyard cannot get a token, every JSON-RPC request in the body gets
 * an answer the IDE shows (the message and the fix) instead of an HTTP 401 that SDK clients reduce to "Unauthorized".
 *
 * The node:http transport and the streaming to the IDE are in relay-transport.ts.
 */

/** What the relay needs to know about a configured server. */
export interface RelayServer {
  id: string;
  url: string;
  enabled?: boolean;
}

/** The part of the TokenService the relay uses (so tests can pass a fake). */
export interface RelayTokenSource {
  authorizedFetch(serverId: string, base?: FetchLike): FetchLike;
}

export interface RelayOptions {
  getServer(id: string): RelayServer | undefined;
  tokens: RelayTokenSource;
  /**
   * The fetch used for upstream calls (before the token service wraps it). Default: node:http(s) with keep-alive,
   * whose response bodies are piped to the IDE as Node streams (see nodeFetch).
   */
  fetch?: FetchLike;
  maxBodyBytes?: number;
  /**
   * How long one upstream attempt may take to answer with its response headers (default 120 s). Streaming after
   * that is not bounded (an SSE stream may rightly stay quiet); a server that accepts the request and never answers
   * gets a 504 instead of holding the IDE's request and an upstream socket forever.
   */
  responseTimeoutMs?: number;
  log?: Logger;
  /** Governance: each JSON-RPC request of a POST is admitted before it leaves and settled when answered. */
  guard?: CallGuard | undefined;
  /** Tool pinning: calls to quarantined tools are answered here and tools/list answers are filtered (governance/pins/relay-gate.ts). */
  toolGate?: RelayToolGate;
}

export const DEFAULT_RELAY_RESPONSE_TIMEOUT_MS = 120_000;

/** `/mcp/<serverId><subpath><search>` as parsed by the HTTP server. */
export interface RelayTarget {
  serverId: string;
  /** '' or a path starting with '/', already normalised (no dot segments). */
  subpath: string;
  /** '' or '?…'. */
  search: string;
}

export interface Relay {
  handleRequest(req: IncomingMessage, res: ServerResponse, target: RelayTarget): Promise<void>;
}

const RELAY_METHODS = ['GET', 'POST', 'DELETE'];

/**
 * A POST that declares at most this many bytes is forwarded once it has all arrived (it comes with its headers, in the
 * same packet or the next): then the upstream request goes out in one write with a Content-Length. Streaming it
 * while it arrives costs a web stream and a chunked upload per call (two or three socket writes instead of one, and
 * chunked parsing upstream), which made the relay the slowest path (bench). Larger or unsized bodies still stream.
 */
const WHOLE_BODY_BYTES = 64 * 1024;

export function createRelay(options: RelayOptions): Relay {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const responseTimeoutMs = options.responseTimeoutMs ?? DEFAULT_RELAY_RESPONSE_TIMEOUT_MS;
  const log = (options.log ?? silentLogger).child('relay');
  const clients = new RelayClients();

  return {
    async handleRequest(req, res, target) {
      const server = options.getServer(target.serverId);
      if (!server || server.enabled === false) {
        req.resume();
        const message = !server
          ? `No MCP server "${target.serverId}" is configured in Lanyard. Fix: run \`lanyard servers\` to see the ids, or use http://127.0.0.1:<port>/mcp for all servers.`
          : `MCP server "${target.serverId}" is disabled in Lanyard. Fix: enable it in the dashboard or with \`lanyard servers\`.`;
        sendJsonRpcError(res, 404, -32000, message, { code: ErrorCodes.SERVER_UNKNOWN, serverId: target.serverId });
        return;
      }
      const method = req.method ?? 'GET';
      if (!RELAY_METHODS.includes(method)) {
        req.resume();
        sendJsonRpcError(res, 405, -32000, `Method ${method} is not allowed on an MCP endpoint.`, undefined, {
          Allow: RELAY_METHODS.join(', '),
        });
        return;
      }

      let body: ReplayableBody | undefined;
      let smallBody = false;
      if (method === 'POST') {
        const declared = Number(req.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBodyBytes) {
          refuseTooLarge(req, res, maxBodyBytes);
          return;
        }
        body = new ReplayableBody(req, maxBodyBytes);
        smallBody = Number.isFinite(declared) && declared <= WHOLE_BODY_BYTES;
      }

      // With a guard, the body is read whole first: its requests are admitted (and scanned) before any byte leaves.
      let guarded: RelayGuarding | undefined;
      if (options.guard && body) {
        try {
          guarded = await guardRelayed(options.guard, clients, await body.whenComplete(), req, server, `/mcp/${server.id}`);
        } catch (e) {
          await sendFailure(req, res, e, server, body);
          return;
        }
      }
      const upstream = upstreamUrl(server.url, target);
      // A plain object (Node's header names are lowercase already): no Headers object per relayed request.
      const headers: Record<string, string> = {};
      for (const name of Object.keys(req.headers)) {
        const value = req.headers[name];
        if (value === undefined || !forwardRequestHeader(name)) continue;
        headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      // Tool pinning: a call to a quarantined tool is answered here; a tools/list answer is filtered before the IDE sees it.
      const gated = body && options.toolGate ? options.toolGate.inspect(server.id, await body.whenComplete()) : undefined;
      if (gated?.answer !== undefined) {
        sendJson(res, 200, gated.answer);
        return;
      }
      if (gated?.listIds) delete headers['accept-encoding'];

      // The IDE going away (closed SSE stream, cancelled request) aborts the upstream request with it.
      const cancel = new UpstreamCancel();
      const onClose = () => {
        if (!res.writableFinished) cancel.abort();
      };
      res.on('close', onClose);

      // Each attempt (the token service retries once after a 401) gets the body afresh: what arrived so far is
      // replayed, the rest follows as it arrives. A body that is complete is sent whole, with a Content-Length.
      const attempt: FetchLike = options.fetch
        ? (input, init) => {
            const payload = body?.payload();
            return options.fetch!(input, {
              ...init,
              signal: cancel.signal,
              ...(payload !== undefined ? { body: payload, duplex: 'half' } : {}),
            } as RequestInit);
          }
        : smallBody
          ? (input, init) => body!.whenComplete().then(() => nodeFetch(input, init, body, { cancel }))
          : (input, init) => nodeFetch(input, init, body, { cancel });
      // Each attempt must answer (headers) within the deadline; the timer stops once it has, so streaming is not cut.
      // A late attempt aborts the whole exchange (it is answered with a 504).
      let timedOut = false;
      const bounded: FetchLike = async (input, init) => {
        const timer = setTimeout(() => {
          timedOut = true;
          cancel.abort();
        }, responseTimeoutMs);
        try {
          return await attempt(input, init);
        } finally {
          clearTimeout(timer);
        }
      };
      const started = performance.now();
      let response: Response;
      try {
        response = await options.tokens.authorizedFetch(server.id, bounded)(upstream, { method, headers });
      } catch (e) {
        res.off('close', onClose);
        guarded?.settle(
          timedOut
            ? { kind: 'error', code: ErrorCodes.SERVER_UNREACHABLE }
            : cancel.aborted
              ? { kind: 'error', code: 'cancelled' }
              : outcomeOf(e),
        );
        if (cancel.aborted && !timedOut) return;
        if (timedOut) {
          req.resume();
          log.warn('upstream did not answer in time', { serverId: server.id, method, timeoutMs: responseTimeoutMs });
          sendJsonRpcError(
            res,
            504,
            -32000,
            `MCP server "${server.id}" did not answer within ${responseTimeoutMs >= 1_000 ? `${Math.round(responseTimeoutMs / 1_000)} s` : `${responseTimeoutMs} ms`}. Fix: try again; if it persists, check that the server is up (\`lanyard doctor\` checks every hop).`,
            { code: ErrorCodes.SERVER_UNREACHABLE, serverId: server.id },
          );
          return;
        }
        await sendFailure(req, res, e, server, body);
        return;
      }

      if (guarded) {
        clients.remember(response.headers.get('mcp-session-id'), guarded.initializing, req);
        guarded.settle(response.status === 401 ? { kind: 'error', code: ErrorCodes.AS_GRANT_REJECTED } : relayOutcome(response.status));
      }
      if (response.status === 401) {
        // Still 401 with a freshly minted token: the server does not accept what its own AS issued for Lanyard.
        await response.body?.cancel().catch(() => undefined);
        res.off('close', onClose);
        sendJsonRpcError(
          res,
          401,
          -32001,
          `MCP server "${server.id}" refused the access token Lanyard obtained for you (HTTP 401, even after getting a new one). Fix: run \`lanyard doctor\`; if it persists, ask your IdP admin to check this server's resource connection.`,
          { code: ErrorCodes.AS_GRANT_REJECTED, serverId: server.id },
        );
        return;
      }

      if (gated?.listIds && response.ok) {
        res.off('close', onClose);
        await options.toolGate!.sendFiltered(server.id, response, res, gated.listIds);
        return;
      }
      const nodeBody = nodeBodyOf(response);
      res.writeHead(response.status, relayedResponseHeaders(response.headers, !nodeBody));
      log.debug('relayed', { serverId: server.id, method, status: response.status, ms: Math.round(performance.now() - started) });
      // A POST whose SSE answer breaks before the server answered (it crashed or restarted): with no event ids the
      // IDE cannot resume, and a plain MCP client would wait for its own timeout. Each of its requests gets an error.
      const onBroken =
        method === 'POST' && isEventStream(response.headers)
          ? (sawEventId: boolean) => (sawEventId ? undefined : brokenStreamTail(body, server.id))
          : undefined;
      if (nodeBody) {
        const broken = await pipeNode(nodeBody, res, isEventStream(response.headers), onBroken);
        if (broken && !cancel.aborted) log.warn('upstream stream ended abnormally', { serverId: server.id });
        res.off('close', onClose);
        return;
      }
      if (!response.body) {
        res.end();
        res.off('close', onClose);
        return;
      }
      // SSE: the headers go out now, before the first event (a priming event may take a while).
      res.flushHeaders();
      const watch = { sawEventId: false };
      await pipeBody(response.body, res, cancel.signal, onBroken ? watch : undefined).catch((e: unknown) => {
        if (!cancel.aborted) log.warn('upstream stream ended abnormally', { serverId: server.id, error: e });
        // The IDE must see the stream break (and may resume with Last-Event-ID), not a clean end.
        const tail = cancel.aborted ? undefined : onBroken?.(watch.sawEventId);
        if (tail && res.writable) res.end(tail);
        else res.destroy();
      });
      res.off('close', onClose);
    },
  };
}

/** Server URLs as the relay sends them (normalised by URL), for the calls with no subpath or query: nearly all. */
const plainUpstreams = new Map<string, string>();

/** The server's URL with the relay subpath appended and the queries merged. */
export function upstreamUrl(serverUrl: string, target: Pick<RelayTarget, 'subpath' | 'search'>): string {
  if (!target.subpath && !target.search) {
    let href = plainUpstreams.get(serverUrl);
    if (href === undefined) {
      href = new URL(serverUrl).href;
      if (plainUpstreams.size >= 256) plainUpstreams.clear();
      plainUpstreams.set(serverUrl, href);
    }
    return href;
  }
  const url = new URL(serverUrl);
  if (target.subpath) url.pathname = `${url.pathname.replace(/\/$/, '')}${target.subpath}`;
  if (target.search) {
    for (const [k, v] of new URLSearchParams(target.search)) url.searchParams.append(k, v);
  }
  return url.href;
}

/**
 * The end of a POST's SSE stream whose upstream broke off before answering: one JSON-RPC error event per request in
 * the body (a blank line first, to terminate any event the break cut in half). Undefined when there is nothing to
 * answer.
 */
function brokenStreamTail(body: ReplayableBody | undefined, serverId: string): string | undefined {
  let parsed: unknown;
  try {
    const raw = body?.completeBody();
    if (!raw) return undefined;
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  const ids: Array<string | number> = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    const msg = m as { id?: unknown; method?: unknown } | null;
    if (typeof msg?.method === 'string' && (typeof msg.id === 'string' || typeof msg.id === 'number')) ids.push(msg.id);
  }
  if (!ids.length) return undefined;
  const error = jsonRpcErrorFor(
    {
      code: ErrorCodes.SERVER_UNREACHABLE,
      message: `MCP server "${serverId}" closed the response stream before answering (did it restart?).`,
      fix: 'Retry; if it persists, check that the server is up (`lanyard doctor` checks every hop).',
      serverId,
    },
    -32000,
  );
  return `\n\n${ids.map((id) => `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, error })}\n\n`).join('')}`;
}

/** Turns a failure before the upstream answered into the HTTP/JSON-RPC error the IDE sees. */
async function sendFailure(
  req: IncomingMessage,
  res: ServerResponse,
  e: unknown,
  server: RelayServer,
  body: ReplayableBody | undefined,
): Promise<void> {
  const tooLarge = body?.error instanceof BodyTooLargeError ? body.error : e instanceof BodyTooLargeError ? e : undefined;
  if (tooLarge) {
    refuseTooLarge(req, res, tooLarge.limit);
    return;
  }
  req.resume();
  if (e instanceof LanyardError) {
    const info = { code: e.code, message: e.message, fix: e.fix, serverId: server.id };
    // Lanyard could not get a token (not signed in, consent missing, the AS refused the grant, …): the IDE's own
    // credential is fine, so this is no HTTP 401 for it. SDK clients drop the body of a 401 (with an auth provider
    // they report a bare "Unauthorized"; without one, the raw JSON): each request gets its answer instead.
    const answer = body ? answerRequests(await body.whenComplete(), info) : undefined;
    if (body?.error instanceof BodyTooLargeError) {
      refuseTooLarge(req, res, body.error.limit);
      return;
    }
    if (answer) {
      sendJson(res, 200, answer);
      return;
    }
    // The network failing on the way (an untrusted certificate, the proxy, its PAC file) is no credential problem: 502.
    const onTheWay = e.code === ErrorCodes.SERVER_UNREACHABLE || (!e.transient && isNetworkErrorCode(e.code));
    const status = e.code === ErrorCodes.SERVER_UNKNOWN ? 404 : onTheWay ? 502 : e.transient ? 503 : 401;
    sendJsonRpcError(
      res,
      status,
      status === 401 ? -32001 : -32000,
      `${e.message} Fix: ${e.fix}`,
      { code: e.code, fix: e.fix, serverId: server.id },
      status === 503 ? { 'Retry-After': '5' } : {},
    );
    return;
  }
  const { code, message, data } = jsonRpcErrorFor(
    {
      code: ErrorCodes.SERVER_UNREACHABLE,
      message: `MCP server "${server.id}" (${server.url}) could not be reached: ${unreachableReason(e)}.`,
      fix: 'Check that the server is up and your network or VPN; `lanyard doctor` checks every hop.',
      serverId: server.id,
    },
    -32000,
  );
  sendJsonRpcError(res, 502, code, message, data);
}

/**
 * Why the upstream gave no answer, for the 502 message: the system code when there is one ("ECONNREFUSED", the
 * relay's wording since it first shipped), else the shared summary, else (not a network failure at all) the error's
 * own message, redacted and cut short.
 */
function unreachableReason(e: unknown): string {
  const failure = classifyNetworkError(e);
  if (failure) return failure.code ?? failure.summary;
  return redactText(e instanceof Error ? e.message : String(e)).slice(0, 200);
}

/**
 * The answer to every JSON-RPC request in a POST body that Lanyard could not forward, in the form IDEs show: a tool
 * result with isError for tools/call (what /mcp answers too), a JSON-RPC error carrying the message and the fix for
 * anything else. Undefined when the body holds no request (only notifications or responses: nothing to answer).
 */
function answerRequests(raw: Buffer | undefined, info: ErrorInfo): unknown {
  let parsed: unknown;
  try {
    if (!raw) return undefined;
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  const answers: unknown[] = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    const msg = m as { id?: unknown; method?: unknown } | null;
    if (typeof msg?.method !== 'string' || (typeof msg.id !== 'string' && typeof msg.id !== 'number')) continue;
    answers.push(
      msg.method === 'tools/call'
        ? { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: toolErrorText(info) }], isError: true } }
        : { jsonrpc: '2.0', id: msg.id, error: jsonRpcErrorFor(info) },
    );
  }
  if (!answers.length) return undefined;
  return Array.isArray(parsed) ? answers : answers[0];
}
