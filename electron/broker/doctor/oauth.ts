import { discoverAuthorizationServerMetadata } from '@modelcontextprotocol/client';
import { usesClientSecret } from '../../../shared/auth-methods';
import type { ServerStatus } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import type { LanyardConfig, ServerConfig } from '../config/schema';
import { redactText, toErrorInfo } from '../errors';
import type { BearerToken } from '../exchange/token-service';
import type { OAuthStatus } from '../oauth/types';
import type { SecretStore } from '../secrets/secret-store';
import type { FetchLike } from '../util/http';
import { describe, err, fail, failWith, pass, skip, type DoctorAuth, type DoctorCheck } from './types';

/**
 * The OAuth 2.1 path's hops after the protected-resource metadata: the authorization server's metadata (RFC 8414 /
 * OpenID discovery, issuer match, PKCE S256), how Lanyard identifies itself there (pre-registered client, Client ID
 * Metadata Document, or dynamic registration — in that order of precedence), whether a grant is in the keychain, and
 * whether it yields an access token (refreshed when due).
 */

type AsMetadata = NonNullable<Awaited<ReturnType<typeof discoverAuthorizationServerMetadata>>>;

const ids = (serverId: string) => ({
  as: { id: `server.${serverId}.as`, hop: `${serverId}: authorization server` },
  client: { id: `server.${serverId}.client`, hop: `${serverId}: client identity` },
  grant: { id: `server.${serverId}.grant`, hop: `${serverId}: grant in keychain` },
  refresh: { id: `server.${serverId}.refresh`, hop: `${serverId}: refresh` },
});

export async function checkOAuthAuthorizationServer(
  server: ServerConfig,
  issuer: string,
  fetchFn: FetchLike,
): Promise<{ check: DoctorCheck; metadata?: AsMetadata }> {
  const { id, hop } = ids(server.id).as;
  let metadata: AsMetadata | undefined;
  try {
    metadata = await discoverAuthorizationServerMetadata(issuer, { fetchFn });
  } catch (e) {
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.AS_UNREACHABLE,
        `The authorization server ${issuer} did not serve its metadata (${describe(e)}).`,
        'Check your network or VPN; if it persists, contact the server’s owner.',
        server.id,
      ),
    };
  }
  if (!metadata)
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_METADATA_INVALID,
        `No OAuth or OpenID metadata at the authorization server ${issuer} (RFC 8414).`,
        "Contact the server's owner: its protected-resource metadata names an authorization server without metadata.",
        server.id,
      ),
    };
  if (metadata.issuer !== issuer && metadata.issuer !== issuer.replace(/\/$/, ''))
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_METADATA_INVALID,
        `The metadata of ${issuer} names another issuer (${redactText(String(metadata.issuer)).slice(0, 200)}); Lanyard refuses it (RFC 8414 §3.3).`,
        "Contact the server's owner: the issuer in the metadata must be the authorization server's own URL.",
        server.id,
      ),
    };
  if (!metadata.code_challenge_methods_supported?.includes('S256'))
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_METADATA_INVALID,
        `The authorization server ${issuer} does not advertise PKCE with S256 (code_challenge_methods_supported), which OAuth 2.1 and MCP require; Lanyard will not authorize there.`,
        "Ask the server's owner to enable PKCE S256, or use an API key for it (`lanyard servers set-key`).",
        server.id,
      ),
      metadata,
    };
  const extras = [
    metadata.client_id_metadata_document_supported ? 'Client ID Metadata Documents' : undefined,
    metadata.registration_endpoint ? 'dynamic registration' : undefined,
    metadata.scopes_supported?.includes('offline_access') ? 'offline_access' : undefined,
  ].filter(Boolean);
  return {
    check: pass(id, hop, `${issuer}: issuer matches; authorization code with PKCE S256${extras.length ? `; ${extras.join(', ')}` : ''}`),
    metadata,
  };
}

/** Which client identity Lanyard uses at the authorization server, and whether it has what that identity needs. */
export async function checkClientIdentity(
  server: ServerConfig,
  config: LanyardConfig,
  metadata: AsMetadata,
  secrets: SecretStore,
): Promise<DoctorCheck> {
  const { id, hop } = ids(server.id).client;
  if (server.oauthClient) {
    const { clientId, method } = server.oauthClient;
    if (usesClientSecret(method)) {
      let present: boolean;
      try {
        present = Boolean(await secrets.get(`server:${server.id}:oauth_client_secret`));
      } catch (e) {
        return fail(id, hop, toErrorInfo(e));
      }
      if (!present)
        return failWith(
          id,
          hop,
          ErrorCodes.CONFIG_INVALID,
          `The pre-registered client ${clientId} uses ${method}, but its client secret is not in the keychain.`,
          `Remove the server and add it again with its client secret (\`lanyard servers add <url> --oauth-client-id ${clientId}\`), or in the dashboard.`,
          server.id,
        );
    }
    return pass(
      id,
      hop,
      `pre-registered client ${clientId} (${method}${usesClientSecret(method) ? '; its secret is in the keychain' : ''})`,
    );
  }
  const cimdUrl = config.oauth?.clientMetadataUrl;
  if (metadata.client_id_metadata_document_supported && cimdUrl) return pass(id, hop, `Client ID Metadata Document ${cimdUrl}`);
  if (metadata.registration_endpoint) return pass(id, hop, `dynamic client registration at ${metadata.registration_endpoint}`);
  return failWith(
    id,
    hop,
    ErrorCodes.CONFIG_INVALID,
    metadata.client_id_metadata_document_supported
      ? `${metadata.issuer} accepts a Client ID Metadata Document, but Lanyard has no document URL (oauth.clientMetadataUrl), and it offers no dynamic registration.`
      : `${metadata.issuer} offers neither Client ID Metadata Documents nor dynamic registration, so Lanyard cannot identify itself there.`,
    `Ask the server's owner for a client id for Lanyard and add the server with it (\`lanyard servers remove ${server.id}\`, then \`lanyard servers add ${server.url} --oauth-client-id <id>\`)${metadata.client_id_metadata_document_supported ? ', or ask your IT team to set oauth.clientMetadataUrl' : ''}.`,
    server.id,
  );
}

/**
 * The grant hop: a grant held (through the broker's status when one runs, else the OAuth path's own state), the
 * browser step under way, or the one action needed.
 */
export function checkGrant(server: ServerConfig, state: OAuthStatus | ServerStatus | undefined): DoctorCheck {
  const { id, hop } = ids(server.id).grant;
  const authorize = `Run \`lanyard servers authorize ${server.id}\` (or Authorize in the dashboard): the browser opens once.`;
  if (!state)
    return failWith(
      id,
      hop,
      ErrorCodes.CONFIG_INVALID,
      'This build of Lanyard has no OAuth path, so the grant cannot be checked.',
      'Update Lanyard, or use an API key for this server (`lanyard servers set-key`).',
      server.id,
    );
  const s = 'authState' in state ? state.authState : state.state;
  const lastError = state.lastError;
  switch (s) {
    case 'ready':
    case 'authorized':
      return pass(id, hop, 'a grant for this server is in the keychain');
    case 'authorizing':
      return failWith(
        id,
        hop,
        ErrorCodes.AUTHORIZATION_REQUIRED,
        'The authorization is waiting for you in the browser.',
        state.authorizeUrl ? `Finish it in the browser: ${state.authorizeUrl}` : authorize,
        server.id,
      );
    case 'blocked':
      return fail(
        id,
        hop,
        lastError ?? err(ErrorCodes.POLICY_BLOCKED, 'Blocked by your administrator.', 'Ask your IT team for access.', server.id),
      );
    case 'error':
      return fail(id, hop, lastError ?? err(ErrorCodes.AUTHORIZATION_FAILED, 'The last authorization failed.', authorize, server.id));
    default:
      return failWith(
        id,
        hop,
        ErrorCodes.AUTHORIZATION_REQUIRED,
        lastError?.code === ErrorCodes.AUTHORIZATION_REQUIRED ? lastError.message : 'No grant for this server yet (or it was revoked).',
        authorize,
        server.id,
      );
  }
}

/** The refresh hop, in this process: an access token from the grant, renewed with the refresh token when due. */
export async function checkRefresh(server: ServerConfig, auth: DoctorAuth): Promise<{ check: DoctorCheck; token?: BearerToken }> {
  const { id, hop } = ids(server.id).refresh;
  const oauth = auth.oauth;
  if (!oauth) return { check: skip(id, hop, 'no OAuth path in this build') };
  let renewed = false;
  const off = oauth.onEvent((event) => {
    if (event.type === 'oauth_refreshed' && event.serverId === server.id) renewed = true;
  });
  try {
    const token = await oauth.getToken(auth.oauthRef(server.id));
    const until = new Date(token.expiresAt).toISOString();
    return {
      check: pass(
        id,
        hop,
        renewed
          ? `renewed with the refresh token just now: an access token valid until ${until}`
          : `the access token is valid until ${until}; renewed by itself before then`,
      ),
      token,
    };
  } catch (e) {
    return { check: fail(id, hop, toErrorInfo(e)) };
  } finally {
    off();
  }
}

/** The refresh line from the running broker's test (it holds the rotating refresh token; this process must not use it). */
export function refreshFromBroker(serverId: string, mcpOk: boolean, error: ReturnType<typeof toErrorInfo> | undefined): DoctorCheck {
  const { id, hop } = ids(serverId).refresh;
  if (mcpOk) return pass(id, hop, 'the running broker holds a valid access token (renewed by itself when due)');
  if (
    error &&
    [ErrorCodes.AUTHORIZATION_REQUIRED, ErrorCodes.AUTHORIZATION_FAILED, ErrorCodes.AS_UNREACHABLE].includes(error.code as never)
  )
    return fail(id, hop, error);
  return pass(id, hop, 'the running broker obtained an access token');
}

export function skipOAuthAfter(serverId: string, from: 'as' | 'client' | 'grant', why: string): DoctorCheck[] {
  const all = ids(serverId);
  const order = ['client', 'grant', 'refresh'] as const;
  const start = from === 'as' ? 0 : from === 'client' ? 1 : 2;
  return order.slice(start).map((k) => skip(all[k].id, all[k].hop, why));
}
