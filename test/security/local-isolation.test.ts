/**
 * The local side of the threat model (SECURITY.md, threats 1 and 2): other processes on the machine and web pages (DNS
 * rebinding) must not be able to use Lanyard's endpoint. Lanyard runs as its own process (`startHeadless` in a child,
 * signed in to the sandbox); the attackers are other processes — one as the same OS user without the token, one as
 * another OS user (when the tests run as root) — and raw HTTP with forged Host, Origin and credentials. Also: every
 * file Lanyard writes is 0600 in 0700 directories, and the runtime file (which holds the local token) is gone after a
 * clean shutdown, including `lanyard serve` stopped by SIGTERM.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/security/local-isolation.test.ts`
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lanyardPaths } from '../../electron/broker/paths';
import { readRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerProcess, type BrokerProcess } from '../reliability/broker-process';
import { prepareHome, waitFor } from '../reliability/harness';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-isolation-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let sandbox: Sandbox;
let tempRoot: string;
let home: string;
let secrets: SecretStore;
let broker: BrokerProcess;
let token: string;

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  sandbox = await startSandbox();
  // A home Lanyard creates itself (so its modes are Lanyard's doing), under a directory other users may traverse.
  tempRoot = await mkdtemp(path.join(tmpdir(), 'lanyard-isolation-'));
  await import('node:fs/promises').then((fs) => fs.chmod(tempRoot, 0o755));
  home = path.join(tempRoot, 'home');
  secrets = await prepareHome(sandbox, home);
  broker = await startBrokerProcess(sandbox, home);
  await broker.signIn('alice');
  const runtime = await readRuntimeFile(home);
  if (runtime.state !== 'running') throw new Error(`runtime file: ${runtime.state}`);
  token = runtime.info.token;
});

afterAll(async () => {
  await broker?.stop();
  await secrets?.deleteAll().catch(() => undefined);
  await sandbox?.stop();
  if (tempRoot) await rm(tempRoot, { recursive: true, force: true });
  await rm(cliDir, { recursive: true, force: true });
});

/** Runs a small script in a separate Node process (optionally as another OS user); resolves with what it printed. */
function otherProcess(script: string, options: { uid?: number; gid?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', BROKER_URL: broker.url, LANYARD_HOME: home },
      ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
      cwd: tmpdir(),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`other process exited ${code}: ${err}`));
    });
  });
}

/** What a curious process does: try every endpoint without the token, with a guess, and read Lanyard's files. */
const PROBE = `
const base = process.env.BROKER_URL;
const out = {};
const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'intruder', version: '1' } } });
for (const [name, path, method, payload] of [['mcp', '/mcp', 'POST', body], ['relay', '/mcp/todo', 'POST', body], ['status', '/api/status', 'POST', '{}'], ['signOut', '/api/signOut', 'POST', '{}'], ['events', '/api/events', 'GET', undefined]]) {
  for (const auth of [undefined, 'Bearer guess', 'Bearer ' + 'A'.repeat(43)]) {
    const r = await fetch(base + path, { method, headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(auth ? { Authorization: auth } : {}) }, body: payload });
    await r.body?.cancel();
    (out[name] ??= []).push(r.status);
  }
}
const fs = await import('node:fs/promises');
for (const file of ['run/broker.json', 'config.json', 'activity.jsonl']) {
  try { await fs.readFile(process.env.LANYARD_HOME + '/' + file, 'utf8'); out[file] = 'READ'; } catch (e) { out[file] = e.code; }
}
console.log(JSON.stringify(out));
`;

describe('another process on this machine', () => {
  it('without the local token: 401 on /mcp, /mcp/<id> and every /api route; its sign-out does nothing, it opens no session', async () => {
    const result = JSON.parse(await otherProcess(PROBE)) as Record<string, number[] | string>;
    for (const name of ['mcp', 'relay', 'status', 'signOut', 'events']) expect(result[name], name).toEqual([401, 401, 401]);
    // Still signed in (the intruder's signOut did nothing), and no IDE session was opened for it.
    const status = (await (
      await fetch(`${broker.url}/api/status`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: '{}',
      })
    ).json()) as {
      value: { session: { status: string }; ideSessions: Array<{ clientName: string }> };
    };
    expect(status.value.session.status).toBe('signed_in');
    expect(status.value.ideSessions.filter((s) => s.clientName === 'intruder')).toEqual([]);
    // The same OS user CAN read the 0600 runtime file (and so the token): documented in SECURITY.md, not defended.
    expect(result['run/broker.json']).toBe('READ');
  });

  it.skipIf(typeof process.getuid !== 'function' || process.getuid() !== 0)(
    'as another OS user: cannot read the runtime file or config, and gets 401 everywhere',
    async () => {
      const result = JSON.parse(await otherProcess(PROBE, { uid: 65534, gid: 65534 })) as Record<string, number[] | string>;
      for (const name of ['mcp', 'relay', 'status', 'signOut', 'events']) expect(result[name], name).toEqual([401, 401, 401]);
      for (const file of ['run/broker.json', 'config.json', 'activity.jsonl']) expect(result[file], file).toBe('EACCES');
    },
  );
});

/** One raw request with exactly these headers; resolves with the status code. */
function raw(
  method: string,
  target: string,
  headers: Record<string, string | undefined>,
): Promise<{ status: number; allowOrigin: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(broker.port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve({ status: m ? Number(m[1]) : 0, allowOrigin: /\r\naccess-control-allow-origin:/i.test(data.slice(0, end)) });
    });
    socket.on('error', reject);
    const body = method === 'POST' ? '{"jsonrpc":"2.0","id":1,"method":"ping"}' : '';
    const lines = Object.entries({
      ...headers,
      'Content-Type': 'application/json',
      'Content-Length': String(body.length),
      Connection: 'close',
    })
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${v}`);
    socket.write(`${method} ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}

describe('the Host / Origin / local-token matrix (DNS rebinding, browsers, strangers)', () => {
  const hosts = () => ({
    ok: `127.0.0.1:${broker.port}`,
    localhost: `localhost:${broker.port}`,
    rebinding: `attacker.example:${broker.port}`,
    noPort: '127.0.0.1',
    otherPort: `127.0.0.1:${broker.port + 1}`,
    suffix: `127.0.0.1.attacker.example:${broker.port}`,
    missing: undefined,
  });
  const origins = () => ({
    none: undefined,
    self: `http://127.0.0.1:${broker.port}`,
    evil: 'http://attacker.example',
    rebinding: `http://attacker.example:${broker.port}`,
    null: 'null',
    otherLocal: `http://localhost:${broker.port + 1}`,
  });
  const tokens = () => ({
    ok: `Bearer ${token}`,
    missing: undefined,
    wrong: `Bearer ${'x'.repeat(43)}`,
    basic: `Basic ${Buffer.from(`lanyard:${token}`).toString('base64')}`,
    cookieOnly: 'cookie',
  });

  it('every combination: wrong Host → 421, foreign Origin → 403, no or wrong token → 401; only the right triple gets in', async () => {
    const rows: string[] = [];
    let checked = 0;
    for (const target of ['/mcp', '/mcp/todo', '/api/status']) {
      for (const [hostName, host] of Object.entries(hosts())) {
        for (const [originName, origin] of Object.entries(origins())) {
          for (const [tokenName, auth] of Object.entries(tokens())) {
            const headers: Record<string, string | undefined> = {
              Host: host,
              Origin: origin,
              Accept: 'application/json, text/event-stream',
              ...(tokenName === 'cookieOnly' ? { Cookie: `lanyard_session=${token}` } : { Authorization: auth }),
            };
            const { status, allowOrigin } = await raw('POST', target, headers);
            const hostOk = hostName === 'ok' || hostName === 'localhost';
            const originOk = originName === 'none' || originName === 'self';
            // No route accepts a cookie, not even one holding the local token: cookies reach every port on 127.0.0.1.
            const tokenOk = tokenName === 'ok';
            const expected = !hostOk ? 421 : !originOk ? 403 : !tokenOk ? 401 : 'in';
            checked++;
            const got = [401, 403, 421].includes(status) ? status : 'in';
            if (got !== expected)
              rows.push(`${target} host=${hostName} origin=${originName} token=${tokenName}: expected ${expected}, got ${status}`);
            // A browser page on a foreign origin never gets CORS permission to read anything.
            if (!originOk && allowOrigin) rows.push(`${target} origin=${originName}: Access-Control-Allow-Origin sent`);
          }
        }
      }
    }
    console.log(`Host/Origin/token matrix: ${checked} combinations checked`);
    expect(rows).toEqual([]);
  });

  it('a CORS preflight from a foreign origin is refused, and /healthz says nothing but ok', async () => {
    const preflight = await raw('OPTIONS', '/mcp', {
      Host: `127.0.0.1:${broker.port}`,
      Origin: 'http://attacker.example',
      'Access-Control-Request-Method': 'POST',
    });
    expect(preflight.status).toBe(403);
    expect(preflight.allowOrigin).toBe(false);
    const health = await fetch(`${broker.url}/healthz`);
    expect(await health.json()).toEqual({ ok: true });
  });
});

describe("Lanyard's files", () => {
  it('every file Lanyard wrote is 0600 and every directory 0700', async () => {
    const paths = lanyardPaths(home);
    expect(existsSync(paths.runtimeFile)).toBe(true);
    const found: string[] = [];
    const walk = async (dir: string) => {
      const st = await stat(dir);
      found.push(`${path.relative(home, dir) || '.'}/ ${(st.mode & 0o777).toString(8)}`);
      expect((st.mode & 0o777).toString(8), dir).toBe('700');
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(p);
        else {
          const mode = ((await stat(p)).mode & 0o777).toString(8);
          found.push(`${path.relative(home, p)} ${mode}`);
          expect(mode, p).toBe('600');
        }
      }
    };
    await walk(home);
    console.log(`files and modes: ${found.join(', ')}`);
    expect(found.some((f) => f.startsWith('run/broker.json'))).toBe(true);
    expect(found.some((f) => f.startsWith('config.json'))).toBe(true);
  });

  it('the runtime file is removed on clean shutdown, and by `lanyard serve` on SIGTERM', async () => {
    const file = lanyardPaths(home).runtimeFile;
    expect(await broker.stop()).toBe(0);
    expect(existsSync(file)).toBe(false);

    const serve = spawn(process.execPath, [cli, 'serve', '--port', '0'], {
      env: { ...process.env, LANYARD_HOME: home, LANYARD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    serve.stdout.on('data', (d: Buffer) => (out += d.toString()));
    serve.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => serve.on('exit', (code) => r(code)));
    await waitFor(
      async () => (await readRuntimeFile(home)).state === 'running',
      20_000,
      `lanyard serve to publish its runtime file (${out})`,
    );
    expect(((await stat(file)).mode & 0o777).toString(8)).toBe('600');
    serve.kill('SIGTERM');
    const timer = setTimeout(() => serve.kill('SIGKILL'), 10_000);
    expect(await exited).toBe(0);
    clearTimeout(timer);
    expect(existsSync(file)).toBe(false);
  });
});
