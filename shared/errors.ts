/**
 * The error taxonomy every surface shows (tray, dashboard, CLI, MCP error results). Each code is stable: tests, docs
 * and the UI key on it. The message says what happened; `fix` says what the user does about it, in one line.
 *
 * Nothing here may contain a token: broker code builds messages from codes and non-secret identifiers only.
 */
export const ErrorCodes = {
  /** The config file or an input failed validation. */
  CONFIG_INVALID: 'config_invalid',
  /** No IdP session: the user has never signed in, or signed out. */
  NOT_SIGNED_IN: 'not_signed_in',
  /** The IdP refused the refresh token (revoked, expired, rotated): one interactive sign-in is needed. */
  SESSION_EXPIRED: 'session_expired',
  /** The interactive sign-in failed, timed out or was cancelled. */
  SIGN_IN_FAILED: 'sign_in_failed',
  /** The IdP could not be reached or answered 5xx; transient. */
  IDP_UNREACHABLE: 'idp_unreachable',
  /** The IdP refused the token exchange by policy (invalid_target, invalid_scope, unauthorized_client, ...). */
  EXCHANGE_DENIED: 'exchange_denied',
  /** The IdP does not issue ID-JAGs (unsupported_grant_type, requested_token_type not supported). */
  IDP_NOT_XAA_CAPABLE: 'idp_not_xaa_capable',
  /** The IdP rejected Lanyard's own client authentication (invalid_client). */
  IDP_CLIENT_REJECTED: 'idp_client_rejected',
  /** The MCP server's metadata does not allow cross-app access (no PRM, no jwt-bearer, no id-jag profile). */
  SERVER_NOT_XAA_CAPABLE: 'server_not_xaa_capable',
  /** The MCP server's metadata is inconsistent or hostile (issuer mismatch, foreign resource, insecure endpoint). */
  SERVER_METADATA_INVALID: 'server_metadata_invalid',
  /** The server's authorization server rejected Lanyard's client (invalid_client, client_id mismatch). */
  AS_CLIENT_REJECTED: 'as_client_rejected',
  /** The server's authorization server refused the grant for another reason. */
  AS_GRANT_REJECTED: 'as_grant_rejected',
  /** The server's authorization server could not be reached. */
  AS_UNREACHABLE: 'as_unreachable',
  /** The server needs scopes the IdP would not grant. */
  INSUFFICIENT_SCOPE: 'insufficient_scope',
  /** The MCP server could not be reached or failed. */
  SERVER_UNREACHABLE: 'server_unreachable',
  /** No configured server has this id. */
  SERVER_UNKNOWN: 'server_unknown',
  /** The OS keychain cannot be used (no bus, no keyring, locked, denied). */
  KEYCHAIN_UNAVAILABLE: 'keychain_unavailable',
  /** The local endpoint refused the caller (token, Host, Origin). */
  LOCAL_AUTH_FAILED: 'local_auth_failed',
  /** A port Lanyard needs is taken. */
  PORT_IN_USE: 'port_in_use',
  /** The broker is not running (CLI talking to it). */
  BROKER_NOT_RUNNING: 'broker_not_running',
  /** OAuth path: the user has not (or no longer) authorized Lanyard at this server's authorization server. */
  AUTHORIZATION_REQUIRED: 'authorization_required',
  /** OAuth path: the browser authorization failed (closed, denied, state or iss mismatch, no PKCE, bad code). */
  AUTHORIZATION_FAILED: 'authorization_failed',
  /** Header path: no key is stored for this server, or the server rejected the stored one. */
  KEY_REQUIRED: 'key_required',
  /** The administrator's policy refuses this server or this way of reaching it (managed config, or the IdP by policy). */
  POLICY_BLOCKED: 'policy_blocked',
  /** A setting is locked by the administrator's managed configuration. */
  MANAGED_LOCKED: 'managed_locked',
  /** The outbound secret scan found a secret in a tool call's arguments and the policy blocks it (nothing was sent). */
  SECRET_BLOCKED: 'secret_blocked',
  /** The secret scan found a secret in a tool call's arguments and, its policy being warn, let the call go (the tray says so). */
  SECRET_SENT: 'secret_sent',
  /** A tool changed, appeared after the server's first listing, or was flagged by the injection scan: held back for review. */
  TOOL_QUARANTINED: 'tool_quarantined',
  /** A TLS certificate on the way was not trusted or has expired (a TLS-inspecting proxy's CA is missing, most often). */
  TLS_UNTRUSTED: 'tls_untrusted',
  /** The outbound proxy answered 407: it wants credentials Lanyard was not given. */
  PROXY_AUTH_REQUIRED: 'proxy_auth_required',
  /** The outbound proxy (HTTPS_PROXY, network.proxy, or one a PAC file or the system named) could not be reached. */
  PROXY_UNREACHABLE: 'proxy_unreachable',
  /**
   * The proxy auto-configuration (PAC) file could not be loaded (unreachable, not found), does not parse, throws,
   * runs too long, or names only proxies Lanyard cannot use (SOCKS).
   */
  PAC_FAILED: 'pac_failed',
  /** An identity profile name that is not allowed (`--profile`, `/p/<profile>/`): letters, digits, - and _ only. */
  IDENTITY_PROFILE_INVALID: 'identity_profile_invalid',
  /** No identity profile has this name (neither created on this machine nor defined by the managed configuration). */
  IDENTITY_PROFILE_UNKNOWN: 'identity_profile_unknown',
  /** A remote pairing failed: the code is wrong, expired, already used, or the request was voided after wrong codes. */
  REMOTE_PAIRING_FAILED: 'remote_pairing_failed',
  /** A remote device's token was refused: revoked on the laptop, unknown, or used outside the MCP endpoints. */
  REMOTE_TOKEN_REFUSED: 'remote_token_refused',
  /** The remote bridge cannot reach the laptop's broker (the laptop asleep, the port forward dropped). */
  REMOTE_UNREACHABLE: 'remote_unreachable',
  /** Anything else; always carries a message. */
  INTERNAL: 'internal',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The plain shape that crosses every boundary (IPC, HTTP, CLI --json). Never a raw Error, never a token. */
export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  fix: string;
  /** The server the error concerns, when there is one. */
  serverId?: string | undefined;
}

export const isErrorCode = (value: unknown): value is ErrorCode =>
  typeof value === 'string' && (Object.values(ErrorCodes) as string[]).includes(value);

/**
 * The codes that mean "no way to the other side" (a party down, an untrusted certificate, the proxy or its PAC file),
 * as opposed to an answer refusing Lanyard: the surfaces show such a server as unreachable, with the error's fix.
 */
export const NETWORK_ERROR_CODES: readonly ErrorCode[] = [
  ErrorCodes.SERVER_UNREACHABLE,
  ErrorCodes.IDP_UNREACHABLE,
  ErrorCodes.AS_UNREACHABLE,
  ErrorCodes.TLS_UNTRUSTED,
  ErrorCodes.PROXY_AUTH_REQUIRED,
  ErrorCodes.PROXY_UNREACHABLE,
  ErrorCodes.PAC_FAILED,
];

export const isNetworkErrorCode = (code: string): boolean => (NETWORK_ERROR_CODES as readonly string[]).includes(code);
