import * as oidc from 'openid-client';
import { LanyardError, redactText, type OAuthErrorFields } from '../errors';
import { classifyNetworkError } from '../util/network-errors';

/** What went wrong in one OAuth request, reduced to what decides the next step. Never carries a token. */
export interface OAuthFailure {
  /** 'oauth': the server answered with an RFC 6749 error; 'network': no answer; 'server': 5xx or garbage; 'client': our side. */
  kind: 'oauth' | 'network' | 'server' | 'client';
  status?: number;
  error?: string;
  description?: string;
  /** A safe one-line summary for messages and logs. */
  summary: string;
}

/**
 * Classifies anything openid-client / oauth4webapi / fetch throws. The rule (RFC 6749 §5.2, and the lesson of
 * proxies that signed users out on a blip): an OAuth error in a 4xx means the grant is dead; 5xx, timeouts and
 * connection failures are transient.
 */
export function classifyOAuthError(e: unknown): OAuthFailure {
  if (e instanceof oidc.ResponseBodyError) {
    return oauthFailure(e.status, e.error, e.error_description);
  }
  if (e instanceof oidc.WWWAuthenticateChallengeError) {
    const challenge = e.cause?.[0];
    const error = typeof challenge?.parameters?.error === 'string' ? challenge.parameters.error : 'invalid_client';
    return oauthFailure(e.status, error, challenge?.parameters?.error_description);
  }
  const network = classifyNetworkError(e);
  if (network) return { kind: 'network', summary: network.summary };
  if (e instanceof oidc.ClientError) {
    // A request Lanyard refused itself (the URL policy, util/url-policy.ts): its message already says what and why.
    if (e.cause instanceof LanyardError) return { kind: 'client', summary: e.cause.message };
    // RESPONSE_IS_NOT_CONFORM / NOT_JSON: the server answered something that is not OAuth (an HTML 502 page, say).
    const status = (e.cause as { status?: number } | undefined)?.status;
    if (e.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || e.code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
      return { kind: 'server', ...(status ? { status } : {}), summary: `unexpected response${status ? ` (HTTP ${status})` : ''}` };
    }
    return { kind: 'client', summary: redactText(e.message) };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { kind: 'client', summary: redactText(message).slice(0, 300) };
}

/**
 * An OAuth error answer (RFC 6749 §5.2) as a failure. The description is outside text: redacted and cut short here,
 * once, so every message and `LanyardError.oauth` built from it is safe.
 */
export function oauthFailure(status: number, error: string, rawDescription?: unknown): OAuthFailure {
  const description = safeDescription(rawDescription);
  return {
    kind: status >= 500 ? 'server' : 'oauth',
    status,
    error,
    ...(description ? { description } : {}),
    summary: `${error}${description ? `: ${description}` : ''} (HTTP ${status})`,
  };
}

/** An `error_description` from outside, redacted and cut short; undefined when there is none. */
export function safeDescription(raw: unknown): string | undefined {
  return typeof raw === 'string' && raw ? redactText(raw).slice(0, 300) : undefined;
}

/** The structured OAuth fields of a failure, for `LanyardError.oauth`; undefined when the server sent no OAuth error. */
export function oauthFields(failure: OAuthFailure): OAuthErrorFields | undefined {
  if (!failure.error) return undefined;
  return { error: failure.error, description: failure.description, status: failure.status };
}
