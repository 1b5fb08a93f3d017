import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from './errors';

/** The keychain service name of the default (non-relocated) instance. */
export const DEFAULT_KEYCHAIN_SERVICE = 'lanyard';

type Env = Record<string, string | undefined>;

/**
 * Where one Lanyard instance keeps its files. Everything an instance writes lives under `home`, so `LANYARD_HOME`
 * relocates all of it at once (tests, demos and side-by-side instances never touch the user's real state).
 */
export interface LanyardPaths {
  home: string;
  /** Settings: servers, IdP, gateway. Non-secret; secrets live in the keychain. */
  configFile: string;
  /** 0700: files only this user may read (the running broker's port and local token). */
  runtimeDir: string;
  /** Written by the running broker (0600) so the CLI and `lanyard stdio` can find it. */
  runtimeFile: string;
  logsDir: string;
  /** Recent activity (JSON lines, no tokens). */
  activityFile: string;
  /** Non-secret persisted state, e.g. the monthly ID-JAG counters that guard the IdP's quota. */
  stateFile: string;
  /** Only used when the user opted in to `LANYARD_SECRET_STORE=file`. */
  secretsFile: string;
}

/** The per-platform default home, ignoring `LANYARD_HOME`. Paths use the target platform's separator. */
export function defaultLanyardHome(env: Env = process.env, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') {
    const appData = nonEmpty(env.APPDATA) ?? path.win32.join(nonEmpty(env.USERPROFILE) ?? homedir(), 'AppData', 'Roaming');
    return path.win32.join(appData, 'Lanyard');
  }
  const home = nonEmpty(env.HOME) ?? homedir();
  if (platform === 'darwin') return path.posix.join(home, 'Library', 'Application Support', 'Lanyard');
  // XDG Base Directory spec: a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = nonEmpty(env.XDG_CONFIG_HOME);
  const configHome = xdg !== undefined && path.posix.isAbsolute(xdg) ? xdg : path.posix.join(home, '.config');
  return path.posix.join(configHome, 'lanyard');
}

/**
 * The home of this Lanyard instance: `LANYARD_HOME` when set, else the OS default (macOS
 * `~/Library/Application Support/Lanyard`, Windows `%APPDATA%\Lanyard`, Linux `$XDG_CONFIG_HOME/lanyard` or
 * `~/.config/lanyard`).
 *
 * A relative `LANYARD_HOME` is refused rather than resolved: the tray app and a CLI started from another directory
 * would otherwise silently use two different homes (and two keychain namespaces).
 */
export function resolveLanyardHome(env: Env = process.env, platform: NodeJS.Platform = process.platform): string {
  const override = nonEmpty(env.LANYARD_HOME);
  if (override === undefined) return defaultLanyardHome(env, platform);
  const p = platform === 'win32' ? path.win32 : path.posix;
  if (!p.isAbsolute(override)) {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `LANYARD_HOME must be an absolute path (got "${override}").`,
      'Set LANYARD_HOME to an absolute directory, for example LANYARD_HOME="$HOME/lanyard-test", or unset it to use the default.',
    );
  }
  return p.normalize(override);
}

/** Every file of the instance rooted at `home`. */
export function lanyardPaths(home: string, platform: NodeJS.Platform = process.platform): LanyardPaths {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const runtimeDir = p.join(home, 'run');
  return {
    home,
    configFile: p.join(home, 'config.json'),
    runtimeDir,
    runtimeFile: p.join(runtimeDir, 'broker.json'),
    logsDir: p.join(home, 'logs'),
    activityFile: p.join(home, 'activity.jsonl'),
    stateFile: p.join(home, 'state.json'),
    secretsFile: p.join(home, 'secrets.json'),
  };
}

/**
 * The keychain service name for the instance at `home`: `lanyard` for the default home, else
 * `lanyard:<first 12 hex of sha256(home)>`.
 *
 * Keychains are per user, not per directory, so two instances with different homes (a test run next to the real app,
 * two demo instances) would otherwise read and overwrite each other's refresh tokens.
 */
export function keychainNamespace(home: string, env: Env = process.env, platform: NodeJS.Platform = process.platform): string {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const normalize = (dir: string) => {
    const n = p.resolve(dir);
    // Windows paths are case-insensitive: C:\Users\A and c:\users\a are the same instance.
    return platform === 'win32' ? n.toLowerCase() : n;
  };
  const target = normalize(home);
  if (target === normalize(defaultLanyardHome(env, platform))) return DEFAULT_KEYCHAIN_SERVICE;
  const digest = createHash('sha256').update(target, 'utf8').digest('hex').slice(0, 12);
  return `${DEFAULT_KEYCHAIN_SERVICE}:${digest}`;
}

/** Creates `dir` (and parents) if needed; a directory this call creates is 0700. Existing directories are left as they are. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes `data` to `file` atomically with mode 0600: a temp file in the same directory (0600 from its creation, so the
 * content is never readable by others even for a moment), fsync, then rename over the target. A crash leaves either the
 * old file or the new one, never a torn one. The parent directory is created 0700 when missing.
 */
export async function writePrivateFile(file: string, data: string | Uint8Array): Promise<void> {
  await ensurePrivateDir(path.dirname(file));
  await writeFileAtomic(file, data, 0o600);
}

/**
 * Writes `data` to `file` atomically with exactly `mode`: a temp file in the same directory created with that mode,
 * fsync, rename over the target. The directory must exist. Used for Lanyard's own files (0600) and for the user's IDE
 * config files (their existing mode kept).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(temp, 'wx', mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    // The umask cannot add bits, but a pre-set ACL or an odd umask could leave fewer; make the mode exact.
    if (process.platform !== 'win32') await chmod(temp, mode);
    await renameWithRetry(temp, file);
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}

/** Windows refuses to replace a file another process has open for a brief moment (antivirus, indexers): retry a few times. */
async function renameWithRetry(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (process.platform !== 'win32' || attempt >= 5 || (code !== 'EPERM' && code !== 'EBUSY' && code !== 'EACCES')) throw e;
      await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
    }
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
