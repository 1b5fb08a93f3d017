import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireBrokerLock, brokerLockHolder, brokerLockPath, type BrokerLock } from '../../electron/broker/broker-lock';

let home: string;

beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'lanyard-lock-'));
});

afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('the broker lock of a home', () => {
  it('is held by one broker at a time and free again once it is released', async () => {
    const first = (await acquireBrokerLock(home)) as BrokerLock;
    expect('release' in first).toBe(true);
    expect(await brokerLockHolder(home)).toBe(process.pid);
    expect(await acquireBrokerLock(home)).toEqual({ heldBy: process.pid });
    await first.release();
    expect(await brokerLockHolder(home)).toBeUndefined();
    const again = await acquireBrokerLock(home);
    expect('release' in again).toBe(true);
    await (again as BrokerLock).release();
  });

  it('is taken over from a broker that crashed (its pid is gone)', async () => {
    const file = brokerLockPath(home);
    await acquireBrokerLock(home).then((l) => (l as BrokerLock).release());
    await writeFile(file, JSON.stringify({ pid: 2 ** 22 + 12345, at: new Date().toISOString() }), { mode: 0o600 });
    expect(await brokerLockHolder(home)).toBeUndefined();
    const lock = await acquireBrokerLock(home);
    expect('release' in lock).toBe(true);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('release leaves a lock another broker took over', async () => {
    const lock = (await acquireBrokerLock(home)) as BrokerLock;
    await writeFile(brokerLockPath(home), JSON.stringify({ pid: process.ppid }), { mode: 0o600 });
    await lock.release();
    expect(await brokerLockHolder(home)).toBe(process.ppid);
  });
});
