/**
 * The parent side of broker-child.ts: starts Lanyard headless as a separate process on a prepared LANYARD_HOME, signs
 * it in against the sandbox (driving the IdP's login page for the child's "browser"), measures its memory, and stops
 * it cleanly. Everything the child prints is kept for secret scans.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Sandbox } from '../fixtures/sandbox';

const root = path.resolve(import.meta.dirname, '../..');

export interface MemorySample {
  gc: boolean;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface BrokerProcess {
  child: ChildProcess;
  pid: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Everything the child wrote to stdout and stderr. */
  output(): string;
  alive(): boolean;
  signIn(user?: string): Promise<void>;
  /** process.memoryUsage() of the child after two full GCs (`--expose-gc`). */
  memory(): Promise<MemorySample>;
  /** Clean shutdown; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export async function startBrokerProcess(
  sandbox: Sandbox,
  home: string,
  options: { env?: Record<string, string> } = {},
): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(root, 'test/reliability/broker-child.ts')], {
    cwd: root,
    env: { ...process.env, LANYARD_HOME: home, LANYARD_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => ((exited = true), resolve(code))));
  let user = 'alice';
  const waiters = new Map<string, Array<(m: Record<string, unknown>) => void>>();
  child.on('message', (message: Record<string, unknown>) => {
    if (message.type === 'open') {
      // The child's "system browser": the sandbox IdP's sign-in page, then the redirect back to the child.
      void sandbox.idp
        .completeLogin(String(message.url), user)
        .then((callback) => fetch(callback))
        .then(() => child.send({ type: 'opened' }))
        .catch(() => child.send({ type: 'opened' }));
      return;
    }
    const list = waiters.get(String(message.type));
    const waiter = list?.shift();
    waiter?.(message);
  });
  const next = (type: string, timeoutMs = 15_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new Error(`broker child: no "${type}" within ${timeoutMs} ms\n${out.slice(-2_000)}`));
      }, timeoutMs);
      const done = (m: Record<string, unknown>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(m);
      };
      if (!waiters.has(type)) waiters.set(type, []);
      waiters.get(type)!.push(done);
      void exit.then(() => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new Error(`broker child exited before "${type}"\n${out.slice(-2_000)}`));
      });
    });
  const ready = await next('ready', 30_000);
  const url = String(ready.url);
  return {
    child,
    pid: Number(ready.pid),
    url,
    port: Number(new URL(url).port),
    output: () => out,
    alive: () => !exited && child.exitCode === null,
    async signIn(name = 'alice') {
      user = name;
      const result = next('signInResult');
      child.send({ type: 'signIn' });
      const reply = await result;
      if (!reply.ok) throw new Error(`sign-in failed in the broker child: ${String(reply.message)}`);
    },
    async memory() {
      const reply = next('memory');
      child.send({ type: 'memory' });
      return (await reply) as unknown as MemorySample;
    },
    async stop() {
      if (exited) return child.exitCode;
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}
