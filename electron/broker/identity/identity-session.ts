import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, importJWK, jwtVerify, type JWK } from 'jose';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { secretKeys, type SecretStore } from '../secrets/secret-store';
import { silentLogger, type Logger } from '../util/log';
import { SingleFlight } from '../util/single-flight';
import { isLoopbackHost } from '../util/url';
import { openLoopbackRedirect } from './loopback';
import { classifyOAuthError, type OAuthFailure } from './oauth-errors';

export type IdpClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** The part of Lanyard's config the identity session needs (see config/schema.ts). */
export interface IdpSettings {
  issuer: string;
  clientId: string;
  clientAuth: { method: IdpClientAuthMethod; keyId?: string | undefined };
  scopes: string[];
  redirectPort?: number | undefined;
  tokenExchangeEndpoint?: string | undefined;
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
  | { status: 'signing_in'; authorizeUrl?: string | undefined }
  | { status: 'signed_in'; user: SignedInUser; idTokenExpiresAt: number }
  /** The refresh token is dead (revoked, expired, rotated away): one interactive sign-in is needed. */
  | { status: 'expired'; user: SignedInUser; error: ErrorInfo };

export interface IdJagResult {
  idJag: string;
  expiresIn: number | undefined;
  scope: string | undefined;
  tokenType: string | undefined;
}

export interface IdentitySessionOptions {
  settings: IdpSettings;
  secrets: SecretStore;
  /** Opens the system browser (never an embedded window, RFC 8252 §8.12). Injected so tests drive the login page. */
  openUrl: (url: string) => Promise<void> | void;
  fetch?: typeof fetch;
  /** Milliseconds since the epoch; injectable so tests can jump the clock as after a sleep. */
  now?: () => number;
  log?: Logger;
  /** Refresh the ID token when it has less than this left (skew + request time). */
  refreshMarginSeconds?: number;
  requestTimeoutSeconds?: number;
}

/** Keychain entries the identity session reads; client credentials are provisioned by setup (secretKeys). */
export const IDP_SECRET_KEYS = {
  session: 'idp:session',
  clientSecret: secretKeys.idpClientSecret,
  privateKey: secretKeys.idpPrivateKey,
} as const;

interface StoredSession {
  v: 1;
  issuer: string;
  clientId: string;
  sub: string;
  email?: string | undefined;
  name?: string | undefined;
  idToken: string;
  idTokenExpiresAt: number;
  refreshToken?: string | undefined;
  /** Set once the IdP declared the grant dead; the user info stays so the UI can say who must sign in again. */
  dead?: true | undefined;
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
const MAX_BACKOFF_MS = 60_000;

/**
 * The user's session at the enterprise IdP: the only holder of the ID and refresh tokens (DESIGN.md data flow).
 *
 * - Sign-in: authorization code + PKCE S256, state, nonce and RFC 9207 `iss` in the system browser, loopback redirect.
 * - Refresh: before the ID token expires, one refresh at a time for every caller; the rotated refresh token is in the
 *   keychain before anyone uses the new ID token; an OAuth error from the IdP ends the session in one "sign in again"
 *   state (never a browser tab on its own), while 5xx/network errors are transient with backoff.
 * - Leg 1 of cross-app access (RFC 8693 → ID-JAG) runs here, because it needs the ID token and the IdP client
 *   credentials, which nothing else may see.
 */
export class IdentitySession {
  private readonly settings: IdpSettings;
  private readonly secrets: SecretStore;
  private readonly openUrl: IdentitySessionOptions['openUrl'];
  /** openid-client's customFetch is called as fetch(url, init); the platform fetch accepts that shape. */
  private readonly fetchFn: oidc.CustomFetch;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly marginMs: number;
  private readonly timeoutSeconds: number;

  private session: StoredSession | undefined;
  private currentState: SessionState = { status: 'signed_out' };
  private restored = false;
  private configPromise: Promise<oidc.Configuration> | undefined;
  private exchangeConfig: oidc.Configuration | undefined;
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private readonly refreshFlight = new SingleFlight<string>();
  private signInFlight: Promise<SignedInUser> | undefined;
  private transient: { until: number; failures: number; error: LanyardError } | undefined;
  private readonly listeners = new Set<(state: SessionState) => void>();
  private readonly subjectListeners = new Set<(previous: SignedInUser | undefined) => void>();

  constructor(options: IdentitySessionOptions) {
    this.settings = options.settings;
    this.secrets = options.secrets;
    this.openUrl = options.openUrl;
    this.fetchFn = (options.fetch ?? fetch) as oidc.CustomFetch;
    this.now = options.now ?? Date.now;
    this.log = (options.log ?? silentLogger).child('identity');
    this.marginMs = (options.refreshMarginSeconds ?? 120) * 1000;
    this.timeoutSeconds = options.requestTimeoutSeconds ?? 15;
  }

  get state(): SessionState {
    return this.currentState;
  }

  get issuer(): string {
    return this.settings.issuer;
  }

  /** Called with every state change. Returns an unsubscribe function. */
  onChange(listener: (state: SessionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when the signed-in subject goes away or changes, so caches keyed by the old user are purged. */
  onSubjectEnded(listener: (previous: SignedInUser | undefined) => void): () => void {
    this.subjectListeners.add(listener);
    return () => this.subjectListeners.delete(listener);
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
      this.emitSubjectEnded(userOf(stored));
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
      const config = await this.getConfig();
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
              throw new LanyardError(
                ErrorCodes.SIGN_IN_FAILED,
                'Lanyard could not open your web browser for sign-in.',
                `Open this address in a browser yourself: ${authorizeUrl.origin}`,
                { cause: e },
              );
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
          const error = this.signInError(e);
          redirect.respond({ ok: false, message: error.message });
          throw error;
        }
      } finally {
        await redirect.close();
      }
    } catch (e) {
      // Put back what was there (a cancelled re-sign-in must not sign the user out).
      this.setState(previous.status === 'signing_in' ? { status: 'signed_out' } : previous);
      throw e instanceof LanyardError ? e : this.signInError(e);
    }
  }

  private signInError(e: unknown): LanyardError {
    if (e instanceof LanyardError) return e;
    if (e instanceof oidc.AuthorizationResponseError) {
      const desc = e.error_description ? `: ${e.error_description}` : '';
      return new LanyardError(
        ErrorCodes.SIGN_IN_FAILED,
        `The identity provider refused the sign-in (${e.error}${desc}).`,
        e.error === 'access_denied'
          ? 'Ask your admin to assign you to the Lanyard app in the identity provider.'
          : 'Try again; if it keeps failing, run `lanyard doctor`.',
        { cause: e },
      );
    }
    const failure = classifyOAuthError(e);
    if (failure.kind === 'network' || failure.kind === 'server') return idpUnreachable(this.settings.issuer, failure, e);
    return new LanyardError(
      ErrorCodes.SIGN_IN_FAILED,
      `Sign-in failed: ${failure.summary}.`,
      failure.error === 'invalid_client'
        ? "The IdP rejected Lanyard's client credentials; check the client id and authentication in the settings."
        : 'Try signing in again; if it keeps failing, run `lanyard doctor`.',
      { cause: e },
    );
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
    const next: StoredSession = {
      v: 1,
      issuer: this.settings.issuer,
      clientId: this.settings.clientId,
      sub: claims.sub,
      email: typeof claims.email === 'string' ? claims.email : undefined,
      name: typeof claims.name === 'string' ? claims.name : undefined,
      idToken: tokens.idToken,
      idTokenExpiresAt: localExpiry(claims, this.now()),
      refreshToken: tokens.refreshToken,
    };
    await this.persist(next);
    const before = this.session;
    this.session = next;
    if (before && before.sub !== next.sub) this.emitSubjectEnded(userOf(before));
    const user = userOf(next);
    this.setState({ status: 'signed_in', user, idTokenExpiresAt: next.idTokenExpiresAt });
    return user;
  }

  /** Signs out: revokes the refresh token at the IdP when it can, then wipes the session from keychain and memory. */
  async signOut(): Promise<void> {
    await this.ensureRestored();
    const session = this.session;
    this.session = undefined;
    this.transient = undefined;
    if (session?.refreshToken) {
      try {
        const config = await this.getConfig();
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
    this.emitSubjectEnded(session ? userOf(session) : undefined);
  }

  /**
   * A valid ID token, refreshed first when it is within the margin of expiry. One refresh at a time for all callers.
   * Throws NOT_SIGNED_IN, SESSION_EXPIRED or IDP_UNREACHABLE (transient).
   */
  async getIdToken(options: { forceRefresh?: boolean } = {}): Promise<string> {
    await this.ensureRestored();
    const session = this.requireLiveSession();
    if (!options.forceRefresh && session.idTokenExpiresAt - this.now() > this.marginMs) return session.idToken;
    if (!session.refreshToken) {
      // An imported session without a refresh token lives as long as its ID token.
      if (session.idTokenExpiresAt > this.now() && !options.forceRefresh) return session.idToken;
      throw sessionExpiredError();
    }
    const live = session as StoredSession & { refreshToken: string };
    return this.refreshFlight.run('refresh', () => this.refresh(live));
  }

  private requireLiveSession(): StoredSession {
    const state = this.currentState;
    if (state.status === 'expired') throw sessionExpiredError();
    const session = this.session;
    if (!session || state.status === 'signed_out' || state.status === 'signing_in') {
      throw new LanyardError(
        ErrorCodes.NOT_SIGNED_IN,
        'You are not signed in to your identity provider.',
        'Click "Sign in" in the Lanyard tray or dashboard, or run `lanyard login`.',
      );
    }
    return session;
  }

  private async refresh(session: StoredSession & { refreshToken: string }): Promise<string> {
    // Another caller may have refreshed while this one waited for the flight.
    if (this.session && this.session !== session && this.session.idTokenExpiresAt - this.now() > this.marginMs) return this.session.idToken;
    if (this.transient && this.now() < this.transient.until) throw this.transient.error;
    const config = await this.getConfig();
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

  /** Validates and stores a token response (login or refresh). The keychain write completes before the tokens are used. */
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
    const claims = await this.verifyIdToken(idToken);
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
    const before = this.session;
    const next: StoredSession = {
      v: 1,
      issuer: this.settings.issuer,
      clientId: this.settings.clientId,
      sub: claims.sub,
      email: typeof claims.email === 'string' ? claims.email : previous?.email,
      name: typeof claims.name === 'string' ? claims.name : previous?.name,
      idToken,
      idTokenExpiresAt: localExpiry(claims, this.now()),
      refreshToken,
    };
    // Rotation safety: the new refresh token reaches the keychain before anything can use the new tokens.
    await this.persist(next);
    this.session = next;
    if (before && before.sub !== next.sub) this.emitSubjectEnded(userOf(before));
    const user = userOf(next);
    this.setState({ status: 'signed_in', user, idTokenExpiresAt: next.idTokenExpiresAt });
    return user;
  }

  private async verifyIdToken(idToken: string) {
    const config = await this.getConfig();
    const jwksUri = config.serverMetadata().jwks_uri;
    if (!jwksUri) return decodeJwt(idToken) as { sub: string; exp?: number; email?: unknown; name?: unknown };
    this.jwks ??= createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: this.timeoutSeconds * 1000 });
    // openid-client checks iss/aud/exp/nonce; the signature check against the IdP's keys is ours.
    const { payload } = await jwtVerify(idToken, this.jwks, {
      issuer: config.serverMetadata().issuer,
      audience: this.settings.clientId,
      // Validity is judged on the real clock; the injectable `now` only drives scheduling (when to refresh).
      clockTolerance: 60,
    });
    if (typeof payload.sub !== 'string')
      throw new LanyardError(ErrorCodes.SIGN_IN_FAILED, 'The ID token has no subject.', 'Contact your IdP admin.');
    return payload as typeof payload & { sub: string };
  }

  private async persist(session: StoredSession): Promise<void> {
    await this.secrets.set(IDP_SECRET_KEYS.session, JSON.stringify(session));
  }

  /**
   * Leg 1 of cross-app access: trades the user's fresh ID token for an ID-JAG at the IdP (RFC 8693), with Lanyard's
   * configured client authentication. On `invalid_grant` (e.g. the ID token expired in flight) it refreshes once and
   * retries once; policy refusals become EXCHANGE_DENIED with the IdP's reason.
   */
  async requestIdJag(request: {
    audience: string;
    resource?: string | undefined;
    scope?: string | undefined;
    serverId?: string;
  }): Promise<IdJagResult> {
    let idToken = await this.getIdToken();
    for (let attempt = 0; ; attempt++) {
      const config = await this.getExchangeConfig();
      const params: Record<string, string> = {
        requested_token_type: ID_JAG,
        subject_token: idToken,
        subject_token_type: ID_TOKEN_TYPE,
        audience: request.audience,
      };
      if (request.resource) params.resource = request.resource;
      if (request.scope) params.scope = request.scope;
      try {
        const response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, params);
        const issuedType = (response as { issued_token_type?: unknown }).issued_token_type;
        if (issuedType !== ID_JAG) {
          throw new LanyardError(
            ErrorCodes.IDP_NOT_XAA_CAPABLE,
            `The identity provider answered the token exchange with a ${String(issuedType ?? 'missing')} token instead of an ID-JAG.`,
            'Use an IdP that issues ID-JAGs (Okta: the org authorization server with Cross App Access enabled).',
            serverOpt(request.serverId),
          );
        }
        return {
          idJag: response.access_token,
          expiresIn: response.expires_in,
          scope: response.scope,
          tokenType: response.token_type,
        };
      } catch (e) {
        if (e instanceof LanyardError) throw e;
        const failure = classifyOAuthError(e);
        if (failure.kind === 'network' || failure.kind === 'server')
          throw idpUnreachable(this.settings.issuer, failure, e, request.serverId);
        if (failure.error === 'invalid_grant' && attempt === 0) {
          idToken = await this.getIdToken({ forceRefresh: true });
          continue;
        }
        throw exchangeError(failure, request, e);
      }
    }
  }

  /** The IdP's metadata as discovered (for status and doctor). */
  async metadata(): Promise<oidc.ServerMetadata> {
    return (await this.getConfig()).serverMetadata();
  }

  private async ensureRestored(): Promise<void> {
    if (!this.restored) await this.restore();
  }

  private getConfig(): Promise<oidc.Configuration> {
    this.configPromise ??= this.discover().catch((e: unknown) => {
      this.configPromise = undefined; // retry discovery on the next call
      throw e;
    });
    return this.configPromise;
  }

  private async discover(): Promise<oidc.Configuration> {
    const issuer = new URL(this.settings.issuer);
    const clientAuth = await this.clientAuthentication();
    const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
    try {
      const config = await oidc.discovery(issuer, this.settings.clientId, undefined, clientAuth, {
        execute: insecure ? [oidc.allowInsecureRequests] : [],
        [oidc.customFetch]: this.fetchFn,
        timeout: this.timeoutSeconds,
      });
      config.timeout = this.timeoutSeconds;
      config[oidc.customFetch] = this.fetchFn;
      return config;
    } catch (e) {
      const failure = classifyOAuthError(e);
      if (failure.kind === 'network' || failure.kind === 'server') throw idpUnreachable(this.settings.issuer, failure, e);
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `Could not read the identity provider's metadata at ${this.settings.issuer} (${failure.summary}).`,
        'Check "idp.issuer" in the settings: it must be the exact issuer URL (Okta: https://<your-org>.okta.com).',
        { cause: e },
      );
    }
  }

  private async getExchangeConfig(): Promise<oidc.Configuration> {
    const config = await this.getConfig();
    if (!this.settings.tokenExchangeEndpoint) return config;
    if (!this.exchangeConfig) {
      const metadata: oidc.ServerMetadata = {
        ...(config.serverMetadata() as oidc.ServerMetadata),
        token_endpoint: this.settings.tokenExchangeEndpoint,
      };
      this.exchangeConfig = new oidc.Configuration(metadata, this.settings.clientId, undefined, await this.clientAuthentication());
      if (new URL(this.settings.tokenExchangeEndpoint).protocol === 'http:') oidc.allowInsecureRequests(this.exchangeConfig);
      this.exchangeConfig.timeout = this.timeoutSeconds;
      this.exchangeConfig[oidc.customFetch] = this.fetchFn;
    }
    return this.exchangeConfig;
  }

  private async clientAuthentication(): Promise<oidc.ClientAuth> {
    const method = this.settings.clientAuth.method;
    switch (method) {
      case 'none':
        return oidc.None();
      case 'client_secret_basic':
      case 'client_secret_post': {
        const secret = await this.secrets.get(IDP_SECRET_KEYS.clientSecret);
        if (!secret) throw missingCredential('client secret', 'lanyard setup --idp-client-secret');
        return method === 'client_secret_basic' ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret);
      }
      case 'private_key_jwt': {
        const raw = await this.secrets.get(IDP_SECRET_KEYS.privateKey);
        if (!raw) throw missingCredential('private key', 'lanyard setup --idp-private-key <file.jwk>');
        const jwk = JSON.parse(raw) as JWK;
        const alg = jwk.alg ?? 'RS256';
        const key = (await importJWK(jwk, alg)) as oidc.CryptoKey;
        const kid = this.settings.clientAuth.keyId ?? jwk.kid;
        return oidc.PrivateKeyJwt(kid ? { key, kid } : key);
      }
    }
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
    for (const listener of this.listeners) {
      try {
        listener(state);
      } catch (e) {
        this.log.error('session listener failed', { error: e });
      }
    }
    return state;
  }

  private emitSubjectEnded(previous: SignedInUser | undefined): void {
    for (const listener of this.subjectListeners) listener(previous);
  }
}

/**
 * When the ID token expires on this machine's clock: its lifetime (exp - iat) from the moment it arrived, not its
 * absolute `exp`, so a skewed local clock cannot make Lanyard refresh in a loop or too late (protocol edge case 11).
 */
function localExpiry(claims: { exp?: number | undefined; iat?: number | undefined }, receivedAt: number): number {
  if (typeof claims.exp !== 'number') return receivedAt;
  if (typeof claims.iat !== 'number' || claims.iat > claims.exp) return claims.exp * 1000;
  return receivedAt + (claims.exp - claims.iat) * 1000;
}

const userOf = (s: StoredSession): SignedInUser => ({ issuer: s.issuer, sub: s.sub, email: s.email, name: s.name });
const serverOpt = (serverId: string | undefined) => (serverId ? { serverId } : {});

function sessionExpiredError(failure?: OAuthFailure): LanyardError {
  return new LanyardError(
    ErrorCodes.SESSION_EXPIRED,
    `Your sign-in has expired${failure?.error ? ` (the identity provider answered ${failure.error})` : ''}.`,
    'Sign in again from the Lanyard tray or dashboard, or run `lanyard login`.',
  );
}

function idpUnreachable(issuer: string, failure: OAuthFailure, cause: unknown, serverId?: string): LanyardError {
  return new LanyardError(
    ErrorCodes.IDP_UNREACHABLE,
    `The identity provider at ${issuer} could not be reached (${failure.summary}).`,
    'Check your network or VPN; Lanyard retries by itself and keeps using tokens it already has.',
    { cause, transient: true, ...serverOpt(serverId) },
  );
}

function missingCredential(what: string, command: string): LanyardError {
  return new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    `The IdP client authentication needs a ${what}, and none is in the keychain.`,
    `Provide it with \`${command}\` or in Settings.`,
  );
}

function exchangeError(
  failure: OAuthFailure,
  request: { audience: string; resource?: string | undefined; scope?: string | undefined; serverId?: string },
  cause: unknown,
): LanyardError {
  const reason = failure.description
    ? ` (${failure.error}: ${failure.description})`
    : failure.error
      ? ` (${failure.error})`
      : ` (${failure.summary})`;
  const opts = { cause, ...serverOpt(request.serverId) };
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
