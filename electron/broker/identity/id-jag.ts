import * as oidc from 'openid-client';
import { LanyardError } from '../errors';
import { exchangeError, idpUnreachable, notAnIdJagError, type IdJagRequest } from './identity-errors';
import type { IdpClient } from './idp-client';
import { classifyOAuthError } from './oauth-errors';

export type { IdJagRequest } from './identity-errors';

export interface IdJagResult {
  idJag: string;
  expiresIn: number | undefined;
  scope: string | undefined;
  tokenType: string | undefined;
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

/**
 * Leg 1 of cross-app access: trades the user's fresh ID token for an ID-JAG at the IdP (RFC 8693, with the ID-JAG
 * token type of draft-ietf-oauth-identity-assertion-authz-grant), with Lanyard's configured client authentication.
 * On `invalid_grant` (e.g. the ID token expired in flight) it refreshes once and retries once; policy refusals become
 * EXCHANGE_DENIED with the IdP's reason.
 */
export async function exchangeIdTokenForIdJag(
  deps: { client: IdpClient; issuer: string; getIdToken: (options?: { forceRefresh?: boolean }) => Promise<string> },
  request: IdJagRequest,
): Promise<IdJagResult> {
  let idToken = await deps.getIdToken();
  for (let attempt = 0; ; attempt++) {
    const config = await deps.client.exchangeConfiguration();
    const params: Record<string, string> = {
      requested_token_type: ID_JAG,
      subject_token: idToken,
      subject_token_type: ID_TOKEN_TYPE,
      audience: request.audience,
    };
    if (request.resource) params.resource = request.resource;
    if (request.scope) params.scope = request.scope;
    try {
      const response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, params);
      const issuedType = (response as { issued_token_type?: unknown }).issued_token_type;
      if (issuedType !== ID_JAG) throw notAnIdJagError(issuedType, request.serverId);
      return {
        idJag: response.access_token,
        expiresIn: response.expires_in,
        scope: response.scope,
        tokenType: response.token_type,
      };
    } catch (e) {
      if (e instanceof LanyardError) throw e;
      const failure = classifyOAuthError(e);
      if (failure.kind === 'network' || failure.kind === 'server') throw idpUnreachable(deps.issuer, failure, e, request.serverId);
      if (failure.error === 'invalid_grant' && attempt === 0) {
        idToken = await deps.getIdToken({ forceRefresh: true });
        continue;
      }
      throw exchangeError(failure, request, e);
    }
  }
}
