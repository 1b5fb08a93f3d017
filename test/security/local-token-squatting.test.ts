/**
 * Squatting the local endpoint's fixed port. While Lanyard is not running, another local user can listen on
 * 127.0.0.1:<gateway.port> and collect what an HTTP-mode IDE config sends there: the local token. The defence is that
 * the captured token is useless by the time Lanyard runs again (a new one at every start, written into the IDE configs
 * Lanyard connected), that `lanyard token rotate` ends one on demand, and that the default `lanyard connect` writes no
 * token at all (`lanyard stdio` reads it from the owner-checked runtime file). Backups of IDE files never keep a token.
 *
 * The squatter is a child process running as uid 65534 (tests run as root). Lanyard runs in-process here (a Broker on
 * a fixed port, its keychain kept across "restarts" in memory, IDE files under a temporary home).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/client';
import { stdioBridge } from '../helpers/stdio-bridge';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type RunningGateway } from '../../electron/broker/broker';
import { unmanaged } from '../../electron/broker/config/managed';
import { openConfigStore } from '../../electron/broker/config/store';
import { createSecretStore } from '../../electron/broker/secrets';
import { readRuntimeFile, writeRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { runCli } from '../../electron/cli/cli';

const NOBODY = 65534;
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

let root: string;
let home: string;
let userHome: string;
let secrets: MemorySecretStore;
let port: number;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeEach(async () => {
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-squat-'));
  home = path.join(root, 'lanyard');
  userHome = path.join(root, 'user');
  await mkdir(userHome, { recursive: true });
  secrets = new MemorySecretStore();
  port = await freePort();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(root, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Lanyard as `lanyard serve` runs it, on the fixed port, sharing the keychain across restarts. */
async function startLanyard(): Promise<{ broker: Broker; gateway: RunningGateway; stop(): Promise<void> }> {
  const broker = await Broker.create({
    version: 'test',
    home,
    secrets,
    managed: unmanaged,
    openUrl: () => undefined,
    ide: {
      machine: { homedir: userHome, env: {}, platform: 'linux' },
      launcher: () => ({ command: process.execPath, args: ['/opt/lanyard/lanyard.js', 'stdio'] }),
    },
  });
  broker.config.update((draft) => {
    draft.gateway.port = port;
  });
  const gateway = await broker.startGateway();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await gateway.stop();
    await broker.close();
  };
  cleanups.push(stop);
  return { broker, gateway, stop };
}

const cursorFile = () => path.join(userHome, '.cursor', 'mcp.json');
const cursorEntry = async () =>
  JSON.parse(await readFile(cursorFile(), 'utf8')).mcpServers.lanyard as { url: string; headers: { Authorization: string } };

/** What an IDE does with an HTTP-mode entry: POST initialize to its URL with its headers. */
async function ideRequest(entry: { url: string; headers: Record<string, string> }): Promise<number> {
  const res = await fetch(entry.url, {
    method: 'POST',
    headers: { ...entry.headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'squat-test', version: '1' } },
    }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Another OS user holding the port: records every Authorization header it receives (one JSON line each). */
async function squatter(): Promise<{ captured(): string[]; stop(): Promise<void> }> {
  const script = `
    const http = require('node:http');
    const server = http.createServer((req, res) => {
      process.stdout.write(JSON.stringify({ uid: process.getuid(), authorization: req.headers.authorization ?? null }) + '\\n');
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    server.listen(${port}, '127.0.0.1', () => process.stdout.write('listening\\n'));`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, cwd: tmpdir(), env: {} });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('squatter did not start')), 10_000);
    child.stdout!.on('data', () => {
      if (out.includes('listening\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`squatter exited ${code}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  cleanups.push(stop);
  return {
    captured: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { uid: number; authorization: string | null })
        .map((r) => {
          expect(r.uid).toBe(NOBODY);
          return r.authorization ?? '';
        }),
    stop,
  };
}

async function until<T>(what: () => Promise<T | undefined>, label: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await what();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${label}`);
}

describe.skipIf(!asRoot)('another user holding the port while Lanyard is down', () => {
  it('captures the HTTP-mode token, which Lanyard refuses once it runs again (and the IDE config has the new one)', async () => {
    const first = await startLanyard();
    await first.broker.control.connectIde({ ide: 'cursor', stdio: false });
    const before = await cursorEntry();
    expect(before.url).toBe(`http://127.0.0.1:${port}/ide/cursor/mcp`);
    expect(await ideRequest(before)).toBe(200);
    await first.stop();

    // Lanyard is down; uid 65534 takes the port and the IDE (still configured) sends its request there.
    const squat = await squatter();
    expect(await ideRequest(await cursorEntry())).toBe(200);
    // Its record travels on its stdout pipe, which may arrive after its HTTP answer did.
    const captured = await until(async () => (squat.captured().length > 0 ? squat.captured() : undefined), 'the squatter’s record');
    expect(captured).toEqual([before.headers.Authorization]);
    await squat.stop();

    // Lanyard starts again on its port: the captured token is refused; the IDE's file was rewritten with the new one.
    await startLanyard();
    const stolen = { url: before.url, headers: { Authorization: captured[0]! } };
    expect(await ideRequest(stolen)).toBe(401);
    const after = await until(async () => {
      const e = await cursorEntry();
      return e.headers.Authorization !== before.headers.Authorization ? e : undefined;
    }, 'the IDE config to get the new token');
    expect(await ideRequest(after)).toBe(200);
  });

  it('`lanyard token rotate` ends the current token at once and rewrites the HTTP-mode configs', async () => {
    const lanyard = await startLanyard();
    await lanyard.broker.control.connectIde({ ide: 'cursor', stdio: false });
    const before = await cursorEntry();
    const result = await lanyard.broker.control.rotateLocalToken();
    expect(result.rewritten).toEqual([{ ide: 'cursor', configPath: cursorFile() }]);
    expect(await ideRequest(before)).toBe(401);
    const after = await cursorEntry();
    expect(after.headers.Authorization).not.toBe(before.headers.Authorization);
    expect(await ideRequest(after)).toBe(200);
  });
});

describe.skipIf(!asRoot || process.platform !== 'linux')('a crashed Lanyard whose pid now belongs to another user', () => {
  it('its runtime file is stale, not running: `lanyard stdio` starts a broker instead of sending the token there', async () => {
    // uid 65534 runs a process (the crashed broker's pid, reused) and holds the port, answering /healthz.
    const squat = await squatter();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { uid: NOBODY, gid: NOBODY, cwd: tmpdir(), env: {} });
    cleanups.push(() => child.kill('SIGKILL'));
    await mkdir(home, { recursive: true, mode: 0o700 });
    await writeRuntimeFile(home, {
      pid: child.pid!,
      port,
      url: `http://127.0.0.1:${port}`,
      startedAt: new Date().toISOString(),
      version: 'test',
      token: 'T'.repeat(43),
    });
    expect((await readRuntimeFile(home)).state).toBe('stale');
    await squat.stop();
  });

  it('`lanyard stdio` (the built CLI) sends the squatter nothing with a token and refuses with a clear error', async () => {
    const cli = path.resolve(import.meta.dirname, '../../out/cli/lanyard.js');
    expect(existsSync(cli), 'run `npm run -s build` first').toBe(true);
    const squat = await squatter();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { uid: NOBODY, gid: NOBODY, cwd: tmpdir(), env: {} });
    cleanups.push(() => child.kill('SIGKILL'));
    await mkdir(home, { recursive: true, mode: 0o700 });
    // Lanyard's configured port is the one the squatter holds; the runtime file names the squatter's pid and port.
    const config = openConfigStore(home);
    config.update((draft) => {
      draft.gateway.port = port;
    });
    config.close();
    const token = 'T'.repeat(43);
    await writeRuntimeFile(home, {
      pid: child.pid!,
      port,
      url: `http://127.0.0.1:${port}`,
      startedAt: new Date().toISOString(),
      version: 'test',
      token,
    });
    cleanups.push(() =>
      createSecretStore({ home })
        .deleteAll()
        .catch(() => undefined),
    );

    // An IDE starting the bridge, as an SDK client over stdio.
    const { transport, stderr: bridgeStderr } = stdioBridge(cli, { home });
    const client = new Client({ name: 'squat-ide', version: '1' });
    await expect(client.connect(transport)).rejects.toThrow();
    await client.close().catch(() => undefined);
    const stderr = bridgeStderr();

    // The bridge refused: the detached broker it started could not take the squatted port, and it said so.
    expect(stderr).toMatch(new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is in use by another program`));
    expect(stderr).toMatch(/Fix: /);
    expect(stderr).not.toContain(token);
    // Whatever reached the squatter (a health probe at most) carried no Authorization header.
    expect(squat.captured().filter((a) => a !== '')).toEqual([]);
    await squat.stop();
  });
});

describe('the default `lanyard connect` cannot be squatted', () => {
  it('writes `lanyard stdio` and no token at all, for every IDE', async () => {
    for (const ide of ['cursor', 'vscode', 'claude-code', 'claude-desktop', 'windsurf']) {
      let stdout = '';
      const code = await runCli(['connect', ide, '--json'], {
        io: { out: (t) => void (stdout += t), err: () => undefined, stdin: Readable.from(['']), interactive: false },
        env: { LANYARD_HOME: home, HOME: userHome, LANYARD_MANAGED_CONFIG: path.join(root, 'managed.json') },
        version: '9.9.9',
        platform: 'linux',
        homedir: userHome,
        secrets,
        script: path.join(root, 'lanyard.js'),
        openUrl: async () => undefined,
      });
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ ide, transport: 'stdio', changed: true });
      const written = await readFile(JSON.parse(stdout).configPath, 'utf8');
      expect(written).not.toMatch(/Bearer|Authorization|127\.0\.0\.1/);
    }
    // Not even created in the keychain: nothing exists that could be sent to a squatter.
    expect(await secrets.get('gateway:local_token')).toBeUndefined();
  });
});

describe('IDE config backups never keep the local token', () => {
  it('after connect --http, rotations, a reconnect and disconnect, no backup holds any token Lanyard issued', async () => {
    await mkdir(path.dirname(cursorFile()), { recursive: true });
    const { writeFile } = await import('node:fs/promises');
    // The user's file already has Lanyard's entry with a token (e.g. from an older install) and another server.
    await writeFile(
      cursorFile(),
      JSON.stringify(
        {
          mcpServers: {
            github: { url: 'https://api.example.com/mcp' },
            lanyard: { url: 'http://127.0.0.1:1/mcp', headers: { Authorization: 'Bearer OLDTOKENOLDTOKENOLDTOKENOLDTOKENOLDTOKEN1234' } },
          },
        },
        null,
        2,
      ),
    );
    const tokens = ['OLDTOKENOLDTOKENOLDTOKENOLDTOKENOLDTOKEN1234'];
    const lanyard = await startLanyard();
    await lanyard.broker.control.connectIde({ ide: 'cursor', stdio: false });
    tokens.push((await cursorEntry()).headers.Authorization.slice('Bearer '.length));
    await lanyard.broker.control.rotateLocalToken();
    tokens.push((await cursorEntry()).headers.Authorization.slice('Bearer '.length));
    // The user edits the file (so disconnect cannot restore it byte for byte and takes a backup of it).
    const edited = (await readFile(cursorFile(), 'utf8')).replace('"github"', '"github-renamed"');
    await writeFile(cursorFile(), edited);
    await lanyard.broker.control.connectIde({ ide: 'cursor', stdio: false });
    await lanyard.broker.control.disconnectIde({ ide: 'cursor' });
    const dir = path.dirname(cursorFile());
    const backups = (await readdir(dir)).filter((f) => f.includes('.lanyard-backup-'));
    expect(backups.length).toBeGreaterThan(0);
    for (const b of backups) {
      const text = await readFile(path.join(dir, b), 'utf8');
      for (const t of tokens) expect(text, `${b} holds a local token`).not.toContain(t);
      // The user's own entries are kept in the backup.
      expect(text).toContain('https://api.example.com/mcp');
    }
    const final = await readFile(cursorFile(), 'utf8');
    for (const t of tokens) expect(final).not.toContain(t);
  });
});
