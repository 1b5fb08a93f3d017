import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { keychainNamespace } from '../../electron/broker/paths';
import {
  FileSecretStore,
  KeychainSecretStore,
  MemorySecretStore,
  createSecretStore,
  parseSecretStoreChoice,
  secretKeys,
} from '../../electron/broker/secrets';

const home = path.resolve('/srv/lanyard-test-home');

describe('createSecretStore', () => {
  it('is the OS keychain by default, namespaced by home', () => {
    const store = createSecretStore({ home, env: { HOME: '/home/u' } });
    expect(store).toBeInstanceOf(KeychainSecretStore);
    expect(store.kind).toBe('os-keychain');
    expect((store as KeychainSecretStore).service).toBe(keychainNamespace(home, { HOME: '/home/u' }));
    expect((store as KeychainSecretStore).service).toMatch(/^lanyard:[0-9a-f]{12}$/);
  });

  it('uses the plain "lanyard" service for the default home', () => {
    const store = createSecretStore({ home: '/home/u/.config/lanyard', env: { HOME: '/home/u' }, platform: 'linux' });
    expect((store as KeychainSecretStore).service).toBe('lanyard');
  });

  it('uses the 0600 file only when LANYARD_SECRET_STORE=file', () => {
    const store = createSecretStore({ home, env: { LANYARD_SECRET_STORE: 'file' } });
    expect(store).toBeInstanceOf(FileSecretStore);
    expect(store.kind).toBe('file');
    expect((store as FileSecretStore).path).toBe(path.join(home, 'secrets.json'));
    expect(createSecretStore({ home, env: { LANYARD_SECRET_STORE: 'os-keychain' } }).kind).toBe('os-keychain');
    expect(createSecretStore({ home, env: { LANYARD_SECRET_STORE: '' } }).kind).toBe('os-keychain');
  });

  it('refuses an unknown choice instead of guessing (no silent fallback, no memory store outside tests)', () => {
    for (const value of ['memory', 'plaintext', 'fiel']) {
      let caught: unknown;
      try {
        createSecretStore({ home, env: { LANYARD_SECRET_STORE: value } });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(LanyardError);
      expect((caught as LanyardError).code).toBe(ErrorCodes.CONFIG_INVALID);
      expect((caught as LanyardError).message).toBe(`LANYARD_SECRET_STORE must be "os-keychain" or "file" (got "${value}").`);
    }
    expect(parseSecretStoreChoice(' FILE ')).toBe('file');
  });
});

describe('MemorySecretStore', () => {
  it('behaves like a store and probes ok', async () => {
    const store = new MemorySecretStore({ 'idp:session': 's' });
    expect(store.kind).toBe('memory');
    expect(await store.get('idp:session')).toBe('s');
    await store.set(secretKeys.serverClientSecret('linear'), 'c');
    await store.set(secretKeys.serverPrivateKey('linear'), 'k');
    await store.deleteAll(secretKeys.serverPrefix('linear'));
    expect(store.snapshot()).toEqual({ 'idp:session': 's' });
    expect(await store.probe()).toEqual({ ok: true, backend: 'In-memory (tests only; nothing persists)' });
    expect(store.snapshot()).toEqual({ 'idp:session': 's' });
    await store.deleteAll();
    expect(store.snapshot()).toEqual({});
  });
});
