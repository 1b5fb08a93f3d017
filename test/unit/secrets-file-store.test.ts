import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { lanyardPaths } from '../../electron/broker/paths';
import { FILE_STORE_DESCRIPTION, FileSecretStore } from '../../electron/broker/secrets/file-store';

const posix = process.platform !== 'win32';
let root: string;
let file: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'lanyard-filestore-'));
  file = lanyardPaths(path.join(root, 'home')).secretsFile;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<LanyardError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LanyardError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('FileSecretStore', () => {
  it('says what it is', () => {
    const store = new FileSecretStore({ file });
    expect(store.kind).toBe('file');
    expect(store.description).toBe('Plaintext file (0600) — opt-in, less safe than the OS keychain');
    expect(store.description).toBe(FILE_STORE_DESCRIPTION);
  });

  it('round trip; missing file reads as empty; the file is 0600 in a 0700 dir; a new instance reads it back', async () => {
    const store = new FileSecretStore({ file });
    expect(await store.get('idp:session')).toBeUndefined();
    await store.set('idp:session', 's1');
    await store.set('token:a', 't1');
    expect(await store.get('idp:session')).toBe('s1');
    if (posix) {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    }
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, secrets: { 'idp:session': 's1', 'token:a': 't1' } });
    const restarted = new FileSecretStore({ file });
    expect(await restarted.get('token:a')).toBe('t1');
    await restarted.delete('token:a');
    await restarted.delete('token:a');
    expect(await store.get('token:a')).toBeUndefined();
    expect(await readdir(path.dirname(file))).toEqual(['secrets.json']);
  });

  it('deleteAll with and without a prefix', async () => {
    const store = new FileSecretStore({ file });
    await Promise.all([store.set('server:a:client_secret', '1'), store.set('server:b:client_secret', '2'), store.set('idp:session', '3')]);
    await store.deleteAll('server:a:');
    expect(await store.get('server:a:client_secret')).toBeUndefined();
    expect(await store.get('server:b:client_secret')).toBe('2');
    await store.deleteAll();
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, secrets: {} });
  });

  it('concurrent writes from one process all land (one read-modify-write at a time)', async () => {
    const store = new FileSecretStore({ file });
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.set(`k${i}`, `v${i}`)));
    const restarted = new FileSecretStore({ file });
    for (let i = 0; i < 30; i++) expect(await restarted.get(`k${i}`)).toBe(`v${i}`);
  });

  it('sees writes made by another instance (another process)', async () => {
    const a = new FileSecretStore({ file });
    const b = new FileSecretStore({ file });
    await a.set('k', '1');
    expect(await b.get('k')).toBe('1');
    await b.set('k', '2');
    expect(await a.get('k')).toBe('2');
  });

  it.runIf(posix)('refuses a file readable by group or others, naming the mode and the fix, without reading it', async () => {
    const store = new FileSecretStore({ file });
    await store.set('idp:session', 'rt_topsecret_value');
    for (const mode of [0o640, 0o604, 0o644, 0o660]) {
      await chmod(file, mode);
      const error = await rejection(new FileSecretStore({ file }).get('idp:session'));
      expect(error.code).toBe(ErrorCodes.KEYCHAIN_UNAVAILABLE);
      expect(error.message).toBe(
        `The secrets file ${file} is readable or writable by other users (mode 0${mode.toString(8)}); Lanyard refuses to use it.`,
      );
      expect(error.fix).toContain(`chmod 600 ${file}`);
      expect(error.message + error.fix).not.toContain('rt_topsecret_value');
    }
  });

  it.runIf(posix)('an instance that already loaded the file also refuses once it turns group-readable', async () => {
    const store = new FileSecretStore({ file });
    await store.set('k', 'v');
    expect(await store.get('k')).toBe('v');
    await chmod(file, 0o644);
    await expect(store.get('k')).rejects.toThrow(/readable or writable by other users/);
    await expect(store.set('k', 'w')).rejects.toThrow(/readable or writable by other users/);
    expect(JSON.parse(await readFile(file, 'utf8')).secrets.k).toBe('v');
  });

  it('a damaged file is an error that never quotes its content', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    for (const text of [
      '{"version":1,"secrets":{"a":',
      'rt_leak_value',
      '{"version":2,"secrets":{}}',
      '{"version":1,"secrets":{"a":1}}',
      '[]',
    ]) {
      await writeFile(file, text, { mode: 0o600 });
      const error = await rejection(new FileSecretStore({ file }).get('a'));
      expect(error.message).toBe(`The secrets file ${file} is damaged (not a Lanyard secrets file).`);
      expect(error.fix).toContain(`Delete ${file}`);
      expect(error.message).not.toContain('rt_leak');
    }
  });

  it('an unwritable location is a clear error', async () => {
    // A file where the directory should be: fails the same way for root, unlike permission bits.
    const blocker = path.join(root, 'blocker');
    await writeFile(blocker, '');
    const target = path.join(blocker, 'secrets.json');
    const error = await rejection(new FileSecretStore({ file: target }).set('k', 'v'));
    expect(error.code).toBe(ErrorCodes.KEYCHAIN_UNAVAILABLE);
    expect(error.message).toMatch(new RegExp(`^Could not (write|read) the secrets file ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});
