import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import {
  DEFAULT_KEYCHAIN_SERVICE,
  defaultLanyardHome,
  keychainNamespace,
  lanyardPaths,
  resolveLanyardHome,
  writePrivateFile,
} from '../../electron/broker/paths';

describe('resolveLanyardHome', () => {
  it('uses LANYARD_HOME when set', () => {
    expect(resolveLanyardHome({ LANYARD_HOME: '/srv/lanyard-a', HOME: '/home/u' }, 'linux')).toBe('/srv/lanyard-a');
    expect(resolveLanyardHome({ LANYARD_HOME: '/srv/x/../lanyard-b/' }, 'linux')).toBe('/srv/lanyard-b/');
    expect(resolveLanyardHome({ LANYARD_HOME: 'D:\\Lanyard' }, 'win32')).toBe('D:\\Lanyard');
  });

  it('refuses a relative LANYARD_HOME with a fix', () => {
    let caught: unknown;
    try {
      resolveLanyardHome({ LANYARD_HOME: 'rel/dir', HOME: '/home/u' }, 'linux');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(LanyardError);
    expect((caught as LanyardError).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect((caught as LanyardError).message).toContain('LANYARD_HOME must be an absolute path');
    expect((caught as LanyardError).fix).toContain('absolute');
  });

  it('treats an empty LANYARD_HOME as unset', () => {
    expect(resolveLanyardHome({ LANYARD_HOME: '', HOME: '/home/u' }, 'linux')).toBe('/home/u/.config/lanyard');
  });

  it('uses the per-OS default', () => {
    expect(resolveLanyardHome({ HOME: '/Users/ada' }, 'darwin')).toBe('/Users/ada/Library/Application Support/Lanyard');
    expect(resolveLanyardHome({ APPDATA: 'C:\\Users\\ada\\AppData\\Roaming' }, 'win32')).toBe('C:\\Users\\ada\\AppData\\Roaming\\Lanyard');
    expect(resolveLanyardHome({ HOME: '/home/ada' }, 'linux')).toBe('/home/ada/.config/lanyard');
    expect(resolveLanyardHome({ HOME: '/home/ada', XDG_CONFIG_HOME: '/xdg/conf' }, 'linux')).toBe('/xdg/conf/lanyard');
  });

  it('ignores a relative XDG_CONFIG_HOME, as the XDG spec requires', () => {
    expect(defaultLanyardHome({ HOME: '/home/ada', XDG_CONFIG_HOME: 'conf' }, 'linux')).toBe('/home/ada/.config/lanyard');
  });
});

describe('lanyardPaths', () => {
  it('puts every file under home', () => {
    const p = lanyardPaths('/srv/lh', 'linux');
    expect(p).toEqual({
      home: '/srv/lh',
      configFile: '/srv/lh/config.json',
      runtimeDir: '/srv/lh/run',
      runtimeFile: '/srv/lh/run/broker.json',
      logsDir: '/srv/lh/logs',
      activityFile: '/srv/lh/activity.jsonl',
      stateFile: '/srv/lh/state.json',
      secretsFile: '/srv/lh/secrets.json',
    });
    expect(lanyardPaths('C:\\L', 'win32').runtimeFile).toBe('C:\\L\\run\\broker.json');
  });
});

describe('keychainNamespace', () => {
  const env = { HOME: '/home/ada' };

  it('is "lanyard" for the default home, also when LANYARD_HOME names it explicitly', () => {
    expect(keychainNamespace('/home/ada/.config/lanyard', env, 'linux')).toBe(DEFAULT_KEYCHAIN_SERVICE);
    expect(keychainNamespace('/home/ada/.config/lanyard/', env, 'linux')).toBe('lanyard');
    expect(keychainNamespace('C:\\Users\\Ada\\AppData\\Roaming\\Lanyard', { APPDATA: 'c:\\users\\ada\\appdata\\roaming' }, 'win32')).toBe(
      'lanyard',
    );
  });

  it('is lanyard:<12 hex of sha256(home)> elsewhere, stable and distinct per home', () => {
    const a = keychainNamespace('/tmp/a', env, 'linux');
    const b = keychainNamespace('/tmp/b', env, 'linux');
    expect(a).toMatch(/^lanyard:[0-9a-f]{12}$/);
    expect(b).toMatch(/^lanyard:[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    expect(keychainNamespace('/tmp/a/', env, 'linux')).toBe(a);
    // sha256("/tmp/a") — pinned so a refactor cannot silently orphan users' keychain entries.
    expect(a).toBe('lanyard:d9b741ea3d4d');
  });
});

describe('writePrivateFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanyard-paths-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a 0600 file in a 0700 directory and leaves no temp file', async () => {
    const file = path.join(dir, 'home', 'run', 'broker.json');
    await writePrivateFile(file, '{"port":1}');
    expect(await readFile(file, 'utf8')).toBe('{"port":1}');
    if (process.platform !== 'win32') {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dir, 'home'))).mode & 0o777).toBe(0o700);
    }
    expect(await readdir(path.dirname(file))).toEqual(['broker.json']);
  });

  it('replaces an existing (even world-readable) file with a 0600 one', async () => {
    const file = path.join(dir, 'state.json');
    await writeFile(file, 'old', { mode: 0o644 });
    await writePrivateFile(file, Buffer.from('new'));
    expect(await readFile(file, 'utf8')).toBe('new');
    if (process.platform !== 'win32') expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('concurrent writers never leave a torn file', async () => {
    const file = path.join(dir, 'c.json');
    const values = Array.from({ length: 20 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(10_000) }));
    await Promise.all(values.map((v) => writePrivateFile(file, v)));
    expect(values).toContain(await readFile(file, 'utf8'));
    expect(await readdir(dir)).toEqual(['c.json']);
  });
});
