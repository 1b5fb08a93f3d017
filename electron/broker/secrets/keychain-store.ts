import { AsyncEntry, findCredentialsAsync, type EntryOptions } from '@napi-rs/keyring';
import { KeychainTimeoutError, toKeychainError, type KeychainOperation } from './keychain-errors';
import { assertValidSecretKey, probeSecretStore, type SecretStore, type SecretStoreProbe } from './secret-store';

/**
 * The few keychain calls the store needs, so unit tests can replay the platform's real failures without a keychain.
 * Resolves `null`/`false` for a missing entry; rejects only when the keychain itself failed.
 */
export interface KeyringBinding {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  /** Resolves `true` if an entry was removed, `false` if there was none. */
  deletePassword(service: string, account: string): Promise<boolean>;
  /** The accounts stored under `service`. */
  findAccounts(service: string): Promise<string[]>;
}

/**
 * Pins Linux to the Secret Service. Without it @napi-rs/keyring silently falls back to the kernel keyring
 * (keyutils), which loses everything at logout or reboot: the user would be asked to sign in again for no visible
 * reason. With the pin, a missing Secret Service is an error we can explain. Ignored on macOS and Windows.
 */
const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

/**
 * One entry object per (service, account), reused. Constructing an `AsyncEntry` opens a D-Bus connection
 * synchronously (about 4–5 ms on the event loop on Linux) and, once the process holds ~1,024 descriptors, never
 * returns (bench/keychain-probe.ts): reusing entries keeps keychain traffic off that path under load.
 */
const entries = new Map<string, AsyncEntry>();
function entry(service: string, account: string): AsyncEntry {
  const key = `${service}\u0000${account}`;
  let found = entries.get(key);
  if (!found) {
    found = new AsyncEntry(service, account, ENTRY_OPTIONS);
    entries.set(key, found);
  }
  return found;
}

/** A failed call drops the cached entry, so a keychain that comes back (daemon restarted, unlocked) gets a fresh one. */
async function withEntry<T>(service: string, account: string, call: (e: AsyncEntry) => Promise<T>): Promise<T> {
  try {
    return await call(entry(service, account));
  } catch (e) {
    entries.delete(`${service}\u0000${account}`);
    throw e;
  }
}

/** @napi-rs/keyring 2.1.2. A missing entry: `getPassword` resolves `null`, `deleteCredential` resolves `false`. */
export const napiKeyring: KeyringBinding = {
  getPassword: (service, account) => withEntry(service, account, (e) => e.getPassword()),
  setPassword: (service, account, password) => withEntry(service, account, (e) => e.setPassword(password)),
  deletePassword: (service, account) => withEntry(service, account, (e) => e.deleteCredential()),
  // The package's enumeration: on Linux it searches the Secret Service by the `service` attribute (it has no
  // kernel-keyring path, so it agrees with the pin above); on macOS/Windows it lists generic passwords of the service.
  // It also returns the values, which we drop at once.
  findAccounts: async (service) => (await findCredentialsAsync(service)).map((c) => c.account),
};

export interface KeychainSecretStoreOptions {
  /** The keychain service name; `keychainNamespace(home)` keeps instances with different homes apart. */
  service: string;
  platform?: NodeJS.Platform;
  /** Injected in unit tests; the real OS keychain otherwise. */
  binding?: KeyringBinding;
  /**
   * Upper bound for one keychain call. A desktop keyring can legitimately wait for the user to type the unlock
   * password, so this is long; it exists so a prompt nobody can see (a stray DISPLAY on a server) cannot hang the
   * broker forever. The native call keeps its worker thread until the OS answers; we stop waiting for it.
   */
  timeoutMs?: number;
}

type Cached = { value: string | undefined };

/**
 * `SecretStore` over the OS keychain (macOS Keychain, Windows Credential Manager, Secret Service on Linux) via
 * @napi-rs/keyring: one generic-password item per key, service = the instance's namespace, account = the key.
 *
 * - Reads are cached in memory and writes go through the cache: Secret Service costs ~5-7 ms per call, too slow for
 *   the token lookups on every tool call.
 * - Operations on one key run in call order (a promise chain per key), so concurrent set/get/delete from many IDE
 *   sessions cannot reorder. `deleteAll` waits for every pending operation and holds new ones until it is done.
 * - Every failure is a `LanyardError(KEYCHAIN_UNAVAILABLE)` saying what is wrong (no D-Bus, no keyring, locked,
 *   denied) and what to do; no message carries a secret.
 */
export class KeychainSecretStore implements SecretStore {
  readonly kind = 'os-keychain' as const;
  readonly description: string;
  readonly service: string;
  private readonly binding: KeyringBinding;
  private readonly platform: NodeJS.Platform;
  private readonly timeoutMs: number;
  private readonly cache = new Map<string, Cached>();
  /** The tail of each key's operation chain; removed once the chain is idle. */
  private readonly tails = new Map<string, Promise<void>>();
  /** Resolves when the last `deleteAll` finished; chains that start while one runs wait for it. */
  private barrier: Promise<void> = Promise.resolve();
  /** Number of `deleteAll` calls not yet finished; while non-zero the cache may hold entries about to vanish. */
  private clearing = 0;

  constructor(options: KeychainSecretStoreOptions) {
    this.service = options.service;
    this.platform = options.platform ?? process.platform;
    this.binding = options.binding ?? napiKeyring;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.description = describeKeychain(this.platform);
  }

  get(key: string): Promise<string | undefined> {
    assertValidSecretKey(key);
    // Hot path: nothing pending on this key and the value is known.
    const cached = this.cache.get(key);
    if (cached && this.clearing === 0 && !this.tails.has(key)) return Promise.resolve(cached.value);
    return this.enqueue(key, async () => {
      const hit = this.cache.get(key);
      if (hit) return hit.value;
      const value = (await this.call('read', () => this.binding.getPassword(this.service, key))) ?? undefined;
      this.cache.set(key, { value });
      return value;
    });
  }

  set(key: string, value: string): Promise<void> {
    assertValidSecretKey(key);
    if (typeof value !== 'string') return Promise.reject(new TypeError('SecretStore values are strings'));
    return this.enqueue(key, async () => {
      try {
        await this.call('save', () => this.binding.setPassword(this.service, key, value), value);
        this.cache.set(key, { value });
      } catch (e) {
        // The keychain may or may not hold the new value now: read it again next time.
        this.cache.delete(key);
        throw e;
      }
    });
  }

  delete(key: string): Promise<void> {
    assertValidSecretKey(key);
    return this.enqueue(key, () => this.deleteNow(key));
  }

  deleteAll(prefix = ''): Promise<void> {
    const pending = [...this.tails.values(), this.barrier];
    // Operations issued from now on queue behind this deleteAll, not behind the chains it is waiting for.
    this.tails.clear();
    this.clearing++;
    const job = Promise.allSettled(pending).then(async () => {
      const listed = await this.call('list', () => this.binding.findAccounts(this.service));
      const keys = new Set([...listed, ...this.cache.keys()].filter((k) => k.startsWith(prefix)));
      // Sequential: Secret Service serialises anyway, and a failure then stops at the first broken entry.
      for (const key of keys) await this.deleteNow(key);
    });
    this.barrier = job.then(noop, noop).finally(() => {
      this.clearing--;
    });
    return job;
  }

  /** A set/get/delete round trip on a throwaway entry (`lanyard doctor`, status). Never throws. */
  probe(): Promise<SecretStoreProbe> {
    return probeSecretStore(this, { beforeReadBack: (key) => this.invalidate(key) });
  }

  /** Forgets cached values (all, or one key) so the next `get` reads the keychain, e.g. after another process wrote it. */
  invalidate(key?: string): void {
    if (key === undefined) this.cache.clear();
    else this.cache.delete(key);
  }

  private async deleteNow(key: string): Promise<void> {
    try {
      await this.call('delete', () => this.binding.deletePassword(this.service, key));
      this.cache.set(key, { value: undefined });
    } catch (e) {
      this.cache.delete(key);
      throw e;
    }
  }

  private enqueue<T>(key: string, op: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? this.barrier;
    const result = previous.then(op);
    const tail = result.then(noop, noop);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Runs one native call with the timeout and maps any failure to a user-facing error. */
  private async call<T>(operation: KeychainOperation, fn: () => Promise<T>, secret?: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new KeychainTimeoutError(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        timer.unref();
      });
      return await Promise.race([Promise.resolve().then(fn), timeout]);
    } catch (e) {
      throw toKeychainError(e, {
        backend: this.description,
        operation,
        platform: this.platform,
        ...(secret === undefined ? {} : { secret }),
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The backend's name as the user knows it. */
export function describeKeychain(platform: NodeJS.Platform): string {
  switch (platform) {
    case 'darwin':
      return 'macOS Keychain';
    case 'win32':
      return 'Windows Credential Manager';
    default:
      return 'Secret Service (D-Bus)';
  }
}

function noop(): void {}
