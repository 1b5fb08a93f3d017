import { statSync } from 'node:fs';
import { readFile, stat, unlink } from 'node:fs/promises';
import { lanyardPaths, writePrivateFile } from '../paths';

/**
 * `<home>/run/broker.json`: how the CLI and `lanyard stdio` find the running broker.
 *
 * It carries the local token too, so `lanyard stdio` — started by an IDE for every session — reaches the broker
 * without a keychain round trip (or a keychain prompt) on its start-up path. That is why the file is 0600 in a 0700
 * directory, is checked for owner and mode before it is trusted, and is removed on clean shutdown. Lightweight on
 * purpose (no zod): the stdio bridge imports it on its cold-start path.
 */
export interface RuntimeInfo {
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port>` (no path). */
  url: string;
  /** ISO time the broker started listening. */
  startedAt: string;
  version: string;
  /** The local bearer token of the gateway. */
  token: string;
}

export type RuntimeLookup =
  | { state: 'running'; info: RuntimeInfo }
  | { state: 'absent' }
  /** A file left by a broker that is gone (crash, kill -9): treat as not running. */
  | { state: 'stale'; info: RuntimeInfo }
  /** Present but unusable (unparseable, wrong owner, readable by others): never trusted. */
  | { state: 'invalid'; problem: string };

export function runtimeFilePath(home: string): string {
  return lanyardPaths(home).runtimeFile;
}

export async function writeRuntimeFile(home: string, info: RuntimeInfo): Promise<void> {
  await writePrivateFile(runtimeFilePath(home), `${JSON.stringify(info, null, 2)}\n`);
}

/**
 * Removes the runtime file if it still belongs to `pid` (a newer broker that took over must keep its own). Missing is
 * fine.
 */
export async function removeRuntimeFile(home: string, pid: number = process.pid): Promise<void> {
  const found = await readRuntimeFile(home);
  if (found.state === 'absent') return;
  if ((found.state === 'running' || found.state === 'stale') && found.info.pid !== pid) return;
  await unlink(runtimeFilePath(home)).catch(() => undefined);
}

/**
 * True if a process with this pid exists and is ours. The runtime file is ours (its owner is checked) and so is the
 * broker that wrote it; after a crash its pid can be reused by another user's process, which may also hold the port
 * and answer /healthz — so a process of another user (EPERM, or on Linux a /proc entry owned by another uid, which
 * also covers root, for whom signalling anyone succeeds) counts as gone, and `lanyard stdio` starts a broker instead
 * of sending the token there.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform === 'linux' && typeof process.getuid === 'function') {
    try {
      return statSync(`/proc/${pid}`).uid === process.getuid();
    } catch {
      return true;
    }
  }
  return true;
}

/** Reads and checks the runtime file; never throws. */
export async function readRuntimeFile(home: string): Promise<RuntimeLookup> {
  const file = runtimeFilePath(home);
  let text: string;
  try {
    if (process.platform !== 'win32') {
      const st = await stat(file);
      // Another user able to write it could point `lanyard stdio` at their own port and collect the local token.
      if (typeof process.getuid === 'function' && st.uid !== process.getuid())
        return { state: 'invalid', problem: `${file} is owned by another user` };
      if ((st.mode & 0o077) !== 0)
        return { state: 'invalid', problem: `${file} is readable or writable by other users (mode ${(st.mode & 0o777).toString(8)})` };
    }
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
    return { state: 'invalid', problem: `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  const info = parseRuntimeInfo(text);
  if (!info) return { state: 'invalid', problem: `${file} is not a Lanyard runtime file` };
  return isProcessAlive(info.pid) ? { state: 'running', info } : { state: 'stale', info };
}

function parseRuntimeInfo(text: string): RuntimeInfo | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const port = r.port;
  if (typeof r.pid !== 'number' || typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  if (typeof r.token !== 'string' || r.token.length < 16 || typeof r.url !== 'string') return undefined;
  return {
    pid: r.pid,
    port,
    url: r.url,
    startedAt: typeof r.startedAt === 'string' ? r.startedAt : '',
    version: typeof r.version === 'string' ? r.version : '',
    token: r.token,
  };
}

/**
 * Publishes the running gateway: writes the runtime file, rewrites it when the local token rotates, and removes it on
 * `close()`. The broker's composition root calls this once the gateway listens (so "file present" implies "listening").
 */
export async function publishRuntime(options: {
  home: string;
  port: number;
  version: string;
  localAuth: { token: string; onRotate(listener: (token: string) => void): () => void };
  onError?: (error: unknown) => void;
}): Promise<{ info: RuntimeInfo; close(): Promise<void> }> {
  const info: RuntimeInfo = {
    pid: process.pid,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    startedAt: new Date().toISOString(),
    version: options.version,
    token: options.localAuth.token,
  };
  await writeRuntimeFile(options.home, info);
  let writes = Promise.resolve();
  const unsubscribe = options.localAuth.onRotate((token) => {
    info.token = token;
    // Serialised: two quick rotations must not land out of order.
    writes = writes.then(() => writeRuntimeFile(options.home, { ...info })).catch((e: unknown) => options.onError?.(e));
  });
  return {
    info,
    async close() {
      unsubscribe();
      await writes;
      await removeRuntimeFile(options.home, info.pid);
    },
  };
}
