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
      return [{ account: 'a', password: 'never-used' }];
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

  it('lists accounts with findCredentialsAsync and drops the values', async () => {
    expect(await napiKeyring.findAccounts('lanyard:x')).toEqual(['a']);
    expect(found).toEqual(['lanyard:x']);
  });

  it('is the default binding of KeychainSecretStore, with service = namespace and account = key', async () => {
    const store = new KeychainSecretStore({ service: 'lanyard:abc' });
    await store.set('idp:session', 'v');
    expect(constructed).toEqual([{ service: 'lanyard:abc', account: 'idp:session', options: { linux: { store: 'secret-service' } } }]);
  });
});
