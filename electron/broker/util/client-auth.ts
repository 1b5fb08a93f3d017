import * as oidc from 'openid-client';
import { importJWK, type JWK } from 'jose';
import type { ClientAuthMethod } from '../../../shared/auth-methods';

/**
 * One client-authentication method with its credential, as openid-client's ClientAuth: the same four methods at the
 * IdP and at each server's authorization server (RFC 6749 §2.3; private_key_jwt is RFC 7523 §2.2). The caller has
 * already read the credential bound to the party it is about to be sent to.
 */
export async function openidClientAuth(
  method: ClientAuthMethod,
  credential: { secret?: string | undefined; privateJwk?: JWK | undefined; keyId?: string | undefined },
): Promise<oidc.ClientAuth> {
  switch (method) {
    case 'none':
      return oidc.None();
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(credential.secret ?? '');
    case 'client_secret_post':
      return oidc.ClientSecretPost(credential.secret ?? '');
    case 'private_key_jwt': {
      const jwk = credential.privateJwk;
      if (!jwk) throw new TypeError('private_key_jwt without a key');
      const key = (await importJWK(jwk, jwk.alg ?? 'RS256')) as oidc.CryptoKey;
      const kid = credential.keyId ?? jwk.kid;
      return oidc.PrivateKeyJwt(kid ? { key, kid } : key);
    }
  }
}
