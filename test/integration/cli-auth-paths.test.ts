/**
 * The built `lanyard` CLI against real MCP servers on the API-key, no-auth and OAuth paths (test/helpers/auth-servers.ts)
 * and the real OS keychain: `servers add` printing every path, `set-key` (the key never in a file, stdout or stderr),
 * `doctor`'s line per hop of each path with the fix of the one that fails, and `import` moving an API key from an IDE
 * file into the keychain, with `disconnect` restoring that file byte for byte.
 * Run with `LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/cli-auth-paths.test.ts`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorCheck, DoctorReport } from '../../electron/broker/doctor/doctor';
import { keychainNamespace } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { API_KEY, startOtherServers } from '../helpers/auth-servers';
import { tempHome } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');
// Its own build, so that other tests running the CLI are not rewritten under them.
const CLI = path.join(root, 'out/cli-auth-paths/lanyard.js');
const execFileAsync = promisify(execFile);

let servers: Awaited<ReturnType<typeof startOtherServers>>;
let home: string;
let userHome: string;
let cleanup: () => Promise<void>;
let keychain: KeychainSecretStore;
/**
 * What the keychain holds now. The CLI writes from its own process, and a keychain store reads Lanyard's item once
 * (electron/broker/secrets/keychain-store.ts), so each look is through a new store, as a new process would see it.
 */
const stored = (key: string): Promise<string | undefined> => new KeychainSecretStore({ service: keychainNamespace(home) }).get(key);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function lanyard(args: string[], input = ''): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: root,
        env: {
          ...process.env,
          LANYARD_HOME: home,
          HOME: userHome,
          LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json',
          LANYARD_NO_BROWSER: '1',
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

/** Every file under `dir` as text: what a leaked key would be found in. */
async function allFiles(dir: string): Promise<Array<{ file: string; text: string }>> {
  const out: Array<{ file: string; text: string }> = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    if ((await stat(file)).isDirectory()) out.push(...(await allFiles(file)));
    else out.push({ file, text: await readFile(file, 'utf8') });
  }
  return out;
}

async function expectNoKeyOnDisk(key: string): Promise<void> {
  const leaks = (await allFiles(home)).filter((f) => f.text.includes(key)).map((f) => f.file);
  expect(leaks).toEqual([]);
}

const check = (report: DoctorReport, id: string): DoctorCheck => {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check '${id}' in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
};

beforeAll(async () => {
  await execFileAsync(process.execPath, ['scripts/build-cli.mjs', '--outfile', path.relative(root, CLI)], { cwd: root });
  servers = await startOtherServers();
  ({ home, cleanup } = await tempHome());
  userHome = path.join(home, 'user-home');
  await mkdir(userHome, { recursive: true });
  keychain = new KeychainSecretStore({ service: keychainNamespace(home) });
}, 120_000);

afterAll(async () => {
  await keychain?.deleteAll().catch(() => undefined);
  await servers?.close();
  await cleanup?.();
});

describe('the API-key path from the command line', () => {
  it('servers add prints every path and picks header; the key goes to the keychain only', async () => {
    const add = await lanyard(
      ['servers', 'add', `${servers.origin}/key/mcp`, '--id', 'key', '--header', 'X-Api-Key', '--value-stdin'],
      `${API_KEY}\n`,
    );
    expect(add.code).toBe(0);
    const lines = add.stdout.split('\n');
    expect(lines[0]).toBe(`Probed ${servers.origin}/key/mcp:`);
    expect(lines.slice(1, 5).map((l) => l.trim().split(/\s+/)[1])).toEqual(['xaa', 'oauth', 'header', 'none']);
    expect(lines[3]).toMatch(/^\s+→\s+header\s+API key\s+.*← chosen$/);
    expect(add.stdout).toMatch(/Added server key .* on the header path \(API key\); its key is in the keychain \(sent as X-Api-Key\)\./);
    expect(add.stdout + add.stderr).not.toContain(API_KEY);
    expect(await stored('server:key:header')).toBe(API_KEY);
    await expectNoKeyOnDisk(API_KEY);
  });

  it('doctor: key in keychain → MCP accepts it; a wrong key fails the MCP line with the set-key fix; set-key mends it', async () => {
    const ok = await lanyard(['doctor', '--server', 'key', '--json']);
    const report = JSON.parse(ok.stdout) as DoctorReport;
    expect(report.checks.filter((c) => c.id.startsWith('server.key')).map((c) => c.id)).toEqual([
      'server.key.path',
      'server.key.key',
      'server.key.mcp',
    ]);
    expect(check(report, 'server.key.path').detail).toMatch(/^header — API key \(recorded in the configuration\)$/);
    expect(check(report, 'server.key.key')).toMatchObject({ ok: true, detail: 'a key for the X-Api-Key header is stored (not shown)' });
    expect(check(report, 'server.key.mcp')).toMatchObject({ ok: true, detail: 'key-server 1.0.0 answered initialize with the stored key' });
    // No IdP is configured and no server here is on Cross-App Access: nothing about the IdP fails.
    expect(check(report, 'idp.discovery')).toMatchObject({ ok: true, skipped: true });
    expect(ok.code).toBe(0);

    const wrong = 'sk-wrong-0000000000000000000000';
    const set = await lanyard(['servers', 'set-key', 'key', '--value-stdin'], wrong);
    expect(set).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Stored the key for key in the keychain/) });
    const bad = await lanyard(['doctor', '--server', 'key']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /✗ key: MCP\s+.*rejected the stored key \(HTTP 401\)\.\n\s+→ Set the current key with `lanyard servers set-key key --value-stdin`/,
    );
    expect(bad.stdout + bad.stderr).not.toContain(wrong);

    expect((await lanyard(['servers', 'set-key', 'key', '--value-stdin'], API_KEY)).code).toBe(0);
    expect((await lanyard(['doctor', '--server', 'key'])).code).toBe(0);
    for (const r of [set, bad]) expect(r.stdout + r.stderr).not.toContain(API_KEY);
    await expectNoKeyOnDisk(wrong);
    await expectNoKeyOnDisk(API_KEY);
  });

  it('a key on the command line is refused and not echoed', async () => {
    for (const argv of [
      ['servers', 'set-key', 'key', '--value', API_KEY],
      ['servers', 'set-key', 'key', API_KEY],
    ]) {
      const r = await lanyard(argv);
      expect(r.code).toBe(2);
      expect(r.stdout + r.stderr).not.toContain(API_KEY);
    }
  });
});

describe('doctor on the no-auth and OAuth paths', () => {
  it('none: one MCP line; oauth: each hop up to the missing grant, whose fix is `servers authorize`', async () => {
    expect((await lanyard(['servers', 'add', `${servers.origin}/open/mcp`, '--id', 'open'])).stdout).toMatch(/on the none path/);
    const open = JSON.parse((await lanyard(['doctor', '--server', 'open', '--json'])).stdout) as DoctorReport;
    expect(open.checks.filter((c) => c.id.startsWith('server.open')).map((c) => [c.id, c.ok])).toEqual([
      ['server.open.path', true],
      ['server.open.mcp', true],
    ]);
    expect(check(open, 'server.open.mcp').detail).toBe('open-server 1.0.0 answered initialize without credentials');

    const add = await lanyard(['servers', 'add', `${servers.origin}/oauth/mcp`, '--id', 'oauth', '--oauth-client-id', 'lanyard-test']);
    expect(add.stdout).toMatch(/on the oauth path/);
    expect(add.stdout).toMatch(/Next: run `lanyard servers authorize oauth`\./);
    const r = await lanyard(['doctor', '--server', 'oauth', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.checks.filter((c) => c.id.startsWith('server.oauth')).map((c) => [c.id, c.skipped ? 'skipped' : c.ok])).toEqual([
      ['server.oauth.path', true],
      ['server.oauth.prm', true],
      ['server.oauth.as', true],
      ['server.oauth.client', true],
      ['server.oauth.grant', false],
      ['server.oauth.refresh', 'skipped'],
      ['server.oauth.mcp', 'skipped'],
    ]);
    expect(check(report, 'server.oauth.as').detail).toMatch(/issuer matches; authorization code with PKCE S256$/);
    expect(check(report, 'server.oauth.client').detail).toBe('pre-registered client lanyard-test (none)');
    expect(check(report, 'server.oauth.grant').error).toMatchObject({
      code: 'authorization_required',
      fix: expect.stringMatching(/^Run `lanyard servers authorize oauth`/),
    });

    const list = await lanyard(['servers', 'list']);
    expect(list.stdout).toMatch(/oauth\s+.*\s+oauth\s+authorization needed\s+run `lanyard servers authorize oauth`/);
    expect(list.stdout).toMatch(/open\s+.*\s+none\s+ready\n/);
  });
});

describe('import moves an API key from an IDE file into the keychain', () => {
  it('with --yes: the key leaves the IDE file (and its backup); disconnect restores the file byte for byte', async () => {
    const cursor = path.join(userHome, '.cursor', 'mcp.json');
    const original =
      '{\n' +
      '  // my servers\n' +
      '  "mcpServers": {\n' +
      `    "billing": { "url": "${servers.origin}/key/mcp?tenant=b", "headers": { "X-Api-Key": "${API_KEY}" } },\n` +
      '    "local": { "command": "npx", "args": ["-y", "some-local-server"] }\n' +
      '  }\n' +
      '}\n';
    await mkdir(path.dirname(cursor), { recursive: true });
    await writeFile(cursor, original, { mode: 0o644 });

    const dry = await lanyard(['import', '--dry-run', '--ide', 'cursor', '--json']);
    expect(dry.stdout).not.toContain(API_KEY);
    expect(JSON.parse(dry.stdout).plan.items).toEqual([
      expect.objectContaining({ name: 'billing', action: 'move', keyHeader: 'X-Api-Key' }),
      expect.objectContaining({ name: 'local', action: 'skip' }),
    ]);

    const run = await lanyard(['import', '--yes', '--ide', 'cursor']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/→ move {2}billing .* as "billing" — its API key \(X-Api-Key header\) goes to the keychain/);
    expect(run.stdout).toMatch(/✓ Cursor: moved billing; wrote ~\/\.cursor\/mcp\.json \(backup: /);
    expect(run.stdout + run.stderr).not.toContain(API_KEY);
    expect(await stored('server:billing:header')).toBe(API_KEY);
    const now = await readFile(cursor, 'utf8');
    expect(now).toMatch(/"lanyard":/);
    expect(now).not.toContain('billing');
    await expectNoKeyOnDisk(API_KEY);

    const list = JSON.parse((await lanyard(['servers', 'list', '--json'])).stdout) as Array<{ id: string; authPath: string }>;
    expect(list.find((s) => s.id === 'billing')).toMatchObject({ authPath: 'header' });
    expect((await lanyard(['doctor', '--server', 'billing'])).code).toBe(0);

    const ledger = JSON.parse(await readFile(path.join(home, 'ide-connections.json'), 'utf8')) as {
      records: Record<string, { redactions?: Array<{ key: string }> }>;
    };
    const backupKeys = Object.values(ledger.records)
      .flatMap((r) => r.redactions ?? [])
      .map((r) => r.key);
    expect(backupKeys).toHaveLength(1);

    const undo = await lanyard(['disconnect', 'cursor']);
    expect(undo).toMatchObject({ code: 0, stdout: expect.stringMatching(/Restored .* exactly as it was/) });
    expect(await readFile(cursor, 'utf8')).toBe(original);
    expect(((await stat(cursor)).mode & 0o777).toString(8)).toBe('644');
    // The backup's copy of the key is gone from the keychain; the server keeps its own until it is removed.
    expect(await stored(backupKeys[0]!)).toBeUndefined();
    expect(await stored('server:billing:header')).toBe(API_KEY);
  });
});

describe('servers authorize against the sandbox’s OAuth-only authorization server', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await startSandbox({ authPaths: true });
  }, 60_000);
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('prints the link, waits for the consent, exits 0 once authorized; doctor then passes every OAuth hop', async () => {
    const paths = sandbox.paths!;
    const clientId = paths.preRegistered.public.clientId;
    const add = await lanyard(['servers', 'add', paths.oauth.mcp.url, '--id', 'calendar', '--oauth-client-id', clientId]);
    expect(add).toMatchObject({ code: 0, stdout: expect.stringMatching(/Next: run `lanyard servers authorize calendar`\./) });

    // The user's side: the link the CLI printed, the consent page, the redirect back to the CLI's loopback listener.
    const child = spawn(process.execPath, [CLI, 'servers', 'authorize', 'calendar'], {
      cwd: root,
      env: {
        ...process.env,
        LANYARD_HOME: home,
        HOME: userHome,
        LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json',
        LANYARD_NO_BROWSER: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
    let link: string | undefined;
    for (let i = 0; i < 300 && !link; i++) {
      link = /If no browser opened, open this link:\n\s+(\S+)/.exec(stderr)?.[1];
      if (!link) await new Promise((r) => setTimeout(r, 50));
    }
    expect(link).toBeDefined();
    // One browser step: the link was opened (here: printed) once, and the CLI printed it once more for SSH/WSL.
    expect(stderr.split(link!).length - 1).toBeLessThanOrEqual(2);
    await fetch(await paths.oauthAs.completeConsent(link!, 'alice'));
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/^✓ calendar is authorized; Lanyard keeps the grant in the keychain/);

    const report = JSON.parse((await lanyard(['doctor', '--server', 'calendar', '--json'])).stdout) as DoctorReport;
    expect(report.checks.filter((c) => c.id.startsWith('server.calendar')).map((c) => [c.id, c.ok])).toEqual([
      ['server.calendar.path', true],
      ['server.calendar.prm', true],
      ['server.calendar.as', true],
      ['server.calendar.client', true],
      ['server.calendar.grant', true],
      ['server.calendar.refresh', true],
      ['server.calendar.mcp', true],
    ]);
    expect(check(report, 'server.calendar.client').detail).toBe(`pre-registered client ${clientId} (none)`);
    // Just authorized: the access token from the keychain is still valid, so no refresh token was spent.
    expect(check(report, 'server.calendar.refresh').detail).toMatch(/^the access token is valid until \S+; renewed by itself before then$/);
    expect(check(report, 'server.calendar.mcp').detail).toMatch(/answered initialize with the OAuth access token$/);
    const list = await lanyard(['servers', 'list']);
    expect(list.stdout).toMatch(/calendar\s+.*\s+oauth\s+ready\n/);
    // Nothing the authorization server issued is in any file.
    expect(paths.oauthAs.issued.size).toBeGreaterThan(0);
    for (const token of paths.oauthAs.issued) await expectNoKeyOnDisk(token);
  }, 90_000);
});
