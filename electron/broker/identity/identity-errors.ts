import * as oidc from 'openid-client';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { classifyOAuthError, oauthFields, safeDescription, type OAuthFailure } from './oauth-errors';

/**
 * The errors the identity session and the IdP client raise, each with its code, message and fix in one place. An OAuth
 * answer from the IdP rides along as `LanyardError.oauth`, so callers branch on the IdP's `error` code, not on words.
 */

const serverOpt = (serverId: string | undefined) => (serverId ? { serverId } : {});

export function notSignedInError(): LanyardError {
  return new LanyardError(
    ErrorCodes.NOT_SIGNED_IN,
    'You are not signed in to your identity provider.',
    'Click "Sign in" in the Lanyard tray or dashboard, or run `lanyard login`.',
  );
}

export function sessionExpiredError(failure?: OAuthFailure): LanyardError {
  return new LanyardError(
    ErrorCodes.SESSION_EXPIRED,
    `Your sign-in has expired${failure?.error ? ` (the identity provider answered ${failure.error})` : ''}.`,
    'Sign in again from the Lanyard tray or dashboard, or run `lanyard login`.',
    failure ? { oauth: oauthFields(failure) } : {},
  );
}

export function idpUnreachable(issuer: string, failure: OAuthFailure, cause: unknown, serverId?: string): LanyardError {
  return new LanyardError(
    ErrorCodes.IDP_UNREACHABLE,
    `The identity provider at ${issuer} could not be reached (${failure.summary}).`,
    'Check your network or VPN; Lanyard retries by itself and keeps using tokens it already has.',
    { cause, transient: true, oauth: oauthFields(failure), ...serverOpt(serverId) },
  );
}

/** Discovery answered, but not with usable metadata for the configured issuer. */
export function idpConfigError(issuer: string, failure: OAuthFailure, cause: unknown): LanyardError {
  return new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    `Could not read the identity provider's metadata at ${issuer} (${failure.summary}).`,
    'Check "idp.issuer" in the settings: it must be the exact issuer URL (Okta: https://<your-org>.okta.com).',
    { cause, oauth: oauthFields(failure) },
  );
}

export function missingCredential(what: string, command: string): LanyardError {
  return new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    `The IdP client authentication needs a ${what}, and none is in the keychain.`,
    `Provide it with \`${command}\` or in Settings.`,
  );
}

export function browserOpenError(authorizeUrl: URL, cause: unknown): LanyardError {
  return new LanyardError(
    ErrorCodes.SIGN_IN_FAILED,
    'Lanyard could not open your web browser for sign-in.',
    `Open this address in a browser yourself: ${authorizeUrl.origin}`,
    { cause },
  );
}

/** Anything an interactive sign-in threw, as the error the user sees. */
export function signInError(issuer: string, e: unknown): LanyardError {
  if (e instanceof LanyardError) return e;
  if (e instanceof oidc.AuthorizationResponseError) {
    // The IdP's answer on the redirect (RFC 6749 §4.1.2.1): no HTTP status of its own.
    const oauth = { error: e.error, description: safeDescription(e.error_description) };
    return new LanyardError(
      ErrorCodes.SIGN_IN_FAILED,
      `The identity provider refused the sign-in (${e.error}${oauth.description ? `: ${oauth.description}` : ''}).`,
      e.error === 'access_denied'
        ? 'Ask your admin to assign you to the Lanyard app in the identity provider.'
        : 'Try again; if it keeps failing, run `lanyard doctor`.',
      { cause: e, oauth },
    );
  }
  const failure = classifyOAuthError(e);
  if (failure.kind === 'network' || failure.kind === 'server') return idpUnreachable(issuer, failure, e);
  return new LanyardError(
    ErrorCodes.SIGN_IN_FAILED,
    `Sign-in failed: ${failure.summary}.`,
    failure.error === 'invalid_client'
      ? "The IdP rejected Lanyard's client credentials; check the client id and authentication in the settings."
      : 'Try signing in again; if it keeps failing, run `lanyard doctor`.',
    { cause: e, oauth: oauthFields(failure) },
  );
}

export interface IdJagRequest {
  audience: string;
  resource?: string | undefined;
  scope?: string | undefined;
  serverId?: string | undefined;
}

export function notAnIdJagError(issuedType: unknown, serverId: string | undefined): LanyardError {
  return new LanyardError(
    ErrorCodes.IDP_NOT_XAA_CAPABLE,
    `The identity provider answered the token exchange with a ${String(issuedType ?? 'missing')} token instead of an ID-JAG.`,
    'Use an IdP that issues ID-JAGs (Okta: the org authorization server with Cross App Access enabled).',
    serverOpt(serverId),
  );
}

/** A refused RFC 8693 exchange (leg 1), by the IdP's `error` code. */
export function exchangeError(failure: OAuthFailure, request: IdJagRequest, cause: unknown): LanyardError {
  const reason = failure.description
    ? ` (${failure.error}: ${failure.description})`
    : failure.error
      ? ` (${failure.error})`
      : ` (${failure.summary})`;
  const opts = { cause, oauth: oauthFields(failure), ...serverOpt(request.serverId) };
  switch (failure.error) {
    case 'invalid_client':
      return new LanyardError(
        ErrorCodes.IDP_CLIENT_REJECTED,
        `The identity provider rejected Lanyard's client authentication${reason}.`,
        'Check the IdP client id and its authentication method and credentials in Settings.',
        opts,
      );
    case 'unsupported_grant_type':
      return new LanyardError(
        ErrorCodes.IDP_NOT_XAA_CAPABLE,
        `The identity provider does not support token exchange${reason}.`,
        'Cross-app access needs an IdP that issues ID-JAGs (Okta: the org authorization server, not a custom one).',
        opts,
      );
    case 'invalid_request':
      // The IdP's own words are the only sign that it rejected the ID-JAG token type rather than the request's shape.
      if (/requested_token_type|id-jag/i.test(failure.description ?? '')) {
        return new LanyardError(
          ErrorCodes.IDP_NOT_XAA_CAPABLE,
          `The identity provider does not issue ID-JAGs${reason}.`,
          "Point Lanyard at the IdP's org authorization server (Okta: https://<org>.okta.com, not /oauth2/default).",
          opts,
        );
      }
      return new LanyardError(
        ErrorCodes.EXCHANGE_DENIED,
        `The identity provider rejected the token exchange request${reason}.`,
        'Run `lanyard doctor`; if it persists, report it with that output.',
        opts,
      );
    case 'invalid_target':
      return new LanyardError(
        ErrorCodes.EXCHANGE_DENIED,
        `Your identity provider does not allow access to ${request.resource ?? request.audience}${reason}.`,
        'Ask your IdP admin to add this server as a resource connection for the Lanyard agent and assign you to it.',
        opts,
      );
    case 'invalid_scope':
    case 'unauthorized_client':
    case 'access_denied':
      return new LanyardError(
        ErrorCodes.EXCHANGE_DENIED,
        `Your identity provider refused the requested access${request.scope ? ` (scopes: ${request.scope})` : ''}${reason}.`,
        "Ask your IdP admin to allow these scopes for you in the Lanyard agent's resource connection.",
        opts,
      );
    case 'invalid_grant':
      return new LanyardError(
        ErrorCodes.EXCHANGE_DENIED,
        `The identity provider rejected your sign-in token for this exchange${reason}.`,
        "Sign out and sign in again; if it persists, the IdP admin should check that the ID token is issued to Lanyard's client.",
        opts,
      );
    case 'insufficient_user_authentication':
      return new LanyardError(
        ErrorCodes.SESSION_EXPIRED,
        `The identity provider wants you to sign in again for this server${reason}.`,
        'Sign in again from the Lanyard tray or dashboard.',
        opts,
      );
    default:
      return new LanyardError(
        ErrorCodes.EXCHANGE_DENIED,
        `The identity provider refused the token exchange${reason}.`,
        'Run `lanyard doctor` for details.',
        opts,
      );
  }
}

// --- Sign-in without a browser on this machine: the pasted redirect and device authorization -------------------------

const signInFailed = (message: string, fix: string, cause?: unknown) =>
  new LanyardError(ErrorCodes.SIGN_IN_FAILED, message, fix, cause === undefined ? {} : { cause });

export function noSignInWaitingError(): LanyardError {
  return signInFailed(
    'No sign-in is waiting for a pasted address (it finished, timed out or was cancelled).',
    'Run `lanyard login --no-browser` (or click "Sign in" in the dashboard) and paste the address from that attempt.',
  );
}

/** What was pasted is not a redirect address nor a code=…&state=… query (never echoed: it may hold a code). */
export function pastedGarbageError(): LanyardError {
  return signInFailed(
    'That is not the address the browser ended on after sign-in.',
    'Copy the whole address from the browser\'s address bar (it starts with http://127.0.0.1:…/callback?code=…), or just its "code=…&state=…" part, and paste it again.',
  );
}

export function pastedSignInLinkError(): LanyardError {
  return signInFailed(
    'That is the sign-in link itself, not the address the browser ended on.',
    'Open the link in a browser, sign in, and paste the address the browser shows afterwards (the page itself may fail to load; that is expected).',
  );
}

export function pastedWrongStateError(alreadyUsed: boolean): LanyardError {
  return alreadyUsed
    ? signInFailed(
        'That address belongs to a sign-in that already finished; a sign-in code works only once.',
        'Open the sign-in link of the current attempt and paste the new address it ends on.',
      )
    : signInFailed(
        'That address belongs to another sign-in attempt (its state does not match this one).',
        'Use the link printed by this attempt (older links no longer count), sign in, and paste the address it ends on.',
      );
}

export function pastedWrongIssuerError(issuer: string): LanyardError {
  return signInFailed(
    `That address was issued by another identity provider, not ${issuer}.`,
    'Sign in with the link Lanyard printed (it goes to your configured identity provider) and paste the address it ends on.',
  );
}

/** The IdP refused the pasted code at the token endpoint; the attempt stays open, because the same link yields a new code. */
export function pastedCodeRejectedError(issuer: string, failure: OAuthFailure, cause: unknown): LanyardError {
  return new LanyardError(
    ErrorCodes.SIGN_IN_FAILED,
    `The identity provider ${issuer} did not accept that sign-in code (${failure.error ?? failure.summary}): it expired, was already used, or was mistyped.`,
    'Open the same sign-in link again (you may already be signed in there), and paste the new address it ends on.',
    { cause, oauth: oauthFields(failure) },
  );
}

export function deviceFlowUnsupportedError(issuer: string): LanyardError {
  return signInFailed(
    `The identity provider ${issuer} does not offer device sign-in (its metadata has no device_authorization_endpoint).`,
    'Use `lanyard login --no-browser` instead: open the printed link on any machine and paste back the address it ends on. (Or ask your IdP admin to enable the device authorization grant for the Lanyard app.)',
  );
}

export function deviceCodeExpiredError(): LanyardError {
  return signInFailed(
    'The device code expired before the sign-in was approved.',
    'Run `lanyard login --device` again and enter the new code at the address it shows, within the time it gives.',
  );
}

export function deviceDeniedError(): LanyardError {
  return new LanyardError(
    ErrorCodes.SIGN_IN_FAILED,
    'The device sign-in was denied at the identity provider.',
    'If that was not you, nothing is signed in. Otherwise run `lanyard login --device` again and approve the code; if you are refused, ask your admin to assign you to the Lanyard app.',
    { oauth: { error: 'access_denied' } },
  );
}

export function signInCancelledError(): LanyardError {
  return signInFailed('Sign-in was cancelled.', 'Run `lanyard login` (or click "Sign in") when you are ready.');
}

export function pasteBusyError(): LanyardError {
  return signInFailed(
    'A pasted address is already being checked with the identity provider.',
    'Wait for that answer; paste again only if it fails.',
  );
}
