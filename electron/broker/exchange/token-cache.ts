import { createHash } from 'node:crypto';
import type { SecretStore } from '../secrets/secret-store';
import { silentLogger, type Logger } from '../util/log';
import { ACCESS_TOKEN_RENEWAL, needsRenewal, type RenewalPolicy } from '../util/renewal';

export interface TokenKeyParts {
  /** The configured server the token is for: removing the server drops its tokens (`TokenCache.forget`). */
  serverId: string;
  idpIssuer: string;
  subject: string;
  resource: string;
  asIssuer: string;
  clientId: string;
  scopes: string[];
}

export interface CachedToken {
  accessToken: string;
  tokenType: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms when it arrived; with `expiresAt` it gives the lifetime the AS chose (`expires_in`), which sets the margin. */
  obtainedAt: number;
  /** Scopes the AS granted (or that were requested when it did not say). */
  scopes: string[];
}

const PREFIX = 'token:';

/**
 * A stable cache key: never shared across servers, users, IdP tenants, resources, authorization servers, clients or
 * scope sets. It starts with the server id (ids have no `:`), so a removed server's tokens are found by prefix, in the
 * keychain too, even those a previous run stored: a server added again with the same id and URL must not be served
 * the old entry's token.
 */
export function tokenCacheKey(parts: TokenKeyParts): string {
  const canonical = JSON.stringify([
    parts.idpIssuer,
    parts.subject,
    parts.resource,
    parts.asIssuer,
    parts.clientId,
    [...new Set(parts.scopes)].sort(),
  ]);
  return `${parts.serverId}:${createHash('sha256').update(canonical).digest('base64url').slice(0, 32)}`;
}

/**
 * Access tokens per key, in memory and written through to the keychain, so a restart does not mint again (Okta counts
 * every ID-JAG against a monthly quota). A token is served until it is inside its renewal margin, which fits its lifetime
 * (../util/renewal.ts: a short-lived token is not renewed on every call); expiry is an absolute time checked against
 * the clock at every read, so a sleep or clock jump cannot serve a dead token.
 */
export class TokenCache {
  private readonly memory = new Map<string, CachedToken>();
  private readonly loaded = new Set<string>();
  private readonly secrets: SecretStore;
  private readonly now: () => number;
  private readonly renewal: RenewalPolicy;
  private readonly log: Logger;

  constructor(options: { secrets: SecretStore; now?: () => number; renewal?: RenewalPolicy; log?: Logger }) {
    this.secrets = options.secrets;
    this.now = options.now ?? Date.now;
    this.renewal = options.renewal ?? ACCESS_TOKEN_RENEWAL;
    this.log = (options.log ?? silentLogger).child('token-cache');
  }

  /** A token that is not yet due for renewal, or undefined. */
  async get(key: string): Promise<CachedToken | undefined> {
    let token = this.memory.get(key);
    if (!token && !this.loaded.has(key)) {
      this.loaded.add(key);
      const raw = await this.secrets.get(PREFIX + key).catch((e: unknown) => {
        this.log.warn('could not read a cached token from the keychain', { error: e });
        return undefined;
      });
      if (raw) {
        try {
          token = JSON.parse(raw) as CachedToken;
          this.memory.set(key, token);
        } catch {
          await this.secrets.delete(PREFIX + key).catch(() => {});
        }
      }
    }
    if (token && !needsRenewal({ issuedAt: lifeStart(token), expiresAt: token.expiresAt }, this.now(), this.renewal)) return token;
    return undefined;
  }

  /** The token even when it is inside the renewal margin (still usable while a renewal is impossible). */
  peek(key: string): CachedToken | undefined {
    const token = this.memory.get(key);
    return token && token.expiresAt > this.now() ? token : undefined;
  }

  async put(key: string, token: CachedToken): Promise<void> {
    this.memory.set(key, token);
    this.loaded.add(key);
    try {
      await this.secrets.set(PREFIX + key, JSON.stringify(token));
    } catch (e) {
      // The token still works from memory; the next start will just mint again.
      this.log.warn('could not write a token to the keychain', { error: e });
    }
  }

  async invalidate(key: string): Promise<void> {
    this.memory.delete(key);
    this.loaded.add(key);
    await this.secrets.delete(PREFIX + key).catch(() => {});
  }

  /** Drops every token of one server (removed from the config), in memory and in the keychain. */
  async forget(serverId: string): Promise<void> {
    const prefix = `${serverId}:`;
    for (const key of [...this.memory.keys()]) if (key.startsWith(prefix)) this.memory.delete(key);
    for (const key of [...this.loaded]) if (key.startsWith(prefix)) this.loaded.delete(key);
    await this.secrets.deleteAll(PREFIX + prefix);
  }

  /** Drops every token (sign-out, user change). */
  async clear(): Promise<void> {
    this.memory.clear();
    this.loaded.clear();
    await this.secrets.deleteAll(PREFIX);
  }
}

/** When the token's life began; a record without a usable `obtainedAt` counts as a long-lived token (the largest margin). */
function lifeStart(token: CachedToken): number {
  return typeof token.obtainedAt === 'number' && token.obtainedAt < token.expiresAt ? token.obtainedAt : -Infinity;
}
