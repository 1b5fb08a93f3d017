import { exchangeJwtAuthGrant } from '@modelcontextprotocol/client';
import * as oidc from 'openid-client';
import { importJWK, type JWK } from 'jose';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, redactText } from '../errors';
import { classifyOAuthError } from '../identity/oauth-errors';
import type { FetchLike } from '../util/http';
import { isLoopbackHost } from '../util/url';
import { JWT_BEARER } from './discovery';

export type AsClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

export interface AsCredentials {
  clientId: string;
  method: AsClientAuthMethod;
  clientSecret?: string | undefined;
  privateJwk?: JWK | undefined;
}

export interface RedeemedToken {
  accessToken: string;
  tokenType: string;
  expiresIn: number | undefined;
  scope: string | undefined;
}

/**
 * Leg 2 of cross-app access: presents the ID-JAG at the MCP server's authorization server (RFC 7523 jwt-bearer).
 *
 * none / client_secret_basic / client_secret_post go through the SDK's `exchangeJwtAuthGrant`; the SDK has no
 * private_key_jwt for this grant, so that one method goes through openid-client's generic grant with `PrivateKeyJwt`.
 * The OAuth error of a failed request is captured from the response (the SDK only throws a message), so it can be
 * classified; real ASes answer invalid_grant with 400, 401 or 403, so the status is not trusted, the body is.
 */
export async function redeemIdJag(options: {
  tokenEndpoint: string;
  asIssuer: string;
  idJag: string;
  credentials: AsCredentials;
  fetch: FetchLike;
  serverId?: string | undefined;
}): Promise<RedeemedToken> {
  const { credentials } = options;
  const opt = options.serverId ? { serverId: options.serverId } : {};
  if (credentials.method === 'private_key_jwt') return redeemWithPrivateKey(options, opt);

  let captured: { status: number; error?: string; description?: string } | undefined;
  const capturingFetch: FetchLike = async (input, init) => {
    const response = await options.fetch(input, init);
    if (!response.ok) {
      const body = (await response
        .clone()
        .json()
        .catch(() => undefined)) as { error?: unknown; error_description?: unknown } | undefined;
      captured = {
        status: response.status,
        ...(typeof body?.error === 'string' ? { error: body.error } : {}),
        ...(typeof body?.error_description === 'string' ? { description: redactText(body.error_description).slice(0, 300) } : {}),
      };
    }
    return response;
  };
  try {
    const tokens = await exchangeJwtAuthGrant({
      tokenEndpoint: options.tokenEndpoint,
      jwtAuthGrant: options.idJag,
      clientId: credentials.clientId,
      ...(credentials.clientSecret ? { clientSecret: credentials.clientSecret } : {}),
      authMethod: credentials.method,
      fetchFn: capturingFetch,
    });
    return { accessToken: tokens.access_token, tokenType: tokens.token_type, expiresIn: tokens.expires_in, scope: tokens.scope };
  } catch (e) {
    if (captured) throw asGrantError(options.asIssuer, captured.status, captured.error, captured.description, e, opt);
    const failure = classifyOAuthError(e);
    if (failure.kind === 'network') throw asUnreachable(options.asIssuer, failure.summary, e, opt);
    throw new LanyardError(
      ErrorCodes.AS_GRANT_REJECTED,
      `The authorization server ${options.asIssuer} returned an invalid token response.`,
      "Contact the server's owner; run `lanyard doctor` for details.",
      { cause: e, ...opt },
    );
  }
}

async function redeemWithPrivateKey(
  options: { tokenEndpoint: string; asIssuer: string; idJag: string; credentials: AsCredentials; fetch: FetchLike },
  opt: { serverId?: string },
): Promise<RedeemedToken> {
  const jwk = options.credentials.privateJwk;
  if (!jwk) {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      'This server is set to private_key_jwt but no private key is in the keychain.',
      'Add the key for this server in Settings, or change its client authentication.',
      opt,
    );
  }
  const key = (await importJWK(jwk, jwk.alg ?? 'RS256')) as oidc.CryptoKey;
  const config = new oidc.Configuration(
    { issuer: options.asIssuer, token_endpoint: options.tokenEndpoint },
    options.credentials.clientId,
    undefined,
    oidc.PrivateKeyJwt(jwk.kid ? { key, kid: jwk.kid } : key),
  );
  const url = new URL(options.tokenEndpoint);
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) oidc.allowInsecureRequests(config);
  config[oidc.customFetch] = (input, init) => options.fetch(input, init as RequestInit);
  try {
    const response = await oidc.genericGrantRequest(config, JWT_BEARER, { assertion: options.idJag });
    return {
      accessToken: response.access_token,
      tokenType: response.token_type ?? 'bearer',
      expiresIn: response.expires_in,
      scope: response.scope,
    };
  } catch (e) {
    const failure = classifyOAuthError(e);
    if (failure.kind === 'network' || failure.kind === 'server') throw asUnreachable(options.asIssuer, failure.summary, e, opt);
    throw asGrantError(options.asIssuer, failure.status ?? 400, failure.error, failure.description, e, opt);
  }
}

function asUnreachable(issuer: string, summary: string, cause: unknown, opt: { serverId?: string }): LanyardError {
  return new LanyardError(
    ErrorCodes.AS_UNREACHABLE,
    `The authorization server ${issuer} could not be reached (${summary}).`,
    'Check your network or VPN; Lanyard retries by itself.',
    { cause, transient: true, ...opt },
  );
}

function asGrantError(
  issuer: string,
  status: number,
  error: string | undefined,
  description: string | undefined,
  cause: unknown,
  opt: { serverId?: string },
): LanyardError {
  if (status >= 500) return asUnreachable(issuer, `HTTP ${status}`, cause, opt);
  const reason = `${error ?? `HTTP ${status}`}${description ? `: ${description}` : ''}`;
  const oauth = error ? { error, description, status } : undefined;
  if (
    error === 'invalid_client' ||
    error === 'unauthorized_client' ||
    (error === 'invalid_grant' && /client_id|client id/i.test(description ?? ''))
  ) {
    return new LanyardError(
      ErrorCodes.AS_CLIENT_REJECTED,
      `The authorization server ${issuer} rejected Lanyard's client (${reason}).`,
      'Check the client id and authentication configured for this server; it must match the client id your IdP admin registered for this resource.',
      { cause, oauth, ...opt },
    );
  }
  return new LanyardError(
    ErrorCodes.AS_GRANT_REJECTED,
    `The authorization server ${issuer} refused the grant (${reason}).`,
    error === 'invalid_scope'
      ? "Ask the server's owner which scopes your organization may use."
      : 'Lanyard retries once with a fresh grant; if it persists, run `lanyard doctor`.',
    { cause, oauth, ...opt },
  );
}
