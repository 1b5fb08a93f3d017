/**
 * The config file in the app: electron-store over the same `<home>/config.json`, with the same settings, as the
 * headless broker's conf backend (electron/broker/config/store.ts createConfBackend) — one file the tray app and the
 * CLI both read and write. electron-store is injected as a factory so the unit test can prove the file is shared by
 * running this backend on `conf` (the library electron-store wraps) against createConfBackend.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { lanyardPaths } from '../broker/paths';
import { parseConfigJson, storeBackend, type ConfigBackend } from '../broker/config/store';

/** The constructor options both electron-store and (with `configName`) conf understand. */
export interface StoreOptions {
  cwd: string;
  name: 'config';
  configFileMode: number;
  accessPropertiesByDotNotation: false;
  clearInvalidConfig: false;
  serialize: (value: Record<string, unknown>) => string;
  deserialize: (text: string) => Record<string, unknown>;
}

export interface StoreLike {
  store: Record<string, unknown>;
  readonly path: string;
}

export function storeOptions(home: string): StoreOptions {
  return {
    cwd: home,
    name: 'config',
    configFileMode: 0o600,
    accessPropertiesByDotNotation: false,
    clearInvalidConfig: false,
    serialize: (value) => `${JSON.stringify(value, null, 2)}\n`,
    // An empty file reads as {}, which ConfigStore treats as a fresh install.
    deserialize: (text) => (parseConfigJson(text) ?? {}) as Record<string, unknown>,
  };
}

export function createStoreBackend(home: string, createStore: (options: StoreOptions) => StoreLike): ConfigBackend {
  const file = lanyardPaths(home).configFile;
  let store: StoreLike | undefined;
  const open = (): StoreLike => {
    if (store) return store;
    // 0700 before the store's own mkdir would create it with the umask's 0755.
    mkdirSync(home, { recursive: true, mode: 0o700 });
    store = createStore(storeOptions(home));
    if (path.resolve(store.path) !== path.resolve(file)) throw new Error(`electron-store opened ${store.path}, expected ${file}`);
    return store;
  };
  return storeBackend(file, open);
}
