import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import type { TokenEvent } from '../exchange/token-service';
import type { SessionState } from '../identity/identity-session';
import type { OAuthEvent } from '../oauth/types';
import type { Governance } from './governance';

/**
 * Token events into the audit ledger: sign-in, refresh and sign-out of the IdP session; each ID-JAG and the access
 * token redeemed for it; OAuth grants, refreshes and revocations; step-ups; refusals. Codes and short hashes only.
 */

/** Refusals by a policy (the IdP's or the administrator's) rather than failures. */
const DENIALS: ReadonlySet<string> = new Set([ErrorCodes.POLICY_BLOCKED, ErrorCodes.EXCHANGE_DENIED, ErrorCodes.INSUFFICIENT_SCOPE]);

function failure(error: ErrorInfo): { outcome: 'error' | 'denied'; code: string } {
  return { outcome: DENIALS.has(error.code) ? 'denied' : 'error', code: error.code };
}

/** Follows the IdP session's state: returns the listener for identity.onChange. */
export function identityRecorder(governance: Governance): (state: SessionState) => void {
  let before: SessionState['status'] | undefined;
  let expiresAt: number | undefined;
  return (state) => {
    const was = before;
    before = state.status;
    if (state.status === 'signed_in') {
      const renewed = was === 'signed_in' && expiresAt !== state.idTokenExpiresAt;
      const fresh = was === 'signing_in' || was === 'signed_out' || was === 'expired';
      expiresAt = state.idTokenExpiresAt;
      // A restore at start (undefined → signed_in) is neither: nothing was obtained.
      if (fresh) governance.recordToken({ event: 'sign_in', outcome: 'ok' });
      else if (renewed) governance.recordToken({ event: 'refresh', outcome: 'ok' });
    } else if (state.status === 'expired' && was !== 'expired' && was !== undefined) {
      governance.recordToken({ event: 'refresh', outcome: 'error', code: state.error.code });
    } else if (state.status === 'signed_out' && (was === 'signed_in' || was === 'expired')) {
      governance.recordToken({ event: 'sign_out', outcome: 'ok' });
    }
  };
}

export function recordTokenEvent(governance: Governance, event: TokenEvent): void {
  switch (event.type) {
    case 'token_minted':
      governance.recordToken({ event: 'id_jag', server: event.serverId, authPath: 'xaa', outcome: 'ok', grant: event.idJag });
      governance.recordToken({
        event: 'access_token',
        server: event.serverId,
        authPath: 'xaa',
        outcome: 'ok',
        grant: event.grant,
        scopes: event.scopes.join(' '),
        ms: event.durationMs,
      });
      break;
    case 'token_step_up':
      governance.recordToken({ event: 'step_up', server: event.serverId, outcome: 'ok', scopes: event.scopes.join(' ') });
      break;
    case 'token_error': {
      const f = failure(event.error);
      governance.recordToken({ event: f.outcome === 'denied' ? 'denial' : 'access_token', server: event.serverId, ...f });
      break;
    }
    case 'quota_warning':
      break;
  }
}

export function recordOAuthEvent(governance: Governance, event: OAuthEvent): void {
  switch (event.type) {
    case 'oauth_authorized':
      governance.recordToken({
        event: 'access_token',
        server: event.serverId,
        authPath: 'oauth',
        outcome: 'ok',
        scopes: event.scopes.join(' '),
      });
      break;
    case 'oauth_refreshed':
      governance.recordToken({ event: 'refresh', server: event.serverId, authPath: 'oauth', outcome: 'ok' });
      break;
    case 'oauth_authorization_required':
    case 'oauth_error': {
      const f = failure(event.error);
      governance.recordToken({
        event: f.outcome === 'denied' ? 'denial' : 'access_token',
        server: event.serverId,
        authPath: 'oauth',
        ...f,
      });
      break;
    }
    case 'oauth_revoked':
      governance.recordToken({ event: 'revoke', server: event.serverId, authPath: 'oauth', outcome: 'ok' });
      break;
  }
}
