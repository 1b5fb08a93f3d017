import { randomBytes } from 'node:crypto';
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/server';

/**
 * How long an IDE waits before it reconnects a stream Lanyard ended (the SSE `retry` field of the priming event). The
 * broker is local: a reconnection costs nothing, and a result that arrived meanwhile is replayed at once.
 */
export const SSE_RETRY_MS = 1_000;
/** Events one IDE session keeps for resumption: the newest ones, at most this many… */
export const MAX_SESSION_EVENTS = 512;
/** …and at most this many bytes of them (an event larger than this is sent but not kept). */
export const MAX_SESSION_EVENT_BYTES = 8 * 1024 * 1024;
/** Per-event bookkeeping counted on top of its data (id, framing, the entry itself). */
const EVENT_OVERHEAD = 64;

export interface StoredEvent {
  readonly id: EventId;
  readonly stream: StreamId;
  /** Position among the events kept (consecutive: kept events are never removed from the middle). */
  readonly index: number;
  readonly size: number;
  /** A fast-path event: its JSON-RPC message as the bytes that went out. */
  readonly raw?: readonly Buffer[] | undefined;
  /** An SDK-path event: the message the SDK transport sent. */
  readonly message?: JSONRPCMessage | undefined;
}

/** A fast-path stream whose call is still running: a resumed GET attaches to it (sse-stream.ts). */
export interface LiveStream {
  readonly id: StreamId;
}

/**
 * The event store of one IDE session on `/mcp` (2025-11-25 resumability, docs/protocol.md "Resumable streams on
 * /mcp"): every event sent on the session's SSE streams — the SDK transport's and the fast path's — gets an id
 * unique within the session and is kept, newest first, within a count and a byte budget, so an IDE whose stream
 * dropped reconnects with `Last-Event-ID` and is sent what it missed on that stream, and only on that stream. Memory
 * only; it goes with the session. An id this store never issued (another session's, or one evicted) is unknown: the
 * SDK answers its GET with 400, and nothing is replayed.
 *
 * Implements the SDK's EventStore for the session's NodeStreamableHTTPServerTransport; the fast path stores its
 * already-serialized bytes through `storeRaw` (no parse, no copy: the buffers are kept as they went out).
 */
export class SessionEventStore implements EventStore {
  private readonly events: StoredEvent[] = [];
  private readonly byId = new Map<EventId, StoredEvent>();
  private readonly live = new Map<StreamId, LiveStream>();
  /** Distinguishes this session's fast-path streams (and so its event ids) from any other session's. */
  private readonly nonce = randomBytes(6).toString('base64url');
  private bytes = 0;
  private counter = 0;
  private kept = 0;
  private streams = 0;
  private cleared = false;

  /** A new fast-path stream id. */
  newStream(): StreamId {
    return `${this.nonce}-f${++this.streams}`;
  }

  /** A fast-path event: the bytes of one JSON-RPC message. Returns its id. */
  storeRaw(stream: StreamId, parts: readonly Buffer[]): EventId {
    let size = EVENT_OVERHEAD;
    for (const p of parts) size += retained(p);
    return this.keep(stream, size, parts, undefined);
  }

  /** A priming event (no message): its id only marks where the stream starts. */
  storePriming(stream: StreamId): EventId {
    return this.keep(stream, EVENT_OVERHEAD, undefined, undefined);
  }

  // The SDK transport's EventStore.
  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    // The SDK stores its priming event as `{}`.
    if (Object.keys(message).length === 0) return this.storePriming(streamId);
    return this.keep(streamId, EVENT_OVERHEAD + JSON.stringify(message).length, undefined, message);
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.byId.get(eventId)?.stream;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const found = this.after(lastEventId);
    if (!found) return '';
    for (const e of found.events) {
      const message = e.message ?? (e.raw ? (JSON.parse(Buffer.concat(e.raw).toString('utf8')) as JSONRPCMessage) : undefined);
      if (message) await send(e.id, message);
    }
    return found.stream;
  }

  /** The event `eventId` names, when it is a fast-path one this session still keeps. */
  isFastEvent(eventId: string): boolean {
    const e = this.byId.get(eventId);
    return e !== undefined && e.stream.startsWith(`${this.nonce}-f`);
  }

  /** The events of `eventId`'s stream after it (priming events left out), or undefined for an id not kept. */
  after(eventId: EventId): { stream: StreamId; events: StoredEvent[] } | undefined {
    const from = this.byId.get(eventId);
    const first = this.events[0];
    if (!from || !first) return undefined;
    const events: StoredEvent[] = [];
    for (let i = from.index - first.index + 1; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (e.stream === from.stream && (e.raw || e.message)) events.push(e);
    }
    return { stream: from.stream, events };
  }

  /** A fast-path stream whose call is still running is reachable for resumption until it ends. */
  track(stream: LiveStream): void {
    if (!this.cleared) this.live.set(stream.id, stream);
  }

  untrack(stream: LiveStream): void {
    if (this.live.get(stream.id) === stream) this.live.delete(stream.id);
  }

  liveStream(id: StreamId): LiveStream | undefined {
    return this.live.get(id);
  }

  /** The session ended: nothing is kept any more. */
  clear(): void {
    this.cleared = true;
    this.events.length = 0;
    this.byId.clear();
    this.live.clear();
    this.bytes = 0;
  }

  /** What the store holds now (tests, diagnostics). */
  stats(): { events: number; bytes: number; liveStreams: number } {
    return { events: this.events.length, bytes: this.bytes, liveStreams: this.live.size };
  }

  private keep(stream: StreamId, size: number, raw: readonly Buffer[] | undefined, message: JSONRPCMessage | undefined): EventId {
    const id = `${stream}.${++this.counter}`;
    // Too large to keep (or the session is gone): sent with its id, not resumable.
    if (this.cleared || size > MAX_SESSION_EVENT_BYTES) return id;
    const event: StoredEvent = { id, stream, index: ++this.kept, size, raw, message };
    this.events.push(event);
    this.byId.set(id, event);
    this.bytes += size;
    while (this.events.length > MAX_SESSION_EVENTS || this.bytes > MAX_SESSION_EVENT_BYTES) {
      const old = this.events.shift()!;
      this.byId.delete(old.id);
      this.bytes -= old.size;
    }
    return id;
  }
}

/**
 * The memory a kept buffer holds on to: a slice of a large buffer (a socket read, a parsed stream) keeps all of it
 * alive, so it counts whole; a slice of Node's small shared pool counts as its own length.
 */
function retained(p: Buffer): number {
  return p.buffer.byteLength > Buffer.poolSize ? p.buffer.byteLength : p.length;
}
