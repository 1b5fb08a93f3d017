import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { MAX_SESSION_EVENT_BYTES, MAX_SESSION_EVENTS, SessionEventStore } from '../../electron/broker/gateway/aggregate/sse-event-store';

const msg = (n: number): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/progress',
  params: { progressToken: 't', progress: n },
});
const raw = (text: string) => [Buffer.from(text)];

describe('SessionEventStore (the resumable streams of one /mcp IDE session)', () => {
  it("replays only the named stream's events after the id, priming events left out", async () => {
    const store = new SessionEventStore();
    const a = store.newStream();
    const b = store.newStream();
    const primeA = store.storePriming(a);
    store.storeRaw(b, raw('{"b":1}'));
    const a1 = store.storeRaw(a, raw('{"a":1}'));
    store.storeRaw(a, raw('{"a":2}'));
    expect(store.after(primeA)!.events.map((e) => Buffer.concat(e.raw!).toString())).toEqual(['{"a":1}', '{"a":2}']);
    expect(store.after(a1)!.events.map((e) => Buffer.concat(e.raw!).toString())).toEqual(['{"a":2}']);
    expect(store.isFastEvent(primeA)).toBe(true);
    expect(store.after('nope')).toBeUndefined();
  });

  it('serves the SDK transport: its priming event ({}) is an id only, its messages replay on their stream', async () => {
    const store = new SessionEventStore();
    const prime = await store.storeEvent('sdk-stream', {} as JSONRPCMessage);
    await store.storeEvent('other', msg(9));
    await store.storeEvent('sdk-stream', msg(1));
    expect(await store.getStreamIdForEventId(prime)).toBe('sdk-stream');
    expect(store.isFastEvent(prime)).toBe(false);
    const sent: unknown[] = [];
    expect(await store.replayEventsAfter(prime, { send: async (_id, m) => void sent.push(m) })).toBe('sdk-stream');
    expect(sent).toEqual([msg(1)]);
    expect(await store.getStreamIdForEventId('unknown')).toBeUndefined();
  });

  it('an id from another session is unknown: ids are the session’s own', () => {
    const mine = new SessionEventStore();
    const theirs = new SessionEventStore();
    const id = theirs.storeRaw(theirs.newStream(), raw('{"secret":true}'));
    mine.storeRaw(mine.newStream(), raw('{}'));
    expect(mine.isFastEvent(id)).toBe(false);
    expect(mine.after(id)).toBeUndefined();
  });

  it('keeps at most MAX_SESSION_EVENTS events and MAX_SESSION_EVENT_BYTES bytes, dropping the oldest', () => {
    const store = new SessionEventStore();
    const s = store.newStream();
    const first = store.storeRaw(s, raw('{}'));
    for (let i = 0; i < MAX_SESSION_EVENTS + 10; i++) store.storeRaw(s, raw(`{"n":${i}}`));
    expect(store.stats().events).toBe(MAX_SESSION_EVENTS);
    expect(store.after(first)).toBeUndefined();

    const big = Buffer.alloc(1024 * 1024, 0x61);
    const early = store.storeRaw(s, [big]);
    for (let i = 0; i < MAX_SESSION_EVENT_BYTES / big.length; i++) store.storeRaw(s, [Buffer.alloc(big.length, 0x62)]);
    expect(store.stats().bytes).toBeLessThanOrEqual(MAX_SESSION_EVENT_BYTES);
    expect(store.after(early)).toBeUndefined();
    // Larger than the whole budget: sent with an id, never kept (and nothing else is evicted for it).
    const before = store.stats();
    const huge = store.storeRaw(s, [Buffer.alloc(MAX_SESSION_EVENT_BYTES + 1)]);
    expect(store.after(huge)).toBeUndefined();
    expect(store.stats()).toEqual(before);
  });

  it('a slice counts the large buffer it keeps alive', () => {
    const store = new SessionEventStore();
    const chunk = Buffer.alloc(4 * 1024 * 1024);
    store.storeRaw(store.newStream(), [chunk.subarray(0, 10)]);
    expect(store.stats().bytes).toBeGreaterThanOrEqual(chunk.length);
  });

  it('keeps nothing once the session ended', () => {
    const store = new SessionEventStore();
    const s = store.newStream();
    const id = store.storeRaw(s, raw('{}'));
    store.track({ id: s });
    store.clear();
    expect(store.after(id)).toBeUndefined();
    expect(store.liveStream(s)).toBeUndefined();
    store.storeRaw(s, raw('{}'));
    expect(store.stats()).toEqual({ events: 0, bytes: 0, liveStreams: 0 });
  });
});
