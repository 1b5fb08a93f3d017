/**
 * `lanyard stdio [--server <id>]`: bridges an MCP client that only speaks stdio to the running broker.
 *
 * stdin/stdout carry newline-delimited JSON-RPC (the MCP stdio transport); the other side is the broker's Streamable
 * HTTP endpoint on 127.0.0.1 (`/mcp`, or `/mcp/<id>` with --server), reached with the local token from the 0600
 * runtime file. Messages are piped both ways unchanged — requests, responses and notifications in either direction,
 * so server→client requests (sampling, elicitation, roots) reach the IDE and its answers go back.
 *
 * Started by an IDE for every session, so it must start fast. Loading the SDK costs more than everything else together
 * (~85 ms of zod schemas and module graph against ~45 ms of Node start-up), so the IDE's first message — `initialize`
 * — is forwarded by a few lines of plain fetch before the SDK is loaded; the SDK loads while the broker answers it,
 * and its transports then take over the session that request opened (same Mcp-Session-Id, same negotiated version)
 * for everything else. Measured here: first response ≈ 85 ms after spawn, against ≈ 200 ms when the SDK loads first
 * (and ≈ 280 ms for mcp-remote on the same path). Nothing here touches the keychain. stdout is the protocol channel: every
 * diagnostic goes to stderr. Exit codes: 0 when stdin closes, 1 when the broker cannot be reached or started.
 */
import type { Readable, Writable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { readRuntimeFile, type RuntimeInfo } from '../broker/gateway/runtime-file';
import type * as McpClient from '@modelcontextprotocol/client';
import type { JSONRPCMessage, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type * as McpServerStdio from '@modelcontextprotocol/server/stdio';
import type { StdioServerTransport } from '@modelcontextprotocol/server/stdio';

export interface StdioBridgeOptions {
  /** Lanyard's home (resolveLanyardHome()): where the runtime file is. */
  home: string;
  /** Relay to one server (`/mcp/<id>`) instead of the aggregated endpoint. */
  server?: string;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Starts the headless broker when none runs (the CLI spawns `lanyard serve` detached). */
  startBroker: () => Promise<void>;
  /** How long to wait for a broker that was just started. Default 15 s. */
  startTimeoutMs?: number;
  /** How often to look for the runtime file while waiting. Default 50 ms. */
  pollMs?: number;
}

/** JSON-RPC's own error codes for input that is not a message. */
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
/** Matches the SDK's stdio read buffer bound: a line longer than this is dropped with an error. */
const MAX_LINE_BYTES = 10 * 1024 * 1024;
const SERVER_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

class BridgeError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

type RequestId = string | number;

/**
 * Runs the bridge until stdin closes; resolves with the process exit code. Never writes anything but JSON-RPC
 * messages to stdout.
 */
export async function runStdioBridge(options: StdioBridgeOptions): Promise<number> {
  const say = (text: string) => {
    options.stderr.write(`lanyard stdio: ${text}\n`);
  };
  if (options.server !== undefined && !SERVER_ID.test(options.server)) {
    say(`"${options.server}" is not a server id. Fix: run \`lanyard servers\` to see the ids.`);
    return 1;
  }
  if (options.stdout === process.stdout) {
    // stdout is the protocol channel: a stray console.log anywhere in the process would corrupt it.
    const toStderr = (...args: unknown[]) => say(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    Object.assign(console, { log: toStderr, info: toStderr, debug: toStderr });
  }
  // Lines are read (and malformed ones answered) from the start, before the SDK exists.
  const guard = new LineGuard();
  const write = (message: unknown) => options.stdout.write(`${JSON.stringify(message)}\n`);
  guard.onInvalid = (code, message, id) => write({ jsonrpc: '2.0', id: id ?? null, error: { code, message } });
  options.stdin.pipe(guard);
  options.stdin.on('error', () => guard.end());
  const firstLine = guard.takeFirstLine();

  let broker: RuntimeInfo;
  try {
    broker = await findBroker(options);
  } catch (e) {
    if (e instanceof BridgeError) say(`${e.message} Fix: ${e.fix}`);
    else say(`cannot reach the Lanyard broker: ${e instanceof Error ? e.message : String(e)}`);
    // Stop reading stdin, or an open pipe would keep the process alive after the failure.
    options.stdin.unpipe(guard);
    options.stdin.pause();
    return 1;
  }
  const endpoint = new URL(`http://127.0.0.1:${broker.port}/mcp${options.server ? `/${options.server}` : ''}`);
  const gateway = gatewayFetch(options.home, broker);

  const first = await firstLine;
  if (first === null) return 0;
  const start: SessionStart = {};
  const message = JSON.parse(first) as JSONRPCMessage;
  let sdk: Promise<[typeof McpServerStdio, typeof McpClient]> | undefined;
  const loadSdk = () => (sdk ??= Promise.all([import('@modelcontextprotocol/server/stdio'), import('@modelcontextprotocol/client')]));
  if (requestIdOf(message) !== undefined && (message as { method?: string }).method === 'initialize') {
    Object.assign(start, await forwardInitialize(gateway, endpoint, first, requestIdOf(message)!, write, loadSdk));
    start.initialize = message;
  } else start.pending = message;

  const [{ StdioServerTransport }, { StreamableHTTPClientTransport }] = await loadSdk();
  return bridge({ ...options, broker, guard, gateway, start, endpoint, StdioServerTransport, StreamableHTTPClientTransport, say });
}

/** What the fast path leaves for the SDK transports: the session it opened, or the first message still to send. */
interface SessionStart {
  sessionId?: string;
  protocolVersion?: string;
  pending?: JSONRPCMessage;
  /** The IDE's initialize request, replayed when the broker restarted and forgot the session. */
  initialize?: JSONRPCMessage;
}

type GatewayFetch = ((input: string | URL, init?: RequestInit) => Promise<Response>) & {
  /** The gateway's own explanation of a failed request (its JSON-RPC error), by request id: the SDK drops 401 bodies. */
  errors: Map<RequestId, { code: number; message: string; data?: unknown }>;
  /** Follows a broker that restarted (new port, new local token). */
  retarget(broker: RuntimeInfo): void;
};

/**
 * fetch with the local token, for both the fast path and the SDK transport. After a 401 it re-reads the runtime file:
 * when the token was rotated meanwhile, it retries once with the new one.
 */
function gatewayFetch(home: string, broker: RuntimeInfo): GatewayFetch {
  let current = broker;
  let token = broker.token;
  const withToken = (init: RequestInit | undefined) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    return { ...init, headers };
  };
  const errors: GatewayFetch['errors'] = new Map();
  const run = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    let response = await fetch(input, withToken(init));
    if (response.status === 401) {
      const now = await readRuntimeFile(home);
      if (now.state === 'running' && now.info.port === current.port && now.info.token !== token) {
        token = now.info.token;
        await response.body?.cancel().catch(() => undefined);
        response = await fetch(input, withToken(init));
      }
    }
    if (!response.ok && typeof init?.body === 'string') await rememberError(response, init.body, errors);
    return response;
  };
  const retarget = (next: RuntimeInfo) => {
    current = next;
    token = next.token;
  };
  return Object.assign(run, { errors, retarget });
}

/**
 * The fast path: POSTs the IDE's initialize request and writes every message of the answer (JSON or an SSE stream) to
 * stdout, stopping at the response. The session it opens is handed to the SDK transport afterwards.
 */
async function forwardInitialize(
  fetchGateway: GatewayFetch,
  endpoint: URL,
  body: string,
  id: RequestId,
  write: (message: unknown) => void,
  whileWaiting: () => unknown,
): Promise<SessionStart> {
  const fail = (message: string) => {
    const known = fetchGateway.errors.get(id);
    fetchGateway.errors.delete(id);
    write({ jsonrpc: '2.0', id, error: known ?? { code: -32000, message } });
    return {};
  };
  let response: Response;
  try {
    const pending = fetchGateway(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
    });
    // The request is on its way: the SDK's module graph loads while the broker answers.
    setImmediate(whileWaiting);
    response = await pending;
  } catch (e) {
    return fail(`Lanyard broker: ${errorText(e)}`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    return fail(`Lanyard broker answered HTTP ${response.status}`);
  }
  const start: SessionStart = {};
  const sessionId = response.headers.get('mcp-session-id');
  if (sessionId) start.sessionId = sessionId;
  const onMessage = (message: unknown): boolean => {
    write(message);
    const m = message as { id?: unknown; result?: { protocolVersion?: unknown } };
    if (m.id !== id) return false;
    if (typeof m.result?.protocolVersion === 'string') start.protocolVersion = m.result.protocolVersion;
    return true;
  };
  try {
    const type = response.headers.get('content-type') ?? '';
    if (type.startsWith('text/event-stream') && response.body) {
      if (await readSse(response.body, onMessage)) return start;
    } else {
      const data = (await response.json()) as unknown;
      if ((Array.isArray(data) ? data : [data]).map(onMessage).some(Boolean)) return start;
    }
  } catch (e) {
    return { ...fail(`Lanyard broker: the answer to initialize was cut off (${errorText(e)})`), ...start };
  }
  return { ...fail('Lanyard broker: the answer to initialize was cut off.'), ...start };
}

/** Reads SSE events (`data:` lines, blank-line separated) until `onMessage` returns true; true if it did. */
async function readSse(body: ReadableStream<Uint8Array>, onMessage: (message: unknown) => boolean): Promise<boolean> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      buffer += value.replace(/\r\n?/g, '\n');
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, ''))
          .join('\n');
        // Priming events (SEP-1699) carry an id and no data.
        if (data.trim() !== '' && onMessage(JSON.parse(data))) return true;
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    void reader.cancel().catch(() => undefined);
  }
}

/**
 * The runtime file of a live broker; starts one and waits (bounded) when there is none. A file whose process is gone
 * (a crash) counts as none; a file that is not trustworthy (other owner, loose mode) is refused, not used. A broker
 * that fails to start says why in its start-up failure file (port taken, config broken): that ends the wait at once.
 *
 * `graceMs`: how long to wait for a broker to come back by itself before starting one (a tray app or `lanyard serve`
 * restarting), so the bridge does not race it for the port.
 */
async function findBroker(options: StdioBridgeOptions, graceMs = 0): Promise<RuntimeInfo> {
  const found = await readRuntimeFile(options.home);
  if (found.state === 'invalid') {
    throw new BridgeError(
      `${found.problem}, so it is not used.`,
      'Quit Lanyard, delete that file, and start Lanyard again (it writes a new one, readable only by you).',
    );
  }
  if (found.state === 'running' && (await answers(found.info))) return found.info;
  const previous = found.state === 'running' || found.state === 'stale' ? found.info : undefined;
  const pollMs = options.pollMs ?? 50;
  // A live pid that did not answer before is not taken again unless it was replaced.
  const fresh = async (): Promise<RuntimeInfo | undefined> => {
    const now = await readRuntimeFile(options.home);
    if (now.state !== 'running') return undefined;
    if (previous && now.info.pid === previous.pid && now.info.startedAt === previous.startedAt) return undefined;
    return (await answers(now.info)) ? now.info : undefined;
  };
  for (const graceEnd = Date.now() + graceMs; Date.now() < graceEnd;) {
    await new Promise((r) => setTimeout(r, pollMs));
    const info = await fresh();
    if (info) return info;
  }
  const { readStartupFailure } = await import('../broker/startup-failure');
  const startedAt = Date.now();
  try {
    await options.startBroker();
  } catch (e) {
    throw new BridgeError(
      `the Lanyard broker is not running and could not be started (${e instanceof Error ? e.message : String(e)}).`,
      'Start Lanyard (the tray app, or `lanyard serve` in a terminal).',
    );
  }
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  const deadline = startedAt + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, pollMs));
    const info = await fresh();
    if (info) return info;
    // Written by the broker this call started (file times have a coarse clock on some systems: allow a second).
    const failure = await readStartupFailure(options.home);
    if (failure && Date.parse(failure.at) >= startedAt - 1_000) {
      throw new BridgeError(`the Lanyard broker could not start: ${failure.message}`, failure.fix);
    }
  }
  throw new BridgeError(
    `the Lanyard broker did not start within ${timeoutMs >= 1_000 ? `${Math.round(timeoutMs / 1_000)} s` : `${timeoutMs} ms`}.`,
    'Run `lanyard serve` in a terminal to see why it does not start.',
  );
}

/** The broker listens (its runtime file is written after it does; this catches a pid reused by another program). */
async function answers(info: RuntimeInfo): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${info.port}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

interface BridgeContext extends StdioBridgeOptions {
  broker: RuntimeInfo;
  guard: LineGuard;
  gateway: GatewayFetch;
  start: SessionStart;
  endpoint: URL;
  StdioServerTransport: typeof StdioServerTransport;
  StreamableHTTPClientTransport: typeof StreamableHTTPClientTransport;
  say(text: string): void;
}

/** How long a restarting broker (tray app, `lanyard serve`) gets to come back before the bridge starts one itself. */
const RESTART_GRACE_MS = 3_000;

/**
 * Pipes stdio ↔ the broker's Streamable HTTP endpoint until stdin closes.
 *
 * The bridge, not the IDE, owns the HTTP session. When the broker restarts (tray app or `lanyard serve`), it forgets
 * every session and answers the old Mcp-Session-Id with 404 (or, on another port, nothing at all). The bridge then
 * opens a new session on its own — replaying the IDE's initialize request (same capabilities, same client info) and
 * its notifications/initialized under ids of its own, whose answers the IDE never sees — and re-sends the message that
 * failed, so the IDE carries on as if nothing happened. Only messages the broker never processed are re-sent (404, or
 * a refused connection), so a tool call is never made twice.
 */
async function bridge(ctx: BridgeContext): Promise<number> {
  const httpErrors = ctx.gateway.errors;
  const guard = ctx.guard;
  const stdio = new ctx.StdioServerTransport(guard, ctx.stdout);
  guard.onInvalid = (code, message, id) => {
    void stdio.send({ jsonrpc: '2.0', id: id ?? null, error: { code, message } } as unknown as JSONRPCMessage).catch(() => undefined);
  };

  const initializeIds = new Set<RequestId>();
  let closing = false;
  let initialize = ctx.start.initialize;
  let initialized = false;
  /** Answers to the bridge's own requests (the replayed initialize), kept from the IDE. */
  const own = new Map<RequestId, (message: JSONRPCMessage) => void>();
  let ownSeq = 0;

  const open = (endpoint: URL, session: { sessionId?: string | undefined; protocolVersion?: string | undefined }) => {
    const transport = new ctx.StreamableHTTPClientTransport(endpoint, {
      // The gateway fetch sets it again on every request, so a rotated token is followed.
      requestInit: { headers: { Authorization: `Bearer ${ctx.broker.token}` } },
      fetch: ctx.gateway,
      ...(session.sessionId ? { sessionId: session.sessionId } : {}),
    });
    // The bridge is the HTTP client: requests after initialize carry the negotiated version (Streamable HTTP §Protocol Version Header).
    if (session.protocolVersion) transport.setProtocolVersion(session.protocolVersion);
    transport.onmessage = (message) => {
      if (transport !== http) return;
      const m = message as { id?: RequestId; result?: { protocolVersion?: unknown } };
      const mine = m.id !== undefined ? own.get(m.id) : undefined;
      if (mine) {
        own.delete(m.id!);
        mine(message);
        return;
      }
      if (m.id !== undefined && initializeIds.delete(m.id) && typeof m.result?.protocolVersion === 'string') {
        transport.setProtocolVersion(m.result.protocolVersion);
      }
      stdio.send(message).catch((e: unknown) => ctx.say(`stdout: ${errorText(e)}`));
    };
    transport.onerror = (e) => {
      // A transport replaced after a restart still reports its dying stream; that is not news.
      if (!closing && transport === http) ctx.say(errorText(e));
    };
    return transport;
  };
  let http = open(ctx.endpoint, ctx.start);
  let generation = 0;
  let reconnecting: Promise<void> | undefined;
  /** The last reconnection failed (no broker came back): the next message tries again rather than using a dead session. */
  let broken = false;

  /** A new HTTP session with the same broker (or its successor), set up as the IDE set up the first one. */
  const reconnect = (failedGeneration: number): Promise<void> => {
    if (failedGeneration !== generation) return Promise.resolve();
    return (reconnecting ??= (async () => {
      const old = http;
      try {
        await old.close().catch(() => undefined);
        const broker = await findBroker(ctx, RESTART_GRACE_MS);
        ctx.gateway.retarget(broker);
        const endpoint = new URL(`http://127.0.0.1:${broker.port}${ctx.endpoint.pathname}`);
        const next = open(endpoint, {});
        http = next;
        await next.start();
        if (!initialize) throw new Error('the broker restarted before the session was initialized');
        const id = `lanyard-bridge-reinitialize-${++ownSeq}`;
        let timer: NodeJS.Timeout | undefined;
        const answered = new Promise<JSONRPCMessage>((resolve, reject) => {
          own.set(id, resolve);
          timer = setTimeout(() => reject(new Error('the restarted broker did not answer initialize within 30 s')), 30_000);
        });
        await next.send({ ...initialize, id } as JSONRPCMessage);
        const answer = (await answered.finally(() => clearTimeout(timer))) as {
          result?: { protocolVersion?: unknown };
          error?: { message?: unknown };
        };
        if (!answer.result) throw new Error(`the restarted broker refused the session (${String(answer.error?.message ?? 'no result')})`);
        if (typeof answer.result.protocolVersion === 'string') next.setProtocolVersion(answer.result.protocolVersion);
        if (initialized) await next.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
        generation++;
        broken = false;
        ctx.say(`the Lanyard broker restarted; reconnected (session ${next.sessionId ?? 'without id'}).`);
      } catch (e) {
        broken = true;
        throw e instanceof BridgeError ? new Error(`${e.message} Fix: ${e.fix}`, { cause: e }) : e;
      } finally {
        reconnecting = undefined;
      }
    })());
  };

  const toBroker = (message: JSONRPCMessage, resent = false) => {
    const id = requestIdOf(message);
    const method = (message as { method?: string }).method;
    if (!resent) {
      if (id !== undefined && method === 'initialize') {
        initializeIds.add(id);
        initialize = message;
      }
      if (method === 'notifications/initialized') initialized = true;
    }
    const sentOn = generation;
    const send = async () => {
      while (reconnecting) await reconnecting.catch(() => undefined);
      if (broken) await reconnect(generation);
      await http.send(message);
    };
    send().catch(async (e: unknown) => {
      if (closing) return;
      if (!resent && method !== 'initialize' && initialize && neverProcessed(e)) {
        if (id !== undefined) httpErrors.delete(id);
        try {
          await reconnect(sentOn);
          toBroker(message, true);
          return;
        } catch (re) {
          e = new Error(`the Lanyard broker went away and the bridge could not reconnect: ${errorText(re)}`, { cause: e });
          ctx.say(errorText(e));
        }
      }
      if (id === undefined) {
        ctx.say(`could not deliver a message to the broker: ${errorText(e)}`);
        return;
      }
      const known = httpErrors.get(id);
      httpErrors.delete(id);
      const error = known ?? { code: -32000, message: `Lanyard broker: ${errorText(e)}` };
      void stdio.send({ jsonrpc: '2.0', id, error } as JSONRPCMessage).catch(() => undefined);
    });
  };
  stdio.onmessage = (message) => toBroker(message);
  stdio.onerror = (e) => ctx.say(`stdin: ${errorText(e)}`);

  const done = new Promise<number>((resolve) => {
    stdio.onclose = () => {
      closing = true;
      // Free the server-side session at once rather than leaving it to time out; bounded so exit stays prompt.
      const terminate = http.sessionId
        ? Promise.race([http.terminateSession().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())])
        : Promise.resolve();
      void terminate.then(() => http.close().catch(() => undefined)).then(() => resolve(0));
    };
  });
  await http.start();
  // A first message that was not initialize is sent now, ahead of anything that followed it on stdin.
  if (ctx.start.pending) toBroker(ctx.start.pending);
  await stdio.start();
  return done;
}

/**
 * The broker never saw this message, so sending it again is safe: it forgot the session (404: it restarted), or the
 * connection was refused (it is down, or moved to another port).
 */
function neverProcessed(e: unknown): boolean {
  if ((e as { status?: unknown }).status === 404) return true;
  for (let cause: unknown = e; cause instanceof Error; cause = cause.cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
    const nested = (cause as { errors?: unknown }).errors;
    if (Array.isArray(nested) && nested.some((n) => (n as NodeJS.ErrnoException).code === 'ECONNREFUSED')) return true;
  }
  return false;
}

async function rememberError(
  response: Response,
  body: string,
  into: Map<RequestId, { code: number; message: string; data?: unknown }>,
): Promise<void> {
  let id: RequestId | undefined;
  try {
    id = requestIdOf(JSON.parse(body) as JSONRPCMessage);
  } catch {
    return;
  }
  if (id === undefined) return;
  try {
    const parsed = (await response.clone().json()) as { error?: { code?: unknown; message?: unknown; data?: unknown } };
    if (typeof parsed.error?.message === 'string') {
      into.set(id, {
        code: typeof parsed.error.code === 'number' ? parsed.error.code : -32000,
        message: parsed.error.message,
        ...(parsed.error.data !== undefined ? { data: parsed.error.data } : {}),
      });
      return;
    }
  } catch {
    // not JSON: fall through to the status line
  }
  into.set(id, { code: -32000, message: `Lanyard broker answered HTTP ${response.status} ${response.statusText}` });
}

function requestIdOf(message: JSONRPCMessage): RequestId | undefined {
  const m = message as { id?: unknown; method?: unknown };
  return typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number') ? m.id : undefined;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Sits between stdin and the SDK's stdio transport and passes on only lines that are JSON-RPC messages. The SDK
 * silently skips lines that are not JSON; the MCP client deserves an answer, so a malformed line gets a JSON-RPC
 * parse error (-32700) and a JSON value that is not a message gets invalid request (-32600) — and the bridge stays up.
 */
export class LineGuard extends Transform {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');
  private firstLineWaiter: ((line: string | null) => void) | undefined;
  onInvalid: (code: number, message: string, id?: RequestId) => void = () => undefined;

  /** The next valid line, taken out of the stream (null if stdin ends first); later lines flow on as usual. */
  takeFirstLine(): Promise<string | null> {
    return new Promise((resolve) => (this.firstLineWaiter = resolve));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending += this.decoder.write(chunk);
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      this.line(line);
      newline = this.pending.indexOf('\n');
    }
    if (Buffer.byteLength(this.pending) > MAX_LINE_BYTES) {
      this.pending = '';
      this.onInvalid(PARSE_ERROR, `Parse error: a message longer than ${MAX_LINE_BYTES} bytes was dropped.`);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.pending += this.decoder.end();
    // A last message without its newline is still a message.
    if (this.pending.trim() !== '') this.line(this.pending);
    this.pending = '';
    this.firstLineWaiter?.(null);
    this.firstLineWaiter = undefined;
    callback();
  }

  private line(raw: string): void {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    // A line that arrived whole in one chunk escapes the check in _transform; the SDK's read buffer would overflow on
    // it and close the transport, leaving a bridge that answers nothing more. Drop it here instead.
    if (line.length >= MAX_LINE_BYTES / 4 && Buffer.byteLength(line) >= MAX_LINE_BYTES) {
      this.onInvalid(PARSE_ERROR, `Parse error: a message longer than ${MAX_LINE_BYTES} bytes was dropped.`);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.onInvalid(PARSE_ERROR, 'Parse error: the line is not valid JSON.');
      return;
    }
    const message = value as { jsonrpc?: unknown; id?: unknown; method?: unknown };
    const id = typeof message?.id === 'string' || typeof message?.id === 'number' ? message.id : undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value) || message.jsonrpc !== '2.0') {
      this.onInvalid(INVALID_REQUEST, 'Invalid Request: expected one JSON-RPC 2.0 message per line.', id);
      return;
    }
    // The SDK's transport drops a message of the wrong shape without a word; the request it carried deserves an answer.
    const problem = envelopeProblem(value as Record<string, unknown>);
    if (problem) {
      this.onInvalid(INVALID_REQUEST, `Invalid Request: ${problem}.`, id);
      return;
    }
    const waiter = this.firstLineWaiter;
    if (waiter) {
      this.firstLineWaiter = undefined;
      waiter(line);
      return;
    }
    this.push(`${line}\n`);
  }
}

/**
 * Why a JSON-RPC 2.0 object is not a request, notification or response MCP accepts (the shapes the SDK's schema
 * checks), or undefined when it is one. Requests and notifications are checked strictly, since they expect an answer
 * or an effect; a response only needs a result or an error.
 */
function envelopeProblem(m: Record<string, unknown>): string | undefined {
  if ('method' in m) {
    if (typeof m.method !== 'string') return 'method must be a string';
    if ('id' in m && !(typeof m.id === 'string' || (typeof m.id === 'number' && Number.isSafeInteger(m.id))))
      return 'id must be a string or a (safe) integer';
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null || Array.isArray(m.params)))
      return 'params must be an object';
    // The HTTP transport takes any `initialize` for a handshake and would drop the session for an answer without one.
    if (m.method === 'initialize' && !('id' in m)) return 'initialize must be a request (with an id)';
    return undefined;
  }
  if (!('id' in m)) return 'a message needs a method (request or notification) or an id (response)';
  if (!('result' in m) && !('error' in m)) return 'a response needs a result or an error';
  return undefined;
}

/** `lanyard stdio` command line: `[--server <id>]`. Returns the exit code. */
export async function stdioCommand(
  argv: readonly string[],
  io: { home: string; stdin: Readable; stdout: Writable; stderr: Writable; startBroker: () => Promise<void> },
): Promise<number> {
  const { parseArgs } = await import('node:util');
  let server: string | undefined;
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: { server: { type: 'string', short: 's' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      io.stdout.write(
        'Usage: lanyard stdio [--server <id>]\n\nBridges a stdio-only MCP client to the running broker (all servers at /mcp, or one with --server).\n',
      );
      return 0;
    }
    server = values.server;
  } catch (e) {
    io.stderr.write(`lanyard stdio: ${errorText(e)}\nUsage: lanyard stdio [--server <id>]\n`);
    return 2;
  }
  return runStdioBridge({ ...io, ...(server !== undefined ? { server } : {}) });
}
