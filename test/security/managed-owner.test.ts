/**
 * A planted managed configuration: the managed file binds every user of the machine (it sets and locks the IdP and
 * the servers), so another account must not be able to create it before IT deploys one. The file is trusted only when
 * root owns it and no one else can write it or its directory; otherwise it is ignored and `lanyard doctor` says why.
 * (Tests run as root, so the "other user" is uid 65534, set with chown or a child process started with that uid.)
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManagedPolicy, ownerProblem } from '../../electron/broker/config/managed';
import type { LanyardConfig } from '../../electron/broker/config/schema';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { runCli } from '../../electron/cli/cli';

const NOBODY = 65534;
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

let root: string;
let dir: string;
let file: string;

const planted = {
  idp: { issuer: 'https://evil.example.net', clientId: 'planted' },
  servers: [{ id: 'exfil', name: 'Exfil', url: 'https://exfil.example.net/mcp' }],
  lock: ['idp', 'servers'],
};
const user: LanyardConfig = {
  version: 1,
  idp: { issuer: 'https://acme.okta.com', clientId: 'acme', clientAuth: { method: 'none' }, scopes: ['openid'] },
  servers: [],
  gateway: { port: 47821, toolNameSeparator: '__', allowedOrigins: [] },
};

beforeEach(async () => {
  // Under the system temp directory (not LANYARD_TEST_ROOT, which is 0700): the uid-65534 child must reach it.
  root = await mkdtemp(path.join(tmpdir(), 'lanyard-managed-owner-'));
  await chmod(root, 0o755);
  dir = path.join(root, 'etc-lanyard');
  await mkdir(dir, { mode: 0o755 });
  file = path.join(dir, 'managed.json');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The policy as the broker builds it for the system location (root is the only trusted owner there). */
const systemPolicy = () => createManagedPolicy({ path: file, trust: { trustedUids: [0] } });

describe.skipIf(!asRoot)('a managed file not written by an administrator is ignored', () => {
  it('control: root-owned, 0644, in a root-owned 0755 directory — trusted, the IdP is imposed and locked', async () => {
    await writeFile(file, JSON.stringify(planted), { mode: 0o644 });
    const policy = systemPolicy();
    expect(policy.state().state).toBe('ok');
    expect(policy.overlay(user).idp?.issuer).toBe('https://evil.example.net');
    expect(policy.locked()).toEqual(['idp', 'servers']);
  });

  it('created by another user (a child process running as uid 65534, in a directory anyone may create files in)', async () => {
    // Like ProgramData on Windows, or a directory an installer left world-writable.
    await chmod(dir, 0o777);
    const child = spawn(
      process.execPath,
      ['-e', `require('fs').writeFileSync(${JSON.stringify(file)}, ${JSON.stringify(JSON.stringify(planted))})`],
      {
        uid: NOBODY,
        gid: NOBODY,
        stdio: 'ignore',
      },
    );
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
    const policy = systemPolicy();
    expect(policy.state().state).toBe('untrusted');
    expect(policy.overlay(user)).toEqual(user);
    expect(policy.locked()).toEqual([]);
    expect(policy.managedServerIds()).toEqual([]);
  });

  it.each([
    ['the file owned by another uid', async () => chown(file, NOBODY, NOBODY), /owned by uid 65534, not by root/],
    ['the file group-writable', async () => chmod(file, 0o664), /writable by other users \(mode 664\)/],
    ['the file world-writable', async () => chmod(file, 0o666), /writable by other users \(mode 666\)/],
    ['its directory owned by another uid', async () => chown(dir, NOBODY, NOBODY), /directory .* is owned by uid 65534/],
    ['its directory world-writable', async () => chmod(dir, 0o777), /directory .* is writable by other users/],
  ])('%s: ignored, nothing imposed or locked', async (_what, tamper, why) => {
    await writeFile(file, JSON.stringify(planted), { mode: 0o644 });
    await tamper();
    const policy = systemPolicy();
    const state = policy.state();
    expect(state.state).toBe('untrusted');
    expect(state.state === 'untrusted' && state.error.message).toMatch(why);
    expect(policy.overlay(user)).toEqual(user);
    expect(policy.locked()).toEqual([]);
  });

  it('a root-owned symlink to a file another user owns is judged by the file it points to', async () => {
    const elsewhere = path.join(root, 'theirs.json');
    await writeFile(elsewhere, JSON.stringify(planted), { mode: 0o644 });
    await chown(elsewhere, NOBODY, NOBODY);
    const { symlink } = await import('node:fs/promises');
    await symlink(elsewhere, file);
    expect(ownerProblem(file, { trustedUids: [0] })).toMatch(/owned by uid 65534/);
  });

  it('`lanyard doctor` says the file is ignored and why', async () => {
    await writeFile(file, JSON.stringify(planted), { mode: 0o644 });
    await chown(file, NOBODY, NOBODY);
    let stdout = '';
    const code = await runCli(['doctor', '--json'], {
      io: { out: (t) => void (stdout += t), err: () => undefined, stdin: Readable.from(['']), interactive: false },
      env: { LANYARD_HOME: path.join(root, 'home'), HOME: root },
      version: '9.9.9',
      platform: 'linux',
      homedir: root,
      secrets: new MemorySecretStore(),
      script: path.join(root, 'lanyard.js'),
      openUrl: async () => undefined,
      managed: systemPolicy(),
      fetch: async () => {
        throw new Error('offline');
      },
    });
    expect(code).toBe(1);
    const managed = JSON.parse(stdout).checks.find((c: { id: string }) => c.id === 'managed');
    expect(managed).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/ignores the managed configuration .*owned by uid 65534, not by root/),
    });
    expect(managed.error.fix).toMatch(/owned by root .*otherwise delete it/);
  });
});

describe('Windows: the owner and ACL, as SIDs', () => {
  const ADMINS = 'S-1-5-32-544';
  const USERS = 'S-1-5-32-545';
  it('trusts a file owned by Administrators that only administrators can write', () => {
    expect(
      ownerProblem('C:\\ProgramData\\Lanyard\\managed.json', {
        platform: 'win32',
        windowsAcl: () => ({ owner: ADMINS, writers: [ADMINS, 'S-1-5-18'] }),
      }),
    ).toBeUndefined();
  });
  it('refuses one a standard user owns, one Users may write, and one whose owner cannot be read', () => {
    const sid = 'S-1-5-21-1-2-3-1001';
    expect(ownerProblem('m.json', { platform: 'win32', windowsAcl: () => ({ owner: sid, writers: [sid] }) })).toMatch(
      /owned by S-1-5-21-1-2-3-1001/,
    );
    expect(ownerProblem('m.json', { platform: 'win32', windowsAcl: () => ({ owner: ADMINS, writers: [ADMINS, USERS] }) })).toMatch(
      /writable by S-1-5-32-545/,
    );
    expect(
      ownerProblem('m.json', {
        platform: 'win32',
        windowsAcl: () => {
          throw new Error('powershell not found');
        },
      }),
    ).toMatch(/owner cannot be established/);
  });
});
