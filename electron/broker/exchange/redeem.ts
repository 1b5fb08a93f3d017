import * as oidc from 'openid-client';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { classifyOAuthError, oauthFailure, oauthFields, type OAuthFailure } from '../identity/oauth-errors';
import type { FetchLike } from '../util/http';
import { policyFetch } from '../util/policy-fetch';
import { isLoopbackHost } from '../util/url';
import { safeOrigin } from '../util/url-policy';
import { asClientAuthentication, type AsCredentials } from './as-client-auth';
import { JWT_BEARER } from './discovery';

export type { AsClientAuthMethod, AsCredentials } from './as-client-auth';

export interface RedeemedToken {
  accessToken: string;
  tokenType: string;
  expiresIn: number | undefined;
  scope: string | undefined;
}

/**
 * Leg 2 of cross-app access: presents the ID-JAG at the MCP server's authorization server (RFC 7523 jwt-bearer), with
 * openid-client's generic grant request, which speaks all four client authentication methods and reports a refusal
 * as a structured error (`error`, `error_description`, status). Real ASes answer invalid_grant with 400, 401 or 403,
 * so the status is not trusted, the body is.
 */
export async function redeemIdJag(options: {
  tokenEndpoint: string;
  asIssuer: string;
  idJag: string;
  credentials: AsCredentials;
  fetch: FetchLike;
  serverId?: string | undefined;
}): Promise<RedeemedToken> {
  const opt = options.serverId ? { serverId: options.serverId } : {};
  const config = new oidc.Configuration(
    { issuer: options.asIssuer, token_endpoint: options.tokenEndpoint },
    options.credentials.clientId,
    undefined,
    await asClientAuthentication(options.credentials),
  );
  const url = new URL(options.tokenEndpoint);
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) oidc.allowInsecureRequests(config);
  // The token endpoint was checked against the server at discovery; the AS's own requests stay in the AS's class of
  // address (util/url-policy.ts) and never follow a redirect to another origin.
  const guarded = policyFetch(options.fetch, {
    anchor: options.asIssuer,
    refuse: (target, reason) =>
      new LanyardError(
        ErrorCodes.SERVER_METADATA_INVALID,
        `The authorization server ${options.asIssuer} sends Lanyard to ${safeOrigin(target)}, which Lanyard will not contact: ${reason}.`,
        "Ask the server's operator to serve the token endpoint over https without redirects to other hosts.",
        opt,
      ),
  });
  config[oidc.customFetch] = (input, init) => guarded(input, init as RequestInit);
  try {
    const response = await oidc.genericGrantRequest(config, JWT_BEARER, { assertion: options.idJag });
    return {
      accessToken: response.access_token,
      tokenType: response.token_type,
      expiresIn: response.expires_in,
      scope: response.scope,
    };
  } catch (e) {
    // openid-client wraps what the fetch throws; a refusal by the URL policy is already the error to report.
    if (e instanceof oidc.ClientError && e.cause instanceof LanyardError) throw e.cause;
    const failure = await grantFailure(e);
    if (failure.kind === 'network' || (failure.kind === 'server' && (failure.status ?? 500) >= 500)) {
      throw asUnreachable(options.asIssuer, failure.summary, e, opt);
    }
    if (failure.kind === 'client') {
      throw new LanyardError(
        ErrorCodes.AS_GRANT_REJECTED,
        `The authorization server ${options.asIssuer} returned an invalid token response.`,
        "Contact the server's owner; run `lanyard doctor` for details.",
        { cause: e, ...opt },
      );
    }
    throw asGrantError(options.asIssuer, failure, e, opt);
  }
}

/**
 * Classifies a failed grant. A 401 that carries a WWW-Authenticate challenge (a Basic realm, typically) is reported by
 * openid-client as a challenge, before it reads the body; the OAuth error is in that body, so it is read here.
 */
async function grantFailure(e: unknown): Promise<OAuthFailure> {
  if (e instanceof oidc.WWWAuthenticateChallengeError) {
    const body = (await e.response
      .clone()
      .json()
      .catch(() => undefined)) as { error?: unknown; error_description?: unknown } | undefined;
    if (typeof body?.error === 'string') return oauthFailure(e.status, body.error, body.error_description);
  }
  return classifyOAuthError(e);
}

function asUnreachable(issuer: string, summary: string, cause: unknown, opt: { serverId?: string }): LanyardError {
  return new LanyardError(
    ErrorCodes.AS_UNREACHABLE,
    `The authorization server ${issuer} could not be reached (${summary}).`,
    'Check your network or VPN; Lanyard retries by itself.',
    { cause, transient: true, ...opt },
  );
}

function asGrantError(issuer: string, failure: OAuthFailure, cause: unknown, opt: { serverId?: string }): LanyardError {
  const { error, description } = failure;
  const reason = `${error ?? (failure.status ? `HTTP ${failure.status}` : failure.summary)}${description ? `: ${description}` : ''}`;
  const options = { cause, oauth: oauthFields(failure), ...opt };
  if (
    error === 'invalid_client' ||
    error === 'unauthorized_client' ||
    // Some ASes say invalid_grant when the grant names another client; only their words tell the two apart.
    (error === 'invalid_grant' && /client_id|client id/i.test(description ?? ''))
  ) {
    return new LanyardError(
      ErrorCodes.AS_CLIENT_REJECTED,
      `The authorization server ${issuer} rejected Lanyard's client (${reason}).`,
      'Check the client id and authentication configured for this server; it must match the client id your IdP admin registered for this resource.',
      options,
    );
  }
  return new LanyardError(
    ErrorCodes.AS_GRANT_REJECTED,
    `The authorization server ${issuer} refused the grant (${reason}).`,
    error === 'invalid_scope'
      ? "Ask the server's owner which scopes your organization may use."
      : 'Lanyard retries once with a fresh grant; if it persists, run `lanyard doctor`.',
    options,
  );
}
