import type { IncomingMessage, ServerResponse } from 'node:http';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/client';
import { SSE_RETRY_MS, type LiveStream, type SessionEventStore, type StoredEvent } from './sse-event-store';

/**
 * The fast path's answer to one IDE request as a Streamable HTTP SSE stream (docs/protocol.md, "Resumable streams on
 * /mcp"): a priming event (an id, the `retry` field, empty data) first, then each message as one event with an id,
 * each kept in the session's event store. Framing is string concatenation around bytes that are already serialized.
 *
 * The stream outlives the HTTP response it started on: when the IDE's connection drops after the priming event, the
 * call goes on, and the IDE's GET with `Last-Event-ID` is sent what it missed and then the rest, live (`resume`).
 * Without a priming event (an IDE on a revision before 2025-11-25, which cannot take empty data) a dropped
 * connection is the IDE leaving, as before.
 */

/**
 * The headers of an SSE answer: a literal per call, not a constant spread with the session id added (on Node 20, a
 * property added to a spread copy costs about a microsecond: V8 leaves the copy's map off its fast path).
 */
function sseHeaders(sessionId: string): Record<string, string> {
  return {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
    'mcp-session-id': sessionId,
  };
}
const EVENT_HEAD = 'event: message\nid: ';
const DATA = Buffer.from('\ndata: ');
const EVENT_END = Buffer.from('\n\n');

/** The IDE's revision takes a priming event (empty data): 2025-11-25 and later, as the SDK's server transport decides. */
export function primes(req: IncomingMessage): boolean {
  const version = req.headers['mcp-protocol-version'];
  return typeof version === 'string' && version >= '2025-11-25' && SUPPORTED_PROTOCOL_VERSIONS.includes(version);
}

export class SseStream implements LiveStream {
  readonly id: string;
  private sink: ServerResponse | undefined;
  private opened = false;
  private primed = false;
  private ended = false;

  /**
   * `onGone`: the IDE left in a way it cannot come back from (its connection dropped before a priming event reached
   * it); the caller stops the call.
   */
  constructor(
    private readonly events: SessionEventStore,
    res: ServerResponse,
    private readonly sessionId: string,
    private readonly priming: boolean,
    private readonly onGone: () => void = () => undefined,
  ) {
    this.id = events.newStream();
    this.attachSink(res);
  }

  /** Headers and priming event have gone out. */
  get open(): boolean {
    return this.opened;
  }

  /** An IDE connection is attached and writable. */
  get live(): boolean {
    const s = this.sink;
    return s !== undefined && !s.destroyed && !s.writableEnded;
  }

  /** Opens the stream: headers, then the priming event when the IDE's revision takes one. */
  start(): void {
    if (this.opened) return;
    this.opened = true;
    const res = this.sink;
    if (!this.ended) this.events.track(this);
    if (!res || res.headersSent || res.destroyed) return;
    res.writeHead(200, sseHeaders(this.sessionId));
    if (this.priming) {
      this.primed = true;
      res.write(`id: ${this.events.storePriming(this.id)}\nretry: ${SSE_RETRY_MS}\ndata: \n\n`);
    }
  }

  /**
   * One message (not the last, always Lanyard's own one-line JSON): kept and written when the IDE is attached. False when no IDE connection took it; with
   * `keep` it is still kept for a resuming IDE (progress: only this stream can carry it), else not (requests and
   * notifications the caller then sends on the session's GET stream instead, so a replay cannot duplicate them).
   */
  send(parts: readonly Buffer[], keep = false): boolean {
    if (this.ended) return false;
    if (!this.live) {
      if (keep && this.primed) this.events.storeRaw(this.id, parts);
      return false;
    }
    this.start();
    writeEvent(this.sink!, this.events.storeRaw(this.id, parts), parts, true);
    return true;
  }

  /**
   * The last message (the answer), or none (the call ended without one): the stream ends. `oneLine`: the bytes are
   * known to hold no line break (Lanyard's own JSON.stringify output), so they are not scanned for one.
   */
  finish(parts?: readonly Buffer[], oneLine = false): void {
    if (this.ended) return;
    this.start();
    this.ended = true;
    this.events.untrack(this);
    const id = parts ? this.events.storeRaw(this.id, parts) : undefined;
    const res = this.sink;
    this.sink = undefined;
    if (!res || res.destroyed || res.writableEnded) return;
    res.cork();
    if (parts) writeEvent(res, id!, parts, oneLine);
    res.end();
  }

  /**
   * Ends the IDE's connection while the call goes on (the server it waits on closed its own stream mid-call, asking
   * its client to poll: the IDE is asked the same, and reconnects after `retry`). Only once the IDE holds an event id
   * to resume from; else nothing happens.
   */
  release(): void {
    if (!this.primed || this.ended) return;
    const res = this.sink;
    this.sink = undefined;
    if (res && !res.destroyed && !res.writableEnded) res.end();
  }

  /** An IDE's GET with Last-Event-ID: what it missed, then the rest of the stream as it comes. */
  resume(res: ServerResponse, missed: readonly StoredEvent[]): void {
    res.writeHead(200, sseHeaders(this.sessionId));
    replay(res, missed);
    if (this.ended) {
      res.end();
      return;
    }
    // A newer connection wins: the one it replaces is dead or about to be.
    const old = this.sink;
    this.attachSink(res);
    if (old && old !== res && !old.destroyed && !old.writableEnded) old.end();
  }

  private attachSink(res: ServerResponse): void {
    this.sink = res;
    res.on('close', () => {
      if (this.sink !== res || res.writableFinished) return;
      this.sink = undefined;
      if (!this.primed && !this.ended) this.onGone();
    });
  }
}

/**
 * An IDE's GET with a `Last-Event-ID` of one of the fast path's streams: answered here (replay, then live while the
 * call runs). False leaves the request to the SDK transport: no such header, an id of its own streams or one not
 * kept (the SDK answers 400), or a request it refuses (406, a bad protocol version).
 */
export function resumeFastStream(events: SessionEventStore, sessionId: string, req: IncomingMessage, res: ServerResponse): boolean {
  const header = req.headers['last-event-id'];
  const lastEventId = Array.isArray(header) ? header[0] : header;
  if (!lastEventId || !events.isFastEvent(lastEventId)) return false;
  if (!req.headers.accept?.includes('text/event-stream')) return false;
  const version = req.headers['mcp-protocol-version'];
  if (version !== undefined && (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return false;
  const found = events.after(lastEventId);
  if (!found) return false;
  req.resume();
  const live = events.liveStream(found.stream);
  if (live instanceof SseStream) {
    live.resume(res, found.events);
    return true;
  }
  res.writeHead(200, sseHeaders(sessionId));
  replay(res, found.events);
  res.end();
  return true;
}

function replay(res: ServerResponse, missed: readonly StoredEvent[]): void {
  if (!missed.length) return;
  res.cork();
  for (const e of missed) if (e.raw) writeEvent(res, e.id, e.raw);
  res.uncork();
}

/** One SSE event. JSON may hold line breaks between tokens (never inside strings): each line becomes a data: line. */
function writeEvent(res: ServerResponse, id: string, parts: readonly Buffer[], oneLine = false): void {
  if (!oneLine && parts.some((p) => p.includes(0x0a) || p.includes(0x0d))) {
    const text = Buffer.concat(parts).toString('utf8');
    res.write(
      `${EVENT_HEAD}${id}\n${text
        .split(/\r\n|\r|\n/)
        .map((l) => `data: ${l}`)
        .join('\n')}\n\n`,
    );
    return;
  }
  res.write(EVENT_HEAD + id);
  res.write(DATA);
  for (const p of parts) res.write(p);
  res.write(EVENT_END);
}
