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
import { startDeviceAuthorization, type DevicePrompt } from './device-sign-in';
import {
  browserOpenError,
  idpUnreachable,
  noSignInWaitingError,
  notSignedInError,
  pasteBusyError,
  pastedCodeRejectedError,
  sessionExpiredError,
  signInError,
} from './identity-errors';
import { IDP_SECRET_KEYS, IdpClient, type IdpSettings, type IdTokenClaims } from './idp-client';
import { openLoopbackRedirect } from './loopback';
import { classifyOAuthError, type OAuthFailure } from './oauth-errors';
import { callbackFromPaste } from './pasted-redirect';

// The session's public vocabulary, importable from here as before the IdP client and the exchange had files of their own.
export { IDP_SECRET_KEYS, type IdpClientAuthMethod, type IdpSettings } from './idp-client';
export type { IdJagResult } from './id-jag';
export type { DevicePrompt } from './device-sign-in';

/**
 * How the user signs in: the system browser here; `paste`, a browser elsewhere whose redirect address is pasted back;
 * `device`, device authorization (RFC 8628). See beginSignIn.
 */
export type SignInMode = 'browser' | 'paste' | 'device';

/** What the user must see to finish a sign-in: the link to open, or the device code and where to enter it. */
export type SignInPrompt = { mode: 'browser' | 'paste'; authorizeUrl: string } | { mode: 'device'; device: DevicePrompt };

export interface SignInOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  loginHint?: string | undefined;
}

export interface SignedInUser {
  issuer: string;
  sub: string;
  email?: string | undefined;
  name?: string | undefined;
}

export type SessionState =
  | { status: 'signed_out' }
  /** `authorizeUrl`: the link the browser was sent to, for a user whose browser did not open (SSH, WSL). */
  | { status: 'signing_in'; authorizeUrl?: string | undefined; mode?: SignInMode | undefined; device?: DevicePrompt | undefined }
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

/** One sign-in in progress. `submit` exists while a link attempt waits for its redirect. */
interface Attempt {
  mode: SignInMode;
  prompt: Promise<SignInPrompt>;
  done: Promise<SignedInUser>;
  submit?: ((pasted: string) => Promise<SignedInUser>) | undefined;
  cancel(): void;
}

/** A pasted redirect, checked, with the answer for whoever pasted it. */
interface PastedCallback {
  url: URL;
  resolve: (user: SignedInUser) => void;
  reject: (e: unknown) => void;
}

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
  private attempt: Attempt | undefined;
  private readonly finishedStates = new Set<string>();
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
  signIn(options: SignInOptions = {}): Promise<SignedInUser> {
    return this.ensureAttempt('browser', options).done;
  }

  /**
   * Starts (or joins) a sign-in and resolves with what the user must see as soon as it is known, without waiting for
   * the outcome (waitForSignIn, or the state, reports that):
   * - `browser`: the system browser opens the link (the link is returned too, for when it did not);
   * - `paste`: no browser here; the user opens the link on any machine and pastes back the address the browser ended
   *   on (submitRedirect). The loopback listener runs as well, so a browser on this machine still completes it;
   * - `device`: device authorization (RFC 8628) where the IdP offers it: a code to enter at the IdP's address.
   * A `browser` and a `paste` request share one attempt (the link is the same); asking for the device flow while a link
   * attempt runs (or the reverse) cancels that attempt: the user chose the other way.
   */
  beginSignIn(options: SignInOptions & { mode?: SignInMode } = {}): Promise<SignInPrompt> {
    return this.ensureAttempt(options.mode ?? 'browser', options).prompt;
  }

  /** The outcome of the sign-in in progress; when none is, resolves at once if signed in, else NOT_SIGNED_IN. */
  waitForSignIn(): Promise<SignedInUser> {
    if (this.attempt) return this.attempt.done;
    const state = this.currentState;
    if (state.status === 'signed_in') return Promise.resolve(state.user);
    return Promise.reject(noSignInWaitingError());
  }

  /**
   * Completes the link sign-in in progress with the address the user's browser ended on (or its code=…&state=… part),
   * pasted where that browser could not reach this machine's loopback listener (pasted-redirect.ts checks it). Resolves
   * with the signed-in user. A paste of another attempt, garbage, or a code the IdP refuses leaves the attempt open for
   * the right paste; an error answer from the IdP (access_denied) ends it.
   */
  async submitRedirect(pasted: string): Promise<SignedInUser> {
    const attempt = this.attempt;
    if (attempt && attempt.mode !== 'device' && !attempt.submit) await attempt.prompt.catch(() => undefined);
    if (!attempt?.submit || this.attempt !== attempt) throw noSignInWaitingError();
    return attempt.submit(pasted);
  }

  private ensureAttempt(mode: SignInMode, options: SignInOptions): Attempt {
    const current = this.attempt;
    if (current && (current.mode === 'device') === (mode === 'device')) return current;
    current?.cancel();
    const cancel = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, cancel.signal]) : cancel.signal;
    let resolvePrompt!: (prompt: SignInPrompt) => void;
    let rejectPrompt!: (e: unknown) => void;
    const prompt = new Promise<SignInPrompt>((resolve, reject) => {
      resolvePrompt = resolve;
      rejectPrompt = reject;
    });
    prompt.catch(() => {});
    const attempt: Attempt = { mode, prompt, done: Promise.resolve(undefined as never), cancel: () => cancel.abort() };
    const run =
      mode === 'device'
        ? this.runDeviceAttempt(attempt, signal, resolvePrompt)
        : this.runLinkAttempt(attempt, options, signal, resolvePrompt);
    attempt.done = run
      .catch((e: unknown) => {
        rejectPrompt(e);
        throw e;
      })
      .finally(() => {
        if (this.attempt === attempt) this.attempt = undefined;
      });
    attempt.done.catch(() => {});
    this.attempt = attempt;
    return attempt;
  }

  /** The authorization-code sign-in (PKCE S256, state, nonce, RFC 9207 iss), in the browser here or pasted back. */
  private async runLinkAttempt(
    attempt: Attempt,
    options: SignInOptions,
    signal: AbortSignal,
    resolvePrompt: (prompt: SignInPrompt) => void,
  ): Promise<SignedInUser> {
    await this.ensureRestored();
    const previous = this.currentState;
    this.setState({ status: 'signing_in', mode: attempt.mode });
    let state: string | undefined;
    try {
      const config = await this.client.config();
      const redirect = await openLoopbackRedirect({
        port: this.settings.redirectPort,
        // Copying a link to another machine and the address back takes longer than a browser tab here.
        timeoutMs: options.timeoutMs ?? (attempt.mode === 'paste' ? 10 : 5) * 60_000,
        signal,
      });
      try {
        // The PKCE verifier, state and nonce live in this closure only: never in the keychain, a log or the status.
        const codeVerifier = oidc.randomPKCECodeVerifier();
        state = oidc.randomState();
        const expectedState = state;
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

        // Pasted addresses arrive here one at a time; each is checked before it can touch the attempt.
        let pasteWaiter: ((pasted: PastedCallback) => void) | undefined;
        attempt.submit = (text) => {
          const url = callbackFromPaste(text, {
            redirectUri: redirect.redirectUri,
            issuer: this.settings.issuer,
            state: expectedState,
            finishedStates: this.finishedStates,
          });
          const waiter = pasteWaiter;
          if (!waiter) return Promise.reject(pasteBusyError());
          pasteWaiter = undefined;
          return new Promise<SignedInUser>((resolve, reject) => waiter({ url, resolve, reject }));
        };
        this.setState({ status: 'signing_in', mode: attempt.mode, authorizeUrl: authorizeUrl.href });
        resolvePrompt({ mode: attempt.mode === 'paste' ? 'paste' : 'browser', authorizeUrl: authorizeUrl.href });

        // The browser runs on its own; only a failure to open it ends the wait early (the callback ends it otherwise).
        const openFailed =
          attempt.mode === 'browser'
            ? Promise.resolve()
                .then(() => this.openUrl(authorizeUrl.href))
                .then(
                  () => new Promise<never>(() => {}),
                  (e: unknown) => {
                    throw browserOpenError(authorizeUrl, e);
                  },
                )
            : new Promise<never>(() => {});
        for (;;) {
          const pasted = new Promise<PastedCallback>((resolve) => (pasteWaiter = resolve));
          const arrived: PastedCallback | { url: URL; resolve?: undefined; reject?: undefined } = await Promise.race([
            redirect.waitForCallback().then((url) => ({ url })),
            pasted,
            openFailed,
          ]);
          pasteWaiter = undefined;
          try {
            const tokens = await oidc.authorizationCodeGrant(config, arrived.url, {
              pkceCodeVerifier: codeVerifier,
              expectedState,
              expectedNonce: nonce,
              idTokenExpected: true,
            });
            const user = await this.acceptTokens(tokens, undefined);
            this.settleAttempt(attempt, expectedState);
            if (arrived.resolve) arrived.resolve(user);
            else redirect.respond({ ok: true, user: user.email ?? user.name ?? user.sub });
            this.log.info('signed in', { sub: user.sub, via: arrived.resolve ? 'pasted redirect' : 'loopback redirect' });
            return user;
          } catch (e) {
            const failure = classifyOAuthError(e);
            if (arrived.reject && failure.kind === 'oauth' && failure.error === 'invalid_grant') {
              // The same link gives a fresh code (the IdP remembers the browser's session): let the user paste again.
              this.log.warn('the IdP refused a pasted sign-in code', { error: failure.error });
              arrived.reject(pastedCodeRejectedError(this.settings.issuer, failure, e));
              continue;
            }
            const error = signInError(this.settings.issuer, e);
            this.settleAttempt(attempt, expectedState);
            this.restoreAfterFailedAttempt(attempt, previous);
            if (arrived.reject) arrived.reject(error);
            else redirect.respond({ ok: false, message: error.message });
            throw error;
          }
        }
      } finally {
        attempt.submit = undefined;
        await redirect.close();
      }
    } catch (e) {
      this.restoreAfterFailedAttempt(attempt, previous);
      throw signInError(this.settings.issuer, e);
    } finally {
      if (state) this.rememberFinished(state);
    }
  }

  /** Device authorization (device-sign-in.ts): the code and address in the state, then the same session as a sign-in. */
  private async runDeviceAttempt(
    attempt: Attempt,
    signal: AbortSignal,
    resolvePrompt: (prompt: SignInPrompt) => void,
  ): Promise<SignedInUser> {
    await this.ensureRestored();
    const previous = this.currentState;
    this.setState({ status: 'signing_in', mode: 'device' });
    try {
      const config = await this.client.config();
      const { prompt, tokens } = await startDeviceAuthorization(config, {
        issuer: this.settings.issuer,
        scopes: this.settings.scopes,
        now: this.now,
        signal,
      });
      this.setState({ status: 'signing_in', mode: 'device', device: prompt });
      resolvePrompt({ mode: 'device', device: prompt });
      const user = await this.acceptTokens(await tokens, undefined);
      this.log.info('signed in', { sub: user.sub, via: 'device authorization' });
      return user;
    } catch (e) {
      this.restoreAfterFailedAttempt(attempt, previous);
      throw signInError(this.settings.issuer, e);
    }
  }

  /**
   * Ends an attempt the moment its outcome is known, before whoever pasted hears it: a sign-in started right after
   * must be a new attempt, and a paste of this one's address from then on is a replay.
   */
  private settleAttempt(attempt: Attempt, state: string): void {
    attempt.submit = undefined;
    if (this.attempt === attempt) this.attempt = undefined;
    this.rememberFinished(state);
  }

  /** Puts back what was there (a cancelled re-sign-in must not sign the user out), unless a newer attempt took over. */
  private restoreAfterFailedAttempt(attempt: Attempt, previous: SessionState): void {
    if (this.attempt !== attempt && this.attempt !== undefined) return;
    if (this.currentState.status !== 'signing_in') return;
    this.setState(previous.status === 'signing_in' ? { status: 'signed_out' } : previous);
  }

  /** A finished attempt's state, so a later paste of its address is called a replay rather than "another attempt". */
  private rememberFinished(state: string): void {
    this.finishedStates.add(state);
    if (this.finishedStates.size > 16) this.finishedStates.delete(this.finishedStates.values().next().value as string);
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
