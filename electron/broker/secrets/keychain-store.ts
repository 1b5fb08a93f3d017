import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { KeychainTimeoutError, toKeychainError, type KeychainOperation } from './keychain-errors';
import { napiKeyring, type KeyringBinding } from './keyring-binding';
import { assertValidSecretKey, probeSecretStore, RESERVED_KEY_PREFIX, type SecretStore, type SecretStoreProbe } from './secret-store';
import {
  chunkAccount,
  decodeVault,
  encodeVault,
  isVaultAccount,
  maxItemChars,
  VAULT_ACCOUNT,
  VaultDamagedError,
  type VaultLayout,
} from './vault';

export { napiKeyring, type KeyringBinding } from './keyring-binding';

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

interface Settle<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}
type Op =
  | ({ kind: 'get'; key: string } & Settle<string | undefined>)
  | ({ kind: 'set'; key: string; value: string } & Settle<undefined>)
  | ({ kind: 'delete'; key: string } & Settle<undefined>)
  | ({ kind: 'deleteAll'; prefix: string } & Settle<undefined>);

/**
 * `SecretStore` over the OS keychain (macOS Keychain, Windows Credential Manager, Secret Service on Linux) via
 * @napi-rs/keyring: all of an instance's secrets in one item (service = the instance's namespace, account
 * `__lanyard:vault`, see vault.ts).
 *
 * - One read at start: every item of the namespace comes back from one enumeration call; items an older Lanyard wrote
 *   one per key are merged in and moved into the vault (then deleted). Until that move succeeds they keep being read.
 * - Gets are answered from memory. Writes go through the one entry, built at start: on Linux, building an entry
 *   later, once the process holds ~1,024 descriptors, would hang it (see keyring-binding.ts), so the number of open
 *   sockets never matters to the keychain.
 * - Each write re-reads the vault and applies its change to what is stored now, so a write by another process
 *   (`lanyard doctor`, a CLI without a broker) is kept; writes issued together go out as one. The item is replaced
 *   whole, so a reader sees the document before or after, never half of it.
 * - Operations complete in call order: a `get` issued after a `set` sees that `set`.
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
  private readonly maxChars: number;
  /** The secrets as last read or written; undefined until the first read. */
  private secrets: Map<string, string> | undefined;
  /** Another process may have written: the next get reads the vault again. */
  private stale = false;
  private layout: VaultLayout;
  /** Per-key items of an older Lanyard not yet moved into the vault (and deleted). */
  private legacy = new Set<string>();
  private readonly queue: Op[] = [];
  private draining = false;
  /** Keys with a write queued or being written: their gets wait in the queue. */
  private readonly pending = new Map<string, number>();
  private clearing = 0;

  constructor(options: KeychainSecretStoreOptions) {
    this.service = options.service;
    this.platform = options.platform ?? process.platform;
    this.binding = options.binding ?? napiKeyring;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.description = describeKeychain(this.platform);
    this.maxChars = maxItemChars(this.platform);
  }

  get(key: string): Promise<string | undefined> {
    assertValidSecretKey(key);
    // Hot path (the token lookup of every tool call): known, and nothing pending that could change it.
    if (this.secrets && !this.stale && this.clearing === 0 && !this.pending.has(key)) return Promise.resolve(this.secrets.get(key));
    return new Promise((resolve, reject) => this.enqueue({ kind: 'get', key, resolve, reject }));
  }

  set(key: string, value: string): Promise<void> {
    assertValidSecretKey(key);
    if (typeof value !== 'string') return Promise.reject(new TypeError('SecretStore values are strings'));
    return new Promise((resolve, reject) => this.enqueue({ kind: 'set', key, value, resolve: () => resolve(), reject }));
  }

  delete(key: string): Promise<void> {
    assertValidSecretKey(key);
    return new Promise((resolve, reject) => this.enqueue({ kind: 'delete', key, resolve: () => resolve(), reject }));
  }

  deleteAll(prefix = ''): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'deleteAll', prefix, resolve: () => resolve(), reject }));
  }

  /** A set/get/delete round trip on a throwaway key (`lanyard doctor`, status), read back from the keychain. Never throws. */
  probe(): Promise<SecretStoreProbe> {
    return probeSecretStore(this, { beforeReadBack: () => this.invalidate() });
  }

  /** Makes the next `get` read the keychain again (another process wrote it). The vault is one item: `key` is moot. */
  invalidate(_key?: string): void {
    this.stale = true;
  }

  private enqueue(op: Op): void {
    if (op.kind === 'set' || op.kind === 'delete') this.pending.set(op.key, (this.pending.get(op.key) ?? 0) + 1);
    if (op.kind === 'deleteAll') this.clearing++;
    this.queue.push(op);
    if (this.draining) return;
    this.draining = true;
    // A microtask later, so the operations of one synchronous burst go out as one write.
    queueMicrotask(() => void this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.run(this.queue.splice(0));
    } finally {
      this.draining = false;
    }
  }

  /** Applies a batch in call order to the vault as stored now and writes it once. */
  private async run(batch: Op[]): Promise<void> {
    const writes = batch.filter((op): op is Exclude<Op, { kind: 'get' }> => op.kind !== 'get');
    try {
      let base: Map<string, string>;
      try {
        base = await this.current(writes.length > 0);
      } catch (e) {
        for (const op of batch) op.reject(e);
        return;
      }
      const next = new Map(base);
      const answers: Array<[Op & { kind: 'get' }, string | undefined]> = [];
      const oldItems = new Set<string>();
      for (const op of batch) {
        if (op.kind === 'get') answers.push([op, next.get(op.key)]);
        else if (op.kind === 'set') next.set(op.key, op.value);
        else if (op.kind === 'delete') {
          next.delete(op.key);
          if (this.legacy.has(op.key)) oldItems.add(op.key);
        } else {
          for (const key of [...next.keys()]) if (key.startsWith(op.prefix)) next.delete(key);
          for (const key of this.legacy) if (key.startsWith(op.prefix)) oldItems.add(key);
        }
      }
      try {
        if (!sameSecrets(base, next)) await this.persist(next, writes.some((op) => op.kind === 'set') ? 'save' : 'delete');
        // A deleted key must not come back from an item an older Lanyard wrote for it.
        for (const account of oldItems) await this.deleteItem(account);
      } catch (e) {
        // The keychain may or may not hold the new document now: the gets of this batch read it again.
        this.stale = true;
        for (const op of writes) op.reject(e);
        this.queue.unshift(...answers.map(([op]) => op));
        return;
      }
      this.secrets = next;
      for (const op of writes) op.resolve(undefined);
      for (const [op, value] of answers) op.resolve(value);
    } finally {
      for (const op of writes) {
        if (op.kind === 'deleteAll') this.clearing--;
        else {
          const left = (this.pending.get(op.key) ?? 1) - 1;
          if (left > 0) this.pending.set(op.key, left);
          else this.pending.delete(op.key);
        }
      }
    }
  }

  /** The secrets to apply a batch to: read at start, re-read before a write (another process may have written). */
  private async current(forWrite: boolean): Promise<Map<string, string>> {
    if (!this.secrets || (this.legacy.size > 0 && (forWrite || this.stale))) return this.load();
    if (!forWrite && !this.stale) return this.secrets;
    for (let attempt = 1; ; attempt++) {
      try {
        const header = await this.call('read', () => this.binding.getPassword(this.service, VAULT_ACCOUNT));
        const read = await this.decode(header, (account) => this.call('read', () => this.binding.getPassword(this.service, account)));
        this.secrets = read;
        this.stale = false;
        return read;
      } catch (e) {
        // A chunk gone between header and chunks: another process switched generations meanwhile; read again.
        if (!(e instanceof VaultDamagedError) || attempt >= 3) throw e instanceof VaultDamagedError ? this.damaged(e) : e;
      }
    }
  }

  /** Everything in the namespace in one call; older per-key items are merged in and moved into the vault. */
  private async load(): Promise<Map<string, string>> {
    // The one entry every later read and write goes through is built now, while the process holds few descriptors:
    // built later, under load, it could hang the process (keyring-binding.ts).
    await this.call('read', async () => this.binding.open?.(this.service, VAULT_ACCOUNT));
    const items = await this.call('read', () => this.binding.findCredentials(this.service));
    const byAccount = new Map(items.map((item) => [item.account, item.password]));
    if (!byAccount.has(VAULT_ACCOUNT)) {
      // The enumeration skips an item it may not read (macOS: access denied) instead of failing; a vault taken for
      // missing would be overwritten by the next write. Asked directly, such an item fails with an error we explain.
      const header = await this.call('read', () => this.binding.getPassword(this.service, VAULT_ACCOUNT));
      if (header !== null) byAccount.set(VAULT_ACCOUNT, header);
    }
    let secrets: Map<string, string>;
    try {
      secrets = await this.decode(byAccount.get(VAULT_ACCOUNT), async (account) => byAccount.get(account));
    } catch (e) {
      throw e instanceof VaultDamagedError ? this.damaged(e) : e;
    }
    const legacy = [...byAccount.keys()].filter((account) => !isVaultAccount(account));
    let merged = false;
    for (const account of legacy) {
      // Reserved names (a probe interrupted mid-way) are only deleted.
      if (account.startsWith(RESERVED_KEY_PREFIX) || secrets.has(account)) continue;
      secrets.set(account, byAccount.get(account)!);
      merged = true;
    }
    this.legacy = new Set(legacy);
    this.secrets = secrets;
    this.stale = false;
    if (legacy.length > 0) {
      try {
        if (merged) await this.persist(secrets, 'save');
        for (const account of legacy) await this.deleteItem(account);
      } catch {
        // Not moved this time (a locked keyring, say): the old items are read again until a later start moves them.
      }
    }
    return secrets;
  }

  private async decode(
    header: string | null | undefined,
    chunk: (account: string) => Promise<string | null | undefined>,
  ): Promise<Map<string, string>> {
    const { secrets, layout } = await decodeVault(header, chunk);
    this.layout = layout;
    return secrets;
  }

  /** Writes the whole document (chunks first, header last); an empty one removes the vault. */
  private async persist(secrets: Map<string, string>, operation: KeychainOperation): Promise<void> {
    const old = this.layout;
    if (secrets.size === 0) {
      await this.call('delete', () => this.binding.deletePassword(this.service, VAULT_ACCOUNT));
      this.layout = undefined;
    } else {
      const { items, layout } = encodeVault(secrets, this.maxChars);
      const values = [...secrets.values()];
      for (const [account, value] of items)
        await this.call(operation, () => this.binding.setPassword(this.service, account, value), values);
      this.layout = layout;
    }
    if (old && old.gen !== this.layout?.gen) {
      // Best effort: a chunk of a replaced generation is never read again.
      for (let i = 0; i < old.chunks; i++) {
        await this.call('delete', () => this.binding.deletePassword(this.service, chunkAccount(old.gen, i))).catch(() => undefined);
      }
    }
  }

  private async deleteItem(account: string): Promise<void> {
    await this.call('delete', () => this.binding.deletePassword(this.service, account));
    this.legacy.delete(account);
  }

  private damaged(e: VaultDamagedError): LanyardError {
    return new LanyardError(
      ErrorCodes.KEYCHAIN_UNAVAILABLE,
      `Lanyard's item in the ${this.description} is damaged (${e.message}).`,
      `Delete the items of service "${this.service}" in your keychain manager, then sign in again.`,
      { cause: e },
    );
  }

  /** Runs one native call with the timeout and maps any failure to a user-facing error. */
  private async call<T>(operation: KeychainOperation, fn: () => Promise<T>, secret?: readonly string[]): Promise<T> {
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

function sameSecrets(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (b.get(key) !== value) return false;
  return true;
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
