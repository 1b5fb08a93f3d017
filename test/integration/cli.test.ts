/**
 * The built `lanyard` binary (scripts/build-cli.mjs, built here) as a user runs it, against a temporary LANYARD_HOME,
 * the real keychain and the sandbox: help, exit codes, servers add/list/remove, status offline, the whole sign-in
 * through the IdP's login page, doctor, logout, and `serve` with the other commands talking to it.
 * Run with `npm test`, or `bash scripts/keyring-session.sh npx vitest run test/integration/cli.test.ts`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openConfigStore } from '../../electron/broker/config/store';
import { keychainNamespace, lanyardPaths } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import { unsealCredential } from '../../electron/broker/secrets/secret-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { tempHome } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');
// Its own build of the CLI (the same script as `npm run build:cli`): test/unit/build.test.ts runs out/cli/lanyard.js
// in parallel, and rewriting that file under it would make both flaky.
const CLI = path.join(root, 'out/cli-integration/lanyard.js');
const execFileAsync = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let home: string;
let userHome: string;
let cleanup: () => Promise<void>;

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LANYARD_HOME: home,
    HOME: userHome,
    LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json',
    LANYARD_NO_BROWSER: '1',
    ...extra,
  };
}

async function lanyard(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: root, env: env(options.env), timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? '');
  });
}

beforeAll(async () => {
  await execFileAsync(process.execPath, ['scripts/build-cli.mjs', '--outfile', path.relative(root, CLI)], { cwd: root });
}, 120_000);

describe('the built CLI, offline', () => {
  beforeAll(async () => {
    ({ home, cleanup } = await tempHome());
    userHome = path.join(home, 'user-home');
  });
  afterAll(async () => {
    await new KeychainSecretStore({ service: keychainNamespace(home) }).deleteAll().catch(() => {});
    await cleanup?.();
  });

  it('--help lists every command; --version; unknown command exits 2', async () => {
    const help = await lanyard(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: lanyard <command>/);
    for (const c of ['serve', 'stdio', 'login', 'logout', 'status', 'servers', 'connect', 'disconnect', 'import', 'doctor', 'accept-link'])
      expect(help.stdout).toMatch(new RegExp(`^\\s+${c}\\s+\\S`, 'm'));
    expect((await lanyard(['doctor', '--help'])).stdout).toMatch(/^Usage: lanyard doctor \[--server <id>\] \[--json\]/);
    expect((await lanyard(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(await lanyard(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
  });

  it('servers add / list / remove on a temporary LANYARD_HOME, with exit codes', async () => {
    const add = await lanyard(
      [
        'servers',
        'add',
        'https://mcp.linear.app/mcp',
        '--id',
        'linear',
        '--client-id',
        'lanyard-at-linear',
        '--client-auth',
        'client_secret_basic',
        '--client-secret-stdin',
      ],
      { input: 'cli-secret-123\n' },
    );
    expect(add).toMatchObject({
      code: 0,
      // The probe first (this host does not answer here), then what was added.
      stdout: expect.stringMatching(/^Probed https:\/\/mcp\.linear\.app\/mcp: no answer .*\nAdded server linear/),
    });
    // The secret went to the keychain (this home's namespace), not the file.
    const stored = await new KeychainSecretStore({ service: keychainNamespace(home) }).get('server:linear:client_secret');
    expect(unsealCredential(stored!).value).toBe('cli-secret-123');
    expect(await readFile(path.join(home, 'config.json'), 'utf8')).not.toContain('cli-secret-123');

    const list = await lanyard(['servers', 'list', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ id: 'linear', url: 'https://mcp.linear.app/mcp', clientId: 'lanyard-at-linear', enabled: true }),
    ]);

    expect((await lanyard(['servers', 'add', 'https://mcp.linear.app/mcp'])).code).toBe(1);
    expect((await lanyard(['servers', 'add'])).code).toBe(2);
    expect((await lanyard(['servers', 'remove', 'linear'])).code).toBe(0);
    expect(await new KeychainSecretStore({ service: keychainNamespace(home) }).get('server:linear:client_secret')).toBeUndefined();
    expect(await lanyard(['servers', 'remove', 'linear'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/No server "linear" is configured\.\n {2}→ /),
    });
    expect(JSON.parse((await lanyard(['servers', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('servers list never opens the keychain; status does', async () => {
    // A secret-store choice that fails the moment the store is created: the command that needs no secret never does.
    const noStore = { LANYARD_SECRET_STORE: 'no-such-store' };
    expect(await lanyard(['servers', 'list', '--json'], { env: noStore })).toMatchObject({ code: 0, stdout: '[]\n' });
    expect(await lanyard(['status', '--json'], { env: noStore })).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('LANYARD_SECRET_STORE must be'),
    });
  });

  it('status --json offline: no broker, not signed in (exit 3)', async () => {
    const r = await lanyard(['status', '--json']);
    expect(r.code).toBe(3);
    const status = JSON.parse(r.stdout);
    expect(status).toMatchObject({
      session: { status: 'not_configured' },
      broker: { running: false, state: 'absent' },
      secretStore: { kind: 'os-keychain' },
      managed: { state: 'absent' },
    });
    expect(status.ides.map((i: { ide: string }) => i.ide)).toEqual(['cursor', 'vscode', 'claude-code', 'claude-desktop', 'windsurf']);
  });
});

describe('the built CLI against the sandbox', () => {
  let sandbox: Sandbox;
  let serveProcess: ChildProcess | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
    ({ home, cleanup } = await tempHome());
    userHome = path.join(home, 'user-home');
    openConfigStore(home).update(() => ({ version: 1, ...sandbox.lanyardConfig(), gateway: { port: 0 } }));
    const secrets = new KeychainSecretStore({ service: keychainNamespace(home) });
    for (const [k, v] of Object.entries(sandbox.lanyardSecrets())) await secrets.set(k, v);
  });
  afterEach(async () => {
    if (serveProcess && serveProcess.exitCode === null) {
      serveProcess.kill('SIGTERM');
      await new Promise((r) => serveProcess!.once('exit', r));
    }
    serveProcess = undefined;
  });
  afterAll(async () => {
    await new KeychainSecretStore({ service: keychainNamespace(home) }).deleteAll().catch(() => {});
    await sandbox?.stop();
    await cleanup?.();
  });

  it('login prints the sign-in address (no browser here), the IdP login page completes it, status and doctor pass, logout ends it', async () => {
    const child = spawn(process.execPath, [CLI, 'login'], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const authorizeUrl = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /Opening (\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.once('exit', () => reject(new Error(`login exited early: ${stderr}`)));
    });
    expect(authorizeUrl.startsWith(sandbox.idp.authorizationEndpoint)).toBe(true);
    // The person in the browser: the IdP's login page, then the redirect back to the CLI's loopback listener.
    await fetch(await sandbox.idp.completeLogin(authorizeUrl, 'alice'));
    const code = await new Promise<number | null>((resolve) =>
      child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve),
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/Signed in as alice@example\.com/);

    const status = await lanyard(['status', '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).session).toMatchObject({ status: 'signed_in', user: { email: 'alice@example.com' } });
    expect((await lanyard(['login'])).stdout).toMatch(/Already signed in as alice@example\.com/);

    const doctor = await lanyard(['doctor']);
    expect(doctor.stdout).toMatch(/^✓ todo: AS grant\s+exchanged: a new access token/m);
    expect(doctor.stdout).toMatch(/All \d+ checks passed/);
    expect(doctor.code).toBe(0);
    // The token doctor minted in the CLI's own process (no broker running) is in Activity, as one minted by the broker.
    const activity = (await readFile(lanyardPaths(home).activityFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { kind: string; serverId?: string; outcome: string; summary: string });
    expect(activity).toContainEqual(
      expect.objectContaining({ kind: 'token', serverId: 'todo', outcome: 'ok', summary: expect.stringMatching(/^New token for todo/) }),
    );

    expect(await lanyard(['logout'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/Signed out/) });
    expect((await lanyard(['status', '--json'])).code).toBe(3);
    const afterLogout = await lanyard(['doctor', '--server', 'todo', '--json']);
    expect(afterLogout.code).toBe(1);
    expect(JSON.parse(afterLogout.stdout).checks.find((c: { id: string }) => c.id === 'session')).toMatchObject({
      ok: false,
      error: { code: 'not_signed_in' },
    });
  }, 60_000);

  it('serve runs the broker; status, servers and connect talk to it; SIGINT stops it cleanly', async () => {
    serveProcess = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    serveProcess.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const runtimeFile = path.join(home, 'run', 'broker.json');
    for (let i = 0; i < 200 && !/Stop with Ctrl-C/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/MCP endpoint:\s+http:\/\/127\.0\.0\.1:\d+\/mcp/);
    expect(existsSync(runtimeFile)).toBe(true);
    const port = JSON.parse(await readFile(runtimeFile, 'utf8')).port as number;

    const status = await lanyard(['status', '--json']);
    expect(JSON.parse(status.stdout).broker).toMatchObject({ running: true, url: `http://127.0.0.1:${port}` });
    expect(JSON.parse((await lanyard(['servers', 'list', '--json'])).stdout).map((s: { id: string }) => s.id)).toEqual(['todo', 'wiki']);
    const connect = await lanyard(['connect', 'claude-code', '--http', '--json']);
    expect(JSON.parse(connect.stdout)).toMatchObject({ ide: 'claude-code', changed: true, transport: 'http' });
    const written = JSON.parse(await readFile(path.join(userHome, '.claude.json'), 'utf8')).mcpServers.lanyard;
    expect(written.url).toBe(`http://127.0.0.1:${port}/ide/claude-code/mcp`);
    expect(written.headers.Authorization).toBe(`Bearer ${JSON.parse(await readFile(runtimeFile, 'utf8')).token}`);

    // Sign in through the running broker: it opens (here: prints) the sign-in address; the person completes it.
    let serveErr = '';
    serveProcess.stderr!.on('data', (d: Buffer) => (serveErr += d.toString()));
    const login = lanyard(['login']);
    let authorizeUrl: string | undefined;
    for (let i = 0; i < 200 && !authorizeUrl; i++) {
      authorizeUrl = /Opening (\S+)/.exec(serveErr)?.[1];
      if (!authorizeUrl) await new Promise((r) => setTimeout(r, 50));
    }
    await fetch(await sandbox.idp.completeLogin(authorizeUrl!, 'alice'));
    expect(await login).toMatchObject({ code: 0, stdout: expect.stringMatching(/Signed in as alice@example\.com\./) });

    // The doctor checks sign-in and the exchange through the broker (it must not refresh the broker's session itself).
    const doctor = await lanyard(['doctor', '--server', 'todo', '--json']);
    const report = JSON.parse(doctor.stdout) as { ok: boolean; checks: Array<{ id: string; ok: boolean; detail: string }> };
    expect(report.checks.find((c) => c.id === 'session')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/through the running broker/),
    });
    expect(report.checks.find((c) => c.id === 'server.todo.grant')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/through the running broker/),
    });
    expect(report.checks.find((c) => c.id === 'endpoint')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(new RegExp(`port ${port} is ours`)),
    });
    expect(doctor.code).toBe(0);

    serveProcess.kill('SIGINT');
    const code = await new Promise((r) => serveProcess!.once('exit', r));
    expect(code).toBe(0);
    expect(existsSync(runtimeFile)).toBe(false);
    expect((await lanyard(['disconnect', 'claude-code'])).code).toBe(0);
    expect(existsSync(path.join(userHome, '.claude.json'))).toBe(false);
  }, 60_000);

  /** What an HTTP-mode IDE does with its entry: POST initialize to the URL with its headers. */
  async function ideRequest(entry: { url: string; headers: Record<string, string> }): Promise<number> {
    const res = await fetch(entry.url, {
      method: 'POST',
      headers: { ...entry.headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'cli-test', version: '1' } },
      }),
    });
    await res.body?.cancel();
    return res.status;
  }
  const cursorEntry = async () =>
    JSON.parse(await readFile(path.join(userHome, '.cursor', 'mcp.json'), 'utf8')).mcpServers.lanyard as {
      url: string;
      headers: Record<string, string>;
    };

  it('token rotate with serve running: the old token is refused at once, the new one works, the HTTP-mode config has it', async () => {
    serveProcess = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    serveProcess.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 200 && !/Stop with Ctrl-C/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/MCP endpoint:/);
    expect((await lanyard(['connect', 'cursor', '--http'])).code).toBe(0);
    const before = await cursorEntry();
    expect(await ideRequest(before)).toBe(200);

    const rotate = await lanyard(['token', 'rotate']);
    expect(rotate).toMatchObject({ code: 0, stdout: expect.stringMatching(/✓ New local token \(the old one no longer works\)/) });
    expect(rotate.stdout).toMatch(/Rewrote .*\.cursor\/mcp\.json with it/);
    expect(await ideRequest(before)).toBe(401);
    const after = await cursorEntry();
    expect(after.headers.Authorization).not.toBe(before.headers.Authorization);
    expect(after.headers.Authorization).toBe(`Bearer ${JSON.parse(await readFile(path.join(home, 'run', 'broker.json'), 'utf8')).token}`);
    expect(await ideRequest(after)).toBe(200);
    // The token itself is never printed.
    expect(rotate.stdout + rotate.stderr).not.toContain(after.headers.Authorization!.slice('Bearer '.length));
  }, 60_000);

  it('token rotate with no broker running: the keychain gets a new token, the HTTP-mode config has it, exit 0', async () => {
    // The previous case left cursor connected over HTTP and a token in the keychain; no broker runs now.
    expect(existsSync(path.join(home, 'run', 'broker.json'))).toBe(false);
    const before = await new KeychainSecretStore({ service: keychainNamespace(home) }).get('gateway:local_token');
    expect(before).toBeDefined();
    // Offline, the entry's URL comes from the configured port (this suite runs `serve --port 0` otherwise).
    const config = openConfigStore(home);
    config.update((draft) => {
      draft.gateway.port = 45_123;
    });
    config.close();
    const rotate = await lanyard(['token', 'rotate']);
    expect(rotate).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/✓ New local token; a running Lanyard also makes a new one at every start/),
    });
    expect(rotate.stdout).toMatch(/Rewrote .*\.cursor\/mcp\.json with it/);
    // A new store: the first one caches what it read.
    const after = await new KeychainSecretStore({ service: keychainNamespace(home) }).get('gateway:local_token');
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(await cursorEntry()).toEqual({ url: 'http://127.0.0.1:45123/ide/cursor/mcp', headers: { Authorization: `Bearer ${after}` } });
    expect(rotate.stdout + rotate.stderr).not.toContain(after!);
  }, 60_000);
});
