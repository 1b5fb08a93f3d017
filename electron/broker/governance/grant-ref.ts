import { createHash } from 'node:crypto';

/**
 * A grant reference for the audit ledger: a short SHA-256 of an access token (or an ID-JAG's `jti`), so records of
 * one grant can be matched with the authorization server's logs without the ledger ever holding a token. Computed
 * once per token object (the token holders keep the same object while it is served).
 */
const refs = new WeakMap<object, string>();

export function grantRefOf(holder: { accessToken: string }): string {
  let ref = refs.get(holder);
  if (!ref) {
    ref = shortHash('at', holder.accessToken);
    refs.set(holder, ref);
  }
  return ref;
}

/** `<kind>:` and the first 16 hex digits of SHA-256(value): enough to match, useless to replay. */
export function shortHash(kind: 'at' | 'jti', value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
}
