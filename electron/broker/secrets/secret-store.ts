import { randomBytes } from 'node:crypto';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { LanyardError, toErrorInfo } from '../errors';

export type SecretStoreKind = 'os-keychain' | 'file' | 'memory';

/**
 * Where the broker keeps every secret (refresh token, client secrets and keys, cached access tokens).
 *
 * Keys are logical names such as `idp:session`, `idp:client_secret`, `server:<id>:client_secret`, `token:<hash>`;
 * values are opaque strings (callers JSON-encode structured data). Implementations order the operations on one key in
 * call order, so a `get` issued after a `set` sees that `set`.
 *
 * Errors are `LanyardError`s (code `keychain_unavailable`) whose message and fix never contain a secret value.
 */
export interface SecretStore {
  /** The value, or `undefined` when there is none (absence is not an error). */
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Deletes every key of this instance starting with `prefix` (all of them when omitted), e.g. on sign-out. */
  deleteAll(prefix?: string): Promise<void>;
  readonly kind: SecretStoreKind;
  /** Human-readable backend, shown in status and `lanyard doctor`, e.g. "Secret Service (D-Bus)". */
  readonly description: string;
}

/** The answer of a store round trip (`lanyard doctor`, the dashboard's status). */
export type SecretStoreProbe = { ok: true; backend: string } | { ok: false; backend: string; error: ErrorInfo };

/** Keys Lanyard reserves for the stores' own bookkeeping; never handed out to callers. */
export const RESERVED_KEY_PREFIX = '__lanyard';

/** Names of the keychain entries that are not owned by one module. */
export const secretKeys = {
  idpClientSecret: 'idp:client_secret',
  idpPrivateKey: 'idp:private_key',
  serverClientSecret: (serverId: string) => `server:${serverId}:client_secret`,
  serverPrivateKey: (serverId: string) => `server:${serverId}:private_key`,
  /** Everything stored for one server, for `deleteAll` when the server is removed. */
  serverPrefix: (serverId: string) => `server:${serverId}:`,
} as const;

const MAX_KEY_LENGTH = 200;

/**
 * Rejects keys that no backend stores faithfully: empty, over-long (Windows caps the target name at 32 767 chars but
 * macOS and some Secret Service providers misbehave far earlier), or with control characters (they end up in D-Bus
 * attributes and file names of some providers).
 */
export function assertValidSecretKey(key: string): void {
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || /[\u0000-\u001f\u007f]/.test(key)) {
    throw new LanyardError(
      ErrorCodes.INTERNAL,
      `Invalid secret key (must be 1-${MAX_KEY_LENGTH} printable characters).`,
      'This is a bug in Lanyard; report it with the output of `lanyard doctor`.',
    );
  }
}

/**
 * Proves a store works end to end: writes a random value under a throwaway key, reads it back, compares, deletes it.
 *
 * A read-back comparison, not just "no exception": some keychain setups accept a write and then return nothing
 * (the Linux kernel-keyring fallback, a collection that vanished), which would otherwise look like "never signed in".
 */
export async function probeSecretStore(
  store: SecretStore,
  options: { beforeReadBack?: (key: string) => void } = {},
): Promise<SecretStoreProbe> {
  const key = `${RESERVED_KEY_PREFIX}:probe:${randomBytes(6).toString('hex')}`;
  const value = randomBytes(18).toString('base64url');
  try {
    await store.set(key, value);
    // Caching stores must read the backend here, not their own write-through copy.
    options.beforeReadBack?.(key);
    const read = await store.get(key);
    await store.delete(key);
    if (read !== value) {
      throw new LanyardError(
        ErrorCodes.KEYCHAIN_UNAVAILABLE,
        `${store.description} accepted a secret but returned ${read === undefined ? 'nothing' : 'a different value'} when it was read back.`,
        'Check that your keychain is a persistent one (on Linux: a Secret Service provider such as gnome-keyring with an unlocked login keyring), then run `lanyard doctor` again.',
      );
    }
    return { ok: true, backend: store.description };
  } catch (e) {
    // Best effort: a probe that failed after the write must not leave its entry behind.
    await store.delete(key).catch(() => undefined);
    return { ok: false, backend: store.description, error: toErrorInfo(e) };
  }
}
