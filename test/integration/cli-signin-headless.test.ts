/**
 * `lanyard login` on a machine without a browser, as a user runs the built CLI there, against the sandbox IdP and the
 * real keychain: the link printed, the person signing in on "another machine" (the IdP's pages over HTTP, the redirect
 * captured without being followed), the address pasted on stdin; the same through a running `lanyard serve`; and
 * `--device`, approved at the IdP's /activate page. Wrong pastes print their fix and the prompt comes back.
 * Run with `bash scripts/keyring-session.sh npx vitest run test/integration/cli-signin-headless.test.ts`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openConfigStore } from '../../electron/broker/config/store';
import { keychainNamespace } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import { IDP_SECRET_KEYS } from '../../electron/broker/identity/idp-client';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startIdp } from '../fixtures/sandbox/idp';
import { approveDeviceCode } from '../helpers/device-login';
import { tempHome } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');
// Its own build (cli.test.ts builds out/cli-integration, build.test.ts out/cli): parallel files never share one.
const CLI = path.join(root, 'out/cli-signin/lanyard.js');

let home: string;
let cleanup: () => Promise<void>;
let sandbox: Sandbox;

/** The machine without a browser: no display, and LANYARD_NO_BROWSER unset (it would keep the loopback-only sign-in). */
function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    LANYARD_HOME: home,
    HOME: path.join(home, 'user-home'),
    LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json',
  };
  delete e.LANYARD_NO_BROWSER;
  delete e.DISPLAY;
  delete e.WAYLAND_DISPLAY;
  return e;
}

/** A running `lanyard …` with its output collected, stdin open for pasting. */
function run(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  async function waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stderr'): Promise<RegExpExecArray> {
    for (let i = 0; i < 400; i++) {
      const m = pattern.exec(out[stream]);
      if (m) return m;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`never printed ${pattern}: ${out.stderr}`);
  }
  return { child, out, exited, waitFor, paste: (line: string) => child.stdin.write(`${line}\n`) };
}

const secrets = () => new KeychainSecretStore({ service: keychainNamespace(home) });

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['scripts/build-cli.mjs', '--outfile', path.relative(root, CLI)], { cwd: root });
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
  ({ home, cleanup } = await tempHome());
  openConfigStore(home).update(() => ({ version: 1, ...sandbox.lanyardConfig(), gateway: { port: 0 } }));
  for (const [k, v] of Object.entries(sandbox.lanyardSecrets())) await secrets().set(k, v);
}, 120_000);
afterAll(async () => {
  await secrets()
    .deleteAll()
    .catch(() => {});
  await sandbox?.stop();
  await cleanup?.();
});

describe('lanyard login without a browser here', () => {
  let serve: ChildProcess | undefined;
  afterEach(async () => {
    if (serve && serve.exitCode === null) {
      serve.kill('SIGTERM');
      await new Promise((r) => serve!.once('exit', r));
    }
    serve = undefined;
  });

  it('no display: prints the link, refuses wrong pastes with their fix, signs in with the pasted address into the keychain', async () => {
    const login = run(['login']);
    const link = (await login.waitFor(/Open this link:\s+(\S+)/))[1]!;
    expect(login.out.stderr).toMatch(/No browser can be opened here: there is no display here/);
    expect(link.startsWith(sandbox.idp.authorizationEndpoint)).toBe(true);
    const redirect = await sandbox.idp.completeLogin(link, 'alice');
    const code = new URL(redirect).searchParams.get('code')!;

    login.paste('what is this');
    await login.waitFor(/not the address the browser ended on[\s\S]*→ Copy the whole address/);
    const otherAttempt = new URL(redirect);
    otherAttempt.searchParams.set('state', 'from-an-earlier-login');
    login.paste(otherAttempt.href);
    await login.waitFor(/belongs to another sign-in attempt/);
    login.paste(redirect);

    expect(await login.exited).toBe(0);
    expect(login.out.stdout).toMatch(/Signed in as alice@example\.com\./);
    expect(`${login.out.stdout}${login.out.stderr}`).not.toContain(code);
    const stored = JSON.parse((await secrets().get(IDP_SECRET_KEYS.session))!) as { refreshToken?: string };
    expect(stored.refreshToken).toEqual(expect.any(String));
  }, 60_000);

  it('--device: shows the /activate address and the code; approving it there signs in', async () => {
    const login = run(['login', '--device', '--force']);
    const [, uri, userCode] = await login.waitFor(/open (\S+) on any device and enter the code:\s+(\S+)/);
    expect(uri).toBe(`${new URL(sandbox.idp.issuer).origin}/activate`);
    const before = await secrets().get(IDP_SECRET_KEYS.session);
    await approveDeviceCode(uri!, userCode!);
    expect(await login.exited).toBe(0);
    expect(login.out.stdout).toMatch(/Signed in as alice@example\.com\./);
    // A new session in the keychain, with its own refresh token.
    const after = await secrets().get(IDP_SECRET_KEYS.session);
    expect(after).not.toBe(before);
    expect(JSON.parse(after!)).toMatchObject({ refreshToken: expect.any(String) });
  }, 60_000);

  it('through a running `lanyard serve`: --no-browser gets the link from the broker and completes it with the paste', async () => {
    serve = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let serveOut = '';
    serve.stdout!.on('data', (d: Buffer) => (serveOut += d.toString()));
    serve.stderr!.on('data', (d: Buffer) => (serveOut += d.toString()));
    for (let i = 0; i < 200 && !/Stop with Ctrl-C/.test(serveOut); i++) await new Promise((r) => setTimeout(r, 50));

    const login = run(['login', '--no-browser', '--force']);
    const link = (await login.waitFor(/Open this link:\s+(\S+)/))[1]!;
    const redirect = await sandbox.idp.completeLogin(link, 'alice');
    login.paste(redirect);
    expect(await login.exited).toBe(0);
    expect(login.out.stdout).toMatch(/Signed in as alice@example\.com\./);
    // The broker holds the session: its status says so, and its output never shows the code.
    const status = run(['status', '--json']);
    await status.exited;
    expect(JSON.parse(status.out.stdout)).toMatchObject({ session: { status: 'signed_in' }, broker: { running: true } });
    expect(serveOut).not.toContain(new URL(redirect).searchParams.get('code')!);
  }, 60_000);

  it('--client-secret-stdin with --no-browser: a confidential client’s secret is the first line, the pasted address the next', async () => {
    // An IdP whose token endpoint refuses the code without the client's secret (client_secret_basic).
    const confidential = await startIdp({ clientAuth: 'client_secret_basic' });
    const secret = confidential.client.clientSecret!;
    const profileHome = path.join(home, 'identities', 'tenant');
    const profileSecrets = new KeychainSecretStore({ service: keychainNamespace(profileHome) });
    try {
      const login = run([
        'login',
        '--profile',
        'tenant',
        '--issuer',
        confidential.issuer,
        '--client-id',
        confidential.client.clientId,
        '--client-secret-stdin',
        '--no-browser',
      ]);
      login.paste(secret);
      const link = (await login.waitFor(/Open this link:\s+(\S+)/))[1]!;
      login.paste(await confidential.completeLogin(link, 'alice'));
      expect(await login.exited, login.out.stderr).toBe(0);
      expect(login.out.stdout).toContain('its client secret is in the keychain');
      expect(login.out.stdout).toMatch(/Signed in as alice@example\.com\./);
      expect(`${login.out.stdout}${login.out.stderr}`).not.toContain(secret);
      // The secret is in the profile's keychain namespace, and in none of its files.
      expect(await profileSecrets.get(IDP_SECRET_KEYS.clientSecret)).toContain(secret);
      for (const file of await readdir(profileHome, { recursive: true, withFileTypes: true }))
        if (file.isFile()) expect(await readFile(path.join(file.parentPath, file.name), 'utf8'), file.name).not.toContain(secret);
    } finally {
      await profileSecrets.deleteAll().catch(() => {});
      await confidential.stop();
    }
  }, 60_000);
});
