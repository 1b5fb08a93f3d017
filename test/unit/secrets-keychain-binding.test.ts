import { beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * The native binding is replaced here only to see what the store passes to it: every entry must be pinned to the
 * Secret Service, because @napi-rs/keyring's default silently falls back to the non-persistent kernel keyring.
 */
const constructed: Array<{ service: string; account: string; options: unknown }> = [];
const found: string[] = [];

vi.mock('@napi-rs/keyring', () => {
  class AsyncEntry {
    constructor(service: string, account: string, options: unknown) {
      constructed.push({ service, account, options });
    }
    async getPassword() {
      return null;
    }
    async setPassword() {}
    async deleteCredential() {
      return false;
    }
  }
  return {
    AsyncEntry,
    findCredentialsAsync: async (service: string) => {
      found.push(service);
      return service === 'lanyard:x' ? [{ account: 'a', password: 'never-used' }] : [];
    },
  };
});

const { napiKeyring, KeychainSecretStore } = await import('../../electron/broker/secrets/keychain-store');

beforeEach(() => {
  constructed.length = 0;
  found.length = 0;
});

describe('napiKeyring', () => {
  it("pins every entry to { linux: { store: 'secret-service' } }", async () => {
    await napiKeyring.getPassword('lanyard:x', 'k1');
    await napiKeyring.setPassword('lanyard:x', 'k2', 'v');
    await napiKeyring.deletePassword('lanyard:x', 'k3');
    expect(constructed).toEqual([
      { service: 'lanyard:x', account: 'k1', options: { linux: { store: 'secret-service' } } },
      { service: 'lanyard:x', account: 'k2', options: { linux: { store: 'secret-service' } } },
      { service: 'lanyard:x', account: 'k3', options: { linux: { store: 'secret-service' } } },
    ]);
  });

  it('reads every item of a service with one findCredentialsAsync call', async () => {
    expect(await napiKeyring.findCredentials('lanyard:x')).toEqual([{ account: 'a', password: 'never-used' }]);
    expect(found).toEqual(['lanyard:x']);
  });

  it('builds the one entry at the first read, so no write later has to build one (under load it could hang)', async () => {
    const store = new KeychainSecretStore({ service: 'lanyard:read-only' });
    expect(await store.get('idp:session')).toBeUndefined();
    expect(constructed).toEqual([
      { service: 'lanyard:read-only', account: '__lanyard:vault', options: { linux: { store: 'secret-service' } } },
    ]);
  });

  it('is the default binding of KeychainSecretStore: one entry (service = namespace, account = the vault), built once', async () => {
    const store = new KeychainSecretStore({ service: 'lanyard:abc' });
    await store.set('idp:session', 'v');
    await store.set('token:a', 'w');
    await store.delete('idp:session');
    expect(found).toEqual(['lanyard:abc']);
    expect(constructed).toEqual([{ service: 'lanyard:abc', account: '__lanyard:vault', options: { linux: { store: 'secret-service' } } }]);
  });
});
