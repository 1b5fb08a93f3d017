import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { Emitter } from '../../../shared/emitter';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { LanyardError } from '../errors';
import type { SecretStore } from '../secrets/secret-store';
import { silentLogger, type Logger } from '../util/log';
import { ID_TOKEN_RENEWAL, needsRenewal, type RenewalPolicy } from '../util/renewal';
import { SingleFlight } from '../util/single-flight';
import { exchangeIdTokenForIdJag, type IdJagRequest, type IdJagResult } from './id-jag';
import { browserOpenError, idpUnreachable, notSignedInError, sessionExpiredError, signInError } from './identity-errors';
import { IDP_SECRET_KEYS, IdpClient, type IdpSettings, type IdTokenClaims } from './idp-client';
import { openLoopbackRedirect } from './loopback';
import { classifyOAuthError, type OAuthFailure } from './oauth-errors';

// The session's public vocabulary, importable from here as before the IdP client and the exchange had files of their own.
export { IDP_SECRET_KEYS, type IdpClientAuthMethod, type IdpSettings } from './idp-client';
export type { IdJagResult } from './id-jag';

export interface SignedInUser {
  issuer: string;
  sub: string;
  email?: string | undefined;
  name?: string | undefined;
}

export type SessionState =
  | { status: 'signed_out' }
  /** `authorizeUrl`: the link the browser was sent to, for a user whose browser did not open (SSH, WSL). */
  | { status: 'signing_in'; authorizeUrl?: string | undefined }
  | { status: 'signed_in'; user: SignedInUser; idTokenExpiresAt: number }
  /** The refresh token is dead (revoked, expired, rotated away): one interactive sign-in is needed. */
  | { status: 'expired'; user: SignedInUser; error: ErrorInfo };

export interface IdentitySessionOptions {
  settings: IdpSettings;
  secrets: SecretStore;
  /** Opens the system browser (never an embedded window, RFC 8252 §8.12). Injected so tests drive the login page. */
  openUrl: (url: string) => Promise<void> | void;
  fetch?: typeof fetch;
  /** Milliseconds since the epoch; injectable so tests can jump the clock as after a sleep. */
  now?: () => number;
  log?: Logger;
  /** When the ID token is refreshed; defaults to a margin that fits its lifetime (../util/renewal.ts). */
  renewal?: RenewalPolicy;
  requestTimeoutSeconds?: number;
}

interface StoredSession {
  v: 1;
  issuer: string;
  clientId: string;
  sub: string;
  email?: string | undefined;
  name?: string | undefined;
  idToken: string;
  idTokenExpiresAt: number;
  /**
   * When the ID token arrived (local clock); with `idTokenExpiresAt` it gives the lifetime the IdP chose, which sets the
   * refresh margin. Absent in records written before it existed: then the lifetime is read from the token's claims.
   */
  idTokenIssuedAt?: number | undefined;
  refreshToken?: string | undefined;
  /** Set once the IdP declared the grant dead; the user info stays so the UI can say who must sign in again. */
  dead?: true | undefined;
}

const MAX_BACKOFF_MS = 60_000;

/**
 * The user's session at the enterprise IdP: the only holder of the ID and refresh tokens (see docs/architecture.md).
 *
 * - Sign-in: authorization code + PKCE S256, state, nonce and RFC 9207 `iss` in the system browser, loopback redirect.
 * - Refresh: before the ID token expires, one refresh at a time for every caller; the rotated refresh token is in the
 *   keychain before anyone uses the new ID token; an OAuth error from the IdP ends the session in one "sign in again"
 *   state (never a browser tab on its own), while 5xx/network errors are transient with backoff.
 * - Leg 1 of cross-app access (id-jag.ts) runs from here, because it needs the ID token and the IdP client
 *   credentials, which nothing else may see.
 *
 * How Lanyard talks to the IdP (metadata, client authentication) is the IdP client's job (idp-client.ts).
 */
export class IdentitySession {
  private readonly settings: IdpSettings;
  private readonly secrets: SecretStore;
  private readonly client: IdpClient;
  private readonly openUrl: IdentitySessionOptions['openUrl'];
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly renewal: RenewalPolicy;

  private session: StoredSession | undefined;
  private currentState: SessionState = { status: 'signed_out' };
  private restored = false;
  private readonly refreshFlight = new SingleFlight<string>();
  private signInFlight: Promise<SignedInUser> | undefined;
  private transient: { until: number; failures: number; error: LanyardError } | undefined;
  private readonly changes: Emitter<SessionState>;
  private readonly subjectEnded: Emitter<SignedInUser | undefined>;

  constructor(options: IdentitySessionOptions) {
    this.settings = options.settings;
    this.secrets = options.secrets;
    this.openUrl = options.openUrl;
    this.now = options.now ?? Date.now;
    this.log = (options.log ?? silentLogger).child('identity');
    this.renewal = options.renewal ?? ID_TOKEN_RENEWAL;
    this.client = new IdpClient(
      options.settings,
      options.secrets,
      (options.fetch ?? fetch) as oidc.CustomFetch,
      options.requestTimeoutSeconds ?? 15,
    );
    this.changes = new Emitter((e) => this.log.error('session listener failed', { error: e }));
    this.subjectEnded = new Emitter((e) => this.log.error('subject-ended listener failed', { error: e }));
  }

  get state(): SessionState {
    return this.currentState;
  }

  get issuer(): string {
    return this.settings.issuer;
  }

  /** The session's ID and refresh tokens, for the outbound secret scan's comparison (never logged or returned elsewhere). */
  heldTokens(): string[] {
    const s = this.session;
    return s ? [s.idToken, ...(s.refreshToken ? [s.refreshToken] : [])] : [];
  }

  /** Called with every state change. Returns an unsubscribe function. */
  onChange(listener: (state: SessionState) => void): () => void {
    return this.changes.on(listener);
  }

  /** Called when the signed-in subject goes away or changes, so caches keyed by the old user are purged. */
  onSubjectEnded(listener: (previous: SignedInUser | undefined) => void): () => void {
    return this.subjectEnded.on(listener);
  }

  /** Restores the session from the keychain at start-up, without a browser and without calling the IdP. */
  async restore(): Promise<SessionState> {
    this.restored = true;
    const raw = await this.secrets.get(IDP_SECRET_KEYS.session);
    if (!raw) return this.setState({ status: 'signed_out' });
    let stored: StoredSession;
    try {
      stored = JSON.parse(raw) as StoredSession;
    } catch {
      this.log.warn('stored IdP session is unreadable; starting signed out');
      await this.secrets.delete(IDP_SECRET_KEYS.session);
      return this.setState({ status: 'signed_out' });
    }
    if (stored.issuer !== this.settings.issuer || stored.clientId !== this.settings.clientId) {
      // The IdP or client changed in the config: the old grant belongs to another party.
      this.log.info('stored session belongs to another IdP or client; discarding it');
      await this.secrets.delete(IDP_SECRET_KEYS.session);
      this.subjectEnded.emit(userOf(stored));
      return this.setState({ status: 'signed_out' });
    }
    this.session = stored;
    if (stored.dead) {
      return this.setState({ status: 'expired', user: userOf(stored), error: sessionExpiredError().toInfo() });
    }
    return this.setState({ status: 'signed_in', user: userOf(stored), idTokenExpiresAt: stored.idTokenExpiresAt });
  }

  /**
   * Interactive sign-in in the system browser. Concurrent calls share one attempt: however many surfaces ask, one tab
   * opens. Resolves with the signed-in user; rejects with SIGN_IN_FAILED (timeout, cancel, IdP error).
   */
  signIn(options: { signal?: AbortSignal; timeoutMs?: number; loginHint?: string } = {}): Promise<SignedInUser> {
    if (!this.signInFlight) {
      this.signInFlight = this.doSignIn(options).finally(() => {
        this.signInFlight = undefined;
      });
    }
    return this.signInFlight;
  }

  private async doSignIn(options: { signal?: AbortSignal; timeoutMs?: number; loginHint?: string }): Promise<SignedInUser> {
    await this.ensureRestored();
    const previous = this.currentState;
    this.setState({ status: 'signing_in' });
    try {
      const config = await this.client.config();
      const redirect = await openLoopbackRedirect({
        port: this.settings.redirectPort,
        timeoutMs: options.timeoutMs ?? 5 * 60_000,
        signal: options.signal,
      });
      try {
        const codeVerifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const nonce = oidc.randomNonce();
        const params: Record<string, string> = {
          redirect_uri: redirect.redirectUri,
          scope: this.settings.scopes.join(' '),
          code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: 'S256',
          state,
          nonce,
        };
        const hint = options.loginHint ?? (previous.status === 'expired' ? previous.user.email : undefined);
        if (hint) params.login_hint = hint;
        const authorizeUrl = oidc.buildAuthorizationUrl(config, params);
        this.setState({ status: 'signing_in', authorizeUrl: authorizeUrl.href });
        // The browser runs on its own; only a failure to open it ends the wait early (the callback ends it otherwise).
        const openFailed = Promise.resolve()
          .then(() => this.openUrl(authorizeUrl.href))
          .then(
            () => new Promise<never>(() => {}),
            (e: unknown) => {
              throw browserOpenError(authorizeUrl, e);
            },
          );
        const callbackUrl = await Promise.race([redirect.waitForCallback(), openFailed]);
        try {
          const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
            pkceCodeVerifier: codeVerifier,
            expectedState: state,
            expectedNonce: nonce,
            idTokenExpected: true,
          });
          const user = await this.acceptTokens(tokens, undefined);
          redirect.respond({ ok: true, user: user.email ?? user.name ?? user.sub });
          this.log.info('signed in', { sub: user.sub });
          return user;
        } catch (e) {
          const error = signInError(this.settings.issuer, e);
          redirect.respond({ ok: false, message: error.message });
          throw error;
        }
      } finally {
        await redirect.close();
      }
    } catch (e) {
      // Put back what was there (a cancelled re-sign-in must not sign the user out).
      this.setState(previous.status === 'signing_in' ? { status: 'signed_out' } : previous);
      throw signInError(this.settings.issuer, e);
    }
  }

  /**
   * Adopts tokens obtained outside Lanyard's own browser sign-in (an ID token handed over by a test harness such as the
   * MCP conformance suite, or a migration). The ID token is decoded, not trusted blindly: it must be for this IdP and
   * client and unexpired. Without a refresh token the session ends when the ID token expires.
   */
  async importSession(tokens: { idToken: string; refreshToken?: string }): Promise<SignedInUser> {
    this.restored = true;
    const claims = decodeJwt(tokens.idToken);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (
      claims.iss !== this.settings.issuer ||
      !aud.includes(this.settings.clientId) ||
      typeof claims.sub !== 'string' ||
      typeof claims.exp !== 'number'
    ) {
      throw new LanyardError(
        ErrorCodes.SIGN_IN_FAILED,
        'The ID token is not for this identity provider and client.',
        "Use an ID token issued to Lanyard's client by the configured IdP.",
      );
    }
    return this.adopt({ ...claims, sub: claims.sub }, tokens.idToken, tokens.refreshToken, undefined);
  }

  /** Signs out: revokes the refresh token at the IdP when it can, then wipes the session from keychain and memory. */
  async signOut(): Promise<void> {
    await this.ensureRestored();
    const session = this.session;
    this.session = undefined;
    this.transient = undefined;
    if (session?.refreshToken) {
      try {
        const config = await this.client.config();
        if (config.serverMetadata().revocation_endpoint) {
          await oidc.tokenRevocation(config, session.refreshToken, { token_type_hint: 'refresh_token' });
        }
      } catch (e) {
        // Sign-out must work offline; the local wipe below is what protects the laptop.
        this.log.warn('could not revoke the refresh token at the IdP', { reason: classifyOAuthError(e).summary });
      }
    }
    await this.secrets.delete(IDP_SECRET_KEYS.session);
    this.setState({ status: 'signed_out' });
    this.subjectEnded.emit(session ? userOf(session) : undefined);
  }

  /**
   * A valid ID token, refreshed first when it is within the margin of expiry. One refresh at a time for all callers.
   * Throws NOT_SIGNED_IN, SESSION_EXPIRED or IDP_UNREACHABLE (transient).
   */
  async getIdToken(options: { forceRefresh?: boolean } = {}): Promise<string> {
    await this.ensureRestored();
    const session = this.requireLiveSession();
    if (!options.forceRefresh && this.isFresh(session)) return session.idToken;
    if (!session.refreshToken) {
      // An imported session without a refresh token lives as long as its ID token.
      if (session.idTokenExpiresAt > this.now() && !options.forceRefresh) return session.idToken;
      throw sessionExpiredError();
    }
    const live = session as StoredSession & { refreshToken: string };
    return this.refreshFlight.run('refresh', () => this.refresh(live));
  }

  /** Leg 1 of cross-app access (see id-jag.ts): an ID-JAG for the server's authorization server. */
  requestIdJag(request: IdJagRequest): Promise<IdJagResult> {
    return exchangeIdTokenForIdJag({ client: this.client, issuer: this.settings.issuer, getIdToken: (o) => this.getIdToken(o) }, request);
  }

  /** The IdP's metadata as discovered (for status and doctor). */
  async metadata(): Promise<oidc.ServerMetadata> {
    return (await this.client.config()).serverMetadata();
  }

  /**
   * Whether the ID token is not yet due for a refresh. The one place that decides when to refresh: the margin fits the
   * token's lifetime (../util/renewal.ts), so an IdP that issues ID tokens shorter than a fixed margin does not get a
   * refresh, and the server an ID-JAG, on every call.
   */
  private isFresh(session: StoredSession): boolean {
    return !needsRenewal({ issuedAt: idTokenIssuedAt(session), expiresAt: session.idTokenExpiresAt }, this.now(), this.renewal);
  }

  private requireLiveSession(): StoredSession {
    const state = this.currentState;
    if (state.status === 'expired') throw sessionExpiredError();
    const session = this.session;
    if (!session || state.status === 'signed_out' || state.status === 'signing_in') throw notSignedInError();
    return session;
  }

  private async refresh(session: StoredSession & { refreshToken: string }): Promise<string> {
    // Another caller may have refreshed while this one waited for the flight.
    if (this.session && this.session !== session && this.isFresh(this.session)) return this.session.idToken;
    if (this.transient && this.now() < this.transient.until) throw this.transient.error;
    const config = await this.client.config();
    let tokens: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
    try {
      // Okta returns a new ID token only when `openid` is in the refresh scope.
      tokens = await oidc.refreshTokenGrant(config, session.refreshToken, { scope: this.settings.scopes.join(' ') });
    } catch (e) {
      const failure = classifyOAuthError(e);
      if (failure.kind === 'oauth') {
        // The grant is dead (revoked, expired, reused after rotation). Keep who it was; drop the token; ask once.
        this.log.warn('the IdP refused the refresh token; sign-in needed', { error: failure.error });
        const error = sessionExpiredError(failure);
        const dead: StoredSession = { ...session, refreshToken: undefined, dead: true };
        this.session = dead;
        await this.persist(dead);
        this.setState({ status: 'expired', user: userOf(dead), error: error.toInfo() });
        throw error;
      }
      throw this.noteTransient(failure, e);
    }
    this.transient = undefined;
    if (!tokens.id_token) {
      throw new LanyardError(
        ErrorCodes.IDP_NOT_XAA_CAPABLE,
        'The identity provider did not return a new ID token on refresh.',
        'Make sure the Lanyard app is allowed the "openid" scope on refresh (Okta: use the org authorization server).',
      );
    }
    await this.acceptTokens(tokens, session);
    return this.session!.idToken;
  }

  /** Validates a token response (login or refresh) and adopts it. */
  private async acceptTokens(
    tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
    previous: StoredSession | undefined,
  ): Promise<SignedInUser> {
    const idToken = tokens.id_token;
    if (!idToken)
      throw new LanyardError(
        ErrorCodes.SIGN_IN_FAILED,
        'The identity provider did not return an ID token.',
        'Make sure the "openid" scope is allowed for the Lanyard app.',
      );
    const claims = await this.client.verifyIdToken(idToken);
    if (previous && claims.sub !== previous.sub) {
      throw new LanyardError(ErrorCodes.SIGN_IN_FAILED, 'The refreshed ID token names a different user.', 'Sign out and sign in again.');
    }
    const refreshToken = tokens.refresh_token ?? previous?.refreshToken;
    if (!refreshToken) {
      throw new LanyardError(
        ErrorCodes.SIGN_IN_FAILED,
        'The identity provider did not return a refresh token, so Lanyard could not keep you signed in.',
        'Allow the "offline_access" scope and the refresh token grant for the Lanyard app at your IdP.',
      );
    }
    return this.adopt(claims, idToken, refreshToken, previous);
  }

  /**
   * The one path by which tokens become the session (sign-in, refresh, import). Rotation safety: the new refresh token
   * reaches the keychain before anything can use the new tokens.
   */
  private async adopt(
    claims: IdTokenClaims,
    idToken: string,
    refreshToken: string | undefined,
    previous: StoredSession | undefined,
  ): Promise<SignedInUser> {
    const receivedAt = this.now();
    const next: StoredSession = {
      v: 1,
      issuer: this.settings.issuer,
      clientId: this.settings.clientId,
      sub: claims.sub,
      email: typeof claims.email === 'string' ? claims.email : previous?.email,
      name: typeof claims.name === 'string' ? claims.name : previous?.name,
      idToken,
      idTokenExpiresAt: localExpiry(claims, receivedAt),
      idTokenIssuedAt: receivedAt,
      refreshToken,
    };
    await this.persist(next);
    const before = this.session;
    this.session = next;
    if (before && before.sub !== next.sub) this.subjectEnded.emit(userOf(before));
    const user = userOf(next);
    this.setState({ status: 'signed_in', user, idTokenExpiresAt: next.idTokenExpiresAt });
    return user;
  }

  private async persist(session: StoredSession): Promise<void> {
    await this.secrets.set(IDP_SECRET_KEYS.session, JSON.stringify(session));
  }

  private async ensureRestored(): Promise<void> {
    if (!this.restored) await this.restore();
  }

  private noteTransient(failure: OAuthFailure, cause: unknown): LanyardError {
    const failures = (this.transient?.failures ?? 0) + 1;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1));
    const error = idpUnreachable(this.settings.issuer, failure, cause);
    this.transient = { until: this.now() + delay, failures, error };
    this.log.warn('IdP unreachable; will retry', { reason: failure.summary, retryInMs: delay });
    return error;
  }

  private setState(state: SessionState): SessionState {
    this.currentState = state;
    this.changes.emit(state);
    return state;
  }
}

/**
 * When the ID token expires on this machine's clock: its lifetime (exp - iat) from the moment it arrived, not its
 * absolute `exp`, so a skewed local clock cannot make Lanyard refresh in a loop or too late.
 */
function localExpiry(claims: { exp?: number | undefined; iat?: number | undefined }, receivedAt: number): number {
  if (typeof claims.exp !== 'number') return receivedAt;
  if (typeof claims.iat !== 'number' || claims.iat > claims.exp) return claims.exp * 1000;
  return receivedAt + (claims.exp - claims.iat) * 1000;
}

/**
 * When the stored ID token's life began on this machine's clock. Records written before `idTokenIssuedAt` existed
 * carry the token itself, whose `exp - iat` gives the lifetime; failing that it counts as long-lived (the largest margin).
 */
function idTokenIssuedAt(session: StoredSession): number {
  if (typeof session.idTokenIssuedAt === 'number' && session.idTokenIssuedAt < session.idTokenExpiresAt) return session.idTokenIssuedAt;
  try {
    const { exp, iat } = decodeJwt(session.idToken);
    if (typeof exp === 'number' && typeof iat === 'number' && iat < exp) return session.idTokenExpiresAt - (exp - iat) * 1000;
  } catch {
    // Not a readable JWT: fall through.
  }
  return -Infinity;
}

const userOf = (s: StoredSession): SignedInUser => ({ issuer: s.issuer, sub: s.sub, email: s.email, name: s.name });
