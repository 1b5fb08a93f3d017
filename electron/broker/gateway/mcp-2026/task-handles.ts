import { randomBytes } from 'node:crypto';
import { isJSONRPCResultResponse, type JSONRPCMessage } from '@modelcontextprotocol/client';

/**
 * Upstream half of the tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28:
 * https://modelcontextprotocol.github.io/ext-tasks/specification/2026-07-28/tasks.html). A server that has the
 * extension may answer a `tools/call` with a task handle (`resultType: "task"`) instead of the tool's result. The SDK
 * client (2.4.0) has no task runtime and refuses any result type but `complete` and `input_required`, losing the
 * handle. So the upstream transport (upstream/guarded-transport.ts) hands a task handle to the SDK as a marked tool
 * result, and the 2026-07-28 endpoint (tasks.ts) takes it out again. Part of Lanyard's 2026-07-28 layer: it goes when
 * the SDK client can return a CreateTaskResult itself.
 */

export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/** The `_meta` key carrying a handle; random per process, so a server cannot put one into an ordinary result. */
const HANDLE_KEY = `dev.lanyard/task-handle-${randomBytes(8).toString('hex')}`;

/** A server's task as it sent it (its id is the server's own: never shown to an IDE). */
export interface UpstreamTask {
  taskId: string;
  status: string;
  ttlMs?: number | null;
  [field: string]: unknown;
}

/**
 * A `resultType: "task"` answer turned into a tool result the SDK accepts: `isError` (so no output schema is applied,
 * and a caller that does not know the mark sees a failed call, never a silent empty success), the task in `_meta`.
 */
export function carryTaskHandle(message: JSONRPCMessage): JSONRPCMessage {
  if (!isJSONRPCResultResponse(message)) return message;
  const result = message.result as Record<string, unknown>;
  if (result.resultType !== 'task') return message;
  const { resultType: _resultType, _meta: _serverMeta, ...task } = result;
  return {
    ...message,
    result: {
      resultType: 'complete',
      content: [{ type: 'text', text: 'The server answered with a task handle that could not be passed on.' }],
      isError: true,
      _meta: { [HANDLE_KEY]: task },
    },
  };
}

/** The task a result carries (see carryTaskHandle), or undefined for an ordinary result. */
export function taskHandleOf(result: unknown): UpstreamTask | undefined {
  const meta = result && typeof result === 'object' ? (result as { _meta?: Record<string, unknown> })._meta : undefined;
  const task = meta?.[HANDLE_KEY] as Partial<UpstreamTask> | undefined;
  if (!task || typeof task !== 'object' || typeof task.taskId !== 'string' || typeof task.status !== 'string') return undefined;
  return task as UpstreamTask;
}
