/**
 * `npm run demo` with its port held by another program (a real listener): it says who holds the port and what to do,
 * and still runs, on a free port.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import path from 'node:path';
import { expect, it } from 'vitest';
import { tempHome } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');

it('names the program on the demo port and runs on a free port instead', async () => {
  const other = createServer((_req, res) => res.end('not lanyard'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
  const port = (other.address() as { port: number }).port;
  const { home, cleanup } = await tempHome();
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
    cwd: root,
    env: { ...process.env, LANYARD_DEMO_HOME: home, LANYARD_DEMO_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await expect
      .poll(() => output.includes('Ctrl-C stops the demo.') || child.exitCode !== null, { timeout: 60_000, interval: 200 })
      .toBe(true);
    expect(output).toContain(`demo: port ${port} is in use by another program (node, pid ${process.pid})`);
    expect(output).toContain(`To run it on ${port}: stop that program`);
    const dashboard = /Dashboard\s+(http:\/\/127\.0\.0\.1:(\d+))\//.exec(output);
    expect(dashboard?.[2]).toBeTruthy();
    expect(Number(dashboard![2])).not.toBe(port);
    expect((await fetch(`${dashboard![1]}/healthz`)).status).toBe(200);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await new Promise<void>((r) => other.close(() => r()));
    await cleanup();
  }
}, 120_000);
