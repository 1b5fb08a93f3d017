import { createHash } from 'node:crypto';
import { lstat, mkdir, open, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * File operations on the user's IDE config files. They are the user's files, not Lanyard's: writes are atomic (a crash
 * leaves the old file or the new one), keep the file's mode, follow a symlinked file (dotfile managers) instead of
 * replacing the link, and every backup is private to the user (it may hold the local token).
 */

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The file a path names, following symlinks; the path itself when nothing exists there yet. */
export async function resolveTarget(file: string): Promise<string> {
  try {
    const st = await lstat(file);
    return st.isSymbolicLink() ? await realpath(file) : file;
  } catch {
    return file;
  }
}

/** The bytes of `file`, or undefined when it does not exist. */
export async function readBytes(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The permission bits of `file`, or undefined when it does not exist. */
export async function modeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mode & 0o777;
  } catch {
    return undefined;
  }
}

/**
 * Creates `dir` and its missing parents; returns the directories it created, deepest last, so a disconnect can remove
 * exactly those (and only while they are empty).
 */
export async function mkdirTracked(dir: string): Promise<string[]> {
  const missing: string[] = [];
  let current = path.resolve(dir);
  for (;;) {
    try {
      await stat(current);
      break;
    } catch {
      missing.unshift(current);
      const parent = path.dirname(current);
      if (parent === current) break;
      current = parent;
    }
  }
  if (missing.length > 0) await mkdir(dir, { recursive: true, mode: 0o700 });
  return missing;
}

/** `20260131T120405123Z`: sortable, and legal in file names on every OS (no colons). */
export function backupStamp(now: Date): string {
  return now.toISOString().replace(/[-:.]/g, '');
}

/**
 * Copies `bytes` (the current content of `file`) to `<file>.lanyard-backup-<timestamp>`, mode 0600, never over an
 * existing file. Returns the backup's path.
 */
export async function writeBackup(file: string, bytes: Buffer, now: Date): Promise<string> {
  const base = `${file}.lanyard-backup-${backupStamp(now)}`;
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? base : `${base}-${n}`;
    try {
      const handle = await open(candidate, 'wx', 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return candidate;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw e;
    }
  }
}
