/**
 * `npm run demo` must always work: it starts, prints where to go, serves, and stops cleanly on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { tempHome } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');

it('npm run demo starts the sandbox and Lanyard, prints the dashboard and IDE snippet, and stops cleanly on SIGINT', async () => {
  const { home, cleanup } = await tempHome();
  const child = spawn(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), 'scripts/demo.ts'], {
    cwd: root,
    env: { ...process.env, LANYARD_DEMO_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start in time:\n${output}`)), 60_000);
      const check = () => {
        if (output.includes('Ctrl-C stops the demo.')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', check);
      child.on('exit', () => reject(new Error(`demo exited early:\n${output}`)));
    });
    const dashboard = /Dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(output)?.[1];
    expect(dashboard).toBeTruthy();
    expect(output).toMatch(/alice \/ alice-sandbox/);
    expect(output).toMatch(/"lanyard": \{/);
    expect(output).toMatch(/"stdio"/);
    const health = await fetch(`${dashboard}/healthz`);
    expect(health.status).toBe(200);
    // The MCP endpoint is live and refuses a caller without the local token.
    const mcp = await fetch(`${dashboard}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(mcp.status).toBe(401);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('Stopped.');
    await expect(fetch(`${dashboard}/healthz`)).rejects.toThrow();
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await cleanup();
  }
}, 120_000);
