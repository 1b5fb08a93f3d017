/**
 * The Activity page's model: the recent list merged with live events, filters, and one row model per event. Pure.
 * Events carry names, codes and durations only (the broker never records arguments or tokens).
 */
import type { ActivityEvent } from '../../../shared/contract';
import { clockTime, formatDuration, relativeTime } from './format';

export type ActivityFilter = 'all' | ActivityEvent['kind'];

export const ACTIVITY_FILTERS: ReadonlyArray<{ id: ActivityFilter; label: string }> = [
  { id: 'all', label: 'All' },
  { id: 'tool_call', label: 'Tool calls' },
  { id: 'token', label: 'Tokens' },
  { id: 'session', label: 'Sign-in' },
  { id: 'server', label: 'Servers' },
  { id: 'ide', label: 'IDEs' },
];

const KIND_LABEL: Record<ActivityEvent['kind'], string> = {
  tool_call: 'Tool call',
  token: 'Token',
  session: 'Sign-in',
  server: 'Server',
  ide: 'IDE',
};

export const ACTIVITY_LIMIT = 200;

/** Newest first, each id once (an event can arrive both in the initial list and live), at most `limit`. */
export function mergeActivity(
  current: readonly ActivityEvent[],
  incoming: readonly ActivityEvent[],
  limit = ACTIVITY_LIMIT,
): ActivityEvent[] {
  const byId = new Map<number, ActivityEvent>();
  for (const e of current) byId.set(e.id, e);
  for (const e of incoming) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => b.at - a.at || b.id - a.id).slice(0, limit);
}

export function filterActivity(events: readonly ActivityEvent[], filter: ActivityFilter): ActivityEvent[] {
  return filter === 'all' ? [...events] : events.filter((e) => e.kind === filter);
}

export interface ActivityRowModel {
  id: number;
  kind: ActivityEvent['kind'];
  kindLabel: string;
  summary: string;
  outcome: ActivityEvent['outcome'];
  outcomeLabel: string;
  time: string;
  ago: string;
  iso: string;
  duration?: string;
  serverId?: string;
  error?: { message: string; fix: string };
}

export function activityRowModel(event: ActivityEvent, now: number): ActivityRowModel {
  const row: ActivityRowModel = {
    id: event.id,
    kind: event.kind,
    kindLabel: KIND_LABEL[event.kind],
    summary: event.summary,
    outcome: event.outcome,
    outcomeLabel: event.outcome === 'ok' ? 'Succeeded' : event.outcome === 'error' ? 'Failed' : 'Info',
    time: clockTime(event.at),
    // Events are always in the past; a clock that ticks every few seconds must not call a fresh one "in 2 s".
    ago: relativeTime(Math.min(event.at, now), now),
    iso: new Date(event.at).toISOString(),
  };
  if (event.durationMs !== undefined) row.duration = formatDuration(event.durationMs);
  if (event.serverId !== undefined) row.serverId = event.serverId;
  if (event.error) row.error = { message: event.error.message, fix: event.error.fix };
  return row;
}

/** Counts for the filter chips. */
export function activityCounts(events: readonly ActivityEvent[]): Record<ActivityFilter, number> {
  const counts: Record<ActivityFilter, number> = { all: events.length, tool_call: 0, token: 0, session: 0, server: 0, ide: 0 };
  for (const e of events) counts[e.kind] += 1;
  return counts;
}
