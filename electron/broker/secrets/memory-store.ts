import { assertValidSecretKey, probeSecretStore, type SecretStore, type SecretStoreProbe } from './secret-store';

/**
 * `SecretStore` in a Map, for unit tests only: nothing persists, and `createSecretStore` never returns it. Async like
 * the real stores (each call settles on a later microtask) so tests exercise the same awaits.
 */
export class MemorySecretStore implements SecretStore {
  readonly kind = 'memory' as const;
  readonly description = 'In-memory (tests only; nothing persists)';
  private readonly values = new Map<string, string>();

  constructor(initial: Record<string, string> = {}) {
    for (const [key, value] of Object.entries(initial)) this.values.set(key, value);
  }

  async get(key: string): Promise<string | undefined> {
    assertValidSecretKey(key);
    return this.values.get(key);
  }

  async set(key: string, value: string): Promise<void> {
    assertValidSecretKey(key);
    if (typeof value !== 'string') throw new TypeError('SecretStore values are strings');
    this.values.set(key, value);
  }

  async delete(key: string): Promise<void> {
    assertValidSecretKey(key);
    this.values.delete(key);
  }

  async deleteAll(prefix = ''): Promise<void> {
    for (const key of [...this.values.keys()]) if (key.startsWith(prefix)) this.values.delete(key);
  }

  probe(): Promise<SecretStoreProbe> {
    return probeSecretStore(this);
  }

  /** A copy of everything stored, for assertions. */
  snapshot(): Record<string, string> {
    return Object.fromEntries(this.values);
  }
}
