/**
 * electron/main/config-backend.ts: the app's electron-store backend and the CLI's conf backend are one file. The
 * factory is given `conf` (the library electron-store extends, with electron-store's `name` → conf's `configName`),
 * which is exactly what electron-store hands to it.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Conf from 'conf';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigStore, createConfBackend } from '../../electron/broker/config/store';
import { createStoreBackend, storeOptions, type StoreOptions } from '../../electron/main/config-backend';

const asElectronStore = (options: StoreOptions) => {
  const { name, ...rest } = options;
  return new Conf<Record<string, unknown>>({ ...rest, configName: name, projectName: 'lanyard' });
};

let home: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'lanyard-store-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('createStoreBackend', () => {
  it('opens <home>/config.json, the file the CLI uses', () => {
    expect(createStoreBackend(home, asElectronStore).path).toBe(join(home, 'config.json'));
    expect(createConfBackend(home).path).toBe(join(home, 'config.json'));
    expect(storeOptions(home)).toMatchObject({ cwd: home, name: 'config', configFileMode: 0o600, clearInvalidConfig: false });
  });

  it('what the app writes the CLI reads, and the other way round', () => {
    const app = new ConfigStore(createStoreBackend(home, asElectronStore));
    app.update((c) => {
      c.servers.push({ id: 'wiki', name: 'Wiki', url: 'https://mcp.wiki.example.com/mcp', enabled: true });
    });
    const cli = new ConfigStore(createConfBackend(home));
    expect(cli.load().servers.map((s) => s.id)).toEqual(['wiki']);
    cli.update((c) => {
      c.ui = { startAtLogin: true };
    });
    expect(new ConfigStore(createStoreBackend(home, asElectronStore)).load().ui).toEqual({ startAtLogin: true });
  });

  it('writes the file 0600 and pretty-printed', async () => {
    new ConfigStore(createStoreBackend(home, asElectronStore)).update((c) => {
      c.gateway.port = 48000;
    });
    const file = join(home, 'config.json');
    if (process.platform !== 'win32') expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toMatch(/^\{\n {2}"version": 1,/);
  });

  it('a broken file is an error that names a position, not a silent reset', async () => {
    await writeFile(join(home, 'config.json'), '{ "version": 1,, }');
    expect(() => new ConfigStore(createStoreBackend(home, asElectronStore)).load()).toThrow(/not valid JSON \(syntax error at line 1/);
    expect(await readFile(join(home, 'config.json'), 'utf8')).toBe('{ "version": 1,, }');
  });

  it('refuses a store that opened another file', () => {
    const wrong = (options: StoreOptions) => asElectronStore({ ...options, cwd: join(home, 'elsewhere') });
    expect(() => createStoreBackend(home, wrong).read()).toThrow(/expected/);
  });

  it('an empty file is a fresh install', async () => {
    await writeFile(join(home, 'config.json'), '');
    expect(new ConfigStore(createStoreBackend(home, asElectronStore)).load().servers).toEqual([]);
  });
});
