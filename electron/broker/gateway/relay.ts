import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, redactText } from '../errors';
import type { FetchLike } from '../util/http';
import { silentLogger, type Logger } from '../util/log';
import { BodyTooLargeError, DEFAULT_MAX_BODY_BYTES, refuseTooLarge, sendJsonRpcError } from './http-util';

/**
 * `/mcp/<server-id>`: a transparent per-server proxy. It renames nothing and interprets nothing: method, body and the
 * MCP headers go to the server's configured URL (subpath and query preserved), the response comes back chunk by chunk
 * (SSE included, nothing buffered), and the upstream's `Mcp-Session-Id` passes through unchanged in both directions —
 * every IDE session initializes its own upstream session, so two IDE sessions never share one.
 *
 * The only things it changes are credentials: the IDE's `Authorization` (the local token) and cookies never leave the
 * machine; the server's bearer token comes from the token service, which also re-mints once on 401 and steps up on
 * 403 insufficient_scope. Upstream `WWW-Authenticate` challenges are dropped so the IDE never starts its own OAuth
 * flow against Lanyard; token problems come back as JSON-RPC errors that say what to do.
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

/** Request headers an MCP Streamable HTTP exchange needs upstream; everything else (Authorization, Cookie, Origin, Host) stays here. */
const FORWARDED_REQUEST_HEADERS = new Set([
  'accept',
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
  'user-agent',
  'traceparent',
  'tracestate',
  'baggage',
]);

/** Response headers never passed back: hop-by-hop (RFC 9110 §7.6.1), the challenge, and what fetch already undid. */
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'www-authenticate',
  // The gateway answers for its own origin; a remote server cannot grant browsers access to 127.0.0.1.
  'alt-svc',
  'strict-transport-security',
]);

const RELAY_METHODS = ['GET', 'POST', 'DELETE'];

export function createRelay(options: RelayOptions): Relay {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const responseTimeoutMs = options.responseTimeoutMs ?? DEFAULT_RELAY_RESPONSE_TIMEOUT_MS;
  const log = (options.log ?? silentLogger).child('relay');

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
      if (method === 'POST') {
        const declared = Number(req.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBodyBytes) {
          refuseTooLarge(req, res, maxBodyBytes);
          return;
        }
        body = new ReplayableBody(req, maxBodyBytes);
      }

      const upstream = upstreamUrl(server.url, target);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || !forwardRequestHeader(name)) continue;
        headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }

      // The IDE going away (closed SSE stream, cancelled request) aborts the upstream request with it.
      const abort = new AbortController();
      const onClose = () => {
        if (!res.writableFinished) abort.abort();
      };
      res.on('close', onClose);

      // Each attempt (the token service retries once after a 401) gets the body afresh: what arrived so far is
      // replayed, the rest follows as it arrives. A body that is complete is sent whole, with a Content-Length.
      const attempt: FetchLike = options.fetch
        ? (input, init) => {
            const payload = body?.payload();
            return options.fetch!(input, { ...init, ...(payload !== undefined ? { body: payload, duplex: 'half' } : {}) } as RequestInit);
          }
        : (input, init) => nodeFetch(input, init, body);
      // Each attempt must answer (headers) within the deadline; the timer stops once it has, so streaming is not cut.
      let timedOut = false;
      const bounded: FetchLike = async (input, init) => {
        const deadline = new AbortController();
        const timer = setTimeout(() => {
          timedOut = true;
          deadline.abort();
        }, responseTimeoutMs);
        try {
          return await attempt(input, {
            ...init,
            signal: init?.signal ? AbortSignal.any([init.signal, deadline.signal]) : deadline.signal,
          });
        } finally {
          clearTimeout(timer);
        }
      };
      const started = performance.now();
      let response: Response;
      try {
        response = await options.tokens.authorizedFetch(server.id, bounded)(upstream, { method, headers, signal: abort.signal });
      } catch (e) {
        res.off('close', onClose);
        if (abort.signal.aborted) return;
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
        sendFailure(req, res, e, server, body);
        return;
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

      const nodeBody = nodeBodies.get(response);
      res.writeHead(response.status, responseHeaders(response.headers, !nodeBody));
      log.debug('relayed', { serverId: server.id, method, status: response.status, ms: Math.round(performance.now() - started) });
      // A POST whose SSE answer breaks before the server answered (it crashed or restarted): with no event ids the
      // IDE cannot resume, and a plain MCP client would wait for its own timeout. Each of its requests gets an error.
      const onBroken =
        method === 'POST' && isEventStream(response.headers)
          ? (sawEventId: boolean) => (sawEventId ? undefined : brokenStreamTail(body, server.id))
          : undefined;
      if (nodeBody) {
        const broken = await pipeNode(nodeBody, res, isEventStream(response.headers), onBroken);
        if (broken && !abort.signal.aborted) log.warn('upstream stream ended abnormally', { serverId: server.id });
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
      await pipeBody(response.body, res, abort.signal, onBroken ? watch : undefined).catch((e: unknown) => {
        if (!abort.signal.aborted) log.warn('upstream stream ended abnormally', { serverId: server.id, error: e });
        // The IDE must see the stream break (and may resume with Last-Event-ID), not a clean end.
        const tail = abort.signal.aborted ? undefined : onBroken?.(watch.sawEventId);
        if (tail && res.writable) res.end(tail);
        else res.destroy();
      });
      res.off('close', onClose);
    },
  };
}

function forwardRequestHeader(name: string): boolean {
  const n = name.toLowerCase();
  // Future MCP headers (2026 era: Mcp-Method, Mcp-Name, …) pass too; Authorization and Cookie never do.
  return FORWARDED_REQUEST_HEADERS.has(n) || n.startsWith('mcp-');
}

/** The server's URL with the relay subpath appended and the queries merged. */
export function upstreamUrl(serverUrl: string, target: Pick<RelayTarget, 'subpath' | 'search'>): string {
  const url = new URL(serverUrl);
  if (target.subpath) url.pathname = `${url.pathname.replace(/\/$/, '')}${target.subpath}`;
  if (target.search) {
    for (const [k, v] of new URLSearchParams(target.search)) url.searchParams.append(k, v);
  }
  return url.href;
}

/** The upstream's response headers as the IDE gets them; `decoded`: fetch already undid a Content-Encoding. */
function responseHeaders(upstream: Headers, decoded: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const encoded = upstream.has('content-encoding');
  for (const [name, value] of upstream) {
    if (DROPPED_RESPONSE_HEADERS.has(name) || name.startsWith('access-control-') || name === 'set-cookie') continue;
    if (decoded && (name === 'content-encoding' || (name === 'content-length' && encoded))) continue;
    out[name] = value;
  }
  const cookies = upstream.getSetCookie();
  if (cookies.length) out['set-cookie'] = cookies;
  return out;
}

function isEventStream(headers: Headers): boolean {
  return (headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream');
}

/** How long an SSE response may stay silent before its headers go out on their own (then they ride with the first event). */
const SSE_HEADER_FLUSH_MS = 10;

/**
 * Node stream to Node stream, as it arrives (no web-stream conversion on the hot path; plain pipe, because
 * stream.pipeline costs an AbortController per call). Resolves true when the upstream broke off mid-body: the IDE's
 * stream is then destroyed too, so it sees a break (and may resume with Last-Event-ID) rather than a clean end. An IDE
 * that leaves destroys the upstream response, which frees (or closes) its socket.
 *
 * Headers are written together with the first chunk — one write instead of two on every call; an SSE stream that has
 * nothing to say yet gets its headers alone after SSE_HEADER_FLUSH_MS so the IDE knows the stream is open.
 */
function pipeNode(
  body: IncomingMessage,
  res: ServerResponse,
  eventStream: boolean,
  onBroken?: (sawEventId: boolean) => string | undefined,
): Promise<boolean> {
  return new Promise((resolve) => {
    const flush = eventStream ? setTimeout(() => res.flushHeaders(), SSE_HEADER_FLUSH_MS) : undefined;
    body.once('data', () => clearTimeout(flush));
    const watch = { sawEventId: false };
    if (onBroken) body.on('data', (chunk: Buffer) => noteEventId(watch, chunk));
    const finish = (broken: boolean) => {
      clearTimeout(flush);
      body.off('close', onBodyClose);
      res.off('close', onResClose);
      resolve(broken);
    };
    const onBodyClose = () => {
      if (body.complete) return;
      const tail = onBroken?.(watch.sawEventId);
      if (tail && res.writable) res.end(tail);
      else res.destroy();
      finish(true);
    };
    const onResClose = () => {
      if (!body.complete) body.destroy();
      finish(false);
    };
    body.on('close', onBodyClose);
    body.on('error', () => undefined); // reported through 'close' with complete === false
    res.on('close', onResClose);
    body.pipe(res);
  });
}

/** Copies the upstream body to the IDE as it arrives, honouring backpressure; resolves at the end of the stream. */
async function pipeBody(
  body: ReadableStream<Uint8Array>,
  res: ServerResponse,
  signal: AbortSignal,
  watch?: { sawEventId: boolean },
): Promise<void> {
  const reader = body.getReader();
  const cancel = () => {
    void reader.cancel().catch(() => undefined);
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return;
      if (watch) noteEventId(watch, value);
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

/** An SSE `id:` field: the server supports resumption (the IDE may resume with Last-Event-ID). */
const SSE_EVENT_ID = /(?:^|[\r\n])id:/;

function noteEventId(watch: { sawEventId: boolean }, chunk: Uint8Array): void {
  if (!watch.sawEventId && SSE_EVENT_ID.test(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1')))
    watch.sawEventId = true;
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
  const message = `MCP server "${serverId}" closed the response stream before answering (did it restart?). Fix: retry; if it persists, check that the server is up (\`lanyard doctor\` checks every hop).`;
  return `\n\n${ids.map((id) => `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32000, message, data: { code: ErrorCodes.SERVER_UNREACHABLE, serverId } } })}\n\n`).join('')}`;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Turns a failure before the upstream answered into the HTTP/JSON-RPC error the IDE sees. */
function sendFailure(req: IncomingMessage, res: ServerResponse, e: unknown, server: RelayServer, body: ReplayableBody | undefined): void {
  const tooLarge = body?.error instanceof BodyTooLargeError ? body.error : e instanceof BodyTooLargeError ? e : undefined;
  if (tooLarge) {
    refuseTooLarge(req, res, tooLarge.limit);
    return;
  }
  req.resume();
  if (e instanceof LanyardError) {
    const status = e.code === ErrorCodes.SERVER_UNKNOWN ? 404 : e.code === ErrorCodes.SERVER_UNREACHABLE ? 502 : e.transient ? 503 : 401;
    sendJsonRpcError(
      res,
      status,
      status === 401 ? -32001 : -32000,
      `${e.message} Fix: ${e.fix}`,
      { code: e.code, serverId: server.id },
      status === 503 ? { 'Retry-After': '5' } : {},
    );
    return;
  }
  const reason = describeNetworkError(e);
  sendJsonRpcError(
    res,
    502,
    -32000,
    `MCP server "${server.id}" (${server.url}) could not be reached: ${reason}. Fix: check that the server is up and your network or VPN; \`lanyard doctor\` checks every hop.`,
    { code: ErrorCodes.SERVER_UNREACHABLE, serverId: server.id },
  );
}

function describeNetworkError(e: unknown): string {
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  return redactText(code ? `${code}` : message).slice(0, 200);
}

/** Keep-alive pools for upstream connections (one per protocol; sockets are reused across IDE sessions). */
const httpAgent = new HttpAgent({ keepAlive: true });
const httpsAgent = new HttpsAgent({ keepAlive: true });

/** Upstream response bodies handed over as Node streams, keyed by the body-less Response the token service saw. */
const nodeBodies = new WeakMap<Response, IncomingMessage>();

/**
 * The relay's default upstream fetch, on node:http(s): measurably lighter per request than fetch (no Request object,
 * no web streams), which matters on a hop every tools/call pays for.
 *
 * It speaks the FetchLike contract the token service needs, with one twist: a response the token service may act on
 * (401, 403) gets a real web body it can cancel; any other response is returned body-less, its Node stream kept in
 * `nodeBodies` for the relay to pipe straight to the IDE. No decompression happens, so the upstream's
 * Content-Encoding and Content-Length pass through as they are.
 */
function nodeFetch(input: string | URL, init: RequestInit | undefined, body: ReplayableBody | undefined): Promise<Response> {
  const url = typeof input === 'string' ? new URL(input) : input;
  const headers: OutgoingHttpHeaders = {};
  new Headers(init?.headers).forEach((value, name) => {
    headers[name] = value;
  });
  const complete = body?.completeBody();
  if (complete) headers['content-length'] = complete.length;
  return new Promise<Response>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      {
        method: init?.method ?? 'GET',
        headers,
        agent: url.protocol === 'https:' ? httpsAgent : httpAgent,
        ...(init?.signal ? { signal: init.signal } : {}),
      },
      (incoming) => {
        const status = incoming.statusCode ?? 502;
        const responseHeaders = new Headers();
        const raw = incoming.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i]!, raw[i + 1]!);
        if (status === 401 || status === 403) {
          resolve(new Response(Readable.toWeb(incoming) as ReadableStream<Uint8Array>, { status, headers: responseHeaders }));
          return;
        }
        const response = new Response(null, { status: status < 200 || status > 599 ? 502 : status, headers: responseHeaders });
        nodeBodies.set(response, incoming);
        resolve(response);
      },
    );
    request.on('error', reject);
    if (!body) request.end();
    else if (complete) request.end(complete);
    else
      body.pipeInto(request, (e) => {
        request.destroy(e);
        reject(e);
      });
  });
}

/**
 * A request body that can be sent more than once (the token service retries after a 401) without waiting for all of
 * it first: it records what arrives, and every `payload()` replays the record and then follows the live request.
 * Bounded by `limit`; past it the body fails with BodyTooLargeError and nothing more is kept.
 */
class ReplayableBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  error: Error | undefined;
  private readonly sinks = new Set<ReadableStreamDefaultController<Uint8Array>>();

  constructor(
    private readonly req: IncomingMessage,
    private readonly limit: number,
  ) {
    req.on('data', (chunk: Buffer) => {
      if (this.error) return;
      this.size += chunk.length;
      if (this.size > this.limit) {
        this.fail(new BodyTooLargeError(this.limit));
        return;
      }
      this.chunks.push(chunk);
      for (const sink of this.sinks) sink.enqueue(chunk);
    });
    req.on('end', () => {
      this.ended = true;
      for (const sink of this.sinks) sink.close();
      this.sinks.clear();
    });
    req.on('error', (e) => this.fail(e));
  }

  /** The whole body, if it has all arrived. */
  completeBody(): Buffer | undefined {
    if (this.error) throw this.error;
    return this.ended ? Buffer.concat(this.chunks, this.size) : undefined;
  }

  /** Writes the body into an upstream request: what arrived so far, then the rest as it arrives. */
  pipeInto(target: NodeJS.WritableStream, onError: (e: Error) => void): void {
    const stream = this.payload();
    if (Buffer.isBuffer(stream)) {
      target.end(stream);
      return;
    }
    Readable.fromWeb(stream as NodeReadableStream<Uint8Array>)
      .on('error', onError)
      .pipe(target);
  }

  /** The body for one attempt: a Buffer once complete, else a stream that replays and then follows. */
  payload(): Buffer | ReadableStream<Uint8Array> {
    if (this.error) throw this.error;
    if (this.ended) return Buffer.concat(this.chunks, this.size);
    let mine: ReadableStreamDefaultController<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        for (const chunk of this.chunks) controller.enqueue(chunk);
        if (this.ended) controller.close();
        else if (this.error) controller.error(this.error);
        else this.sinks.add((mine = controller));
      },
      cancel: () => {
        // This attempt gave up on the body (the upstream answered early); the recording continues for a retry.
        if (mine) this.sinks.delete(mine);
      },
    });
  }

  private fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    this.chunks.length = 0;
    // Stop reading a body that will not be used (a hostile client could otherwise stream forever).
    if (e instanceof BodyTooLargeError) this.req.pause();
    for (const sink of this.sinks) sink.error(e);
    this.sinks.clear();
  }
}
