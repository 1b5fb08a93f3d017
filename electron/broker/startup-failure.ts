import { readdir, readFile, readlink, unlink } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { ErrorCodes } from '../../shared/errors';
import { brokerLockHolder } from './broker-lock';
import { LanyardError } from './errors';
import { readRuntimeFile } from './gateway/runtime-file';
import { defaultLanyardHome, lanyardPaths, writePrivateFile } from './paths';

/**
 * `<home>/run/startup-failure.json`: why the last broker of this home could not start (port taken, config broken).
 *
 * `lanyard stdio` starts `lanyard serve` detached, with no terminal to print to: without this file its failure would
 * read, to the IDE, as a broker that never answered. The broker writes it when start-up fails and removes it once it
 * listens; the bridge and `lanyard doctor` read it. It holds only the error's code, message and fix (no token, no
 * path beyond what the message names). Lightweight on purpose (no zod): the bridge reads it on its start-up path.
 */
export interface StartupFailure {
  pid: number;
  /** ISO time of the failure. */
  at: string;
  code: string;
  message: string;
  fix: string;
  /**
   * PORT_IN_USE only: who holds the port. `lanyard` with this home means a broker of this home is running or starting
   * (it holds the home's lock), so `lanyard stdio` waits for that one instead of failing or starting another.
   */
  heldBy?: { kind: PortOwner['kind']; home?: string };
}

export function startupFailurePath(home: string): string {
  return path.join(lanyardPaths(home).runtimeDir, 'startup-failure.json');
}

/** Records why start-up failed; never throws (the failure itself is what matters to the caller). */
export async function recordStartupFailure(home: string, error: unknown): Promise<void> {
  const failure: StartupFailure = {
    pid: process.pid,
    at: new Date().toISOString(),
    code: error instanceof LanyardError ? error.code : ErrorCodes.INTERNAL,
    message: error instanceof Error ? error.message : String(error),
    fix: error instanceof LanyardError ? error.fix : 'Run `lanyard serve` in a terminal to see the whole error.',
  };
  if (error instanceof PortInUseError)
    failure.heldBy = { kind: error.owner.kind, ...(error.owner.kind === 'lanyard' && error.owner.home ? { home: error.owner.home } : {}) };
  await writePrivateFile(startupFailurePath(home), `${JSON.stringify(failure, null, 2)}\n`).catch(() => undefined);
}

export async function clearStartupFailure(home: string): Promise<void> {
  await unlink(startupFailurePath(home)).catch(() => undefined);
}

/** The recorded failure, or undefined when there is none (or it is unreadable). */
export async function readStartupFailure(home: string): Promise<StartupFailure | undefined> {
  try {
    const parsed = JSON.parse(await readFile(startupFailurePath(home), 'utf8')) as Partial<StartupFailure>;
    if (typeof parsed.message !== 'string' || typeof parsed.fix !== 'string' || typeof parsed.at !== 'string') return undefined;
    const held = parsed.heldBy;
    const kinds: ReadonlyArray<PortOwner['kind']> = ['lanyard', 'program', 'unknown'];
    return {
      pid: typeof parsed.pid === 'number' ? parsed.pid : 0,
      at: parsed.at,
      code: typeof parsed.code === 'string' ? parsed.code : ErrorCodes.INTERNAL,
      message: parsed.message,
      fix: parsed.fix,
      ...(held && kinds.includes(held.kind)
        ? { heldBy: { kind: held.kind, ...(typeof held.home === 'string' ? { home: held.home } : {}) } }
        : {}),
    };
  } catch {
    return undefined;
  }
}

export type PortOwner =
  { kind: 'lanyard'; pid?: number; home?: string } | { kind: 'program'; pid?: number; name?: string } | { kind: 'unknown' };

/**
 * Who listens on 127.0.0.1:port: a Lanyard whose runtime file names that port (this home or the default one), a
 * Lanyard recognised by its answers (another LANYARD_HOME), or — on Linux, for this user's processes — the program
 * that holds the socket.
 */
export async function findPortOwner(
  port: number,
  options: {
    home: string;
    env?: Record<string, string | undefined>;
    /**
     * Ask the port over HTTP whether it is a Lanyard (default true). Off for a read-only check (`doctor`): a program
     * that accepts connections and never reads them would keep that connection, and its own shutdown, waiting.
     */
    askIt?: boolean;
  },
): Promise<PortOwner> {
  const homes = [...new Set([options.home, safeDefaultHome(options.env ?? process.env)].filter((h): h is string => h !== undefined))];
  for (const home of homes) {
    const found = await readRuntimeFile(home);
    if (found.state === 'running' && found.info.port === port) return { kind: 'lanyard', pid: found.info.pid, home };
  }
  const pid = await listeningPid(port);
  if (options.askIt !== false && (await answersLikeLanyard(port))) {
    // Bound but its runtime file not written yet: the broker holding this home's lock, when the pids agree.
    const holder = await brokerLockHolder(options.home);
    if (holder !== undefined && holder !== process.pid && (pid === undefined || pid === holder))
      return { kind: 'lanyard', pid: holder, home: options.home };
    return { kind: 'lanyard', ...(pid !== undefined ? { pid } : {}) };
  }
  if (pid !== undefined) {
    const name = await readFile(`/proc/${pid}/comm`, 'utf8').then(
      (t) => t.trim(),
      () => undefined,
    );
    return { kind: 'program', pid, ...(name ? { name } : {}) };
  }
  return { kind: 'unknown' };
}

/** "another Lanyard (pid 12, home /x)", "another program (nginx, pid 34)": who holds a port, for messages. */
export function describePortOwner(owner: PortOwner): string {
  const inParens = (parts: Array<string | undefined>) => {
    const shown = parts.filter((p): p is string => p !== undefined);
    return shown.length ? ` (${shown.join(', ')})` : '';
  };
  const pid = owner.kind !== 'unknown' && owner.pid !== undefined ? `pid ${owner.pid}` : undefined;
  if (owner.kind === 'lanyard')
    return `another Lanyard${inParens([pid, owner.home !== undefined ? `home ${owner.home}` : 'started with a different LANYARD_HOME'])}`;
  if (owner.kind === 'program') return `another program${inParens([owner.name, pid])}`;
  return 'another program';
}

/** What to do when `owner` holds Lanyard's port. */
export function portInUseFix(port: number, owner: PortOwner): string {
  const change = `set gateway.port to a free port in Lanyard's settings (or run \`lanyard serve --port <n>\`), then run \`lanyard connect <ide>\` again`;
  if (owner.kind === 'lanyard') return `Use that Lanyard, or quit it (tray → Quit, or Ctrl-C where \`lanyard serve\` runs); or ${change}.`;
  if (owner.kind === 'program') return `Stop that program, or ${change}.`;
  return `Find it with \`lsof -i :${port}\` (macOS, Linux) or \`netstat -ano | findstr :${port}\` (Windows) and stop it, or ${change}.`;
}

/** PORT_IN_USE that knows who holds the port (recorded in the start-up failure file for `lanyard stdio`). */
export class PortInUseError extends LanyardError {
  constructor(
    port: number,
    readonly owner: PortOwner,
    cause?: unknown,
  ) {
    super(
      ErrorCodes.PORT_IN_USE,
      `Port ${port} on 127.0.0.1 is in use by ${describePortOwner(owner)}, so Lanyard's local endpoint cannot start.`,
      portInUseFix(port, owner),
      cause !== undefined ? { cause } : undefined,
    );
  }
}

/** PORT_IN_USE naming who holds the port and what to do about it. */
export function portInUseError(port: number, owner: PortOwner, cause?: unknown): LanyardError {
  return new PortInUseError(port, owner, cause);
}

/**
 * A PORT_IN_USE from the gateway, re-explained with who holds the port; any other error unchanged. The port comes
 * from the listen error (Node sets it on EADDRINUSE), else from `fallbackPort`.
 */
export async function explainStartupError(
  error: unknown,
  options: { home: string; env?: Record<string, string | undefined>; port?: number | undefined },
): Promise<unknown> {
  if (!(error instanceof LanyardError) || error.code !== ErrorCodes.PORT_IN_USE) return error;
  const errno = error.cause as NodeJS.ErrnoException & { port?: unknown };
  if (errno?.code !== 'EADDRINUSE') return error;
  const port = typeof errno.port === 'number' ? errno.port : options.port;
  if (port === undefined || port === 0) return error;
  return portInUseError(port, await findPortOwner(port, options), errno);
}

function safeDefaultHome(env: Record<string, string | undefined>): string | undefined {
  try {
    return defaultLanyardHome(env);
  } catch {
    return undefined;
  }
}

/** Lanyard's gateway: `/healthz` is `{"ok":true}` and an unknown path names Lanyard (neither needs the token). */
async function answersLikeLanyard(port: number): Promise<boolean> {
  try {
    const health = await probeGet(port, '/healthz');
    if (health.status !== 200 || !/^\{\s*"ok"\s*:\s*true\s*\}$/.test(health.text.trim())) return false;
    const other = await probeGet(port, '/.well-known/lanyard-port-probe');
    return other.text.includes('Lanyard');
  } catch {
    return false;
  }
}

/** One GET on its own connection (no keep-alive), closed afterwards whatever happens; bounded to a second and 64 KiB. */
function probeGet(port: number, pathname: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: pathname, agent: false, headers: { connection: 'close' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.length > 65_536) req.destroy(new Error('answer too long'));
      });
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text });
      });
      res.on('error', reject);
    });
    req.setTimeout(1_000, () => req.destroy(new Error('no answer within 1 s')));
    req.on('error', reject);
  });
}

/** Linux: the pid of this user's process listening on the port (/proc/net/tcp → socket inode → /proc/<pid>/fd). */
async function listeningPid(port: number): Promise<number | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    const inodes = new Set<string>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const text = await readFile(table, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        // local_address is HEXIP:HEXPORT; state 0A is LISTEN; column 9 is the socket inode.
        if (cols[1]?.endsWith(`:${hexPort}`) && cols[3] === '0A' && cols[9]) inodes.add(cols[9]);
      }
    }
    if (inodes.size === 0) return undefined;
    const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
        if (wanted.has(target)) return Number(entry);
      }
    }
  } catch {
    // best effort: "another program" without a name
  }
  return undefined;
}

/** Whether 127.0.0.1:port can be bound right now (a quick check before the whole broker is loaded). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}
