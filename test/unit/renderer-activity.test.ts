/** renderer/src/model/activity.ts: merging the recent list with live events, filters, rows. */
import { describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../shared/contract';
import { activityCounts, activityRowModel, filterActivity, mergeActivity } from '../../renderer/src/model/activity';
import { NOW } from './renderer-fixtures';

const event = (id: number, overrides: Partial<ActivityEvent> = {}): ActivityEvent => ({
  id,
  at: NOW - (100 - id) * 1000,
  kind: 'tool_call',
  summary: `call ${id}`,
  outcome: 'ok',
  ...overrides,
});

describe('mergeActivity', () => {
  it('newest first, each event once, capped', () => {
    const merged = mergeActivity([event(1), event(2)], [event(3), event(2, { summary: 'updated' })]);
    expect(merged.map((e) => e.id)).toEqual([3, 2, 1]);
    expect(merged[1]?.summary).toBe('updated');
    expect(
      mergeActivity(
        [],
        Array.from({ length: 10 }, (_, i) => event(i)),
        4,
      ).map((e) => e.id),
    ).toEqual([9, 8, 7, 6]);
  });

  it('orders by time, then id, whatever the arrival order', () => {
    const merged = mergeActivity([event(5, { at: NOW })], [event(6, { at: NOW - 5000 }), event(7, { at: NOW })]);
    expect(merged.map((e) => e.id)).toEqual([7, 5, 6]);
  });
});

describe('filters and rows', () => {
  const events = [
    event(1),
    event(2, { kind: 'token' }),
    event(3, { kind: 'session', outcome: 'error', error: { code: 'sign_in_failed', message: 'x', fix: 'Try again.' } }),
  ];

  it('filters by kind and counts for the chips', () => {
    expect(filterActivity(events, 'all')).toHaveLength(3);
    expect(filterActivity(events, 'token').map((e) => e.id)).toEqual([2]);
    expect(activityCounts(events)).toEqual({ all: 3, tool_call: 1, token: 1, session: 1, server: 0, ide: 0 });
  });

  it('a row has the time, the kind, the outcome, the duration and the fix', () => {
    const row = activityRowModel(
      event(3, {
        kind: 'session',
        outcome: 'error',
        durationMs: 1234,
        serverId: 'wiki',
        error: { code: 'sign_in_failed', message: 'x', fix: 'Try again.' },
      }),
      NOW,
    );
    expect(row).toMatchObject({
      kindLabel: 'Sign-in',
      outcomeLabel: 'Failed',
      duration: '1.2 s',
      serverId: 'wiki',
      error: { fix: 'Try again.' },
      ago: '2 min ago',
    });
    expect(row.iso).toBe(new Date(NOW - 97_000).toISOString());
    expect(row.time).toMatch(/^\d\d:\d\d:\d\d$/);
  });
});
