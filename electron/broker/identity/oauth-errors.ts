import * as oidc from 'openid-client';
import { redactText } from '../errors';

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
 * Classifies anything openid-client / oauth4webapi / fetch throws. The rule (DESIGN.md, Pomerium's lesson): an
 * OAuth error in a 4xx means the grant is dead; 5xx, timeouts and connection failures are transient.
 */
export function classifyOAuthError(e: unknown): OAuthFailure {
  if (e instanceof oidc.ResponseBodyError) {
    const description = e.error_description ? redactText(String(e.error_description)).slice(0, 300) : undefined;
    const kind = e.status >= 500 ? 'server' : 'oauth';
    return {
      kind,
      status: e.status,
      error: e.error,
      ...(description ? { description } : {}),
      summary: `${e.error}${description ? `: ${description}` : ''} (HTTP ${e.status})`,
    };
  }
  if (e instanceof oidc.WWWAuthenticateChallengeError) {
    const challenge = e.cause?.[0];
    const error = typeof challenge?.parameters?.error === 'string' ? challenge.parameters.error : 'invalid_client';
    return { kind: e.status >= 500 ? 'server' : 'oauth', status: e.status, error, summary: `${error} (HTTP ${e.status})` };
  }
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
    return { kind: 'network', summary: 'the request timed out' };
  }
  if (
    e instanceof TypeError &&
    /fetch failed|network|ECONNREFUSED|ECONNRESET|ENOTFOUND|socket/i.test(`${e.message} ${String((e as { cause?: unknown }).cause ?? '')}`)
  ) {
    return { kind: 'network', summary: describeNetworkCause(e) };
  }
  if (e instanceof oidc.ClientError) {
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

function describeNetworkCause(e: TypeError): string {
  const cause = (e as { cause?: { code?: string } }).cause;
  return cause?.code ? `connection failed (${cause.code})` : 'connection failed';
}
