/**
 * `npm run demo` must always work: it starts, prints where to go and one server per auth path, serves, and stops
 * cleanly on Ctrl-C. The API key it configures is in the keychain only — never in the config file or the output.
 * (Run inside scripts/keyring-session.sh: the demo then uses that session's keychain, which this test reads too.)
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { readRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { createSecretStore } from '../../electron/broker/secrets';
import { tempHome } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');

it('npm run demo starts the sandbox and Lanyard, prints the dashboard, every auth path and the IDE snippet, and stops cleanly on SIGINT', async () => {
  const { home, cleanup } = await tempHome();
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
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
    // One server per path, each with its path and what the user does.
    expect(output).toMatch(/todo\s+Cross-App Access\s+sign in once/);
    expect(output).toMatch(/wiki\s+Cross-App Access.*speaks MCP 2025-11-25 and 2026-07-28/);
    expect(output).toMatch(/notes\s+Cross-App Access.*speaks only MCP 2026-07-28/);
    expect(output).toMatch(/calendar\s+OAuth \(browser authorization\)\s+press Authorize once/);
    expect(output).toMatch(/search\s+API key\s+nothing: its key is already in the keychain \(X-API-Key\)/);
    expect(output).toMatch(/weather\s+No authentication/);
    // The key: in the keychain, nowhere else.
    const secrets = createSecretStore({ home });
    const key = await secrets.get('server:search:header');
    // Booleans, so that a failure never prints the key.
    expect(key?.startsWith('sk-sandbox-')).toBe(true);
    expect(output.includes(key!)).toBe(false);
    const configText = await readFile(path.join(home, 'config.json'), 'utf8');
    expect(configText.includes(key!)).toBe(false);
    const config = JSON.parse(configText) as {
      servers: Array<{ id: string; authPath?: string; header?: { name: string } }>;
      oauth?: unknown;
    };
    expect(config.servers.map((s) => [s.id, s.authPath])).toEqual([
      ['todo', 'xaa'],
      ['wiki', 'xaa'],
      ['notes', 'xaa'],
      ['calendar', 'oauth'],
      ['search', 'header'],
      ['weather', 'none'],
    ]);
    expect(config.servers.find((s) => s.id === 'search')?.header).toEqual({ name: 'X-API-Key' });
    expect(config.oauth).toEqual({
      clientMetadataUrl: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\/lanyard\/client-metadata\.json$/),
    });
    // Through the demo's own endpoint, as an IDE: the API-key and open servers answer at once, the OAuth one with its
    // authorization link (todo and wiki wait for the sign-in).
    const runtime = await readRuntimeFile(home);
    if (runtime.state !== 'running') throw new Error(`runtime file: ${runtime.state}`);
    const ide = new Client({ name: 'demo-test', version: '1.0.0' });
    await ide.connect(
      new StreamableHTTPClientTransport(new URL(`${dashboard}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${runtime.info.token}` } },
      }),
    );
    const textOf = async (name: string) =>
      ((await ide.callTool({ name, arguments: {} })).content as Array<{ text: string }>).map((c) => c.text).join('\n');
    expect(JSON.parse(await textOf('search__whoami'))).toMatchObject({ sub: 'api-key-holder' });
    expect(JSON.parse(await textOf('weather__whoami'))).toMatchObject({ sub: 'anonymous' });
    expect(await textOf('calendar__whoami')).toMatch(
      /^Authorize Calendar \(sandbox, OAuth\) in Lanyard.*\n?.*http:\/\/127\.0\.0\.1:\d+\/authorize\?/s,
    );
    await ide.close();
    const health = await fetch(`${dashboard}/healthz`);
    expect(health.status).toBe(200);
    // The MCP endpoint is live and refuses a caller without the local token.
    const mcp = await fetch(`${dashboard}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(mcp.status).toBe(401);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('Stopped.');
    // The sandbox's key died with it, and so did its keychain entry.
    expect((await createSecretStore({ home }).get('server:search:header')) === undefined).toBe(true);
    await expect(fetch(`${dashboard}/healthz`)).rejects.toThrow();
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await cleanup();
  }
}, 120_000);
