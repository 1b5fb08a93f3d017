/**
 * Resumable SSE streams on the aggregated `/mcp` (2025-11-25): the fast path's answers carry a priming event (an id,
 * the retry field, empty data) and event ids; a dropped stream is resumed with GET and Last-Event-ID and replays what
 * the IDE missed — the result too — from the session's bounded event store; an id the session never issued (another
 * session's) is refused and leaks nothing. Through the real front door (local token, Host/Origin checks) against the
 * sandbox's servers, as alice, plus the sandbox's conformance server (unprotected: the suite's own server, whose
 * `test_reconnection` closes its stream mid-call). See docs/protocol.md, "Resumable streams on /mcp".
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator } from '../../electron/broker/gateway/aggregate/aggregator';
import {
  MAX_SESSION_EVENT_BYTES,
  MAX_SESSION_EVENTS,
  SSE_RETRY_MS,
  type SessionEventStore,
} from '../../electron/broker/gateway/aggregate/sse-event-store';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startConformanceServer, type SandboxConformanceServer } from '../fixtures/sandbox/conformance-server';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { messagesOf, parseSse, type SseEvent } from '../helpers/mcp2026';

describe('/mcp resumable SSE streams (2025-11-25)', () => {
  let sandbox: Sandbox;
  let conformance: SandboxConformanceServer;
  let engine: EngineHarness;
  let cleanupHome: () => Promise<void>;
  let aggregator: Aggregator;
  let gateway: GatewayServer;
  let localAuth: LocalAuth;
  const clients: Client[] = [];

  /** An IDE speaking raw HTTP, to see every event id and to drop a connection mid-stream. */
  class RawIde {
    sessionId = '';
    private next = 0;

    async init(): Promise<this> {
      const res = await this.post({
        jsonrpc: '2.0',
        id: 'init',
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-sse-ide', version: '1' } },
      });
      this.sessionId = res.headers.get('mcp-session-id') ?? '';
      await res.text();
      await (await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' })).text();
      // Lists once, as IDEs do: tool names are then known to the fast path.
      await (await this.post({ jsonrpc: '2.0', id: 'list', method: 'tools/list' })).text();
      return this;
    }

    headers(extra: Record<string, string> = {}): Record<string, string> {
      return {
        Authorization: `Bearer ${localAuth.token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25',
        ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
        ...extra,
      };
    }

    post(message: unknown, signal?: AbortSignal): Promise<Response> {
      return fetch(`${gateway.url}/mcp`, {
        method: 'POST',
        headers: this.headers(),
        body: JSON.stringify(message),
        signal: signal ?? null,
      });
    }

    async call(name: string, args: Record<string, unknown>, meta?: Record<string, unknown>): Promise<{ type: string; events: SseEvent[] }> {
      const res = await this.post({
        jsonrpc: '2.0',
        id: ++this.next,
        method: 'tools/call',
        params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
      });
      return { type: res.headers.get('content-type') ?? '', events: parseSse(await res.text()) };
    }

    resume(lastEventId: string, sessionId = this.sessionId): Promise<Response> {
      return fetch(`${gateway.url}/mcp`, {
        method: 'GET',
        headers: {
          Authorization: `Bearer ${localAuth.token}`,
          accept: 'text/event-stream',
          'mcp-protocol-version': '2025-11-25',
          'mcp-session-id': sessionId,
          'last-event-id': lastEventId,
        },
      });
    }
  }

  /** The event store of an IDE session (internal: what "bounded" means in memory). */
  function storeOf(sessionId: string): SessionEventStore {
    const sessions = (aggregator as unknown as { sessions: { sessions: Map<string, { fast: { fast: { events: SessionEventStore } } }> } })
      .sessions.sessions;
    return sessions.get(sessionId)!.fast.fast.events;
  }

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
    conformance = await startConformanceServer();
    const { home, cleanup } = await tempHome();
    cleanupHome = cleanup;
    engine = await createEngine(sandbox, { home });
    await engine.signIn('alice');
    const servers = [...sandbox.lanyardConfig().servers, { id: 'conformance', name: 'Conformance', url: conformance.url, enabled: true }];
    localAuth = await LocalAuth.open(engine.secrets);
    aggregator = createAggregator({
      // The conformance server is unprotected (no token to add); the sandbox's servers get alice's XAA tokens.
      tokens: { authorizedFetch: (id, base) => (id === 'conformance' ? (base ?? fetch) : engine.tokens.authorizedFetch(id, base)) },
      getServers: () => servers,
      isSignedIn: () => engine.identity.state.status === 'signed_in',
      signInHint: () => 'Run `lanyard login`.',
      version: '0.1.0-test',
    });
    gateway = await startGatewayServer({
      port: 0,
      localAuth,
      aggregator,
      relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
    });
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gateway?.close();
    await aggregator?.close();
    await engine?.secrets.deleteAll().catch(() => undefined);
    await conformance?.stop();
    await sandbox?.stop();
    await cleanupHome?.();
  });

  it('answers a tool call as an SSE stream: a priming event with an id and the retry field first, then the result with an id', async () => {
    const ide = await new RawIde().init();
    const answer = await ide.call('todo__echo', { text: 'hello' });
    expect(answer.type).toBe('text/event-stream');
    const [priming, result] = answer.events;
    expect(priming).toEqual({ id: expect.any(String) as unknown, retry: String(SSE_RETRY_MS), data: '' });
    expect(result!.id).toEqual(expect.any(String));
    expect(result!.id).not.toBe(priming!.id);
    expect(JSON.parse(result!.data)).toMatchObject({ id: 1, result: { content: [{ type: 'text', text: 'echo: hello' }] } });
    expect(answer.events).toHaveLength(2);
    // tools/list the same way (answered from the merged list's bytes).
    const list = parseSse(await (await ide.post({ jsonrpc: '2.0', id: 'l2', method: 'tools/list' })).text());
    expect(list[0]).toMatchObject({ retry: String(SSE_RETRY_MS), data: '' });
    expect(JSON.parse(list[1]!.data)).toMatchObject({ id: 'l2', result: { tools: expect.any(Array) as unknown } });
  });

  it('a dropped stream, resumed with Last-Event-ID, gets the progress and the result it missed', async () => {
    const ide = await new RawIde().init();
    const drop = new AbortController();
    const res = await ide.post(
      {
        jsonrpc: '2.0',
        id: 'slow',
        method: 'tools/call',
        params: { name: 'todo__slow_count', arguments: { steps: 4, delayMs: 250 }, _meta: { progressToken: 'p1' } },
      },
      drop.signal,
    );
    // Read up to the first progress event, then the connection drops (the IDE's laptop sleeps, a proxy cuts it…).
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    while (!parseSse(seen).some((e) => e.data.includes('notifications/progress')) || !seen.endsWith('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    drop.abort();
    const before = parseSse(seen);
    expect(before[0]).toMatchObject({ retry: String(SSE_RETRY_MS), data: '' });
    const lastId = before.at(-1)!.id!;
    expect(lastId).toBeTruthy();

    // The call goes on without the IDE; its result waits in the event store.
    await new Promise((r) => setTimeout(r, 1_200));
    const resumed = await ide.resume(lastId);
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('content-type')).toBe('text/event-stream');
    const after = parseSse(await resumed.text());
    const messages = messagesOf(after);
    // Only what came after the last event seen: the remaining progress, then the answer, each with its own id.
    expect(messages.filter((m) => m.method === 'notifications/progress').length).toBeGreaterThanOrEqual(1);
    expect(messages.at(-1)).toMatchObject({ id: 'slow', result: { content: [{ type: 'text', text: 'counted to 4' }] } });
    expect(after.every((e) => e.id && e.id !== lastId)).toBe(true);
    expect(new Set([...before, ...after].map((e) => e.id)).size).toBe(before.length + after.length);
  });

  it('a GET resuming while the call runs is sent the rest live, and the stream ends with the answer', async () => {
    const ide = await new RawIde().init();
    const drop = new AbortController();
    const res = await ide.post(
      { jsonrpc: '2.0', id: 'live', method: 'tools/call', params: { name: 'todo__slow_count', arguments: { steps: 3, delayMs: 400 } } },
      drop.signal,
    );
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    // No progress token: the priming event comes once the call has taken a while.
    while (!seen.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    drop.abort();
    const priming = parseSse(seen)[0]!;
    expect(priming).toMatchObject({ retry: String(SSE_RETRY_MS), data: '' });
    const started = Date.now();
    const resumed = await ide.resume(priming.id!);
    const after = messagesOf(parseSse(await resumed.text()));
    expect(after).toEqual([expect.objectContaining({ id: 'live', result: { content: [{ type: 'text', text: 'counted to 3' }] } })]);
    // Held open until the answer came (not closed empty at once).
    expect(Date.now() - started).toBeGreaterThan(100);
  });

  it("another session's event id, or one never issued, is refused (400) and replays nothing", async () => {
    const [alice1, alice2] = await Promise.all([new RawIde().init(), new RawIde().init()]);
    const secret = `only-for-session-one-${Date.now()}`;
    const answer = await alice1.call('todo__echo', { text: secret });
    const ids = answer.events.map((e) => e.id!);
    for (const id of ids) {
      const foreign = await alice2.resume(id);
      expect(foreign.status).toBe(400);
      const body = await foreign.text();
      expect(body).not.toContain(secret);
      expect(JSON.parse(body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
    }
    const unknown = await alice1.resume('not-an-event-id');
    expect(unknown.status).toBe(400);
    // The owner itself can still resume it (from the priming event: the result).
    const own = messagesOf(parseSse(await (await alice1.resume(ids[0]!)).text()));
    expect(JSON.stringify(own)).toContain(secret);
    // A session that ended keeps nothing: its id now names no session at all.
    await fetch(`${gateway.url}/mcp`, { method: 'DELETE', headers: alice1.headers() });
    expect((await alice1.resume(ids[0]!)).status).toBe(404);
  });

  it('an IDE that never resumes does not grow the store without limit (count and bytes bounded; oldest events dropped)', async () => {
    const ide = await new RawIde().init();
    const first = await ide.call('todo__echo', { text: 'first' });
    const firstId = first.events[0]!.id!;
    // By count: far more events than kept (two per call: priming and answer).
    const calls = Math.ceil(MAX_SESSION_EVENTS / 2) + 20;
    for (let i = 0; i < calls; i++) await (await ide.post({ jsonrpc: '2.0', id: `l${i}`, method: 'tools/list' })).text();
    let stats = storeOf(ide.sessionId).stats();
    expect(stats.events).toBeLessThanOrEqual(MAX_SESSION_EVENTS);
    expect((await ide.resume(firstId)).status).toBe(400);

    // By bytes: a few large results exceed the byte budget long before the count.
    const big = 'x'.repeat(1024 * 1024);
    const large = await ide.call('todo__echo', { text: `a${big}` });
    const largeId = large.events[0]!.id!;
    for (let i = 0; i < Math.ceil(MAX_SESSION_EVENT_BYTES / big.length) + 1; i++) await ide.call('todo__echo', { text: `${i}${big}` });
    stats = storeOf(ide.sessionId).stats();
    expect(stats.bytes).toBeLessThanOrEqual(MAX_SESSION_EVENT_BYTES);
    expect(stats.liveStreams).toBe(0);
    expect((await ide.resume(largeId)).status).toBe(400);
  });

  it("a server closing its stream mid-call (SEP-1699 polling): the IDE's stream is closed too, and the SDK client's resumption gets the result", async () => {
    // The raw view: the POST stream ends after the priming event; the GET with its id brings the answer.
    const ide = await new RawIde().init();
    const answer = await ide.call('conformance__test_reconnection', {});
    expect(answer.type).toBe('text/event-stream');
    expect(answer.events).toEqual([{ id: expect.any(String) as unknown, retry: String(SSE_RETRY_MS), data: '' }]);
    const after = messagesOf(parseSse(await (await ide.resume(answer.events[0]!.id!)).text()));
    expect(JSON.stringify(after.at(-1))).toContain('Reconnection test completed successfully');

    // An SDK client (as IDEs use it) resumes by itself and simply gets its result.
    const client = new Client({ name: 'sdk-ide', version: '1' }, { capabilities: {} });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${localAuth.token}` } },
      }),
    );
    clients.push(client);
    await client.listTools();
    const result = await client.callTool({ name: 'conformance__test_reconnection', arguments: {} });
    expect(JSON.stringify(result.content)).toContain('Reconnection test completed successfully');
  });
});
