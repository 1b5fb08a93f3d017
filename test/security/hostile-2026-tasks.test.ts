/**
 * Hostile input for tasks through `/mcp` (the 2026-07-28 tasks extension), through the real front door against the
 * sandbox: another IDE's task id, the same IDE name on another endpoint, a server's own task id, forged and malformed
 * ids, requests without the extension, the removed methods, a cancelled task and a task its server forgot — each gets
 * the spec's error and nothing of another IDE's task — then a seeded fuzzer (LANYARD_FUZZ_SEED=<seed> to replay) mixes
 * real, altered and foreign ids, capability shapes and headers: no 5xx, no hang, a JSON-RPC answer to every request,
 * and no answer carrying IDE A's task to anyone else. The cap on Lanyard's task ids is unit-tested
 * (test/unit/mcp2026-tasks.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator } from '../../electron/broker/gateway/aggregate/aggregator';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { envelope as envelopeOf, messageText, post2026, TASKS_EXTENSION } from '../helpers/mcp2026';
import { Rng, toJson, weirdValue } from './fuzz';

const SEED = Number(process.env.LANYARD_FUZZ_SEED ?? 0x7a5c5);
const CASES = 300;
const WORKERS = 6;
const HANG_MS = 8_000;
const NOT_FOUND = -32602;

type Wire = { result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };

const envelope = (ide: string, capabilities: unknown = { extensions: { [TASKS_EXTENSION]: {} } }) => envelopeOf(ide, capabilities, '1');

describe('hostile task input to /mcp (2026-07-28 tasks extension)', () => {
  let sandbox: Sandbox;
  let engine: EngineHarness;
  let cleanupHome: () => Promise<void>;
  let aggregator: Aggregator;
  let gateway: GatewayServer;
  let localAuth: LocalAuth;

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 3600 }, modernServers: true });
    const { home, cleanup } = await tempHome();
    cleanupHome = cleanup;
    engine = await createEngine(sandbox, { home });
    await engine.signIn('alice');
    const servers = sandbox.lanyardConfig().servers;
    localAuth = await LocalAuth.open(engine.secrets);
    aggregator = createAggregator({
      tokens: engine.tokens,
      getServers: () => servers,
      profiles: () => ({ cursor: { budget: 0 } }),
      isSignedIn: () => engine.identity.state.status === 'signed_in',
      signInHint: () => 'Run `lanyard login`.',
      requestTimeoutMs: 5_000,
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

  /** One raw request; `name` is the Mcp-Name header (the spec's routing header for task methods: the task id). */
  async function post(body: string, method: string, name?: string, path = '/mcp'): Promise<{ status: number; text: string } | 'hang'> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), HANG_MS);
    try {
      const answer = await post2026(`${gateway.url}${path}`, localAuth.token, body, {
        method,
        ...(name !== undefined ? { name } : {}),
        signal: controller.signal,
      });
      return { status: answer.status, text: messageText(answer.text, '') };
    } catch (e) {
      if (controller.signal.aborted) return 'hang';
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  let nextId = 1;
  async function rpc(
    method: string,
    params: Record<string, unknown>,
    ide = 'IDE A',
    options: { capabilities?: unknown; path?: string } = {},
  ) {
    const name = typeof params.taskId === 'string' ? params.taskId : typeof params.name === 'string' ? params.name : undefined;
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: nextId++,
      method,
      params: { ...params, _meta: envelope(ide, options.capabilities) },
    });
    const r = await post(body, method, name, options.path);
    if (r === 'hang') throw new Error(`${method} hung`);
    expect(r.status).toBeLessThan(500);
    return JSON.parse(r.text) as Wire;
  }

  const startTask = async (ide = 'IDE A', server = 'wiki', seconds = 60): Promise<string> => {
    const created = await rpc('tools/call', { name: `${server}__reindex`, arguments: { seconds } }, ide);
    expect(created.result?.resultType).toBe('task');
    return created.result!.taskId as string;
  };

  it("another IDE, the same IDE on another endpoint, a server's own id and forged ids all get -32602, and change nothing", async () => {
    const taskId = await startTask();
    const unknown = await rpc('tasks/get', { taskId: 'lt-forged-000000000000000000' });
    expect(unknown.error?.code).toBe(NOT_FOUND);

    for (const method of ['tasks/get', 'tasks/update', 'tasks/cancel']) {
      const params = method === 'tasks/update' ? { taskId, inputResponses: { confirm: { action: 'accept' } } } : { taskId };
      const foreign = await rpc(method, params, 'IDE B');
      // Exactly the answer to an id that never existed: nothing says the task is someone else's.
      expect(foreign.error).toEqual(unknown.error);
      const elsewhere = await rpc(method, params, 'IDE A', { path: '/ide/cursor/mcp' });
      expect(elsewhere.error).toEqual(unknown.error);
    }
    // IDE B's cancel did not cancel IDE A's task.
    expect((await rpc('tasks/get', { taskId })).result?.status).toBe('working');

    // The server's own ids mean nothing to Lanyard (and never reached the IDE).
    const serverIds = sandbox.server('wiki').mcp.tasks!.taskIds();
    expect(serverIds.length).toBeGreaterThan(0);
    for (const raw of serverIds) expect((await rpc('tasks/get', { taskId: raw })).error?.code).toBe(NOT_FOUND);
    await rpc('tasks/cancel', { taskId });
  });

  it('malformed ids are refused as invalid params; without the extension the spec says -32021; removed methods -32601', async () => {
    for (const taskId of ['', 'x'.repeat(5_000), 42, null, {}, ['lt-x'], undefined]) {
      const r = await rpc('tasks/get', taskId === undefined ? {} : { taskId });
      expect(r.error?.code, `taskId ${JSON.stringify(taskId)?.slice(0, 40)}`).toBe(NOT_FOUND);
    }
    const taskId = await startTask();
    for (const capabilities of [{}, { extensions: {} }, { extensions: { 'io.modelcontextprotocol/other': {} } }]) {
      const r = await rpc('tasks/get', { taskId }, 'IDE A', { capabilities });
      expect(r.error?.code).toBe(-32021);
      expect(r.error?.data).toEqual({ requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } });
    }
    for (const method of ['tasks/result', 'tasks/list']) expect((await rpc(method, { taskId })).error?.code).toBe(-32601);
    await rpc('tasks/cancel', { taskId });
  });

  it('a cancelled task stays cancelled and answerable; a task its server forgot is not found, and then forgotten by Lanyard too', async () => {
    const taskId = await startTask('IDE A', 'notes');
    await rpc('tasks/cancel', { taskId });
    expect((await rpc('tasks/get', { taskId })).result?.status).toBe('cancelled');
    expect((await rpc('tasks/result', { taskId })).error?.code).toBe(-32601);
    const update = await rpc('tasks/update', { taskId, inputResponses: { nope: { action: 'accept' } } });
    expect(update.error ?? update.result).toBeDefined();

    const lost = await startTask('IDE A', 'notes');
    sandbox.server('notes').mcp.tasks!.close(); // the server restarted, or purged the task
    expect((await rpc('tasks/get', { taskId: lost })).error?.code).toBe(NOT_FOUND);
    expect((await rpc('tasks/cancel', { taskId: lost })).error?.code).toBe(NOT_FOUND);
  });

  it(`answers ${CASES} fuzzed task requests properly and never hands IDE A's task to anyone else`, async () => {
    const real = [await startTask('IDE A', 'wiki', 30), await startTask('IDE A', 'notes', 30)];
    const serverIds = [...sandbox.server('wiki').mcp.tasks!.taskIds(), ...sandbox.server('notes').mcp.tasks!.taskIds()];
    const rng = new Rng(SEED);
    const problems: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < CASES) {
        const n = next++;
        const method = rng.pick(['tasks/get', 'tasks/update', 'tasks/cancel', 'tasks/get', 'tasks/result', 'tasks/list', 'tools/call']);
        const ide = rng.pick(['IDE A', 'IDE B', 'fuzz']);
        const pick = rng.int(5);
        const realId = rng.pick(real);
        const taskId: unknown =
          pick === 0
            ? realId
            : pick === 1
              ? `${realId.slice(0, -1 - rng.int(5))}${rng.text(1 + rng.int(5))}`
              : pick === 2
                ? rng.pick(serverIds.length ? serverIds : ['none'])
                : pick === 3
                  ? rng.text(1 + rng.int(60))
                  : weirdValue(rng);
        const capabilities = rng.chance(0.7)
          ? { extensions: { [TASKS_EXTENSION]: rng.chance(0.8) ? {} : weirdValue(rng) } }
          : rng.pick([{}, { extensions: weirdValue(rng) }, weirdValue(rng)]);
        const params: Record<string, unknown> =
          method === 'tools/call'
            ? {
                name: rng.pick(['wiki__reindex', 'notes__reindex', 'todo__echo']),
                arguments: rng.chance(0.8) ? { seconds: 0, text: 'x' } : weirdValue(rng),
              }
            : { taskId };
        if (method === 'tasks/update')
          params.inputResponses = rng.chance(0.6) ? { confirm: { action: 'accept', content: {} } } : weirdValue(rng);
        params._meta = envelope(ide, capabilities);
        const header = typeof params.taskId === 'string' ? params.taskId : typeof params.name === 'string' ? params.name : undefined;
        const name = header !== undefined && rng.chance(0.9) ? header.replace(/[^\x20-\x7e]/g, '').slice(0, 4_000) || 'x' : undefined;
        const body = toJson({ jsonrpc: '2.0', id: n, method, params });
        const r = await post(body, method, name);
        const label = `#${n} ${method} by ${ide}`;
        if (r === 'hang') {
          problems.push(`${label}: no answer within ${HANG_MS} ms`);
          continue;
        }
        if (r.status >= 500) problems.push(`${label}: HTTP ${r.status} ${r.text.slice(0, 200)} for ${body.slice(0, 300)}`);
        let parsed: (Wire & { jsonrpc?: string }) | undefined;
        try {
          parsed = JSON.parse(r.text) as typeof parsed;
        } catch {
          problems.push(`${label}: HTTP ${r.status}, not JSON: ${r.text.slice(0, 120)}`);
          continue;
        }
        if (parsed?.jsonrpc !== '2.0' || (parsed.result === undefined && typeof parsed.error?.code !== 'number'))
          problems.push(`${label}: not a JSON-RPC answer: ${r.text.slice(0, 160)}`);
        if (ide !== 'IDE A' && method !== 'tools/call' && real.includes(taskId as string) && parsed?.result !== undefined)
          problems.push(`${label}: IDE A's task answered for ${ide}: ${r.text.slice(0, 160)}`);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    expect(problems).toEqual([]);

    // Still working afterwards, for the IDE that owns the tasks.
    for (const taskId of real) expect((await rpc('tasks/get', { taskId })).result?.taskId).toBe(taskId);
    const fresh = await startTask('IDE A', 'wiki', 0.2);
    expect(fresh).toMatch(/^lt-/);
  });
});
