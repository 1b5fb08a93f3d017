import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { redactText, toErrorInfo } from '../errors';
import { isNetworkError } from '../net/net-errors';
import type { FetchLike } from '../util/http';
import { describe, err, fail, failWith, minutes, skip, type DoctorCheck, type DoctorEngine, type DoctorOptions } from './types';

/**
 * The identity provider's hops: its discovery metadata (issuer match, token endpoint), whether it advertises the token
 * exchange that issues ID-JAGs, and the user's sign-in with the ID token's freshness.
 */

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** The IdP's metadata, found the way openid-client does: OIDC path-appended, then RFC 8414 path-inserted. */
export async function checkIdpDiscovery(
  issuer: string,
  fetchFn: FetchLike,
): Promise<{ check: DoctorCheck; metadata?: Record<string, unknown> }> {
  const hop = 'IdP discovery';
  const base = issuer.replace(/\/$/, '');
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/$/, '');
  const urls = [`${base}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`];
  const statuses: string[] = [];
  for (const url of urls) {
    let response: Response;
    try {
      response = await fetchFn(url, { headers: { accept: 'application/json' }, redirect: 'manual' });
    } catch (e) {
      // The network's own failures (untrusted certificate, proxy) keep their code and fix: they name what to change.
      const own = isNetworkError(e) ? toErrorInfo(e) : undefined;
      const error = err(
        own?.code ?? ErrorCodes.IDP_UNREACHABLE,
        own
          ? `The identity provider at ${issuer} could not be reached: ${own.message}`
          : `The identity provider at ${issuer} could not be reached (${describe(e)}).`,
        own?.fix ?? 'Check idp.issuer, your network and VPN, then run `lanyard doctor` again.',
      );
      return { check: fail('idp.discovery', hop, error) };
    }
    statuses.push(`HTTP ${response.status}`);
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      continue;
    }
    const metadata = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!metadata || typeof metadata.issuer !== 'string') continue;
    if (metadata.issuer !== issuer) {
      const error = err(
        ErrorCodes.CONFIG_INVALID,
        `The identity provider's metadata names the issuer ${redactText(metadata.issuer).slice(0, 200)}, not the configured ${issuer}; Lanyard refuses mismatched metadata (OpenID Connect Discovery §4.3).`,
        `Set idp.issuer to exactly the issuer your IdP publishes (Okta: https://<your-org>.okta.com, no trailing slash), then sign in again.`,
      );
      return { check: fail('idp.discovery', hop, error) };
    }
    if (typeof metadata.token_endpoint !== 'string') {
      return {
        check: failWith(
          'idp.discovery',
          hop,
          ErrorCodes.CONFIG_INVALID,
          `The identity provider's metadata at ${url} has no token endpoint.`,
          'Check idp.issuer: it must be the issuer of an OAuth authorization server.',
        ),
      };
    }
    return { check: { id: 'idp.discovery', hop, ok: true, detail: `${issuer}: metadata found, issuer matches` }, metadata };
  }
  const error = err(
    ErrorCodes.CONFIG_INVALID,
    `No OpenID Connect or OAuth metadata at ${issuer} (${statuses.join(', ')}).`,
    'Check idp.issuer: it must be the exact issuer URL (Okta: https://<your-org>.okta.com — the org authorization server, not /oauth2/default).',
  );
  return { check: fail('idp.discovery', hop, error) };
}

export function checkTokenExchange(issuer: string, metadata: Record<string, unknown>): DoctorCheck {
  const hop = 'IdP token exchange';
  const grants = metadata.grant_types_supported;
  if (!Array.isArray(grants)) {
    return {
      id: 'idp.token-exchange',
      hop,
      ok: true,
      detail: 'the IdP does not list its grant types; Lanyard will try the token exchange (RFC 8693)',
    };
  }
  if (grants.includes(TOKEN_EXCHANGE_GRANT))
    return { id: 'idp.token-exchange', hop, ok: true, detail: 'token exchange (RFC 8693) advertised' };
  return failWith(
    'idp.token-exchange',
    hop,
    ErrorCodes.IDP_NOT_XAA_CAPABLE,
    `${issuer} does not advertise token exchange (${TOKEN_EXCHANGE_GRANT} is not in grant_types_supported), so it cannot issue ID-JAGs.`,
    'Use the IdP that issues ID-JAGs (Okta: the org authorization server https://<org>.okta.com with Cross App Access enabled).',
  );
}

export async function checkSession(args: {
  options: DoctorOptions;
  keychainOk: boolean;
  idpOk: boolean;
  now: () => number;
  setEngine: (e: DoctorEngine) => void;
  /** Who is signed in, for the per-server IdP session lines. */
  setWho?: (who: string) => void;
}): Promise<DoctorCheck> {
  const hop = 'Sign-in';
  const { options, now } = args;
  if (options.broker) {
    let status;
    try {
      status = await options.broker.status({});
    } catch (e) {
      return fail('session', hop, toErrorInfo(e));
    }
    const s = status.session;
    if (s.status === 'signed_in') {
      args.setWho?.(s.user.email ?? s.user.sub);
      const left = s.idTokenExpiresAt - now();
      return {
        id: 'session',
        hop,
        ok: true,
        detail: `signed in as ${s.user.email ?? s.user.sub}; ${left > 0 ? `ID token valid for ${minutes(left)}` : 'ID token expired; Lanyard refreshes it on the next call'} (checked through the running broker)`,
      };
    }
    return sessionFailure(s.status, s.status === 'expired' ? s.error : undefined);
  }
  if (!args.keychainOk) return skip('session', hop, 'the keychain is unavailable, so the sign-in cannot be read');
  let engine: DoctorEngine | undefined;
  try {
    engine = await options.engine?.();
  } catch (e) {
    return fail('session', hop, toErrorInfo(e));
  }
  if (!engine) return skip('session', hop, 'no identity provider is configured');
  args.setEngine(engine);
  const state = engine.identity.state;
  if (state.status !== 'signed_in') return sessionFailure(state.status, state.status === 'expired' ? state.error : undefined);
  args.setWho?.(state.user.email ?? state.user.sub);
  if (!args.idpOk)
    return {
      id: 'session',
      hop,
      ok: true,
      detail: `signed in as ${state.user.email ?? state.user.sub} (token freshness not checked: IdP discovery failed)`,
    };
  const before = state.idTokenExpiresAt;
  try {
    await engine.identity.getIdToken();
  } catch (e) {
    return fail('session', hop, toErrorInfo(e));
  }
  const after = engine.identity.state;
  const expiresAt = after.status === 'signed_in' ? after.idTokenExpiresAt : before;
  return {
    id: 'session',
    hop,
    ok: true,
    detail: `signed in as ${state.user.email ?? state.user.sub}; ID token valid for ${minutes(expiresAt - now())}${expiresAt !== before ? ' (refreshed just now with the refresh token)' : ''}`,
  };
}

function sessionFailure(status: string, error: ErrorInfo | undefined): DoctorCheck {
  if (status === 'expired')
    return fail('session', 'Sign-in', error ?? err(ErrorCodes.SESSION_EXPIRED, 'Your sign-in has expired.', 'Run `lanyard login`.'));
  if (status === 'signing_in')
    return {
      id: 'session',
      hop: 'Sign-in',
      ok: false,
      detail: 'a sign-in is in progress in the browser',
      error: err(ErrorCodes.NOT_SIGNED_IN, 'A sign-in is in progress.', 'Finish it in the browser, then run `lanyard doctor` again.'),
    };
  return failWith(
    'session',
    'Sign-in',
    ErrorCodes.NOT_SIGNED_IN,
    'You are not signed in to your identity provider.',
    'Run `lanyard login` (or click "Sign in" in the Lanyard tray or dashboard).',
  );
}
