/**
 * `<home>/run/broker.json` (how the CLI and `lanyard stdio` find the broker): private, trusted only when it is ours,
 * stale when its broker is gone, rewritten on token rotation, removed on clean shutdown.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import {
  isProcessAlive,
  publishRuntime,
  readRuntimeFile,
  removeRuntimeFile,
  runtimeFilePath,
  writeRuntimeFile,
  type RuntimeInfo,
} from '../../electron/broker/gateway/runtime-file';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';

let home: string;
const info = (over: Partial<RuntimeInfo> = {}): RuntimeInfo => ({
  pid: process.pid,
  port: 47821,
  url: 'http://127.0.0.1:47821',
  startedAt: new Date().toISOString(),
  version: '0.1.0',
  token: 'a'.repeat(43),
  ...over,
});

/** A pid that existed and is gone. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'lanyard-runtime-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe.skipIf(process.platform === 'win32')('runtime file', () => {
  it('is written 0600 in a 0700 directory and read back as running', async () => {
    await writeRuntimeFile(home, info());
    const file = runtimeFilePath(home);
    expect(file).toBe(path.join(home, 'run', 'broker.json'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect(await readRuntimeFile(home)).toEqual({ state: 'running', info: info({ startedAt: expect.any(String) as unknown as string }) });
  });

  it('is absent when there is none, stale when its process is gone', async () => {
    expect(await readRuntimeFile(home)).toEqual({ state: 'absent' });
    const pid = deadPid();
    expect(isProcessAlive(pid)).toBe(false);
    expect(isProcessAlive(process.pid)).toBe(true);
    await writeRuntimeFile(home, info({ pid }));
    expect((await readRuntimeFile(home)).state).toBe('stale');
  });

  it('is not trusted when others can read or write it, or when it is not ours to parse', async () => {
    await writeRuntimeFile(home, info());
    await chmod(runtimeFilePath(home), 0o644);
    const loose = await readRuntimeFile(home);
    expect(loose.state).toBe('invalid');
    if (loose.state === 'invalid') expect(loose.problem).toMatch(/readable or writable by other users/);
    await writeFile(runtimeFilePath(home), '{"pid":"x"}', { mode: 0o600 });
    await chmod(runtimeFilePath(home), 0o600);
    expect((await readRuntimeFile(home)).state).toBe('invalid');
  });

  it('is removed only by the broker that wrote it', async () => {
    await writeRuntimeFile(home, info({ pid: process.pid + 1_000_000 }));
    await removeRuntimeFile(home, process.pid);
    expect((await readRuntimeFile(home)).state).not.toBe('absent');
    await writeRuntimeFile(home, info());
    await removeRuntimeFile(home, process.pid);
    expect(await readRuntimeFile(home)).toEqual({ state: 'absent' });
    await removeRuntimeFile(home); // missing is fine
  });

  it('publishRuntime follows token rotation and removes the file on close', async () => {
    const auth = await LocalAuth.open(new MemorySecretStore());
    const published = await publishRuntime({ home, port: 12345, version: '9.9.9', localAuth: auth });
    let now = await readRuntimeFile(home);
    expect(now.state === 'running' && now.info).toMatchObject({
      pid: process.pid,
      port: 12345,
      url: 'http://127.0.0.1:12345',
      version: '9.9.9',
      token: auth.token,
    });
    const next = await auth.rotate();
    await expect.poll(async () => ((now = await readRuntimeFile(home)), now.state === 'running' ? now.info.token : undefined)).toBe(next);
    await published.close();
    expect(await readRuntimeFile(home)).toEqual({ state: 'absent' });
  });
});
