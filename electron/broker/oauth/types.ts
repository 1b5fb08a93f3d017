import type { ClientAuthMethod } from '../../../shared/auth-methods';
import type { ErrorInfo } from '../../../shared/errors';
import type { BearerToken } from '../exchange/token-service';
import type { FetchLike } from '../util/http';

/**
 * The OAuth 2.1 path's contract with the rest of the broker: "a bearer token for server S, obtained by authorization
 * code + PKCE at S's own authorization server". The implementation is built on the MCP SDK's client auth; the gateway
 * and the control service only see this interface.
 */

/** What the OAuth path needs to know about a configured server (a subset of its config entry). */
export interface OAuthServerRef {
  id: string;
  /** The MCP endpoint: the RFC 8707 resource and the starting point of RFC 9728 discovery. */
  url: string;
  /** Scopes the administrator asked for in addition to the challenge / `scopes_supported`. */
  scopes?: string[] | undefined;
  /** A client pre-registered at the server's authorization server; without it, CIMD then dynamic registration. */
  oauthClient?: { clientId: string; method: ClientAuthMethod } | undefined;
  /** Pins the authorization server: discovery that names another issuer is refused. */
  expectedAsIssuer?: string | undefined;
}

/** What a server's 401 or 403 said (RFC 6750 §3, RFC 9728 §5.1): where its metadata is, which scopes it wants. */
export interface OAuthChallenge {
  resourceMetadataUrl?: string | undefined;
  scope?: string | undefined;
}

export type OAuthGrantState =
  /** A grant (access and usually refresh token) is held; getToken answers without the user. */
  | 'authorized'
  /** No grant, or the authorization server refused the refresh token (4xx): the user must authorize once more. */
  | 'authorization_required'
  /** The browser step is under way; `authorizeUrl` is its link. */
  | 'authorizing'
  /** The last attempt failed for another reason (unreachable AS, bad metadata): `lastError` says what to do. */
  | 'error';

export interface OAuthStatus {
  state: OAuthGrantState;
  authorizeUrl?: string | undefined;
  asIssuer?: string | undefined;
  clientId?: string | undefined;
  scopes: string[];
  tokenExpiresAt?: number | undefined;
  lastError?: ErrorInfo | undefined;
}

export type OAuthEvent =
  | { type: 'oauth_authorized'; serverId: string; scopes: string[]; expiresAt: number | undefined }
  | { type: 'oauth_refreshed'; serverId: string; scopes: string[]; expiresAt: number | undefined }
  | { type: 'oauth_authorization_required'; serverId: string; error: ErrorInfo }
  | { type: 'oauth_error'; serverId: string; error: ErrorInfo }
  | { type: 'oauth_revoked'; serverId: string };

export interface OAuthPath {
  /**
   * A bearer token for the server, refreshed when it is within its renewal margin (one refresh at a time per server,
   * rotation-safe). Never opens a browser: without a usable grant it throws AUTHORIZATION_REQUIRED.
   */
  getToken(server: OAuthServerRef): Promise<BearerToken>;
  /**
   * Starts the one browser authorization for this server, or joins the one under way, and resolves as soon as its link
   * is known. `openBrowser` (default true) opens the system browser once; `done` settles when the user finished.
   * `challenge`: the server's 401 that led here, when there is one (its `resource_metadata` and `scope` steer
   * discovery and scope selection); without it the engine asks the server for one.
   */
  authorize(
    server: OAuthServerRef,
    options?: { openBrowser?: boolean; challenge?: OAuthChallenge | undefined },
  ): Promise<{ authorizeUrl: string; done: Promise<void> }>;
  /** After a 401 with this token: drop it (only if it is still the current one) so the next getToken refreshes. */
  invalidate(serverId: string, accessToken: string): Promise<void>;
  /**
   * After 403 insufficient_scope: the next authorization asks for the union of the scopes; the current grant is kept
   * until then. Throws INSUFFICIENT_SCOPE after a bounded number of step-ups for the same scopes.
   */
  stepUp(server: OAuthServerRef, challengedScope: string | undefined): Promise<void>;
  status(serverId: string): OAuthStatus;
  /** `servers remove`: revokes the tokens where the AS offers revocation (RFC 7009), then wipes grant and client. */
  forget(serverId: string): Promise<void>;
  onEvent(listener: (event: OAuthEvent) => void): () => void;
  /**
   * The broker is stopping: ends every browser authorization under way, so their loopback listeners close and do not
   * keep the process alive (optional for stand-ins that hold none).
   */
  close?(): Promise<void>;
  /**
   * A fetch that presents the server's token as it was issued (`Bearer`, or `DPoP` with a fresh proof per request). It
   * returns 401 and 403 to the caller. Optional: without it callers send `Bearer <getToken()>` themselves.
   */
  authorizedFetch?(server: OAuthServerRef, base?: FetchLike): FetchLike;
}
