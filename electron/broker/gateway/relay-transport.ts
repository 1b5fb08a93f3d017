import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type RequestOptions,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { UpstreamRoute } from '../net/network-stack';
import type { FetchLike } from '../util/http';
import { BodyTooLargeError } from './http-util';

/**
 * The relay's node:http transport: the upstream request (keep-alive agents, the body replayed for a retry), and the
 * response piped to the IDE as it arrives, with the side channels the relay watches (an SSE event id seen, a stream
 * broken before its end). What is relayed, and how failures are answered, is relay.ts's job.
 */

export function isEventStream(headers: Headers): boolean {
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
export function pipeNode(
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
export async function pipeBody(
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

/**
 * Keep-alive pools for every upstream connection Lanyard makes for MCP traffic (one per protocol; sockets are reused
 * across IDE sessions, the relay, `/mcp`'s raw calls and the SDK sessions behind it). LIFO scheduling keeps the
 * busiest sockets warm and lets the idle tail time out at the server instead of being reused just after it closed.
 */
const AGENT_OPTIONS = { keepAlive: true, scheduling: 'lifo' as const };
const httpAgent = new HttpAgent(AGENT_OPTIONS);
const httpsAgent = new HttpsAgent(AGENT_OPTIONS);

/**
 * The outbound network's choice per URL (electron/broker/net/): a node agent with the company CA, or a proxied sender.
 * Unset, or undefined for a URL: the agents above. Set by the broker for as long as its gateway runs.
 */
type UpstreamRouter = (url: URL) => UpstreamRoute | undefined;
let upstreamRouter: UpstreamRouter | undefined;

/** Installs the outbound network's agent selection; returns the function that removes it again. */
export function useUpstreamRouter(router: UpstreamRouter): () => void {
  upstreamRouter = router;
  return () => {
    if (upstreamRouter === router) upstreamRouter = undefined;
  };
}

/**
 * Aborts one upstream exchange (the IDE left, the deadline passed) without an AbortSignal per call: nodeFetch hands it
 * the request it sends, and abort() destroys that request, and with it a response still arriving, as a signal passed
 * to node:http would. A signal (for fetch, a proxied sender, or a web body's reader) is made only when one is asked for.
 * Creating a signal and node:http's listener on it was about 2 % of the relay's CPU per call (bench/results/evidence.md).
 */
export class UpstreamCancel {
  aborted = false;
  private request: ClientRequest | undefined;
  private controller: AbortController | undefined;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    // A finished request is marked destroyed when its socket goes back to the pool: destroy() leaves that socket alone.
    this.request?.destroy(abortError());
    this.controller?.abort();
  }

  /** An AbortSignal that fires with abort(), for what needs one; made on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** The request now in flight (each attempt sends its own). */
  attach(request: ClientRequest): void {
    this.request = request;
    if (this.aborted) request.destroy(abortError());
  }
}

/** What node:http reports when its signal aborts a request. */
function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** Where a request goes, as node:http takes it (what it would make of the URL itself: url.urlToHttpOptions). */
interface HttpTarget {
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  auth?: string;
}

/**
 * Parsed upstream URLs by their text: every call to a server asks for the same few (its MCP URL), and parsing one,
 * then having node:http turn it into options, was about 1 % of the relay's CPU per call. The URL objects are shared:
 * nothing on the request path changes them. Bounded; emptied when full.
 */
const targets = new Map<string, { url: URL; options: HttpTarget }>();
const MAX_TARGETS = 256;

function targetOf(input: string | URL): { url: URL; options: HttpTarget } {
  if (typeof input !== 'string') return { url: input, options: httpTarget(input) };
  let known = targets.get(input);
  if (!known) {
    const url = new URL(input);
    known = { url, options: httpTarget(url) };
    if (targets.size >= MAX_TARGETS) targets.clear();
    targets.set(input, known);
  }
  return known;
}

function httpTarget(url: URL): HttpTarget {
  const target: HttpTarget = {
    protocol: url.protocol,
    // node:http wants an IPv6 host without its brackets.
    hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    path: `${url.pathname}${url.search}`,
  };
  if (url.port !== '') target.port = Number(url.port);
  if (url.username || url.password) target.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return target;
}

/**
 * A response's headers read from node:http's raw list, with what the gateway and the token service use of Headers
 * (get, has, iteration, getSetCookie): a Map made on first read, instead of a Headers object and a validated append
 * per header on every call (with the Response around it, about 4 % of the relay's CPU per call:
 * bench/results/evidence.md). As Headers does, names are lowercase, repeated ones are joined with ", ", and iteration
 * is sorted by name with each Set-Cookie on its own. Read-only, as a Response's headers are.
 */
class RawResponseHeaders {
  private map: Map<string, string> | undefined;
  private cookies: string[] = [];

  constructor(private readonly raw: readonly string[]) {}

  private all(): Map<string, string> {
    if (this.map) return this.map;
    const map = new Map<string, string>();
    const raw = this.raw;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (name === 'set-cookie') this.cookies.push(value);
      const before = map.get(name);
      map.set(name, before === undefined ? value : `${before}, ${value}`);
    }
    this.map = map;
    return map;
  }

  get(name: string): string | null {
    return this.all().get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.all().has(name.toLowerCase());
  }

  getSetCookie(): string[] {
    this.all();
    return [...this.cookies];
  }

  *entries(): IterableIterator<[string, string]> {
    const map = this.all();
    for (const name of [...map.keys()].sort()) {
      if (name === 'set-cookie') for (const cookie of this.cookies) yield [name, cookie];
      else yield [name, map.get(name)!];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  forEach(callback: (value: string, name: string, parent: Headers) => void): void {
    for (const [name, value] of this.entries()) callback(value, name, this as unknown as Headers);
  }
}

/**
 * The Response nodeFetch answers with when the body stays a Node stream (nodeBodyOf): status and headers, no web body,
 * like `new Response(null, { status, headers })` was (its body methods read as empty), without undici's Response and
 * Headers construction per call.
 */
class NodeBodyResponse {
  readonly body = null;
  readonly bodyUsed = false;
  readonly redirected = false;
  readonly statusText = '';
  readonly type = 'default';
  readonly url = '';
  readonly headers: Headers;

  constructor(
    readonly status: number,
    readonly incoming: IncomingMessage,
  ) {
    this.headers = new RawResponseHeaders(incoming.rawHeaders) as unknown as Headers;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  text(): Promise<string> {
    return Promise.resolve('');
  }

  json(): Promise<unknown> {
    return Promise.reject(new SyntaxError('Unexpected end of JSON input'));
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(new ArrayBuffer(0));
  }

  bytes(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(0));
  }

  blob(): Promise<Blob> {
    return Promise.resolve(new Blob([]));
  }

  formData(): Promise<FormData> {
    return Promise.reject(new TypeError('The response has no form data.'));
  }

  clone(): Response {
    return new NodeBodyResponse(this.status, this.incoming) as unknown as Response;
  }
}

/** The Node stream nodeFetch kept for a body-less Response, if any. */
export function nodeBodyOf(response: Response): IncomingMessage | undefined {
  return response instanceof NodeBodyResponse ? response.incoming : undefined;
}

/**
 * The relay's default upstream fetch, on node:http(s): measurably lighter per request than fetch (no Request object,
 * no web streams), which matters on a hop every tools/call pays for.
 *
 * It speaks the FetchLike contract the token service needs, with one twist: a response the token service may act on
 * (401, 403) gets a real web body it can cancel; any other response is a body-less NodeBodyResponse whose Node stream
 * (nodeBodyOf) the relay pipes straight to the IDE. No decompression happens, so the upstream's
 * Content-Encoding and Content-Length pass through as they are.
 */
export function nodeFetch(
  input: string | URL,
  init: RequestInit | undefined,
  body: ReplayableBody | undefined,
  options: { webBody?: boolean; cancel?: UpstreamCancel } = {},
): Promise<Response> {
  const { url, options: target } = targetOf(input);
  const route = upstreamRouter?.(url);
  const cancel = options.cancel;
  if (route?.send) {
    const sent = cancel && !init?.signal ? { ...init, signal: cancel.signal } : init;
    return route.send(url, sent, body ? body.payload() : (plainBody(init?.body) ?? undefined));
  }
  const headers: OutgoingHttpHeaders = {};
  copyHeaders(init?.headers, headers);
  const complete = body ? body.completeBody() : plainBody(init?.body);
  if (complete) headers['content-length'] = complete.length;
  return new Promise<Response>((resolve, reject) => {
    // Field by field, not `{ ...target, method }`: on Node 20, properties added to a spread copy cost about a
    // microsecond each (V8 leaves the copy's map off its fast path).
    const requestOptions: RequestOptions = {
      protocol: target.protocol,
      hostname: target.hostname,
      path: target.path,
      method: init?.method ?? 'GET',
      headers,
      agent: route?.agent ?? (url.protocol === 'https:' ? httpsAgent : httpAgent),
    };
    if (target.port !== undefined) requestOptions.port = target.port;
    if (target.auth !== undefined) requestOptions.auth = target.auth;
    if (init?.signal) requestOptions.signal = init.signal;
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(requestOptions, (incoming) => {
      const status = incoming.statusCode ?? 502;
      if (options.webBody || status === 401 || status === 403) {
        const responseHeaders = new Headers();
        const raw = incoming.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i]!, raw[i + 1]!);
        const empty = status === 204 || status === 304 || init?.method === 'HEAD';
        if (empty) incoming.resume();
        const web = empty ? null : (Readable.toWeb(incoming) as ReadableStream<Uint8Array>);
        resolve(new Response(web, { status: status < 200 || status > 599 ? 502 : status, headers: responseHeaders }));
        return;
      }
      resolve(new NodeBodyResponse(status < 200 || status > 599 ? 502 : status, incoming) as unknown as Response);
    });
    request.on('error', reject);
    cancel?.attach(request);
    if (!body) request.end(complete);
    else if (complete) request.end(complete);
    else
      body.pipeInto(request, (e) => {
        request.destroy(e);
        reject(e);
      });
  });
}

/**
 * The upstream fetch of the SDK sessions behind `/mcp`: the same node:http(s) agents as the relay, with a web body on
 * every response (the SDK transports read `response.body`). Measured lighter per call than undici's fetch here, and it
 * leaves no abort listener behind on the transport's session-wide signal.
 */
export const nodeHttpFetch: FetchLike = (input, init) => nodeFetch(input, init, undefined, { webBody: true });

/**
 * The upstream fetch of `/mcp`'s raw calls: like the relay's, a 2xx body stays a Node stream (nodeBodyOf), read by the
 * caller without a web-stream conversion.
 */
export const nodeStreamFetch: FetchLike = (input, init) => nodeFetch(input, init, undefined);

/** Request headers in whatever form fetch accepts, copied into node:http's plain object (no Headers object on the way). */
function copyHeaders(from: RequestInit['headers'], to: OutgoingHttpHeaders): void {
  if (!from) return;
  if (from instanceof Headers || Array.isArray(from)) {
    for (const [name, value] of from as Iterable<[string, string]>) to[name.toLowerCase()] = value;
    return;
  }
  for (const name of Object.keys(from)) to[name.toLowerCase()] = (from as Record<string, string>)[name];
}

/** A body the caller passed in full (string or bytes); streams are not accepted here (the relay passes its own). */
function plainBody(body: RequestInit['body'] | undefined): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw new TypeError('nodeFetch: only string or byte bodies are supported');
}

/**
 * A request body that can be sent more than once (the token service retries after a 401) without waiting for all of
 * it first: it records what arrives, and every `payload()` replays the record and then follows the live request.
 * Bounded by `limit`; past it the body fails with BodyTooLargeError and nothing more is kept.
 */
export class ReplayableBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  /** The whole body once it has ended, joined once: the guard, the tool gate and the upstream request all read it. */
  private joined: Buffer | undefined;
  error: Error | undefined;
  private readonly sinks = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private readonly waiting: Array<(body: Buffer | undefined) => void> = [];

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
      this.settle();
    });
    req.on('error', (e) => this.fail(e));
  }

  /** The whole body, if it has all arrived. */
  completeBody(): Buffer | undefined {
    if (this.error) throw this.error;
    return this.ended ? this.whole() : undefined;
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
    if (this.ended) return this.whole();
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
    this.settle();
  }

  /** The whole body once it has arrived; undefined when it failed (too large, connection lost). */
  whenComplete(): Promise<Buffer | undefined> {
    if (this.error) return Promise.resolve(undefined);
    if (this.ended) return Promise.resolve(this.whole());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private settle(): void {
    const body = this.error ? undefined : this.whole();
    for (const resolve of this.waiting.splice(0)) resolve(body);
  }

  /** Only once the body has ended (or for what arrived before an error, which nobody reads). */
  private whole(): Buffer {
    if (!this.ended) return Buffer.concat(this.chunks, this.size);
    return (this.joined ??= this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size));
  }
}
