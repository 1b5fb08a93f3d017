import {
  AuthorizationServerMismatchError,
  InsecureTokenEndpointError,
  IssuerMismatchError,
  OAuthError,
  RegistrationRejectedError,
} from '@modelcontextprotocol/client';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { classifyNetworkError } from '../util/network-errors';

/**
 * Turns what the MCP SDK's client auth throws into the one error a user sees (code, message, fix). Built from error
 * classes, OAuth error codes and HTTP statuses only — never from the SDK's message text, which can quote a response
 * body — and never with a token, a code or a verifier in it.
 */

/** What the user is told to do to start over, with the server's id in it. */
export const authorizeAgainFix = (serverId: string): string =>
  `Click "Authorize" for ${serverId} in Lanyard (or run \`lanyard servers authorize ${serverId}\`) and approve the request in the browser.`;

export function authorizationRequired(serverId: string, why: string): LanyardError {
  return new LanyardError(ErrorCodes.AUTHORIZATION_REQUIRED, why, authorizeAgainFix(serverId), { serverId });
}

export function asUnreachable(serverId: string, what: string, cause?: unknown): LanyardError {
  const network = classifyNetworkError(cause);
  return new LanyardError(
    ErrorCodes.AS_UNREACHABLE,
    `${what}${network ? `: ${network.summary}` : ''}.`,
    'Check your network connection; Lanyard retries on its own and keeps using the current token while it is valid.',
    { serverId, transient: true, cause },
  );
}

/**
 * `phase`: `authorize` (discovery, registration, the browser step and the code exchange) or `refresh`.
 * `status`: the HTTP status of the last answer from the authorization server, when one came.
 */
export function toOAuthPathError(e: unknown, serverId: string, phase: 'authorize' | 'refresh', status?: number): LanyardError {
  if (e instanceof LanyardError) return e;
  const opt = { serverId, cause: e };
  if (e instanceof IssuerMismatchError) {
    // The received value is attacker-controlled in a mix-up: it is never shown (RFC 9207 §4).
    return e.kind === 'metadata'
      ? new LanyardError(
          ErrorCodes.SERVER_METADATA_INVALID,
          `The authorization server of ${serverId} publishes metadata for another issuer than the one it was fetched for (RFC 8414 §3.3); Lanyard does not use it.`,
          "Ask the server's operator to fix the authorization server's `issuer`.",
          opt,
        )
      : new LanyardError(
          ErrorCodes.AUTHORIZATION_FAILED,
          `The authorization response for ${serverId} did not come from its authorization server (the \`iss\` check of RFC 9207 failed), so Lanyard did not redeem it.`,
          `${authorizeAgainFix(serverId)} If it happens again, another site may be trying to intercept the authorization.`,
          opt,
        );
  }
  if (e instanceof AuthorizationServerMismatchError) {
    return new LanyardError(
      ErrorCodes.AUTHORIZATION_FAILED,
      `${serverId} switched to another authorization server while the authorization was under way.`,
      authorizeAgainFix(serverId),
      opt,
    );
  }
  if (e instanceof InsecureTokenEndpointError) {
    return new LanyardError(
      ErrorCodes.SERVER_METADATA_INVALID,
      `The authorization server of ${serverId} has a token endpoint without https; Lanyard sends no credential there.`,
      "Ask the server's operator to serve the authorization server over https.",
      opt,
    );
  }
  if (e instanceof RegistrationRejectedError) {
    return new LanyardError(
      ErrorCodes.AUTHORIZATION_FAILED,
      `The authorization server of ${serverId} refused to register Lanyard as a client (HTTP ${e.status}).`,
      `Ask the server's operator for a client id for Lanyard and add it with \`lanyard servers add ${serverId} --oauth-client-id <id>\`.`,
      opt,
    );
  }
  if (e instanceof OAuthError) {
    const transient =
      e.code === 'server_error' || e.code === 'temporarily_unavailable' || status === 429 || (status !== undefined && status >= 500);
    if (transient) return asUnreachable(serverId, `The authorization server of ${serverId} failed (HTTP ${status ?? 'error'})`, e);
    if (phase === 'refresh') {
      return authorizationRequired(
        serverId,
        `The authorization server of ${serverId} no longer accepts Lanyard's grant (${e.code}); it was revoked, expired or replaced.`,
      );
    }
    const clientProblem = e.code === 'invalid_client' || e.code === 'unauthorized_client';
    return new LanyardError(
      ErrorCodes.AUTHORIZATION_FAILED,
      `The authorization server of ${serverId} refused the authorization (${e.code}).`,
      clientProblem
        ? `Check Lanyard's client id (and secret) for ${serverId}, or remove them so Lanyard registers itself.`
        : authorizeAgainFix(serverId),
      { ...opt, oauth: { error: e.code, ...(status !== undefined ? { status } : {}) } },
    );
  }
  if (classifyNetworkError(e)) return asUnreachable(serverId, `The authorization server of ${serverId} could not be reached`, e);
  return new LanyardError(
    ErrorCodes.AUTHORIZATION_FAILED,
    phase === 'refresh'
      ? `Lanyard could not renew its access to ${serverId}.`
      : `The authorization of ${serverId} failed: its authorization server answered in a way Lanyard cannot use.`,
    authorizeAgainFix(serverId),
    opt,
  );
}
