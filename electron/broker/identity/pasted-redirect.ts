import { pastedGarbageError, pastedSignInLinkError, pastedWrongIssuerError, pastedWrongStateError } from './identity-errors';

/** Longer than any real redirect (a code, a state, an iss); anything longer is not one, and is not parsed further. */
const MAX_PASTE_LENGTH = 8192;

/** The attempt a pasted address must belong to. */
export interface PasteExpectation {
  /** The redirect_uri the attempt sent: the callback is rebuilt on it, so the token request names exactly that URI. */
  redirectUri: string;
  /** The configured issuer (RFC 9207: an `iss` in the response must be it). */
  issuer: string;
  /** This attempt's state. */
  state: string;
  /** States of attempts that already finished: a paste of theirs is a replay, said as such. */
  finishedStates: ReadonlySet<string>;
}

/**
 * The callback URL of a sign-in whose browser was on another machine, from what the user pasted: the full address the
 * browser ended on (http://127.0.0.1:<port>/callback?code=…&state=…&iss=…, which failed to load there), or just its
 * query. Checked before anything reaches the IdP, so a wrong paste leaves the attempt open for the right one:
 * - the state must be this attempt's (another attempt's address, or a replay of a finished one, is refused);
 * - an `iss` (RFC 9207) must be the configured issuer. A paste without one (the bare code and state) is given the
 *   configured issuer: the state already binds the answer to this attempt, which only ever talked to that issuer, so
 *   openid-client's own RFC 9207 check (which demands `iss` when the IdP advertises it) still runs on every paste.
 *
 * The result carries every parameter of the paste on the attempt's own redirect URI; openid-client's
 * authorizationCodeGrant then checks it once more (state, iss, an `error` answer) and redeems the code with the PKCE
 * verifier. Nothing pasted is ever echoed in an error: it may hold a code.
 */
export function callbackFromPaste(pasted: string, expect: PasteExpectation): URL {
  const text = pasted.trim().replace(/^["'<]+|[">']+$/g, '');
  if (!text || text.length > MAX_PASTE_LENGTH || /\s/.test(text)) throw pastedGarbageError();
  const params = pastedParams(text);
  if (!params) throw pastedGarbageError();
  if (!params.has('code') && !params.has('error')) {
    // The authorize link has a state too, but no code: the user pasted the link instead of where it ended.
    if (params.has('client_id') || params.has('response_type')) throw pastedSignInLinkError();
    throw pastedGarbageError();
  }
  const state = params.get('state');
  if (!state) throw pastedGarbageError();
  if (state !== expect.state) throw pastedWrongStateError(expect.finishedStates.has(state));
  const iss = params.get('iss');
  if (iss !== null && iss !== expect.issuer) throw pastedWrongIssuerError(expect.issuer);
  const callback = new URL(expect.redirectUri);
  for (const [key, value] of params) callback.searchParams.append(key, value);
  if (iss === null) callback.searchParams.set('iss', expect.issuer);
  return callback;
}

/** The query of a pasted URL, or a pasted query (with or without its leading "?"); undefined for anything else. */
function pastedParams(text: string): URLSearchParams | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      const url = new URL(text);
      // Some IdPs (response_mode=fragment) answer in the fragment; Lanyard asks for the query, but accept either.
      return url.search ? url.searchParams : url.hash ? new URLSearchParams(url.hash.slice(1)) : undefined;
    } catch {
      return undefined;
    }
  }
  const query = text.replace(/^[?#]/, '');
  if (!/^[A-Za-z0-9_.~-]+=[^&]*(&[A-Za-z0-9_.~-]+=[^&]*)*$/.test(query)) return undefined;
  return new URLSearchParams(query);
}
