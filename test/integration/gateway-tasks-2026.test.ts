/**
 * Tasks through `/mcp` (the 2026-07-28 tasks extension, `io.modelcontextprotocol/tasks`): a 2026-07-28 IDE that
 * declares the extension calls a sandbox server's long-running tool (`reindex`, on the server that speaks both eras
 * and on the 2026-07-28-only one), gets a task under Lanyard's own id, polls it to its result and cancels another —
 * all through the real front door, the aggregator and its bound upstream sessions. IDEs that did not declare the
 * extension (2026 or 2025) get the tool's result as before. See docs/protocol.md, "Tasks through /mcp".
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admission, CallGuard } from '../../electron/broker/governance/call-guard';
import { createAggregator, type Aggregator, type AggregatorActivity } from '../../electron/broker/gateway/aggregate/aggregator';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { envelope, rpc2026, TASKS_EXTENSION, type Wire } from '../helpers/mcp2026';

describe('tasks through /mcp (2026-07-28 tasks extension)', () => {
  let sandbox: Sandbox;
  let engine: EngineHarness;
  let cleanupHome: () => Promise<void>;
  let aggregator: Aggregator;
  let gateway: GatewayServer;
  let localAuth: LocalAuth;
  const activity: AggregatorActivity[] = [];
  // What governance's seam saw (governance/call-guard.ts): the audit ledger writes one record per settled request.
  const guarded: { method: string; serverId: string; outcome?: string }[] = [];
  const guard: CallGuard = {
    admit: (call) => {
      const seen: (typeof guarded)[number] = { method: call.method, serverId: call.serverId };
      guarded.push(seen);
      return { call, started: performance.now(), seen } as Admission;
    },
    settle: (admission, outcome) => {
      (admission as Admission & { seen: (typeof guarded)[number] }).seen.outcome = outcome.kind;
    },
  };

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, modernServers: true });
    const { home, cleanup } = await tempHome();
    cleanupHome = cleanup;
    engine = await createEngine(sandbox, { home });
    await engine.signIn('alice');
    const servers = sandbox.lanyardConfig().servers;
    localAuth = await LocalAuth.open(engine.secrets);
    aggregator = createAggregator({
      tokens: engine.tokens,
      getServers: () => servers,
      isSignedIn: () => engine.identity.state.status === 'signed_in',
      signInHint: () => 'Run `lanyard login`.',
      onActivity: (e) => activity.push(e),
      version: '0.1.0-test',
      guard,
    });
    gateway = await startGatewayServer({
      port: 0,
      localAuth,
      aggregator,
      relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await aggregator?.close();
    await engine?.secrets.deleteAll().catch(() => undefined);
    await sandbox?.stop();
    await cleanupHome?.();
  });

  const capabilities = (tasks: boolean) => (tasks ? { elicitation: {}, extensions: { [TASKS_EXTENSION]: {} } } : { elicitation: {} });

  let nextId = 1;
  /** One raw 2026-07-28 request (the SDK client refuses a `resultType: "task"` answer, so the IDE is played by hand). */
  async function rpc(method: string, params: Record<string, unknown>, ide = 'Tasks IDE', tasks = true): Promise<Wire> {
    const meta = envelope(ide, capabilities(tasks));
    return (await rpc2026(`${gateway.url}/mcp`, localAuth.token, { id: nextId++, method, params, meta })).json;
  }

  async function until(taskId: string, done: (status: string) => boolean, ide = 'Tasks IDE'): Promise<Wire['result']> {
    const started = Date.now();
    for (;;) {
      const got = await rpc('tasks/get', { taskId }, ide);
      if (got.error) throw new Error(`tasks/get failed: ${got.error.message}`);
      if (done(got.result.status)) return got.result;
      if (Date.now() - started > 10_000) throw new Error(`task ${taskId} stayed ${got.result.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('server/discover offers the extension, because a server behind /mcp does', async () => {
    const discovered = await rpc('server/discover', {});
    expect(discovered.result.capabilities.extensions?.[TASKS_EXTENSION]).toEqual({});
    expect(discovered.result.capabilities.tasks).toBeUndefined();
  });

  it("a long-running tool runs as a task under Lanyard's own id, polled to its result, on both 2026 servers", async () => {
    for (const server of ['wiki', 'notes']) {
      const board = sandbox.server(server).mcp.tasks!;
      const before = board.created;
      const created = await rpc('tools/call', { name: `${server}__reindex`, arguments: { seconds: 1 } });
      expect(created.error).toBeUndefined();
      expect(created.result).toMatchObject({ resultType: 'task', status: 'working' });
      expect(typeof created.result.ttlMs).toBe('number');
      expect(created.result.requestState).toBeUndefined();
      // The task ran on the server that owns the tool; the id the IDE holds is Lanyard's, never the server's.
      expect(board.created).toBe(before + 1);
      expect(created.result.taskId).toMatch(/^lt-/);
      expect(board.taskIds()).not.toContain(created.result.taskId);

      const done = await until(created.result.taskId, (s) => s === 'completed');
      expect(done.taskId).toBe(created.result.taskId);
      expect(done.result.content[0].text).toBe(`${server}: index rebuilt in 1s`);
    }
    expect(activity.some((a) => a.summary.includes('running as a task'))).toBe(true);
  });

  it('tasks/cancel reaches the server: the task ends cancelled, a second cancel is acknowledged too', async () => {
    const created = await rpc('tools/call', { name: 'notes__reindex', arguments: { seconds: 60 } });
    const taskId = created.result.taskId as string;
    expect((await rpc('tasks/get', { taskId })).result.status).toBe('working');
    const ack = await rpc('tasks/cancel', { taskId });
    expect(ack.error).toBeUndefined();
    // An empty acknowledgement (the SDK stamps Lanyard's serverInfo in _meta): no task fields.
    const { _meta: _stamp, ...body } = ack.result as Record<string, unknown>;
    expect(body).toEqual({ resultType: 'complete' });
    expect((await until(taskId, (s) => s !== 'working')).status).toBe('cancelled');
    expect((await rpc('tasks/cancel', { taskId })).result).toMatchObject({ resultType: 'complete' });
    // Each task request to the server passed governance's seam like any forwarded call, so the ledger has it.
    expect(guarded.filter((g) => g.method === 'tasks/cancel')).toEqual([
      { method: 'tasks/cancel', serverId: 'notes', outcome: 'ok' },
      { method: 'tasks/cancel', serverId: 'notes', outcome: 'ok' },
    ]);
    expect(guarded.some((g) => g.method === 'tasks/get' && g.serverId === 'notes' && g.outcome === 'ok')).toBe(true);
  });

  it('IDEs that did not declare the extension get the tool result as before: a 2026 IDE without it, and a 2025 IDE', async () => {
    const plain = await rpc('tools/call', { name: 'wiki__reindex', arguments: { seconds: 0 } }, 'Plain IDE', false);
    expect(plain.result.resultType).toBe('complete');
    expect(plain.result.taskId).toBeUndefined();
    expect(plain.result.content[0].text).toBe('wiki: index rebuilt in 0s');

    const legacy = new Client({ name: 'Legacy IDE', version: '1.0.0' });
    await legacy.connect(
      new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${localAuth.token}` } },
      }),
    );
    const result = await legacy.callTool({ name: 'wiki__reindex', arguments: { seconds: 0 } });
    expect((result as { content: Array<{ text: string }> }).content[0]!.text).toBe('wiki: index rebuilt in 0s');
    await legacy.close();
  });
});
