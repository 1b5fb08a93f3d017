import { z } from 'zod';

/**
 * The ways Lanyard can authenticate to a remote MCP server, in the fixed order the probe tries them:
 *
 *   xaa     Cross-App Access: the user's IdP session → ID-JAG (RFC 8693) → access token at the server's
 *           authorization server (RFC 7523). No consent screen; the IdP's policy decides.
 *   oauth   OAuth 2.1 authorization code + PKCE at the server's own authorization server, once per server per user
 *           in the system browser; the refresh token is kept in the OS keychain.
 *   header  A static header (an API key) the user stored in the OS keychain; Lanyard injects it.
 *   none    The server needs no credentials.
 *
 * A later path is used only when the earlier ones do not apply to the server, and an administrator can pin a path or
 * forbid falling back (docs/architecture.md, "Auth paths").
 */
export const AUTH_PATHS = ['xaa', 'oauth', 'header', 'none'] as const;
export type AuthPath = (typeof AUTH_PATHS)[number];
export const AuthPathSchema = z.enum(AUTH_PATHS);

/** What a person reads for each path (tray, dashboard, CLI). */
export const AUTH_PATH_LABELS: Record<AuthPath, string> = {
  xaa: 'Cross-App Access',
  oauth: 'OAuth (browser authorization)',
  header: 'API key',
  none: 'No authentication',
};

/**
 * Where a server stands on its path, and so the one action the user may need to take:
 *   ready                   tokens or key available (or none needed)
 *   sign_in_required        xaa: the user is not signed in to the IdP → "Sign in"
 *   authorization_required  oauth: no usable grant for this server → "Authorize"
 *   authorizing             oauth: the browser step is under way (the link is in `authorizeUrl`)
 *   key_required            header: no key stored, or the server rejected it → "Set key"
 *   blocked                 the administrator's policy (managed config or the IdP) refuses this server; no action
 *   error                   anything else; `lastError` says what to do
 *   unknown                 not probed yet
 */
export const AUTH_STATES = [
  'ready',
  'sign_in_required',
  'authorization_required',
  'authorizing',
  'key_required',
  'blocked',
  'error',
  'unknown',
] as const;
export type AuthState = (typeof AUTH_STATES)[number];
export const AuthStateSchema = z.enum(AUTH_STATES);

/** The one button a server card shows for its state. */
export const AUTH_ACTIONS = ['sign_in', 'authorize', 'set_key'] as const;
export type AuthAction = (typeof AUTH_ACTIONS)[number];
export const AuthActionSchema = z.enum(AUTH_ACTIONS);

export function actionFor(state: AuthState): AuthAction | undefined {
  switch (state) {
    case 'sign_in_required':
      return 'sign_in';
    case 'authorization_required':
    case 'authorizing':
      return 'authorize';
    case 'key_required':
      return 'set_key';
    default:
      return undefined;
  }
}

/**
 * An HTTP header name Lanyard may inject for the `header` path (RFC 9110 token characters). Headers the transport owns
 * or that would let a key travel somewhere else are refused.
 */
export const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
export const RESERVED_HEADER_NAMES = [
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'accept',
  'cookie',
  'origin',
  'mcp-session-id',
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
  'last-event-id',
] as const;
export function headerNameProblem(name: string): string | undefined {
  if (!HEADER_NAME_PATTERN.test(name)) return 'must be an HTTP header name (letters, digits and - only, at most 64 characters)';
  if ((RESERVED_HEADER_NAMES as readonly string[]).includes(name.toLowerCase()))
    return `"${name}" is set by the MCP transport itself and cannot carry a key`;
  return undefined;
}
