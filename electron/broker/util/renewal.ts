/**
 * When to renew a token: the one policy shared by the ID token (identity session) and the access tokens (token cache).
 *
 * A token is renewed ahead of its expiry by a margin that covers clock skew and the time a request takes. A fixed margin
 * breaks on short lifetimes: a token that lives less than the margin is "about to expire" from the moment it arrives,
 * so every call renews it, and every access-token renewal costs an ID-JAG against the IdP's monthly quota (Okta: 250
 * per user per resource app per month, https://help.okta.com/oie/en-us/content/topics/apps/apps-config-xaa-connection.htm).
 * So the margin fits the lifetime the issuer chose (`expires_in`, RFC 6749 §5.1, https://www.rfc-editor.org/rfc/rfc6749#section-5.1;
 * `exp - iat` of an ID token, https://openid.net/specs/openid-connect-core-1_0.html#IDToken):
 *
 *   margin = lifetime × fraction, at least `minMarginMs`, at most `maxMarginMs`,
 *
 * and every token is served for at least `minMarginMs` (or for its life minus the fraction, when that is shorter), so
 * a token is never renewed more than once per lifetime however short the issuer makes it.
 */
export interface RenewalPolicy {
  /** Share of the lifetime kept as the margin. */
  fraction: number;
  /** Lower bound of the margin: request time and modest skew on short-lived tokens. */
  minMarginMs: number;
  /** Upper bound of the margin: long-lived tokens are not renewed earlier than this before expiry. */
  maxMarginMs: number;
}

/** ID tokens: up to two minutes ahead (the ID token must still be valid when the IdP receives the token exchange). */
export const ID_TOKEN_RENEWAL: RenewalPolicy = Object.freeze({ fraction: 0.25, minMarginMs: 5_000, maxMarginMs: 120_000 });

/** Access tokens: up to one minute ahead (the token must still be valid when the MCP server receives the call). */
export const ACCESS_TOKEN_RENEWAL: RenewalPolicy = Object.freeze({ fraction: 0.25, minMarginMs: 5_000, maxMarginMs: 60_000 });

/** A token's life on this machine's clock: when it arrived and when it expires (epoch ms). */
export interface TokenLife {
  issuedAt: number;
  expiresAt: number;
}

/**
 * The renewal margin for a token that lives `lifetimeMs`. Always less than the lifetime (for a positive lifetime), so
 * a freshly issued token is always served for a while before it is renewed.
 */
export function renewalMarginMs(lifetimeMs: number, policy: RenewalPolicy): number {
  if (!(lifetimeMs > 0)) return 0;
  const fitted = Math.min(policy.maxMarginMs, Math.max(policy.minMarginMs, lifetimeMs * policy.fraction));
  // A token born inside its own margin would be renewed on every call: serve it for the guaranteed minimum instead.
  const minimumService = Math.min(policy.minMarginMs, lifetimeMs * (1 - policy.fraction));
  return Math.min(fitted, lifetimeMs - minimumService);
}

/** Whether the token is due for renewal now (inside its margin, or expired). */
export function needsRenewal(token: TokenLife, now: number, policy: RenewalPolicy): boolean {
  return token.expiresAt - now <= renewalMarginMs(token.expiresAt - token.issuedAt, policy);
}
