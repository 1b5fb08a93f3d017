/**
 * The OS keychain for real: gnome-keyring's Secret Service on the D-Bus session that scripts/test.sh starts (an
 * unlocked login keyring in a temporary XDG_DATA_HOME). Nothing here touches a user's own keyring: every entry lives
 * under the namespace of a temporary LANYARD_HOME and is deleted at the end.
 *
 * The failure modes (no bus, no Secret Service, no default collection, locked keyring) each run a child process in a
 * bus of its own — a nested `dbus-run-session` with its own gnome-keyring where needed — so breaking the keyring there
 * cannot disturb the tests running in parallel on the shared one.
 *
 * Run alone: bash scripts/keyring-session.sh npx vitest run test/integration/keychain.test.ts
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { keychainNamespace } from '../../electron/broker/paths';
import { createSecretStore, KeychainSecretStore } from '../../electron/broker/secrets';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const keychainStoreModule = pathToFileURL(path.join(repoRoot, 'electron/broker/secrets/keychain-store.ts')).href;
const linux = process.platform === 'linux';

let scratch: string;
let homeA: string;
let homeB: string;
const env = { ...process.env, LANYARD_SECRET_STORE: '' };
const keychainFor = (home: string) => {
  const store = createSecretStore({ home, env });
  if (!(store instanceof KeychainSecretStore)) throw new Error('expected the OS keychain store');
  return store;
};

/** The Secret Service's own view: object paths of items with these attributes (keyring-rs sets service + username). */
async function searchItems(service: string, username?: string): Promise<string[]> {
  // No shell here: the argument is passed as is (dbus-send splits the pairs on commas).
  const attrs = username === undefined ? `service,${service}` : `service,${service},username,${username}`;
  const { stdout } = await run('dbus-send', [
    '--session',
    '--print-reply',
    '--dest=org.freedesktop.secrets',
    '/org/freedesktop/secrets',
    'org.freedesktop.Secret.Service.SearchItems',
    `dict:string:string:${attrs}`,
  ]);
  return stdout.match(/\/org\/freedesktop\/secrets\/collection\/[^"]+/g) ?? [];
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'lanyard-keychain-it-'));
  homeA = path.join(scratch, 'home-a');
  homeB = path.join(scratch, 'home-b');
  if (!linux) return;
  if (!process.env.DBUS_SESSION_BUS_ADDRESS) {
    throw new Error(
      'These tests need a D-Bus session with an unlocked gnome-keyring. Run them through `npm test`, or alone with `bash scripts/keyring-session.sh npx vitest run test/integration/keychain.test.ts`.',
    );
  }
  const probe = await keychainFor(homeA).probe();
  if (!probe.ok) throw new Error(`The test keyring is not usable: ${probe.error.message} ${probe.error.fix}`);
});

afterAll(async () => {
  if (homeA)
    await keychainFor(homeA)
      .deleteAll()
      .catch(() => undefined);
  if (homeB)
    await keychainFor(homeB)
      .deleteAll()
      .catch(() => undefined);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('KeychainSecretStore on the real Secret Service', () => {
  it('set/get/delete round trip; a missing entry is undefined; the item is in gnome-keyring under the namespace', async () => {
    const store = keychainFor(homeA);
    const service = keychainNamespace(homeA);
    expect(store.service).toBe(service);
    expect(service).toMatch(/^lanyard:[0-9a-f]{12}$/);
    expect(store.description).toBe('Secret Service (D-Bus)');

    expect(await store.get('idp:session')).toBeUndefined();
    const value = JSON.stringify({ refreshToken: 'rt-' + 'x'.repeat(1500), unicode: 'é✓' });
    await store.set('idp:session', value);
    await store.set('token:a', 'access');
    expect(await store.get('idp:session')).toBe(value);
    // One item holds them all, read back by a fresh store (a restart).
    expect(await searchItems(service)).toHaveLength(1);
    expect(await searchItems(service, '__lanyard:vault')).toHaveLength(1);
    expect(await searchItems(service, 'idp:session')).toHaveLength(0);
    expect(await keychainFor(homeA).get('idp:session')).toBe(value);

    await store.delete('idp:session');
    expect(await store.get('idp:session')).toBeUndefined();
    expect(await keychainFor(homeA).get('idp:session')).toBeUndefined();
    await store.delete('idp:session'); // deleting a missing entry is fine
    await store.delete('token:a');
    expect(await searchItems(service)).toHaveLength(0);
  });

  it('moves the per-key items an older Lanyard wrote into the one item, reading them meanwhile', async () => {
    const service = keychainNamespace(homeB);
    const { AsyncEntry } = await import('@napi-rs/keyring');
    const options = { linux: { store: 'secret-service' as const } };
    await new AsyncEntry(service, 'idp:session', options).setPassword('old-session');
    await new AsyncEntry(service, 'server:linear:client_secret', options).setPassword('old-cs');
    expect(await searchItems(service)).toHaveLength(2);

    const store = keychainFor(homeB);
    expect(await store.get('idp:session')).toBe('old-session');
    expect(await store.get('server:linear:client_secret')).toBe('old-cs');
    expect(await searchItems(service)).toHaveLength(1);
    expect(await searchItems(service, '__lanyard:vault')).toHaveLength(1);
    expect(await keychainFor(homeB).get('idp:session')).toBe('old-session');
    await store.deleteAll();
    expect(await searchItems(service)).toEqual([]);
  });

  it('reads and writes secrets while the process holds 2,000 open descriptors', async () => {
    // In a child: before the one-entry store, this froze (or crashed) the process inside the native constructor.
    // Stored by an earlier run: the child only reads at start, as a broker with a signed-in user does.
    await keychainFor(homeB).set('idp:session', 'before');
    const script = `
      const { openSync, readdirSync } = await import('node:fs');
      const { KeychainSecretStore } = await import(${JSON.stringify(keychainStoreModule)});
      const store = new KeychainSecretStore({ service: process.env.SVC });
      if ((await store.get('idp:session')) !== 'before') throw new Error('the secret of an earlier run was not read');
      for (let i = 0; i < 2000; i++) openSync('/dev/null', 'r');
      const descriptors = readdirSync('/proc/self/fd').length;
      const seen = [];
      await store.set('token:new-key', 'minted under load');
      await store.set('idp:session', 'rotated');
      store.invalidate();
      seen.push(await store.get('idp:session'), await store.get('token:new-key'));
      await store.delete('token:new-key');
      const probe = await store.probe();
      const other = new KeychainSecretStore({ service: process.env.SVC });
      seen.push(await other.get('idp:session'), await other.get('token:new-key'));
      process.stdout.write(JSON.stringify({ descriptors, seen, probe }));
    `;
    const out = await runChild(script, { SVC: keychainNamespace(homeB) });
    const report = JSON.parse(out.stdout) as { descriptors: number; seen: unknown[]; probe: { ok: boolean } };
    expect(report.descriptors).toBeGreaterThan(2_000);
    expect(report.seen).toEqual(['rotated', 'minted under load', 'rotated', null]);
    expect(report.probe.ok).toBe(true);
    expect(await keychainFor(homeB).get('idp:session')).toBe('rotated');
    await keychainFor(homeB).deleteAll();
  });

  it('a second instance (a restart) reads what the first wrote, past any cache; so does another process', async () => {
    const first = keychainFor(homeA);
    await first.set('server:linear:client_secret', 'cs-1');
    const second = keychainFor(homeA);
    expect(await second.get('server:linear:client_secret')).toBe('cs-1');

    const script = `
      const { KeychainSecretStore } = await import(${JSON.stringify(keychainStoreModule)});
      const store = new KeychainSecretStore({ service: process.env.SVC });
      process.stdout.write(JSON.stringify({ value: await store.get('server:linear:client_secret') }));
    `;
    const out = await runChild(script, { SVC: keychainNamespace(homeA) });
    expect(JSON.parse(out.stdout)).toEqual({ value: 'cs-1' });
    await second.delete('server:linear:client_secret');
  });

  it('two LANYARD_HOME namespaces do not collide', async () => {
    const a = keychainFor(homeA);
    const b = keychainFor(homeB);
    expect(a.service).not.toBe(b.service);
    await a.set('idp:session', 'session-a');
    await b.set('idp:session', 'session-b');
    expect(await keychainFor(homeA).get('idp:session')).toBe('session-a');
    expect(await keychainFor(homeB).get('idp:session')).toBe('session-b');
    await b.deleteAll();
    expect(await keychainFor(homeA).get('idp:session')).toBe('session-a');
    expect(await keychainFor(homeB).get('idp:session')).toBeUndefined();
    await a.delete('idp:session');
  });

  it('deleteAll removes every entry of the namespace (including ones written by an earlier run), or only a prefix', async () => {
    const earlier = keychainFor(homeA);
    await earlier.set('token:aaa', 't1');
    await earlier.set('token:bbb', 't2');
    await earlier.set('idp:session', 's');

    const store = keychainFor(homeA); // knows nothing in its cache: deleteAll must enumerate the keychain
    await store.deleteAll('token:');
    expect(await keychainFor(homeA).get('token:aaa')).toBeUndefined();
    expect(await keychainFor(homeA).get('token:bbb')).toBeUndefined();
    expect(await keychainFor(homeA).get('idp:session')).toBe('s');

    await store.deleteAll();
    expect(await searchItems(store.service)).toEqual([]);
  });

  it('concurrent operations on one key stay in call order', async () => {
    const store = keychainFor(homeA);
    const results = await Promise.all([
      store.set('k', '1'),
      store.get('k'),
      store.set('k', '2'),
      store.delete('k'),
      store.get('k'),
      store.set('k', '3'),
    ]);
    expect(results).toEqual([undefined, '1', undefined, undefined, undefined, undefined]);
    expect(await keychainFor(homeA).get('k')).toBe('3');
    await store.delete('k');
  });

  it('probe() round-trips and leaves nothing behind', async () => {
    const store = keychainFor(homeA);
    const started = performance.now();
    expect(await store.probe()).toEqual({ ok: true, backend: 'Secret Service (D-Bus)' });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await searchItems(store.service)).toEqual([]);
  });
});

/** What the child prints: each operation's outcome on a broken keychain. */
interface ChildReport {
  set: Outcome;
  get: Outcome;
  probe: { ok: boolean; error?: { code: string; message: string; fix: string } };
}
type Outcome = { ok: true; found: boolean } | { ok: false; code: string; message: string; fix: string; transient: boolean; ms: number };

const SECRET = 'rt_integration_SECRET_value_0123456789';
const FAILURE_SCRIPT = `
  const { KeychainSecretStore } = await import(${JSON.stringify(keychainStoreModule)});
  const store = new KeychainSecretStore({ service: 'lanyard:failure-test' });
  const attempt = async (fn) => {
    const t0 = performance.now();
    try { const v = await fn(); return { ok: true, found: v !== undefined }; }
    catch (e) { return { ok: false, code: e.code, message: e.message, fix: e.fix, transient: e.transient, ms: performance.now() - t0 }; }
  };
  const report = {
    set: await attempt(() => store.set('idp:session', ${JSON.stringify(SECRET)})),
    get: await attempt(() => new KeychainSecretStore({ service: 'lanyard:failure-test' }).get('idp:session')),
    probe: await store.probe(),
  };
  process.stdout.write(JSON.stringify(report));
`;

describe.runIf(linux)('keychain failure modes (each in a bus of its own)', () => {
  const HEADLESS_FIX =
    "Run Lanyard inside a desktop session, or start one with dbus-run-session and gnome-keyring-daemon; see README 'Headless Linux'";

  function expectFailure(outcome: Outcome, message: string, fix: string) {
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.code).toBe(ErrorCodes.KEYCHAIN_UNAVAILABLE);
    expect(outcome.message).toContain(message);
    expect(outcome.fix).toContain(fix);
    expect(outcome.message + outcome.fix).not.toContain(SECRET);
    // Fails fast: no hang waiting for a prompt nobody can see.
    expect(outcome.ms).toBeLessThan(5000);
  }

  it('no D-Bus session bus', async () => {
    const out = await runChild(FAILURE_SCRIPT, { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' });
    const report = JSON.parse(out.stdout) as ChildReport;
    expectFailure(report.set, 'No D-Bus session: the Secret Service cannot be reached.', HEADLESS_FIX);
    expectFailure(report.get, 'No D-Bus session: the Secret Service cannot be reached.', HEADLESS_FIX);
    expect(report.probe).toMatchObject({
      ok: false,
      error: { code: ErrorCodes.KEYCHAIN_UNAVAILABLE, message: 'No D-Bus session: the Secret Service cannot be reached.' },
    });
  });

  it('DBUS_SESSION_BUS_ADDRESS unset', async () => {
    // XDG_RUNTIME_DIR pointed nowhere, so no default bus socket can be found either.
    const out = await runChild(FAILURE_SCRIPT, { DBUS_SESSION_BUS_ADDRESS: undefined, XDG_RUNTIME_DIR: '/nonexistent' });
    const report = JSON.parse(out.stdout) as ChildReport;
    expectFailure(report.set, 'No D-Bus session: the Secret Service cannot be reached.', HEADLESS_FIX);
  });

  it('a bus with no Secret Service provider', async () => {
    const dir = await privateDir('nobus-provider');
    const config = path.join(dir, 'bus.conf');
    await writeFile(
      config,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:dir=${dir}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`,
    );
    const out = await runChild(FAILURE_SCRIPT, {}, { bus: { config } });
    const report = JSON.parse(out.stdout) as ChildReport;
    expectFailure(report.set, 'No Secret Service is running on the D-Bus session', 'Install and start gnome-keyring');
  });

  it('gnome-keyring without a default (login) collection', async () => {
    // Started without --unlock in an empty XDG_DATA_HOME: the daemon runs but there is no login keyring.
    const out = await runChild(
      FAILURE_SCRIPT,
      {},
      { bus: { setup: 'gnome-keyring-daemon --replace --daemonize --components=secrets </dev/null >/dev/null' } },
    );
    const report = JSON.parse(out.stdout) as ChildReport;
    expectFailure(report.set, 'The keyring has no default collection', "README 'Headless Linux'");
    // Reading finds nothing rather than failing: @napi-rs/keyring reports a missing item, so only a write tells.
    expect(report.get).toEqual({ ok: true, found: false });
    expect(report.probe).toMatchObject({ ok: false, error: { message: expect.stringContaining('no default collection') } });
  });

  it('a locked keyring (login collection locked over D-Bus)', async () => {
    const setup = [
      'printf %s nested-pw | gnome-keyring-daemon --replace --unlock --daemonize --components=secrets >/dev/null',
      // --daemonize returns before the daemon owns its bus name; calling earlier would D-Bus-activate a second one.
      'i=0; until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets | grep -q "boolean true"; do i=$((i+1)); [ $i -gt 100 ] && exit 97; sleep 0.05; done',
      // An entry that exists before the lock: reading a *missing* entry of a locked keyring finds nothing and does
      // not fail (only existing items need unlocking), so the read below needs something to read.
      `node --input-type=module -e "import { AsyncEntry } from '@napi-rs/keyring'; await new AsyncEntry('lanyard:failure-test', 'idp:session', { linux: { store: 'secret-service' } }).setPassword('before-lock')" || exit 96`,
      'dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null || exit 98',
      'dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets/collection/login org.freedesktop.DBus.Properties.Get string:org.freedesktop.Secret.Collection string:Locked | grep -q "boolean true" || exit 99',
    ].join('\n');
    const out = await runChild(FAILURE_SCRIPT, {}, { bus: { setup } });
    const report = JSON.parse(out.stdout) as ChildReport;
    expectFailure(report.set, 'The keyring is locked.', 'Unlock your login keyring (log in to the desktop) and retry');
    // Reading an existing entry of a locked keyring is an error too, never "not signed in".
    expectFailure(report.get, 'The keyring is locked.', 'Unlock your login keyring');
    if (!report.set.ok) expect(report.set.transient).toBe(true);
  });
});

async function privateDir(name: string): Promise<string> {
  const dir = path.join(scratch, name);
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o700);
  return dir;
}

/**
 * Runs `script` (ESM, may import the TypeScript sources through tsx) in a child Node process. With `bus`, the child
 * runs inside a nested `dbus-run-session` with its own XDG dirs, after `bus.setup` (shell) has run on that bus.
 */
async function runChild(
  script: string,
  envOverrides: Record<string, string | undefined>,
  options: { bus?: { config?: string; setup?: string } } = {},
): Promise<{ stdout: string; stderr: string }> {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...envOverrides };
  // A DISPLAY would let a locked keyring pop a prompt and hang; a control socket would point at the outer daemon.
  delete childEnv.DISPLAY;
  delete childEnv.WAYLAND_DISPLAY;
  delete childEnv.GNOME_KEYRING_CONTROL;
  for (const [k, v] of Object.entries(envOverrides)) if (v === undefined) delete childEnv[k];

  const scriptFile = path.join(scratch, `child-${Math.random().toString(36).slice(2)}.mjs`);
  await writeFile(scriptFile, script);
  const node = [process.execPath, '--import', 'tsx', scriptFile];

  let command: string[];
  if (options.bus) {
    const dir = await privateDir(`bus-${Math.random().toString(36).slice(2)}`);
    childEnv.XDG_DATA_HOME = path.join(dir, 'data');
    childEnv.XDG_RUNTIME_DIR = path.join(dir, 'runtime');
    await mkdir(childEnv.XDG_DATA_HOME, { recursive: true });
    await privateDir(path.relative(scratch, childEnv.XDG_RUNTIME_DIR));
    delete childEnv.DBUS_SESSION_BUS_ADDRESS;
    const inner = `${options.bus.setup ?? ':'}\nexec "$@"`;
    command = [
      'dbus-run-session',
      ...(options.bus.config ? [`--config-file=${options.bus.config}`] : []),
      '--',
      'sh',
      '-c',
      inner,
      'child',
      ...node,
    ];
  } else {
    command = node;
  }

  return new Promise((resolve, reject) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, { cwd: repoRoot, env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && stdout.trim().startsWith('{')) resolve({ stdout, stderr });
      else reject(new Error(`child exited ${code}\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}
