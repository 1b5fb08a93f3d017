import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { SandboxOptions } from '../../test/fixtures/sandbox';
import type { SandboxCounters, SandboxReady, SandboxRequest, SandboxResponse } from './sandbox-protocol';

type Command = SandboxRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** The sandbox running in a child process (bench/sandbox-process.ts under tsx), driven over IPC. */
export interface SandboxHandle extends SandboxReady {
  pid: number;
  server(id: string): { id: string; url: string };
  counters(): Promise<SandboxCounters>;
  /** Follows an authorize URL through the IdP's sign-in page; returns the callback URL (not yet requested). */
  completeLogin(url: string, user?: string): Promise<string>;
  dropSessions(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSandboxProcess(root: string, options: SandboxOptions): Promise<SandboxHandle> {
  const child: ChildProcess = fork(path.join(root, 'bench/sandbox-process.ts'), [JSON.stringify(options)], {
    cwd: root,
    execArgv: ['--import', 'tsx', '--no-warnings'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const ready = await new Promise<SandboxReady>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the sandbox process exited (code ${code}) before it was ready`));
    child.once('exit', onExit);
    child.on('message', (raw: unknown) => {
      const message = raw as { type?: string; ready?: SandboxReady } & Partial<SandboxResponse>;
      if (message.type === 'ready' && message.ready) {
        child.off('exit', onExit);
        resolve(message.ready);
        return;
      }
      const waiter = message.id !== undefined ? pending.get(message.id) : undefined;
      if (!waiter) return;
      pending.delete(message.id!);
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new Error(`sandbox: ${(message as { error: string }).error}`));
    });
  });
  child.on('exit', () => {
    for (const w of pending.values()) w.reject(new Error('the sandbox process exited'));
    pending.clear();
  });
  const call = <T>(command: Command): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...command, id });
    });
  let stopped = false;
  return {
    ...ready,
    pid: child.pid!,
    server(id) {
      const s = ready.servers.find((x) => x.id === id);
      if (!s) throw new Error(`the sandbox has no server ${id}`);
      return s;
    },
    counters: () => call<SandboxCounters>({ cmd: 'counters' }),
    completeLogin: (url, user) => call<string>({ cmd: 'completeLogin', url, ...(user ? { user } : {}) }),
    dropSessions: () => call<void>({ cmd: 'dropSessions' }),
    async stop() {
      if (stopped) return;
      stopped = true;
      const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      await Promise.race([call<void>({ cmd: 'stop' }).catch(() => undefined), new Promise((r) => setTimeout(r, 3_000))]);
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
