/**
 * Lanyard's task ids (gateway/mcp-2026/tasks.ts) without a network: the cap on how many are kept (a flood of tasks
 * cannot grow the broker without bound; the oldest goes first), expiry by the server's ttlMs, the binding to one IDE,
 * and the task-handle mark the upstream transport uses (task-handles.ts). End to end: test/integration/gateway-tasks-2026.
 */
import { ProtocolError } from '@modelcontextprotocol/client';
import type { McpServer, ServerContext } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { carryTaskHandle, taskHandleOf } from '../../electron/broker/gateway/mcp-2026/task-handles';
import { MAX_TASK_ROUTES, TaskRoutes, type TaskContext } from '../../electron/broker/gateway/mcp-2026/tasks';
import type { BoundPeer } from '../../electron/broker/gateway/upstream/bound-peer';

type Handler = (params: { taskId: string }, ctx: ServerContext) => Promise<Record<string, unknown>>;

function harness() {
  let now = 1_000_000;
  const routes = new TaskRoutes(() => now);
  const handlers = new Map<string, Handler>();
  const sent: Array<{ serverId: string; method: string; params: Record<string, unknown> }> = [];
  const peer = {
    request: async (serverId: string, method: string, params: Record<string, unknown>) => {
      sent.push({ serverId, method, params });
      return { taskId: params.taskId, status: 'working', ttlMs: 60_000 };
    },
  } as unknown as BoundPeer;
  const mcp = {
    server: { setRequestHandler: (method: string, _schemas: unknown, h: Handler) => handlers.set(method, h) },
  } as unknown as McpServer;
  let ide = 'IDE A';
  routes.register(mcp, (): TaskContext => ({
    ideKey: ide,
    declared: true,
    capabilities: {},
    peer: () => peer,
    assertCanServe: () => undefined,
    guarded: (_serverId, _method, send) => send(),
  }));
  const ctx = { mcpReq: { signal: new AbortController().signal } } as unknown as ServerContext;
  const get = (taskId: string) => handlers.get('tasks/get')!({ taskId }, ctx);
  return {
    routes,
    get,
    sent,
    as: (name: string) => (ide = name),
    advance: (ms: number) => (now += ms),
  };
}

const upstream = (n: number, ttlMs: number | null = 60_000) => ({ taskId: `server-task-${n}`, status: 'working', ttlMs });

describe("Lanyard's task ids", () => {
  it('maps to the server and its own id, shows only Lanyard’s, and answers only the IDE that got it', async () => {
    const h = harness();
    const created = h.routes.created('wiki', upstream(1), 'IDE A');
    expect(created.resultType).toBe('task');
    expect(created.taskId).toMatch(/^lt-[A-Za-z0-9_-]{24}$/);
    expect(JSON.stringify(created)).not.toContain('server-task-1');
    const got = await h.get(created.taskId as string);
    expect(got.taskId).toBe(created.taskId);
    expect(h.sent.at(-1)).toMatchObject({ serverId: 'wiki', method: 'tasks/get', params: { taskId: 'server-task-1' } });

    h.as('IDE B');
    await expect(h.get(created.taskId as string)).rejects.toMatchObject({ code: -32602 });
    await expect(h.get('server-task-1')).rejects.toBeInstanceOf(ProtocolError);
  });

  it(`keeps at most ${MAX_TASK_ROUTES} ids: a flood of tasks evicts the oldest, the newest still work`, async () => {
    const h = harness();
    const first = h.routes.created('wiki', upstream(0), 'IDE A').taskId as string;
    let last = first;
    for (let i = 1; i <= MAX_TASK_ROUTES + 50; i++) last = h.routes.created('wiki', upstream(i), 'IDE A').taskId as string;
    expect(h.routes.size).toBe(MAX_TASK_ROUTES);
    await expect(h.get(first)).rejects.toMatchObject({ code: -32602 });
    expect((await h.get(last)).taskId).toBe(last);
  });

  it("expires with the server's ttlMs (at least a minute, at most a day; a day when the server gives none)", async () => {
    const h = harness();
    const short = h.routes.created('wiki', upstream(1, 5_000), 'IDE A').taskId as string;
    const unlimited = h.routes.created('wiki', upstream(2, null), 'IDE A').taskId as string;
    h.advance(59_000);
    expect((await h.get(short)).taskId).toBe(short); // kept a minute, though the server said 5 s
    h.advance(120_000); // the get refreshed it to ttlMs 60 s from then
    await expect(h.get(short)).rejects.toMatchObject({ code: -32602 });
    h.advance(23 * 60 * 60 * 1000);
    expect((await h.get(unlimited)).taskId).toBe(unlimited);
  });
});

describe('task handles through the SDK client', () => {
  it('a resultType "task" answer becomes a marked isError result, and only the mark is read back as a task', () => {
    const carried = carryTaskHandle({
      jsonrpc: '2.0',
      id: 1,
      result: { resultType: 'task', taskId: 't1', status: 'working', _meta: { x: 1 } },
    });
    const result = (carried as { result: Record<string, unknown> }).result;
    expect(result).toMatchObject({ resultType: 'complete', isError: true });
    expect(taskHandleOf(result)).toEqual({ taskId: 't1', status: 'working' });
    // An ordinary result, or one a server dressed up with a look-alike key, is not a task.
    expect(taskHandleOf({ content: [], _meta: { 'dev.lanyard/task-handle': { taskId: 't', status: 'working' } } })).toBeUndefined();
    const plain = { jsonrpc: '2.0' as const, id: 2, result: { resultType: 'complete', content: [] } };
    expect(carryTaskHandle(plain)).toBe(plain);
  });
});
