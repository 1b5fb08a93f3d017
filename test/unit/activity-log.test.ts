import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActivityLog } from '../../electron/broker/activity/activity-log';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'lanyard-activity-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ActivityLog', () => {
  it('keeps recent events newest first, pushes them to listeners, and writes them in batches (0600) that survive a restart', async () => {
    const file = path.join(dir, 'activity.jsonl');
    const log = new ActivityLog({ file });
    const seen: string[] = [];
    log.onEvent((e) => seen.push(e.summary));
    for (let i = 0; i < 5; i++) log.record({ kind: 'tool_call', serverId: 'todo', summary: `call ${i}`, outcome: 'ok' });
    expect(log.recent(2).map((e) => e.summary)).toEqual(['call 4', 'call 3']);
    expect(seen).toHaveLength(5);
    await log.flush();
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(5);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const reloaded = new ActivityLog({ file });
    await reloaded.load();
    expect(reloaded.recent(1)[0]).toMatchObject({ summary: 'call 4', id: 5 });
    expect(reloaded.record({ kind: 'session', summary: 'next', outcome: 'info' }).id).toBe(6);
  });

  it('a listener that throws neither loses the event nor keeps the other listeners from seeing it', async () => {
    const file = path.join(dir, 'activity.jsonl');
    const log = new ActivityLog({ file });
    const seen: string[] = [];
    log.onEvent(() => {
      throw new Error('a broken view');
    });
    log.onEvent((e) => seen.push(e.summary));
    expect(() => log.record({ kind: 'session', summary: 'Signed in', outcome: 'ok' })).not.toThrow();
    expect(seen).toEqual(['Signed in']);
    await log.flush();
    expect(await readFile(file, 'utf8')).toContain('Signed in');
  });

  it('redacts anything token-shaped that slipped into a summary, in memory and on disk', async () => {
    const file = path.join(dir, 'activity.jsonl');
    const log = new ActivityLog({ file });
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIwMHUtYWxpY2UifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    log.record({ kind: 'token', summary: `minted Bearer ${jwt}`, outcome: 'ok' });
    await log.flush();
    expect(log.recent(1)[0]!.summary).not.toContain(jwt);
    expect(await readFile(file, 'utf8')).not.toContain(jwt);
  });

  it('is bounded in memory', () => {
    const log = new ActivityLog({ capacity: 10 });
    for (let i = 0; i < 50; i++) log.record({ kind: 'tool_call', summary: `call ${i}`, outcome: 'ok' });
    expect(log.recent(500)).toHaveLength(10);
    expect(log.recent(1)[0]!.summary).toBe('call 49');
    expect(log.recent(500).map((e) => e.summary)).toEqual(Array.from({ length: 10 }, (_, i) => `call ${49 - i}`));
    expect(log.recent(3).map((e) => e.summary)).toEqual(['call 49', 'call 48', 'call 47']);
    expect(log.recent(0).map((e) => e.summary)).toEqual(log.recent(500).map((e) => e.summary));
  });

  it('keeps the newest events in order at every fill level of its ring', () => {
    const log = new ActivityLog({ capacity: 4 });
    for (let i = 1; i <= 11; i++) {
      log.record({ kind: 'tool_call', summary: `call ${i}`, outcome: 'ok' });
      const expected = Array.from({ length: Math.min(i, 4) }, (_, k) => `call ${i - k}`);
      expect(log.recent().map((e) => e.summary)).toEqual(expected);
      expect(log.recent(2).map((e) => e.summary)).toEqual(expected.slice(0, 2));
    }
  });
});
