import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isProcessAlive } from './gateway/runtime-file';
import { ensurePrivateDir, lanyardPaths } from './paths';

/**
 * `<home>/run/broker.lock`: at most one broker serves a Lanyard home. The port alone does not ensure it (a second
 * broker may be started with another port, and two that race for the same port both get far into their start-up), so
 * a broker takes this lock before it changes anything of the home (local token, runtime file, IDE configs) and keeps
 * it until it stops. It holds the owner's pid; a lock whose process is gone (a crash) is stale and taken over, as the
 * runtime file is judged (gateway/runtime-file.ts isProcessAlive).
 */
export interface BrokerLock {
  release(): Promise<void>;
}

export function brokerLockPath(home: string): string {
  return path.join(lanyardPaths(home).runtimeDir, 'broker.lock');
}

/** The pid of the live broker holding this home's lock, or undefined when none does. */
export async function brokerLockHolder(home: string): Promise<number | undefined> {
  const pid = await readLockPid(brokerLockPath(home));
  return pid !== undefined && isProcessAlive(pid) ? pid : undefined;
}

/**
 * Takes the home's lock for this process, or returns the pid of the live broker that holds it. The file is written
 * whole under a temporary name and linked into place, so its creation is atomic (link fails if it exists) and a reader
 * never sees it half written.
 */
export async function acquireBrokerLock(home: string): Promise<BrokerLock | { heldBy: number }> {
  const file = brokerLockPath(home);
  await ensurePrivateDir(path.dirname(file));
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, `${JSON.stringify({ pid: process.pid, at: new Date().toISOString() })}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, file);
        return { release: () => releaseLock(file) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 1) throw e;
      }
      const holder = await readLockPid(file);
      // A live holder (this process included: a gateway of this home already runs here) keeps the lock.
      if (holder !== undefined && isProcessAlive(holder)) return { heldBy: holder };
      // Stale (its broker crashed) or unreadable: take it over, once.
      await unlink(file).catch(() => undefined);
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function releaseLock(file: string): Promise<void> {
  // Only our own: a lock another broker took over after us stays.
  if ((await readLockPid(file)) === process.pid) await unlink(file).catch(() => undefined);
}

async function readLockPid(file: string): Promise<number | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { pid?: unknown };
    return typeof parsed.pid === 'number' && Number.isInteger(parsed.pid) ? parsed.pid : undefined;
  } catch {
    return undefined;
  }
}
