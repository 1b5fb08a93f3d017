import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ID_JAG_WARNING_THRESHOLD,
  OKTA_MONTHLY_ID_JAG_QUOTA,
  UsageCounter,
  type QuotaWarning,
  type ResourceAppUse,
} from '../../electron/broker/exchange/usage';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'lanyard-usage-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const alice: ResourceAppUse = { idpIssuer: 'https://idp.example', subject: '00u-alice', audience: 'https://as.todo.example' };
const bob: ResourceAppUse = { ...alice, subject: '00u-bob' };
const aliceWiki: ResourceAppUse = { ...alice, audience: 'https://as.wiki.example' };

async function mint(counter: UsageCounter, times: number, serverId: string, app: ResourceAppUse): Promise<QuotaWarning[]> {
  const warnings: QuotaWarning[] = [];
  for (let i = 0; i < times; i++) {
    const w = await counter.increment(serverId, app);
    if (w) warnings.push(w);
  }
  return warnings;
}

describe('ID-JAG meter', () => {
  it('warns at 80 % of the 250 per user per resource app per month, once, with what to do', async () => {
    expect(ID_JAG_WARNING_THRESHOLD).toBe(200);
    const counter = new UsageCounter(path.join(dir, 'state.json'), () => Date.UTC(2026, 10, 3));
    expect(await mint(counter, ID_JAG_WARNING_THRESHOLD - 1, 'todo', alice)).toEqual([]);
    expect(counter.warning('todo', alice)).toBeUndefined();
    const [warning, ...more] = await mint(counter, 1, 'todo', alice);
    expect(more).toEqual([]);
    expect(warning).toMatchObject({ serverId: 'todo', count: 200, threshold: 200, quota: OKTA_MONTHLY_ID_JAG_QUOTA, month: '2026-11' });
    expect(warning!.message).toMatch(/200 of the 250 ID-JAGs/);
    expect(warning!.fix).toMatch(/longer-lived access tokens/);
    // Never again this month, however many more.
    expect(await mint(counter, 60, 'todo', alice)).toEqual([]);
    // The standing warning stays visible for status.
    expect(counter.warning('todo', alice)).toMatchObject({ count: 260 });
    expect(counter.count('todo')).toBe(260);
  });

  it('meters each user and each resource app on its own', async () => {
    const counter = new UsageCounter(undefined, () => Date.UTC(2026, 10, 3));
    expect(await mint(counter, 199, 'todo', alice)).toEqual([]);
    expect(await mint(counter, 199, 'todo', bob)).toEqual([]);
    expect(await mint(counter, 199, 'wiki', aliceWiki)).toEqual([]);
    expect(counter.count('todo')).toBe(398);
    expect(counter.countFor(alice)).toBe(199);
    // Two servers behind one authorization server share the resource app's meter.
    expect(await mint(counter, 1, 'todo-2', alice)).toHaveLength(1);
    expect(await mint(counter, 1, 'todo', bob)).toHaveLength(1);
    expect(await mint(counter, 1, 'wiki', aliceWiki)).toHaveLength(1);
  });

  it('warns once across restarts, again in a new month, and keeps no user id in the state file', async () => {
    const file = path.join(dir, 'state.json');
    let now = Date.UTC(2026, 10, 30, 23);
    const first = new UsageCounter(file, () => now);
    expect(await mint(first, 200, 'todo', alice)).toHaveLength(1);
    const restarted = new UsageCounter(file, () => now);
    await restarted.load();
    expect(restarted.countFor(alice)).toBe(200);
    expect(await mint(restarted, 5, 'todo', alice)).toEqual([]);
    expect(await readFile(file, 'utf8')).not.toContain('alice');
    now = Date.UTC(2026, 11, 1, 1);
    expect(restarted.warning('todo', alice)).toBeUndefined();
    expect(await mint(restarted, 199, 'todo', alice)).toEqual([]);
    expect(await mint(restarted, 1, 'todo', alice)).toHaveLength(1);
  });

  it('reads a state file written before the per-user meter existed', async () => {
    const file = path.join(dir, 'state.json');
    await writeFile(file, JSON.stringify({ v: 1, idJags: { '2026-11': { todo: 7 } } }));
    const counter = new UsageCounter(file, () => Date.UTC(2026, 10, 3));
    await counter.load();
    expect(counter.count('todo')).toBe(7);
    expect(await counter.increment('todo', alice)).toBeUndefined();
    expect(counter.count('todo')).toBe(8);
    expect(counter.countFor(alice)).toBe(1);
  });
});
