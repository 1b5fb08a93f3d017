import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { brokerNodeArgs } from '../../electron/cli/broker-node-flags';

let clockTicks: number | undefined;

/** CPU time (user + system) a process has used so far, in ms; undefined when /proc is not there (not Linux). */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state (field 3); utime and stime are 14, 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}

/** Resident memory now and at its peak, in MB (VmRSS, VmHWM). */
export function memoryMb(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Open file descriptors of a process (sockets included), or undefined without /proc. */
export function openFds(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

export interface BrokerProcess {
  pid: number;
  /** performance.now() when the process was spawned. */
  spawnedAt: number;
  url: string;
  port: number;
  /** The gateway's local token (from the 0600 runtime file, as `lanyard stdio` reads it). */
  token: string;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * `lanyard serve --port 0` from the built CLI, in its own process (so its memory and CPU are its own), with
 * LANYARD_HOME set; resolves once the runtime file names this process. `nodeArgs` go before the script
 * (e.g. --cpu-prof).
 */
export async function spawnBroker(options: {
  cli: string;
  home: string;
  nodeArgs?: string[];
  timeoutMs?: number;
  onSpawn?: (at: number) => void;
}): Promise<BrokerProcess> {
  const spawnedAt = performance.now();
  // The broker runs with the V8 flags Lanyard gives the brokers it starts (electron/cli/broker-node-flags.ts).
  const child = spawn(process.execPath, [...brokerNodeArgs(options.nodeArgs ?? []), options.cli, 'serve', '--port', '0'], {
    env: { ...process.env, LANYARD_HOME: options.home, LANYARD_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  options.onSpawn?.(spawnedAt);
  let errText = '';
  child.stderr!.on('data', (d: Buffer) => {
    errText = (errText + d.toString()).slice(-8_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = spawnedAt + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`lanyard serve exited with ${child.exitCode}: ${errText.trim()}`);
    const found = await readRuntimeFile(options.home);
    if (found.state === 'running' && found.info.pid === child.pid) {
      const { port, token } = found.info;
      return {
        pid: child.pid,
        spawnedAt,
        url: `http://127.0.0.1:${port}`,
        port,
        token,
        child,
        stderr: () => errText,
        async stop() {
          if (child.exitCode !== null) return;
          child.kill('SIGINT');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        },
      };
    }
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`lanyard serve did not publish its runtime file within ${options.timeoutMs ?? 20_000} ms: ${errText.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
