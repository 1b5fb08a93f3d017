import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import {
  isJsonContentType,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
} from '@modelcontextprotocol/client';
import { isPending, outcomeOf, type Admission, type CallOutcome } from '../../governance/call-guard';
import { SEARCH_TOOLS, type ProfileView } from '../../governance/profiles';
import { nodeBodyOf } from '../relay-transport';
import type { BoundPeer } from '../upstream/bound-peer';
import { activeCall, Deadline, type ActiveCall, type DownstreamTarget } from '../upstream/call-context';
import { STREAM_ENDED_MARK, unreachable } from '../upstream/errors';
import type { UpstreamLane } from '../upstream/session';
import type { AggregatorCore } from './core';
import { toolErrorResult, toProtocolError } from './errors';
import { scanMessage, SseReader, type MessageShape } from './raw-json';
import { SessionEventStore } from './sse-event-store';
import { primes, SseStream } from './sse-stream';

/**
 * `/mcp`'s fast path for the requests that only need a name changed on the way (tools/call, prompts/get,
 * resources/read): the IDE's request is renamed and POSTed as is on the IDE session's bound upstream session, and
 * the upstream answer comes back as bytes — its `id` replaced in place, nothing parsed, validated or re-serialized —
 * instead of a second SDK round trip (an SDK server toward the IDE, an SDK client toward the server).
 *
 * What still needs Lanyard's judgement goes where it went before:
 *   - progress for this call: the token is Lanyard's own upstream (one per call, so two IDE requests can never share
 *     one) and is mapped back to the IDE's; it restarts the call's deadline;
 *   - everything else the server sends during the call (log messages, elicitation, sampling, roots, list_changed,
 *     resource updates) is handed to the bound session's SDK client inside the call's context, so its handlers route
 *     it exactly as for a call made through the SDK; what they send to the IDE goes out on this call's stream, and
 *     the IDE's answers (POSTed responses with ids Lanyard chose) are taken here;
 *   - an upstream JSON-RPC error becomes the same answer the SDK path gives (a tool result with isError for
 *     tools/call, a redacted JSON-RPC error otherwise);
 *   - the answer goes to the IDE as a resumable SSE stream (sse-stream.ts): a priming event, then each message as an
 *     event with an id kept in the session's event store; a server that closes its stream mid-call (asking its client
 *     to poll) is resumed here with GET and Last-Event-ID, and the IDE is asked to poll the same way;
 *   - the IDE session's first call to a server connects its bound session here (a failure to connect is answered as
 *     the SDK path answers it); a connection without a raw lane (2026-07-28, legacy HTTP+SSE) is the SDK path's;
 *   - anything unusual before the server answered — a 404 (session gone), 401/403 still refused after the token
 *     service's retry, a network error — falls back to the SDK path, which re-initializes, retries and explains;
 *     nothing has been written to the IDE then.
 */

export type FastMethod = 'tools/call' | 'prompts/get' | 'resources/read';

/**
 * What the fast path keeps per IDE session: its raw calls in flight (for cancellation), its questions to the IDE and
 * the session's SSE event store (shared with the session's SDK transport).
 */
export interface FastSessionState {
  readonly calls: Map<string, { cancel(reason: unknown): void }>;
  readonly answers: Map<string, (message: { result?: unknown; error?: { code: number; message: string; data?: unknown } }) => void>;
  readonly events: SessionEventStore;
}

export function fastSessionState(events: SessionEventStore = new SessionEventStore()): FastSessionState {
  return { calls: new Map(), answers: new Map(), events };
}

/** The IDE session as the fast path needs it. */
export interface FastSession {
  readonly id: string | undefined;
  readonly clientName: string;
  readonly clientVersion?: string | undefined;
  readonly fast: FastSessionState;
  /** The session's bound upstream sessions (created on first use). */
  bound(): BoundPeer;
  /** The session was handed the current tools list (list_changed then goes to it only when the list changes). */
  listedTools(): void;
  /**
   * The IDE profile of the endpoint it initialized on (governance/profiles). An active one shapes tools/list (served
   * from its own cached bytes) and resolves tool names (its namer, its allow/deny lists) before the call is forwarded.
   */
  readonly profile?: ProfileView | undefined;
  /** The endpoint path governance records (`/mcp`, `/ide/<ide>/mcp`). */
  readonly endpoint?: string | undefined;
}

export interface FastPathOptions {
  humanTimeoutMs: number;
  rootsTimeoutMs: number;
}

type RpcId = string | number;
type Params = Record<string, unknown> & { _meta?: Record<string, unknown> };

const FAST_METHODS: ReadonlySet<string> = new Set<FastMethod>(['tools/call', 'prompts/get', 'resources/read']);
const RESULT_HEAD = Buffer.from('{"result":');
/** A call not answered by then gets its priming event, so a connection that drops during a long call can resume. */
const PRIME_AFTER_MS = 500;
/** A server closing its stream mid-call is resumed (GET with Last-Event-ID) after its `retry`, at most this late… */
const MAX_UPSTREAM_RETRY_MS = 5_000;
const DEFAULT_UPSTREAM_RETRY_MS = 500;
/** …and given up after this many resumptions in a row that brought nothing new. */
const MAX_UPSTREAM_RESUMPTIONS = 3;

/** Upstream request ids (and progress tokens) of raw calls: a string no SDK client uses (they count with numbers). */
const ID_PREFIX = `lanyard-${randomBytes(6).toString('hex')}-`;
let counter = 0;
function nextId(kind: 'c' | 's'): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${ID_PREFIX}${kind}${counter}`;
}

function idKey(id: unknown): string | undefined {
  return typeof id === 'string' ? `s${id}` : typeof id === 'number' ? `n${id}` : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class FastPath {
  constructor(
    private readonly core: AggregatorCore,
    private readonly options: FastPathOptions,
  ) {}

  /**
   * Takes a POSTed message when it is the fast path's to answer; false leaves it to the session's SDK transport
   * (a notifications/cancelled for a raw call is acted on and still passed on, so the SDK answers the POST).
   */
  async handle(session: FastSession, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<boolean> {
    if (!isRecord(body)) return false;
    const method = body.method;
    if (method === undefined) return this.takeAnswer(session, res, body);
    if (method === 'notifications/cancelled') {
      const key = isRecord(body.params) ? idKey(body.params.requestId) : undefined;
      if (key) session.fast.calls.get(key)?.cancel(isRecord(body.params) ? body.params.reason : undefined);
      return false;
    }
    if (method === 'tools/list') return this.listTools(session, req, res, body);
    if (typeof method !== 'string' || !FAST_METHODS.has(method) || idKey(body.id) === undefined || !isRecord(body.params)) return false;
    if (session.id === undefined || !this.core.signedIn() || !acceptable(req)) return false;
    const params = body.params as Params;
    let serverId: string | undefined;
    let upstream: Params;
    let originalName: string | undefined;
    if (method === 'resources/read') {
      if (typeof params.uri !== 'string') return false;
      serverId = this.core.knownServerForUri(params.uri);
      upstream = params;
    } else if (method === 'tools/call' && session.profile?.active()) {
      const routed = await this.profiled(session.profile, params);
      if (!routed) return false;
      serverId = routed.serverId;
      originalName = routed.originalName;
      upstream = routed.params;
    } else {
      if (typeof params.name !== 'string') return false;
      const origin = this.core.knownName(method === 'tools/call' ? 'tools' : 'prompts', params.name);
      serverId = origin?.serverId;
      originalName = origin?.originalName;
      upstream = { ...params, name: originalName };
    }
    if (!serverId) return false;
    const bound = session.bound();
    let lane = bound.lane(serverId);
    let connectError: unknown;
    if (!lane) {
      // The IDE session's first call to this server: connected here; a failure is answered once admitted, as the SDK
      // path would (falling back would connect, and wait, a second time).
      try {
        lane = await bound.connectLane(serverId);
      } catch (e) {
        connectError = e ?? new Error('connect failed');
      }
      if (!lane && connectError === undefined) return false;
    }
    return new RawCall(this.core, this.options, session, bound, lane, connectError, {
      method: method as FastMethod,
      serverId,
      originalName,
      ideId: body.id as RpcId,
      params: upstream,
      res,
      priming: primes(req),
    }).run();
  }

  /**
   * A profile session's tools/call: the name the IDE was given is resolved by its profile, as the SDK path does
   * (`lanyard_call_tool` unwrapped to the real tool and its arguments). Whatever the profile does not resolve to a
   * server's tool — a search, Lanyard's own tools, a denied or unknown name, a malformed meta-tool call — is left to the
   * SDK path, which answers or refuses it exactly as before; so is a tool held back for review.
   */
  private async profiled(
    profile: ProfileView,
    params: Params,
  ): Promise<{ serverId: string; originalName: string; params: Params } | undefined> {
    if (typeof params.name !== 'string' || params.name === SEARCH_TOOLS) return undefined;
    if (params.arguments !== undefined && !isRecord(params.arguments)) return undefined;
    const routed = await profile.route(params as Params & { name: string; arguments?: Record<string, unknown> });
    if (routed?.kind !== 'tool') return undefined;
    const { serverId, originalName } = routed.origin;
    // A snapshot-listed server's calls take the SDK path, which waits for the live listing before the pin check.
    if (!this.core.pool.server(serverId) || this.core.pool.servingSnapshot(serverId) || this.core.toolRefusal(serverId, originalName))
      return undefined;
    return { serverId, originalName, params: { ...(routed.params as Params), name: originalName } };
  }

  /**
   * tools/list from the merged list's cached bytes: the SDK server would validate the whole list against its schema
   * and serialize it again (with 5,000 tools, most of the time a list took). No pagination is offered either way.
   */
  private async listTools(
    session: FastSession,
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
  ): Promise<boolean> {
    const params = body.params;
    if (idKey(body.id) === undefined || (params !== undefined && (!isRecord(params) || params.cursor !== undefined))) return false;
    if (session.id === undefined || !acceptable(req)) return false;
    // A profile's shaped list has its own bytes, serialized once per merged list and profile settings.
    const json = session.profile?.active() ? await session.profile.listJson() : await this.core.listToolsJson();
    session.listedTools();
    if (res.destroyed || res.writableEnded) return true;
    const tail = Buffer.from(`,"jsonrpc":"2.0","id":${JSON.stringify(body.id)}}`);
    res.cork();
    // The list's bytes are JSON.stringify's: one line, not scanned again.
    new SseStream(session.fast.events, res, session.id, primes(req)).finish([RESULT_HEAD, json, tail], true);
    return true;
  }

  /** The IDE answering a question asked on a raw call's stream. */
  private takeAnswer(session: FastSession, res: ServerResponse, body: Record<string, unknown>): boolean {
    const key = idKey(body.id);
    const settle = key && ('result' in body || 'error' in body) ? session.fast.answers.get(key) : undefined;
    if (!key || !settle) return false;
    session.fast.answers.delete(key);
    res.writeHead(202).end();
    settle(body as Parameters<typeof settle>[0]);
    return true;
  }
}

/** The IDE accepts what the SDK transport requires (else the SDK path answers with its own 406/415/400). */
function acceptable(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  if (!accept?.includes('application/json') || !accept.includes('text/event-stream')) return false;
  if (!isJsonContentType(req.headers['content-type'])) return false;
  const version = req.headers['mcp-protocol-version'];
  return version === undefined || (typeof version === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(version));
}

interface CallSpec {
  method: FastMethod;
  serverId: string;
  originalName: string | undefined;
  ideId: RpcId;
  params: Params;
  res: ServerResponse;
  /** The IDE's revision takes a priming event (so its stream is resumable). */
  priming: boolean;
}

/** One raw call, from the upstream POST to the IDE's answer. */
class RawCall {
  private readonly upstreamId = nextId('c');
  private readonly upstreamIdBytes: Buffer;
  private readonly ideToken: RpcId | undefined;
  private readonly deadline: Deadline;
  /** Aborts the upstream requests: the IDE left or cancelled (`left`), or the deadline expired. One per call. */
  private readonly abort = new AbortController();
  /** The IDE left (closed its request) or cancelled the call: nothing is answered. */
  private left = false;
  private readonly call: ActiveCall;
  private readonly lane: UpstreamLane;
  private readonly track: (call: ActiveCall) => () => void;
  private readonly started: number;
  /** The IDE's SSE stream: opened with the first message (or once the call takes a while), resumable when primed. */
  private readonly out: SseStream;
  private answered = false;
  /** How the call ended, for governance's record. */
  private outcome: CallOutcome = { kind: 'ok' };

  constructor(
    private readonly core: AggregatorCore,
    private readonly options: FastPathOptions,
    private readonly session: FastSession,
    private readonly bound: BoundPeer,
    connected: { lane: UpstreamLane; track(call: ActiveCall): () => void } | undefined,
    /** Connecting the bound session failed: the call is admitted, then answered with this. */
    private readonly connectError: unknown,
    private readonly spec: CallSpec,
  ) {
    // Without a lane, connectError is set: run() answers before either is used.
    this.lane = connected?.lane as UpstreamLane;
    this.track = connected?.track as (call: ActiveCall) => () => void;
    this.upstreamIdBytes = Buffer.from(JSON.stringify(this.upstreamId));
    const token = spec.params._meta?.progressToken;
    this.ideToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    this.deadline = new Deadline(bound.requestTimeoutMs, (reason) => this.abort.abort(reason));
    this.started = core.now();
    this.call = { target: this.target(), deadline: this.deadline, pending: new Set() };
    // The IDE's connection dropping before it holds an event id is the IDE leaving (nothing to resume from).
    this.out = new SseStream(session.fast.events, spec.res, session.id ?? '', spec.priming, () => this.leave());
  }

  /** False: fall back to the SDK path (nothing was written to the IDE). Governance admits the call first. */
  async run(): Promise<boolean> {
    let admission: Admission;
    try {
      const { method, serverId, originalName, params } = this.spec;
      const admitted = this.core.guard.admit({
        ide: { name: this.session.clientName, version: this.session.clientVersion },
        endpoint: this.session.endpoint ?? '/mcp',
        profileId: this.session.profile?.id,
        serverId,
        method,
        name: originalName ?? (params.uri as string | undefined),
        arguments: method === 'tools/call' ? params.arguments : undefined,
      });
      admission = isPending(admitted) ? await admitted : admitted;
    } catch (e) {
      this.deadline.clear();
      return this.fail(e);
    }
    if (this.connectError !== undefined) {
      this.deadline.clear();
      this.fail(this.connectError);
      this.core.guard.settle(admission, this.outcome);
      return true;
    }
    const answered = await this.forward();
    // A fallback is admitted and settled again by the SDK path.
    if (answered) this.core.guard.settle(admission, this.outcome);
    return answered;
  }

  private async forward(): Promise<boolean> {
    const key = idKey(this.spec.ideId)!;
    const untrack = this.track(this.call);
    this.session.fast.calls.set(key, { cancel: (reason) => this.cancel(reason) });
    const signal = this.abort.signal;
    let primer: NodeJS.Timeout | undefined;
    try {
      let response: Response;
      try {
        response = await this.lane.fetch(this.lane.url, { method: 'POST', headers: this.headers(), body: this.payload(), signal });
      } catch (e) {
        if (this.left) return this.endQuietly();
        if (this.deadline.expired) return this.fail(this.timeoutError());
        return false;
      }
      const type = (response.headers.get('content-type') ?? '').toLowerCase();
      const eventStream = type.startsWith('text/event-stream');
      if (response.status !== 200 || (!eventStream && !isJsonContentType(type))) {
        discard(response);
        return false;
      }
      this.lane.succeeded();
      // Committed to this path now (no fallback writes to the IDE after this point): a call still running after a
      // moment gets its priming event, so the IDE can resume it if its connection drops.
      primer = setTimeout(() => {
        if (!this.answered && !this.left) this.out.start();
      }, PRIME_AFTER_MS);
      primer.unref();
      const body = nodeBodyOf(response) ?? (response.body ? Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>) : undefined);
      if (!body) return this.fail(streamEnded());
      try {
        if (eventStream) await this.readEvents(body, signal);
        else await this.readJson(body);
      } catch (e) {
        if (this.answered) return true;
        if (this.left) return this.endQuietly();
        if (this.deadline.expired) return this.fail(this.timeoutError());
        return this.fail(e);
      }
      if (!this.answered) {
        if (this.left) return this.endQuietly();
        return this.fail(streamEnded());
      }
      return true;
    } finally {
      clearTimeout(primer);
      this.deadline.clear();
      this.session.fast.calls.delete(key);
      untrack();
    }
  }

  private headers(): Record<string, string> {
    const h: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (this.lane.sessionId) h['mcp-session-id'] = this.lane.sessionId;
    if (this.lane.protocolVersion) h['mcp-protocol-version'] = this.lane.protocolVersion;
    return h;
  }

  private payload(): string {
    const source = this.spec.params;
    // The IDE's params and _meta as they are, but for the IDE's progress token: ours replaces it, always asked for (as
    // the SDK path does), since progress is what restarts the deadline of a long-running call.
    const params = copyWithout(source, '_meta');
    const meta = source._meta === undefined || source._meta === null ? {} : copyWithout(source._meta, 'progressToken');
    meta.progressToken = this.upstreamId;
    params._meta = meta;
    return JSON.stringify({ jsonrpc: '2.0', id: this.upstreamId, method: this.spec.method, params });
  }

  private cancel(reason: unknown): void {
    if (this.answered || this.left) return;
    this.lane
      .notify({
        method: 'notifications/cancelled',
        params: { requestId: this.upstreamId, ...(typeof reason === 'string' ? { reason } : {}) },
      })
      .catch(() => undefined);
    this.leave();
  }

  private leave(): void {
    if (this.left) return;
    this.left = true;
    this.abort.abort();
  }

  private async readJson(body: Readable): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    await this.message(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  }

  private async readEvents(first: Readable, signal: AbortSignal): Promise<void> {
    const queue: Buffer[] = [];
    const reader = new SseReader((data) => queue.push(data));
    let body: Readable | undefined = first;
    let idle = 0;
    while (body) {
      const before = reader.lastEventId;
      for await (const chunk of body) {
        if (this.answered) continue; // the rest of the stream is drained, so its socket goes back to the pool
        reader.push(chunk as Buffer);
        while (queue.length && !this.answered) await this.message(queue.shift()!);
        queue.length = 0;
      }
      if (this.answered || this.left || reader.lastEventId === undefined) return;
      idle = reader.lastEventId === before ? idle + 1 : 0;
      if (idle >= MAX_UPSTREAM_RESUMPTIONS) return;
      // The server ended its stream before answering, after an event id: it asks its client to poll (SEP-1699). The
      // IDE is asked the same (it reconnects with its own Last-Event-ID and gets the answer from the event store).
      this.out.start();
      this.out.release();
      body = await this.resumeUpstream(reader.lastEventId, reader.retryMs, signal);
    }
  }

  /** GET with Last-Event-ID on the upstream session, after the server's retry interval; undefined when refused. */
  private async resumeUpstream(lastEventId: string, retryMs: number | undefined, signal: AbortSignal): Promise<Readable | undefined> {
    const delay = Math.min(retryMs ?? DEFAULT_UPSTREAM_RETRY_MS, MAX_UPSTREAM_RETRY_MS);
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, delay);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    const headers: Record<string, string> = { accept: 'text/event-stream', 'last-event-id': lastEventId };
    if (this.lane.sessionId) headers['mcp-session-id'] = this.lane.sessionId;
    if (this.lane.protocolVersion) headers['mcp-protocol-version'] = this.lane.protocolVersion;
    const response = await this.lane.fetch(this.lane.url, { method: 'GET', headers, signal });
    if (response.status !== 200 || !(response.headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream')) {
      discard(response);
      return undefined;
    }
    return nodeBodyOf(response) ?? (response.body ? Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>) : undefined);
  }

  /** One message from the upstream, in order. */
  private async message(data: Buffer): Promise<void> {
    const shape = scanMessage(data);
    if (!shape) {
      this.core.log.debug('fast path: upstream message is not one JSON object', { serverId: this.spec.serverId });
      return;
    }
    if (shape.id && !shape.method && shape.id.end - shape.id.start === this.upstreamIdBytes.length) {
      if (this.upstreamIdBytes.equals(data.subarray(shape.id.start, shape.id.end))) {
        await this.final(data, shape);
        return;
      }
    }
    let message: JSONRPCMessage;
    try {
      message = JSON.parse(data.toString('utf8')) as JSONRPCMessage;
    } catch {
      return;
    }
    const m = message as { method?: string; id?: unknown; params?: Record<string, unknown> };
    if (m.method === 'notifications/progress' && m.id === undefined && m.params?.progressToken === this.upstreamId) {
      this.deadline.reset();
      if (this.ideToken !== undefined && !this.left)
        this.event(JSON.stringify({ jsonrpc: '2.0', method: m.method, params: { ...m.params, progressToken: this.ideToken } }), true);
      return;
    }
    // Everything else: the bound session's SDK client handles it as if it had read it, in this call's context.
    activeCall.run(this.call, () => this.lane.inject(message));
  }

  /** The upstream's answer to this call. */
  private async final(data: Buffer, shape: MessageShape): Promise<void> {
    // Progress and log messages the server sent before its answer go out first, on the same stream.
    if (this.call.pending.size) await Promise.allSettled([...this.call.pending]);
    if (this.left) return;
    if (shape.error) {
      let error: { code?: unknown; message?: unknown; data?: unknown } = {};
      try {
        error = (JSON.parse(data.toString('utf8')) as { error?: typeof error }).error ?? {};
      } catch {
        // scanMessage found an object: unreachable in practice.
      }
      this.fail(new ProtocolError(Number(error.code) || -32603, String(error.message ?? ''), error.data));
      return;
    }
    if (!shape.result) {
      this.fail(streamEnded());
      return;
    }
    this.answered = true;
    if (shape.resultIsError) this.outcome = { kind: 'error', code: 'tool_error' };
    const id = Buffer.from(JSON.stringify(this.spec.ideId));
    const parts = [data.subarray(0, shape.id!.start), id, data.subarray(shape.id!.end)];
    this.write(parts);
    if (this.spec.method === 'tools/call') {
      this.core.activity({
        kind: 'tool_call',
        serverId: this.spec.serverId,
        summary: `${this.session.clientName} called ${this.spec.serverId} › ${this.spec.originalName}`,
        outcome: shape.resultIsError ? 'error' : 'ok',
        durationMs: this.core.now() - this.started,
      });
    }
  }

  /** The IDE's answer when the call failed, as the SDK path gives it. Always true (the call was answered). */
  private fail(e: unknown): true {
    if (this.answered || this.left) return this.endQuietly();
    this.answered = true;
    this.outcome = outcomeOf(e);
    const { serverId, ideId } = this.spec;
    let message: unknown;
    if (this.spec.method === 'tools/call') {
      const { result, error } = toolErrorResult(serverId, e);
      message = { result, jsonrpc: '2.0', id: ideId };
      this.core.activity({
        kind: 'tool_call',
        serverId,
        summary: `${this.session.clientName} called ${serverId} › ${this.spec.originalName}: failed`,
        outcome: 'error',
        durationMs: this.core.now() - this.started,
        error,
      });
    } else {
      const error = toProtocolError(serverId, e);
      message = {
        jsonrpc: '2.0',
        id: ideId,
        error: {
          code: Number.isSafeInteger(error.code) ? error.code : -32603,
          message: error.message,
          ...(error.data !== undefined ? { data: error.data } : {}),
        },
      };
    }
    this.write([Buffer.from(JSON.stringify(message))], true);
    return true;
  }

  private timeoutError(): Error {
    return unreachable(
      this.spec.serverId,
      `did not answer ${this.spec.method} within ${Math.round(this.bound.requestTimeoutMs / 1000)} s (without progress)`,
    );
  }

  /** The IDE left or cancelled: no answer (JSON-RPC sends none for a cancelled request); an open stream is ended. */
  private endQuietly(): true {
    if (!this.answered) this.outcome = { kind: 'error', code: 'cancelled' };
    this.out.finish();
    return true;
  }

  /** The answer: the last event of the IDE's stream (kept for a resuming IDE when its connection is gone). */
  private write(parts: Buffer[], oneLine = false): void {
    if (!this.out.open) this.spec.res.cork(); // headers, priming event and answer in one write
    this.out.finish(parts, oneLine);
  }

  /**
   * A message on the call's SSE stream (opened on first use); false when no IDE connection is there to take it (with
   * `keep`, it then waits in the event store for a resuming IDE).
   */
  private event(json: string, keep = false): boolean {
    if (this.answered) return false;
    return this.out.send([Buffer.from(json)], keep);
  }

  /**
   * Server→client traffic of this call, as the bound session's handlers send it: on this call's stream while it is
   * open, else to the IDE session as a whole (as the SDK path does once a request's stream is gone).
   */
  private target(): DownstreamTarget {
    const peer = (): DownstreamTarget => this.bound.peer;
    return {
      elicit: (params, signal) =>
        this.ask('elicitation/create', params, signal, this.options.humanTimeoutMs, () => peer().elicit(params, signal)) as ReturnType<
          DownstreamTarget['elicit']
        >,
      sample: (params, signal) =>
        this.ask('sampling/createMessage', params, signal, this.options.humanTimeoutMs, () => peer().sample(params, signal)) as ReturnType<
          DownstreamTarget['sample']
        >,
      listRoots: (signal) =>
        this.ask('roots/list', undefined, signal, this.options.rootsTimeoutMs, () => peer().listRoots(signal)) as ReturnType<
          DownstreamTarget['listRoots']
        >,
      notify: async (notification) => {
        if (!this.event(JSON.stringify({ jsonrpc: '2.0', ...notification }))) await peer().notify(notification);
      },
    };
  }

  /** A request to the IDE on this call's stream; its answer comes back as a POST that FastPath.takeAnswer takes. */
  private ask(
    method: string,
    params: unknown,
    signal: AbortSignal,
    timeoutMs: number,
    elsewhere: () => Promise<unknown>,
  ): Promise<unknown> {
    const id = nextId('s');
    const key = idKey(id)!;
    const answers = this.session.fast.answers;
    const sent = this.event(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) }));
    if (!sent) return elsewhere();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        answers.delete(key);
      };
      const onAbort = () => {
        done();
        this.event(
          JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: String(signal.reason) } }),
        );
        reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
      };
      const timer = setTimeout(() => {
        done();
        reject(new SdkError(SdkErrorCode.RequestTimeout, 'Request timed out', { timeout: timeoutMs }));
      }, timeoutMs);
      timer.unref?.();
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      answers.set(key, (answer) => {
        done();
        if (answer.error) reject(new ProtocolError(answer.error.code, answer.error.message, answer.error.data));
        else resolve(answer.result);
      });
    });
  }
}

/**
 * The own enumerable fields of `from` but `skip`, in order, as rest destructuring (`{ [skip]: _, ...rest }`) copies
 * them. Assigned one by one: rest and spread copies that get a property added cost about a microsecond per property on
 * Node 20 (V8 leaves the copy's map off its fast path). A "__proto__" field (JSON.parse makes it an own one) is
 * defined, not assigned, so it stays a field and is forwarded as it came.
 */
function copyWithout(from: object, skip: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const source = from as Record<string, unknown>;
  for (const key of Object.keys(from)) {
    if (key === skip) continue;
    if (key === '__proto__') Object.defineProperty(out, key, { value: source[key], enumerable: true, writable: true, configurable: true });
    else out[key] = source[key];
  }
  return out;
}

function streamEnded(): ProtocolError {
  return new ProtocolError(-32000, 'The server closed the response stream without answering.', { lanyard: STREAM_ENDED_MARK });
}

function discard(response: Response): void {
  const node = nodeBodyOf(response);
  if (node) node.resume();
  else void response.body?.cancel().catch(() => undefined);
}
