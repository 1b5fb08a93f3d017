/**
 * The OAuth client-authentication methods Lanyard speaks, the one list every layer validates against: the config
 * schema, the control contract, the CLI flags and the dashboard's pickers. The same four apply at the IdP and at each
 * server's authorization server. The names are the registered `token_endpoint_auth_method` values
 * (https://www.iana.org/assignments/oauth-parameters/oauth-parameters.xhtml#token-endpoint-auth-method); `none` is a
 * public client (Okta's "client ID only" for local agents); private_key_jwt signs an RFC 7523 client assertion
 * (https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication). See docs/protocol.md "Client
 * authentication".
 */
import { z } from 'zod';

export const CLIENT_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;

export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

export const ClientAuthMethodSchema = z.enum(CLIENT_AUTH_METHODS);

export function isClientAuthMethod(value: string): value is ClientAuthMethod {
  return (CLIENT_AUTH_METHODS as readonly string[]).includes(value);
}

/** The methods that need a client secret from the keychain (the other two need none, or a private key). */
export function usesClientSecret(method: ClientAuthMethod): method is 'client_secret_basic' | 'client_secret_post' {
  return method === 'client_secret_basic' || method === 'client_secret_post';
}
