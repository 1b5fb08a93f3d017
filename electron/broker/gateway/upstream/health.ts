import type { ErrorInfo } from '../../../../shared/errors';

/** Which MCP transport reached a server: Streamable HTTP, or the legacy HTTP+SSE transport of 2024-11-05 servers. */
export type UpstreamTransportKind = 'streamable-http' | 'sse';

/**
 * A server's health as the tray, the dashboard and `lanyard status` show it:
 *   - idle: nothing has asked for it yet;
 *   - connecting: the first session is being set up (or set up again after an error);
 *   - ready: the last exchange worked;
 *   - degraded: it worked before and its tools are still listed, but it is failing now (Lanyard is reconnecting), or
 *     it is too slow to list its tools in time;
 *   - error: it cannot be used; `lastError` says why and what to do.
 */
export type UpstreamHealthState = 'idle' | 'connecting' | 'ready' | 'degraded' | 'error';

export interface UpstreamHealth {
  state: UpstreamHealthState;
  /** When the state last changed (epoch ms). */
  since: number;
  lastError?: ErrorInfo | undefined;
  /** The transport that worked last; undefined until one did. */
  transport?: UpstreamTransportKind | undefined;
}

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/** 0.5 s doubling to 30 s: fast enough to notice a restarted server, slow enough not to hammer a dead one. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };

/**
 * The delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter" (half fixed, half
 * random) so that many sessions losing one server at once do not come back in lock-step.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
