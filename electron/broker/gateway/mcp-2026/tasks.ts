import { randomBytes } from 'node:crypto';
import { ProtocolError, ProtocolErrorCode, type ClientCapabilities } from '@modelcontextprotocol/client';
import type { McpServer, ServerContext } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { toProtocolError } from '../aggregate/errors';
import type { BoundPeer, TaskMethod } from '../upstream/bound-peer';
import { TASKS_EXTENSION, type UpstreamTask } from './task-handles';

/**
 * The tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28:
 * https://modelcontextprotocol.github.io/ext-tasks/specification/2026-07-28/tasks.html) through the aggregated
 * endpoint. A server may answer a `tools/call` with a task; the IDE then polls `tasks/get`, answers the task's questions
 * with `tasks/update` and may `tasks/cancel` it. Behind `/mcp` many servers share one endpoint, so the task id an IDE
 * sees is Lanyard's own: random, mapped to (server, the server's task id) and bound to the IDE that got it (its
 * endpoint and client name, as a requestState is). Another IDE's id, another server's, a forged, expired or evicted one
 * all get the same -32602 "Task not found" as an id that never existed, so nothing tells them apart. See
 * docs/protocol.md, "Tasks through /mcp". Part of Lanyard's 2026-07-28 layer: the SDK (2.4.0) has no task runtime.
 */

/** Task ids Lanyard keeps at most; the oldest goes first (its IDE then gets "Task not found"). */
export const MAX_TASK_ROUTES = 10_000;
/** How long an id is kept without the server saying (a null or missing `ttlMs`), and at most. */
const MAX_ROUTE_TTL_MS = 24 * 60 * 60 * 1000;
/** The shortest time an id is kept, whatever the server's `ttlMs` says (a poll must be able to follow the create). */
const MIN_ROUTE_TTL_MS = 60 * 1000;
/** -32021 (2026-07-28): the request needs a capability the client did not declare. */
const MISSING_CAPABILITY = -32021;
const NOT_FOUND = 'Failed to retrieve task: Task not found';

interface TaskRoute {
  serverId: string;
  upstreamId: string;
  ideKey: string;
  expiresAt: number;
}

const TaskIdParams = z.looseObject({ taskId: z.string().max(200) });
const TaskResult = z.looseObject({ taskId: z.string(), status: z.string() });
const AckResult = z.looseObject({});

/** Whether a 2026-07-28 request declared the tasks extension in its per-request capabilities. */
export function declaresTasks(capabilities: ClientCapabilities): boolean {
  const extensions = (capabilities as { extensions?: unknown }).extensions;
  return !!extensions && typeof extensions === 'object' && (extensions as Record<string, unknown>)[TASKS_EXTENSION] !== undefined;
}

/** The capabilities an upstream request declares to ask for tasks: the bound session's, plus the extension. */
export function withTasksExtension(capabilities: ClientCapabilities): Record<string, unknown> {
  return { 'io.modelcontextprotocol/clientCapabilities': { ...capabilities, extensions: { [TASKS_EXTENSION]: {} } } };
}

export function missingTasksCapability(): ProtocolError {
  return new ProtocolError(MISSING_CAPABILITY, 'Missing required client capability: the io.modelcontextprotocol/tasks extension', {
    requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
  });
}

/** What the task handlers need from the endpoint serving the request. */
export interface TaskContext {
  ideKey: string;
  declared: boolean;
  /** The IDE's capabilities, mirrored as its bound sessions declare them. */
  capabilities: ClientCapabilities;
  /** The IDE's bound sessions (created on first use: a refused request creates none). */
  peer(): BoundPeer;
  assertCanServe(serverId: string): void;
  /** Governance's seam around the upstream request (the audit ledger records each one, as for every forwarded call). */
  guarded<T>(serverId: string, method: TaskMethod, send: () => Promise<T>): Promise<T>;
}

export class TaskRoutes {
  private readonly routes = new Map<string, TaskRoute>();
  private sweptAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly now: () => number) {}

  get size(): number {
    return this.routes.size;
  }

  /** A server's new task, as the IDE that started it sees it: the same task under Lanyard's id. */
  created(serverId: string, task: UpstreamTask, ideKey: string): Record<string, unknown> {
    this.sweep();
    const id = `lt-${randomBytes(18).toString('base64url')}`;
    this.routes.set(id, { serverId, upstreamId: task.taskId, ideKey, expiresAt: this.expiry(task.ttlMs) });
    while (this.routes.size > MAX_TASK_ROUTES) this.routes.delete(this.routes.keys().next().value!);
    return { ...this.shown(task, id), resultType: 'task' };
  }

  /** tasks/get, tasks/update and tasks/cancel on one per-request server, each routed to the server that owns the task. */
  register(mcp: McpServer, context: (ctx: ServerContext) => TaskContext): void {
    const server = mcp.server;
    server.setRequestHandler('tasks/get', { params: TaskIdParams }, async (params, ctx) => {
      const { id, route, task } = this.resolve(params.taskId, context(ctx));
      const result = await this.send(task, route, id, 'tasks/get', { taskId: route.upstreamId }, ctx, TaskResult);
      route.expiresAt = this.expiry((result as UpstreamTask).ttlMs);
      return this.shown(result as UpstreamTask, id);
    });
    server.setRequestHandler('tasks/update', { params: TaskIdParams }, async (params, ctx) => {
      const { id, route, task } = this.resolve(params.taskId, context(ctx));
      // The SDK lifts `inputResponses` off the params (as on a multi-round-trip retry); the keys are the server's own.
      const inputResponses = ctx.mcpReq.inputResponses ?? {};
      await this.send(task, route, id, 'tasks/update', { taskId: route.upstreamId, inputResponses }, ctx, AckResult);
      return {};
    });
    server.setRequestHandler('tasks/cancel', { params: TaskIdParams }, async (params, ctx) => {
      const { id, route, task } = this.resolve(params.taskId, context(ctx));
      await this.send(task, route, id, 'tasks/cancel', { taskId: route.upstreamId }, ctx, AckResult);
      return {};
    });
  }

  /** The route of an IDE's task id, or the spec's errors: -32021 without the extension, -32602 for any id not its own. */
  private resolve(id: string, task: TaskContext): { id: string; route: TaskRoute; task: TaskContext } {
    if (!task.declared) throw missingTasksCapability();
    this.sweep();
    const route = this.routes.get(id);
    if (route && route.expiresAt <= this.now()) this.routes.delete(id);
    if (!route || route.expiresAt <= this.now() || route.ideKey !== task.ideKey)
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, NOT_FOUND);
    task.assertCanServe(route.serverId);
    return { id, route, task };
  }

  private async send(
    task: TaskContext,
    route: TaskRoute,
    id: string,
    method: TaskMethod,
    params: Record<string, unknown>,
    ctx: ServerContext,
    resultSchema: z.ZodType<Record<string, unknown>>,
  ): Promise<Record<string, unknown>> {
    try {
      return await task.guarded(route.serverId, method, () =>
        task.peer().request(
          route.serverId,
          method,
          { ...params, _meta: withTasksExtension(task.capabilities) },
          {
            signal: ctx.mcpReq.signal,
            target: {
              elicit: refuse,
              sample: refuse,
              listRoots: refuse,
              notify: async () => undefined,
            },
            resultSchema,
          },
        ),
      );
    } catch (e) {
      // The server no longer knows the task (expired, purged, restarted): neither does Lanyard from now on.
      if (e instanceof ProtocolError && e.code === ProtocolErrorCode.InvalidParams) {
        this.routes.delete(id);
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, NOT_FOUND);
      }
      throw e instanceof ProtocolError ? e : toProtocolError(route.serverId, e);
    }
  }

  /** A server's task with Lanyard's id in place of the server's (the server's `_meta` stays with the server). */
  private shown(task: UpstreamTask, id: string): Record<string, unknown> {
    const { _meta: _serverMeta, resultType: _resultType, ...rest } = task;
    return { ...rest, taskId: id };
  }

  private expiry(ttlMs: unknown): number {
    const ttl =
      typeof ttlMs === 'number' && Number.isFinite(ttlMs)
        ? Math.min(Math.max(ttlMs, MIN_ROUTE_TTL_MS), MAX_ROUTE_TTL_MS)
        : MAX_ROUTE_TTL_MS;
    return this.now() + ttl;
  }

  private sweep(): void {
    const now = this.now();
    // At most once a second: a walk over every id on every request would make a flood of tasks quadratic.
    if (now - this.sweptAt < 1000) return;
    this.sweptAt = now;
    for (const [id, route] of this.routes) if (route.expiresAt <= now) this.routes.delete(id);
  }
}

/** A task request is not a call: the server cannot ask the IDE anything through it. */
function refuse(): Promise<never> {
  return Promise.reject(new ProtocolError(ProtocolErrorCode.InvalidRequest, 'No input can be requested here.'));
}
