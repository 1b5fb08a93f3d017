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

/**
 * Names of the keychain entries that are not owned by one module. The client credentials (`idp:client_secret`,
 * `idp:private_key`, `server:<id>:client_secret`, `server:<id>:private_key`) are stored sealed to the party they belong
 * to (`sealCredential`) and read only through `readBoundCredential`.
 */
export const secretKeys = {
  idpSession: 'idp:session',
  idpClientSecret: 'idp:client_secret',
  idpPrivateKey: 'idp:private_key',
  serverClientSecret: (serverId: string) => `server:${serverId}:client_secret`,
  serverPrivateKey: (serverId: string) => `server:${serverId}:private_key`,
  /** Everything stored for one server, for `deleteAll` when the server is removed. */
  serverPrefix: (serverId: string) => `server:${serverId}:`,
  /** The cached server access tokens (exchange/token-cache.ts), minted with the signed-in user's ID-JAGs. */
  tokenPrefix: 'token:',
} as const;

// ---------------------------------------------------------------------------------------------------------------------
// Client credentials bound to their party.
//
// A client secret or private key is only ever meant for one authorization server, and only as one client there: the
// IdP's issuer and Lanyard's client id at the IdP, or a server's authorization server (by issuer) and Lanyard's client
// id there. The keychain entry carries that party with the value, and the one reader (`readBoundCredential`) hands the
// value out only for that party — so a changed issuer or client id (Settings, a configuration link, a hand-edited
// config file, a server whose metadata starts naming another authorization server) can never make Lanyard send the
// credential somewhere else.

/** Who a client credential belongs to: an authorization server (its issuer identifier) and Lanyard's client id there. */
export interface CredentialParty {
  issuer: string;
  clientId: string;
}

/** What a sealed entry records about its party; `issuer` is absent while it is not known yet (see `sealCredential`). */
export interface CredentialBinding {
  issuer?: string | undefined;
  clientId: string;
}

/**
 * The stored form. The `boundTo` member tells it apart from a legacy bare value: a client secret is an opaque string and
 * a private key is a JWK (which never has `boundTo`).
 */
interface SealedCredential {
  v: 1;
  boundTo: { issuer: string | null; clientId: string };
  value: string;
}

/**
 * The keychain value for a credential of `party`. `issuer` may be left out only when it cannot be known yet — a
 * server's client secret entered before its authorization server was discovered — and is then fixed at the first use
 * (`readBoundCredential`).
 */
export function sealCredential(value: string, party: CredentialBinding): string {
  const sealed: SealedCredential = { v: 1, boundTo: { issuer: party.issuer ?? null, clientId: party.clientId }, value };
  return JSON.stringify(sealed);
}

/** A stored entry's value and party; `boundTo` is undefined for a value stored before credentials were bound (bare). */
export function unsealCredential(raw: string): { value: string; boundTo?: CredentialBinding } {
  if (raw.startsWith('{')) {
    try {
      const parsed = JSON.parse(raw) as Partial<SealedCredential> | null;
      const b = parsed?.boundTo;
      if (
        parsed?.v === 1 &&
        typeof parsed.value === 'string' &&
        b &&
        typeof b === 'object' &&
        typeof b.clientId === 'string' &&
        (b.issuer === null || typeof b.issuer === 'string')
      ) {
        return { value: parsed.value, boundTo: { clientId: b.clientId, ...(b.issuer !== null ? { issuer: b.issuer } : {}) } };
      }
    } catch {
      // Not an envelope: a bare value that happens to start with "{".
    }
  }
  return { value: raw };
}

export type BoundCredentialRead =
  | { state: 'missing' }
  | { state: 'ok'; value: string }
  /** Stored for another party: the value is withheld, only the party it belongs to is said. */
  | { state: 'foreign'; boundTo: CredentialBinding };

/**
 * Reads the credential under `key` for `party`, and only for it.
 *
 * Two kinds of entries are bound on this first read and written back sealed, once:
 * - a bare value stored before credentials were bound (an older Lanyard, `lanyard setup`-style provisioning, an
 *   admin's script). Nothing records whom it was entered for, so it is bound to the party configured now: that is the
 *   party it was provisioned for unless the configuration was changed since without re-entering it — and from now on
 *   every such change in Lanyard wipes the IdP credentials, while any other change (a hand-edited config file, another
 *   authorization server in a server's metadata) is refused here against the binding made at this read.
 * - a server credential sealed without its issuer (entered before the server's authorization server was known), when
 *   its client id matches: it is bound to the authorization server the server names at its first use.
 */
export async function readBoundCredential(store: SecretStore, key: string, party: CredentialParty): Promise<BoundCredentialRead> {
  const raw = await store.get(key);
  if (!raw) return { state: 'missing' };
  const { value, boundTo } = unsealCredential(raw);
  if (!value) return { state: 'missing' };
  if (boundTo && boundTo.clientId !== party.clientId) return { state: 'foreign', boundTo };
  if (boundTo?.issuer !== undefined) {
    return boundTo.issuer === party.issuer ? { state: 'ok', value } : { state: 'foreign', boundTo };
  }
  await store.set(key, sealCredential(value, party));
  return { state: 'ok', value };
}

/** "https://idp.example.com (client lanyard)": a party as error messages name it. */
export function describeParty(party: CredentialBinding): string {
  return `${party.issuer ?? 'an authorization server not yet known'} (client id ${party.clientId})`;
}

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
