import { Agent, request, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { readRuntimeFile, type RuntimeInfo } from '../../broker/gateway/runtime-file';
import { BridgeError } from './find-broker';
import { requestIdOf, type Envelope, type RequestId } from './line-guard';
import { ModernHeaders } from './modern-headers';
import { SseReader } from './sse';

/** A JSON-RPC error object, as written to the IDE when the bridge answers a request itself. */
export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

/** How one POST ended. `gone`: the broker never processed it (session forgotten, connection refused): safe to resend. */
type Outcome = { kind: 'done' } | { kind: 'gone'; reason: string } | { kind: 'failed'; error: RpcError };

export interface BrokerLinkOptions {
  home: string;
  /** `/mcp`, or `/mcp/<id>` with --server. */
  path: string;
  broker: RuntimeInfo;
  /** One JSON-RPC message (a line without its newline) for the IDE. */
  write(line: string): void;
  say(text: string): void;
  /** The broker again after it went away: waits for a restarting one, or starts one. */
  findAgain(): Promise<RuntimeInfo>;
  /**
   * `lanyard stdio --remote`: the laptop's broker through a forwarded port (remote-link.ts). Requests go to `host`,
   * addressed to `hostHeader` (the laptop's loopback name and port), and a refused token is looked up again in the
   * remote credentials file rather than the runtime file.
   */
  remote?: RemoteTarget;
}

/** Where a remote bridge connects, and how it reads its token again. */
export interface RemoteTarget {
  host: string;
  hostHeader: string;
  /** The stored remote token now (a new pairing replaces it). */
  token(): Promise<string | undefined>;
  /** The reason a request did not reach the laptop, for the IDE. */
  unreachable(code: string): string;
}

/** How long the IDE's requests still in flight get to finish once stdin closed. */
const DRAIN_MS = 2_000;
/** Bound on an error body read to explain a refused request. */
const MAX_ERROR_BODY = 64 * 1024;
/** A standalone stream the broker ended is opened again after this long. */
const LISTEN_RETRY_MS = 1_000;
/**
 * A request's stream the broker ended before the answer (the server behind it asked its client to poll) is resumed
 * with GET and Last-Event-ID after the stream's `retry` (at most this long), up to this many times in a row.
 */
const MAX_RESUME_DELAY_MS = 5_000;
const MAX_RESUMPTIONS = 5;

/**
 * The broker side of `lanyard stdio`: the IDE's lines go out as bytes — one POST each, concurrently, over keep-alive
 * connections — and every message of the answers (a JSON body, or an SSE stream of progress, server→client requests
 * and the response) is written back as a line as soon as it arrives. Nothing is parsed on the way but what the
 * Streamable HTTP transport needs (https://modelcontextprotocol.io/specification/2025-11-25/basic/transports): the
 * session id header, and the protocol version from the answer to initialize, sent back on every later request.
 * After `notifications/initialized` a GET stream carries what the broker sends outside any request.
 *
 * The link, not the IDE, owns the HTTP session. When the broker restarts (tray app or `lanyard serve`) it forgets
 * every session and answers the old id with 404 (or, on another port, nothing at all). The link then opens a new
 * session on its own — replaying the IDE's initialize (same capabilities, same client info) and its
 * notifications/initialized under ids of its own, whose answers the IDE never sees — and sends the message that failed
 * again, so the IDE carries on as if nothing happened. Only messages the broker never processed are sent again (404,
 * or a refused connection), so a tool call is never made twice.
 */
export class BrokerLink {
  private port: number;
  private token: string;
  private agent = new Agent({ keepAlive: true });
  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  /**
   * The IDE's initialize request the broker accepted, replayed when the broker restarted and forgot the session. Only
   * an accepted one: a later initialize the broker refused (an IDE may send anything) must not replace it.
   */
  private initialize: Envelope | undefined;
  private initialized = false;
  /** Settles once the answer to initialize has begun (its session id is known): later messages wait for it. */
  private opening: Promise<void> | undefined;
  private reconnecting: Promise<void> | undefined;
  /** The last reconnection failed: the next message tries again rather than using a dead session. */
  private broken = false;
  private generation = 0;
  private ownSeq = 0;
  private closing = false;
  private listener: ClientRequest | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  /** The HTTP headers of 2026-07-28 messages (modern-headers.ts). */
  private readonly modern = new ModernHeaders();

  constructor(private readonly options: BrokerLinkOptions) {
    this.port = options.broker.port;
    this.token = options.broker.token;
  }

  /** Forwards one message from the IDE; any failure is answered to the IDE (requests) or said on stderr. */
  send(line: string, message: Envelope): void {
    const job = this.forward(line, message).catch((e: unknown) => this.options.say(`internal error: ${errorText(e)}`));
    this.inFlight.add(job);
    void job.finally(() => this.inFlight.delete(job));
  }

  /** Stdin closed: lets requests in flight finish (briefly), ends the server-side session, closes the connections. */
  async close(): Promise<void> {
    if (this.inFlight.size > 0) await Promise.race([Promise.allSettled([...this.inFlight]), delay(DRAIN_MS)]);
    this.closing = true;
    this.stopListening();
    if (this.sessionId) {
      // Free the session at once rather than leaving it to time out; bounded so exit stays prompt.
      await Promise.race([this.exchange('DELETE').catch(() => undefined), delay(1_000)]);
    }
    this.agent.destroy();
  }

  private async forward(line: string, message: Envelope, resent = false): Promise<void> {
    const id = requestIdOf(message);
    const method = message.method;
    const isInitialize = method === 'initialize' && id !== undefined;
    if (!resent && method === 'notifications/initialized') this.initialized = true;
    while (this.reconnecting) await this.reconnecting.catch(() => undefined);
    if (!isInitialize && this.opening) await this.opening;
    let outcome: Outcome;
    if (this.broken && !isInitialize) {
      outcome = await this.reconnect(this.generation).then(
        () => ({ kind: 'done' }) as Outcome,
        (e: unknown) => ({ kind: 'failed', error: this.unreachableError(`Lanyard broker: ${errorText(e)}`) }) as Outcome,
      );
      if (outcome.kind === 'failed') return this.fail(id, outcome.error);
    }
    const sentOn = this.generation;
    let opened: (() => void) | undefined;
    if (isInitialize) this.opening = new Promise((resolve) => (opened = resolve));
    try {
      outcome = await this.post(line, {
        id,
        isInitialize,
        headers: this.modern.headersFor(message),
        onHeaders: opened,
        onAccepted: () => (this.initialize = message),
        deliver: (data) => this.deliver(data),
      });
    } finally {
      opened?.();
    }
    if (outcome.kind === 'done') {
      if (method === 'notifications/initialized') this.listen();
      return;
    }
    if (outcome.kind === 'gone' && !resent && !isInitialize && this.initialize) {
      try {
        await this.reconnect(sentOn);
        return await this.forward(line, message, true);
      } catch (e) {
        const text = `the Lanyard broker went away and the bridge could not reconnect: ${errorText(e)}`;
        this.options.say(text);
        outcome = { kind: 'failed', error: this.unreachableError(`Lanyard broker: ${text}`) };
      }
    }
    if (outcome.kind === 'gone') outcome = { kind: 'failed', error: this.unreachableError(`Lanyard broker: ${outcome.reason}`) };
    this.fail(id, outcome.error);
  }

  /** The broker did not get the request; a remote bridge says it is the laptop that is unreachable (`remote_unreachable`). */
  private unreachableError(message: string): RpcError {
    return { code: -32000, message, ...(this.options.remote ? { data: { code: 'remote_unreachable' } } : {}) };
  }

  /** The bridge speaks for itself: the error a request gets when the broker did not answer it. */
  private fail(id: RequestId | undefined, error: RpcError): void {
    if (id === undefined) {
      this.options.say(`could not deliver a message to the broker: ${error.message}`);
      return;
    }
    this.options.write(JSON.stringify({ jsonrpc: '2.0', id, error }));
  }

  /**
   * One message of an answer, to the IDE as one line. A message is never encoded again as a whole: JSON.stringify
   * recurses once per level of nesting, so a deeply nested answer (which JSON.parse, being iterative, reads fine) would
   * throw "Maximum call stack size exceeded" out of a socket event and take the bridge down.
   */
  private deliver(data: string): void {
    // JSON.stringify never writes a raw newline; a server that did (pretty-printed, or multi-line SSE data) is re-framed.
    if (data.includes('\n') || data.startsWith('[')) {
      let value: unknown;
      try {
        value = JSON.parse(data);
      } catch {
        // Written as is it would break the line framing; the request it answered gets no answer, so say why.
        this.options.say('the broker sent a message that is not JSON; it was dropped.');
        return;
      }
      // Outside a string a raw line break is only whitespace (inside one, JSON escapes it): the same message, on one line.
      if (!Array.isArray(value)) return this.options.write(data.replace(/[\r\n]+/g, ' '));
      // A batch is split into its messages, each encoded on its own (the only re-encoding left, so it is guarded).
      for (const m of value) {
        const line = encode(m);
        if (line === undefined) this.options.say('the broker sent a message nested too deeply to pass on; it was dropped.');
        else this.options.write(line);
      }
      return;
    }
    this.options.write(data);
  }

  /**
   * POSTs one message and hands each message of the answer to `deliver` as it arrives. A 401 re-reads the runtime
   * file: when the local token was rotated meanwhile, the message is sent once more with the new one.
   */
  private post(
    line: string,
    how: {
      id: RequestId | undefined;
      isInitialize: boolean;
      headers?: Record<string, string> | undefined;
      onHeaders?: (() => void) | undefined;
      onAccepted?: (() => void) | undefined;
      deliver: (data: string) => void;
    },
  ): Promise<Outcome> {
    const body = Buffer.from(line);
    return new Promise<Outcome>((resolve) => {
      const attempt = (tokenRetry: boolean, socketRetry: boolean) => {
        let answered = false;
        const req = this.exchange('POST', body, how.headers, (res) => {
          answered = true;
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            void readBody(res).then(async (text) => {
              if (status === 401 && tokenRetry && (await this.tokenRotated())) return attempt(false, socketRetry);
              // A session the broker no longer knows: it restarted.
              if (status === 404 && this.sessionId && !how.isInitialize) return resolve({ kind: 'gone', reason: 'session not found' });
              resolve({ kind: 'failed', error: errorFromBody(text, status, res.statusMessage) });
            });
            return;
          }
          if (how.isInitialize) {
            const sid = res.headers['mcp-session-id'];
            this.sessionId = typeof sid === 'string' ? sid : undefined;
          }
          how.onHeaders?.();
          resolve(this.readAnswer(res, how));
        });
        req.on('error', (e: NodeJS.ErrnoException) => {
          if (answered) return;
          // A kept-alive connection the broker closed while idle: the message never arrived; send it again once.
          if (socketRetry && req.reusedSocket && e.code === 'ECONNRESET') return attempt(tokenRetry, false);
          if (isRefused(e) || (this.options.remote && isUnreachable(e)))
            return resolve({
              kind: 'gone',
              reason: this.options.remote?.unreachable(e.code ?? e.message) ?? `cannot connect (${e.code ?? e.message})`,
            });
          resolve({ kind: 'failed', error: { code: -32000, message: `Lanyard broker: ${e.message}` } });
        });
      };
      attempt(true, true);
    });
  }

  /** Streams an answer (SSE or JSON) to `deliver`; a stream cut off before its response is an error for the request. */
  private readAnswer(
    res: IncomingMessage,
    how: { id: RequestId | undefined; isInitialize: boolean; onAccepted?: (() => void) | undefined; deliver: (data: string) => void },
    resumed = 0,
  ) {
    return new Promise<Outcome>((resolve) => {
      const type = res.headers['content-type'] ?? '';
      let last: string | undefined;
      let sse: SseReader | undefined;
      const take = (data: string) => {
        last = data;
        this.modern.observe(data);
        if (how.isInitialize && this.noteVersion(data, how.id)) how.onAccepted?.();
        how.deliver(data);
      };
      res.setEncoding('utf8');
      if (type.startsWith('text/event-stream')) {
        const reader = (sse = new SseReader(take));
        res.on('data', (chunk: string) => reader.push(chunk));
      } else {
        const parts: string[] = [];
        res.on('data', (chunk: string) => parts.push(chunk));
        res.on('end', () => {
          const text = parts.join('').trim();
          if (text !== '') take(text);
        });
      }
      res.on('end', () => {
        const answered = how.id === undefined || (last !== undefined && isResponseTo(last, how.id));
        // Ended before the answer, after an event id: resumable (docs/protocol.md, "Resumable streams on /mcp").
        if (!answered && sse?.lastEventId && resumed < MAX_RESUMPTIONS) resolve(this.resume(sse, how, last ? 0 : resumed + 1));
        else resolve({ kind: 'done' });
      });
      res.on('error', () => undefined);
      res.on('close', () => {
        if (res.complete) return;
        // Cut off: the request is answered with an error unless its response already went through.
        if (how.id !== undefined && !(last !== undefined && isResponseTo(last, how.id))) {
          resolve({ kind: 'failed', error: { code: -32000, message: 'Lanyard broker: the answer was cut off.' } });
        } else resolve({ kind: 'done' });
      });
    });
  }

  /** GET with the stream's Last-Event-ID, after its retry interval: the rest of a request's answer. */
  private async resume(
    sse: SseReader,
    how: { id: RequestId | undefined; isInitialize: boolean; onAccepted?: (() => void) | undefined; deliver: (data: string) => void },
    resumed: number,
  ): Promise<Outcome> {
    await delay(Math.min(sse.retryMs ?? LISTEN_RETRY_MS, MAX_RESUME_DELAY_MS));
    const cutOff: Outcome = { kind: 'failed', error: { code: -32000, message: 'Lanyard broker: the answer was cut off.' } };
    return new Promise<Outcome>((resolve) => {
      const req = this.exchange('GET', undefined, { 'last-event-id': sse.lastEventId! }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          resolve(cutOff);
          return;
        }
        resolve(this.readAnswer(res, how, resumed));
      });
      req.on('error', () => resolve(cutOff));
    });
  }

  /**
   * The negotiated version, from the answer to initialize: it goes on every later request. True when `data` is that
   * answer and a successful one (the broker accepted the initialize).
   */
  private noteVersion(data: string, id: RequestId | undefined): boolean {
    try {
      const m = JSON.parse(data) as { id?: unknown; result?: { protocolVersion?: unknown } };
      if (m.id !== id || typeof m.result?.protocolVersion !== 'string') return false;
      this.protocolVersion = m.result.protocolVersion;
      return true;
    } catch {
      // not a message: delivered as it is, the IDE will say so
      return false;
    }
  }

  private exchange(
    method: 'POST',
    body: Buffer,
    extra: Record<string, string> | undefined,
    onResponse: (res: IncomingMessage) => void,
  ): ClientRequest;
  private exchange(
    method: 'GET',
    body: undefined,
    extra: Record<string, string> | undefined,
    onResponse: (res: IncomingMessage) => void,
  ): ClientRequest;
  private exchange(method: 'DELETE'): Promise<void>;
  private exchange(
    method: 'POST' | 'GET' | 'DELETE',
    body?: Buffer,
    extra?: Record<string, string>,
    onResponse?: (res: IncomingMessage) => void,
  ): ClientRequest | Promise<void> {
    const headers: OutgoingHttpHeaders = {
      ...extra,
      authorization: `Bearer ${this.token}`,
      accept: method === 'GET' ? 'text/event-stream' : 'application/json, text/event-stream',
    };
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = body.length;
    }
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
    if (method === 'GET' && this.lastEventId && !headers['last-event-id']) headers['last-event-id'] = this.lastEventId;
    const remote = this.options.remote;
    if (remote) headers.host = remote.hostHeader;
    const options = { host: remote?.host ?? '127.0.0.1', port: this.port, path: this.options.path, method, headers, agent: this.agent };
    if (method === 'DELETE') {
      return new Promise<void>((resolve, reject) => {
        const req = request(options, (res) => {
          res.resume();
          resolve();
        });
        req.on('error', reject);
        req.end();
      });
    }
    const req = request(options, onResponse);
    req.end(body);
    return req;
  }

  private lastEventId: string | undefined;

  /**
   * The standalone stream (GET) for what the broker sends outside any request: list changes, server→client requests.
   * A broker that has none (405) or forgot the session is not asked again; one that ended it is, a second later.
   */
  private listen(): void {
    if (this.closing || this.listener || !this.sessionId) return;
    const generation = this.generation;
    const req = this.exchange('GET', undefined, undefined, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        this.listener = undefined;
        // The local token was rotated meanwhile: listen again with the new one.
        if (res.statusCode === 401) void this.tokenRotated().then((rotated) => rotated && this.listen());
        // The broker no longer keeps the event the stream stopped at: what was missed is gone; listen afresh.
        else if (res.statusCode === 400 && this.lastEventId !== undefined) {
          this.lastEventId = undefined;
          this.listen();
        }
        return;
      }
      const sse = new SseReader((data) => this.deliver(data));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        sse.push(chunk);
        if (sse.lastEventId !== undefined) this.lastEventId = sse.lastEventId;
      });
      res.on('error', () => undefined);
      res.on('close', () => {
        if (this.listener !== req) return;
        this.listener = undefined;
        if (this.closing || generation !== this.generation) return;
        this.listenRetry = setTimeout(() => this.listen(), LISTEN_RETRY_MS);
        this.listenRetry.unref();
      });
    });
    req.on('error', () => {
      if (this.listener === req) this.listener = undefined;
    });
    this.listener = req;
  }

  private stopListening(): void {
    clearTimeout(this.listenRetry);
    const listener = this.listener;
    this.listener = undefined;
    listener?.destroy();
    this.lastEventId = undefined;
  }

  /** The runtime file names a new local token for the same broker (a rotation): use it. */
  private async tokenRotated(): Promise<boolean> {
    if (this.options.remote) {
      const token = await this.options.remote.token();
      if (token === undefined || token === this.token) return false;
      this.token = token;
      return true;
    }
    const now = await readRuntimeFile(this.options.home);
    if (now.state !== 'running' || now.info.port !== this.port || now.info.token === this.token) return false;
    this.token = now.info.token;
    return true;
  }

  /** A new HTTP session with the broker (or its successor), set up as the IDE set up the first one. */
  private reconnect(failedGeneration: number): Promise<void> {
    if (failedGeneration !== this.generation && !this.broken) return Promise.resolve();
    return (this.reconnecting ??= (async () => {
      try {
        this.stopListening();
        const broker = await this.options.findAgain();
        this.agent.destroy();
        this.agent = new Agent({ keepAlive: true });
        this.port = broker.port;
        this.token = broker.token;
        this.sessionId = undefined;
        this.protocolVersion = undefined;
        if (!this.initialize) throw new Error('the broker restarted before the session was initialized');
        const id = `lanyard-bridge-reinitialize-${++this.ownSeq}`;
        let answer: { result?: { protocolVersion?: unknown }; error?: { message?: unknown } } | undefined;
        const replay = encode({ ...this.initialize, id });
        if (replay === undefined) throw new Error("the IDE's initialize is nested too deeply to send again");
        const outcome = await this.post(replay, {
          id,
          isInitialize: true,
          // Answers to the bridge's own requests are kept from the IDE.
          deliver: (data) => {
            const m = JSON.parse(data) as typeof answer & { id?: unknown };
            if (m?.id === id) answer = m;
          },
        });
        if (outcome.kind !== 'done') throw new Error(outcome.kind === 'gone' ? outcome.reason : outcome.error.message);
        if (!answer?.result) throw new Error(`the restarted broker refused the session (${String(answer?.error?.message ?? 'no result')})`);
        if (this.initialized) {
          const sent = await this.post('{"jsonrpc":"2.0","method":"notifications/initialized"}', {
            id: undefined,
            isInitialize: false,
            deliver: () => undefined,
          });
          if (sent.kind !== 'done') throw new Error(sent.kind === 'gone' ? sent.reason : sent.error.message);
        }
        this.generation++;
        this.broken = false;
        this.options.say(`the Lanyard broker restarted; reconnected (session ${this.sessionId ?? 'without id'}).`);
        if (this.initialized) this.listen();
      } catch (e) {
        this.broken = true;
        throw e instanceof BridgeError ? new Error(`${e.message} Fix: ${e.fix}`, { cause: e }) : e;
      } finally {
        this.reconnecting = undefined;
      }
    })());
  }
}

/** The broker's own explanation of a refused request (its JSON-RPC error body), or the status line. */
function errorFromBody(text: string, status: number, statusText: string | undefined): RpcError {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; data?: unknown } };
    if (typeof parsed.error?.message === 'string') {
      return {
        code: typeof parsed.error.code === 'number' ? parsed.error.code : -32000,
        message: parsed.error.message,
        ...(parsed.error.data !== undefined ? { data: parsed.error.data } : {}),
      };
    }
  } catch {
    // not JSON: the status line says it
  }
  return { code: -32000, message: `Lanyard broker answered HTTP ${status}${statusText ? ` ${statusText}` : ''}` };
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (text.length < MAX_ERROR_BODY) text += chunk;
    });
    res.on('end', () => resolve(text));
    res.on('error', () => resolve(text));
    res.on('close', () => resolve(text));
  });
}

function isResponseTo(data: string, id: RequestId): boolean {
  try {
    const m = JSON.parse(data) as { id?: unknown; method?: unknown };
    return m.id === id && m.method === undefined;
  } catch {
    return false;
  }
}

/** The broker is down or moved to another port: nothing was sent. */
function isRefused(e: NodeJS.ErrnoException): boolean {
  if (e.code === 'ECONNREFUSED') return true;
  const nested = (e as { errors?: unknown }).errors;
  return Array.isArray(nested) && nested.some((n) => (n as NodeJS.ErrnoException).code === 'ECONNREFUSED');
}

/** A remote laptop that cannot be reached at all (asleep, network gone, a name that no longer resolves): nothing was sent. */
function isUnreachable(e: NodeJS.ErrnoException): boolean {
  return ['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN'].includes(e.code ?? '');
}

/** JSON text of a value, or undefined when it is nested too deeply for JSON.stringify (which recurses per level). */
function encode(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
