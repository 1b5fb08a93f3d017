import * as oidc from 'openid-client';
import { importJWK, type JWK } from 'jose';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { secretKeys, type SecretStore } from '../secrets/secret-store';

export type AsClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** Lanyard's client at one MCP server's authorization server: its id, method and the credential that method needs. */
export interface AsCredentials {
  clientId: string;
  method: AsClientAuthMethod;
  clientSecret?: string | undefined;
  privateJwk?: JWK | undefined;
}

/**
 * Lanyard's client authentication at a server's authorization server, in one place: which keychain entry holds the
 * credential for each method (`loadAsCredentials`) and how it is presented (`asClientAuthentication`, openid-client's
 * four client-auth methods). A missing credential is reported before any grant is spent.
 */
export async function loadAsCredentials(
  secrets: SecretStore,
  server: { id: string; asClient: { clientId: string; method: AsClientAuthMethod } },
): Promise<AsCredentials> {
  const client = server.asClient;
  const credentials: AsCredentials = { clientId: client.clientId, method: client.method };
  if (client.method === 'client_secret_basic' || client.method === 'client_secret_post') {
    credentials.clientSecret = await secrets.get(secretKeys.serverClientSecret(server.id));
    if (!credentials.clientSecret) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `Server "${server.id}" uses ${client.method} but no client secret is in the keychain.`,
        `Set it with \`lanyard servers set-secret ${server.id}\` or in the server's settings.`,
        { serverId: server.id },
      );
    }
  } else if (client.method === 'private_key_jwt') {
    const raw = await secrets.get(secretKeys.serverPrivateKey(server.id));
    if (!raw) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        'This server is set to private_key_jwt but no private key is in the keychain.',
        'Add the key for this server in Settings, or change its client authentication.',
        { serverId: server.id },
      );
    }
    credentials.privateJwk = JSON.parse(raw) as JWK;
  }
  return credentials;
}

/** The credentials as openid-client client authentication (RFC 6749 §2.3, RFC 7523 §2.2 for private_key_jwt). */
export async function asClientAuthentication(credentials: AsCredentials): Promise<oidc.ClientAuth> {
  switch (credentials.method) {
    case 'none':
      return oidc.None();
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(credentials.clientSecret ?? '');
    case 'client_secret_post':
      return oidc.ClientSecretPost(credentials.clientSecret ?? '');
    case 'private_key_jwt': {
      const jwk = credentials.privateJwk;
      if (!jwk) throw new TypeError('private_key_jwt without a key');
      const key = (await importJWK(jwk, jwk.alg ?? 'RS256')) as oidc.CryptoKey;
      return oidc.PrivateKeyJwt(jwk.kid ? { key, kid: jwk.kid } : key);
    }
  }
}
