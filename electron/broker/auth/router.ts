import { extractWWWAuthenticateParams } from '@modelcontextprotocol/client';
import { actionFor, AUTH_PATH_LABELS, headerNameProblem, type AuthAction, type AuthPath, type AuthState } from '../../../shared/auth-paths';
import { Emitter } from '../../../shared/emitter';
import { ErrorCodes, isNetworkErrorCode, type ErrorInfo } from '../../../shared/errors';
import type { ManagedConfig } from '../config/managed';
import type { LanyardConfig, ServerConfig } from '../config/schema';
import { LanyardError, toErrorInfo } from '../errors';
import type { TokenService } from '../exchange/token-service';
import type { IdentitySession } from '../identity/identity-session';
import type { OAuthPath, OAuthServerRef } from '../oauth/types';
import type { SecretStore } from '../secrets/secret-store';
import { withTimeout, type FetchLike } from '../util/http';
import { silentLogger, type Logger } from '../util/log';
import { SingleFlight } from '../util/single-flight';
import { grantRefOf } from '../governance/grant-ref';
import { assertPathAllowed, idpPolicyBlock, serverAuthPolicy, type ServerAuthPolicy } from './policy';
import { probeAuthPaths, type PathProbe } from './probe';

/** The keychain entry holding a header-path server's key (never in the config file). */
export const headerSecretKey = (serverId: string): string => `server:${serverId}:header`;

/** The longest key Lanyard stores (a header value; real API keys are far shorter). */
const MAX_KEY_LENGTH = 8192;

export interface AuthRouterDeps {
  /** The effective (managed over user) configuration. */
  config: () => LanyardConfig;
  /** The managed configuration in force, if any (its top-level `fallback` and pinned servers). */
  managed?: (() => ManagedConfig | undefined) | undefined;
  /** Locked config fields (`authPaths` refuses user changes of a path). */
  locked?: (() => readonly string[]) | undefined;
  /** The Cross-App Access engine for the configured IdP; undefined when none is configured. */
  engine: () => { identity: IdentitySession; tokens: TokenService } | undefined;
  /** The OAuth 2.1 path; undefined in builds without it (servers on it then say so). */
  oauth?: OAuthPath | undefined;
  secrets: SecretStore;
  /** Opens the system browser (the user's "Authorize" on a flow an IDE call started without one). */
  openUrl?: ((url: string) => Promise<void> | void) | undefined;
  /** Drops a recorded path that turned out wrong (`path` is the one recorded), so the next use probes again. */
  unrecord?: ((serverId: string, path: AuthPath) => void) | undefined;
  /** Persists the path the probe chose for a server (the user's config; managed servers in the discovery state file). */
  record?: ((serverId: string, path: AuthPath) => void) | undefined;
  /** A path an earlier run chose for a server the user's config does not record it for (the discovery state file). */
  remembered?: ((serverId: string) => AuthPath | undefined) | undefined;
  fetch?: FetchLike | undefined;
  log?: Logger | undefined;
}

/** One server's auth as status shows it. */
export interface AuthView {
  authPath: AuthPath | 'unknown';
  authState: AuthState;
  action?: AuthAction | undefined;
  authPathPinned: boolean;
  authorizeUrl?: string | undefined;
  headerName?: string | undefined;
  lastError?: ErrorInfo | undefined;
}

interface RouteState {
  /** Chosen by a probe in this run (managed servers are never written to the user's file). */
  probed?: AuthPath | undefined;
  /** The last failure on the server's path (cleared by the next success). */
  lastError?: ErrorInfo | undefined;
  /** header: the key is held (undefined until read). */
  keyPresent?: boolean | undefined;
  /** header: the server answered 401/403 with the stored key. */
  keyRejected?: boolean | undefined;
  /** oauth: the grant was read back from the keychain for status. */
  oauthLoaded?: boolean | undefined;
}

/** What the OAuth engine may offer beyond the OAuthPath contract (oauth/oauth-sessions.ts does). */
type OAuthPresenter = OAuthPath & {
  load?: (serverId: string) => Promise<unknown>;
};

/**
 * "Authenticate this request to server S": the one place that knows each server's auth path (docs/architecture.md,
 * "Auth paths") and dispatches on it —
 *   xaa     the token service (ID-JAG → access token), only with an IdP configured and signed in; a refusal by the IdP's
 *           policy ends in POLICY_BLOCKED and never in another path;
 *   oauth   the OAuth 2.1 path (authorization code + PKCE at the server's own AS); without a grant the call fails at
 *           once with AUTHORIZATION_REQUIRED and the link of the one browser flow (started, never opened, here);
 *   header  the key from the keychain in the configured header; a 401/403 with it is KEY_REQUIRED;
 *   none    nothing.
 * The IDE's own Authorization header never reaches a server. A server without a recorded path is probed at first
 * use, in the fixed order and within the administrator's policy, and the choice is recorded.
 */
export class AuthRouter {
  private readonly log: Logger;
  private readonly fetchFn: FetchLike;
  private readonly states = new Map<string, RouteState>();
  private readonly keys = new Map<string, string>();
  /** The audit reference of the OAuth token last presented per server (a short hash). */
  private readonly oauthGrants = new Map<string, string>();
  private readonly probeFlight = new SingleFlight<AuthPath>();
  private readonly changes: Emitter<string>;
  private readonly usable: Emitter<string>;

  constructor(private readonly deps: AuthRouterDeps) {
    this.log = (deps.log ?? silentLogger).child('auth');
    this.fetchFn = deps.fetch ?? fetch;
    this.changes = new Emitter((e) => this.log.warn('auth change listener failed', { error: e }));
    this.usable = new Emitter((e) => this.log.warn('auth change listener failed', { error: e }));
    deps.oauth?.onEvent((event) => {
      if (event.type === 'oauth_authorized') {
        const state = this.states.get(event.serverId);
        if (state) state.lastError = undefined;
        this.usable.emit(event.serverId);
      }
      this.changed(event.serverId);
    });
  }

  /** A server's credentials became usable: authorized in the browser, or a key stored. */
  onCredentialsUsable(listener: (serverId: string) => void): () => void {
    return this.usable.on(listener);
  }

  get oauth(): OAuthPath | undefined {
    return this.deps.oauth;
  }

  /** A server's auth state changed (path recorded, key set or rejected, grant obtained or lost, blocked). */
  onChange(listener: (serverId: string) => void): () => void {
    return this.changes.on(listener);
  }

  policy(server: Pick<ServerConfig, 'id' | 'authPath' | 'fallback'>): ServerAuthPolicy {
    return serverAuthPolicy({ server, managed: this.deps.managed?.(), locked: this.deps.locked?.() ?? [] });
  }

  /** The server's path as known now: pinned, recorded, or probed in this run; undefined until probed. */
  pathOf(serverId: string): AuthPath | undefined {
    const server = this.server(serverId);
    if (!server) return undefined;
    return this.policy(server).pinned ?? server.authPath ?? this.states.get(serverId)?.probed ?? this.deps.remembered?.(serverId);
  }

  /** The audit ledger's reference to the credential last used for the server (a short hash; none for keys and open servers). */
  grantRef(serverId: string): string | undefined {
    const path = this.pathOf(serverId);
    if (path === 'xaa') return this.deps.engine()?.tokens.grantRef(serverId);
    if (path === 'oauth') return this.oauthGrants.get(serverId);
    return undefined;
  }

  /**
   * Whether the server needs the IdP sign-in: it is on Cross-App Access, or not probed yet while an IdP is configured
   * (`probeUnknown` finds out in the background). Servers on the other paths work signed out and with no IdP at all.
   */
  needsSignIn(serverId: string): boolean {
    const path = this.pathOf(serverId);
    return path === undefined ? Boolean(this.deps.config().idp) : path === 'xaa';
  }

  /** Probes, in the background, every enabled server whose path is not known yet (each records its path once). */
  probeUnknown(): void {
    for (const server of this.deps.config().servers) {
      if (!server.enabled || this.pathOf(server.id) !== undefined) continue;
      this.resolvePath(server.id).catch((e: unknown) => this.log.info('auth path not known yet', { serverId: server.id, error: e }));
    }
  }

  /** Which paths apply to a URL and why, within the policy for `serverId` when it is configured. */
  async probe(url: string, serverId?: string): Promise<PathProbe> {
    const server = serverId ? this.server(serverId) : undefined;
    const policy = server ? this.policy(server) : this.defaultPolicy();
    const hasKey = server ? Boolean(server.header) || (await this.readKey(server.id)) !== undefined : false;
    return probeAuthPaths(url, {
      fetch: withTimeout(this.fetchFn, 10_000),
      idpConfigured: Boolean(this.deps.config().idp),
      allowed: policy.allowed,
      hasKey,
      expectedAsIssuer: server?.expectedAsIssuer,
    });
  }

  /** The policy a server not configured yet gets (the managed top-level `fallback`). */
  defaultPolicy(): ServerAuthPolicy {
    return this.policy({ id: '', authPath: undefined, fallback: undefined });
  }

  /** The server's path, probing (once, whoever asks) and recording it when none is known. */
  async resolvePath(serverId: string): Promise<AuthPath> {
    const server = this.requireServer(serverId);
    const policy = this.policy(server);
    if (policy.pinned) return policy.pinned;
    const known = server.authPath ?? this.states.get(serverId)?.probed ?? this.deps.remembered?.(serverId);
    if (known) {
      assertPathAllowed(policy, serverId, known);
      return known;
    }
    return this.probeFlight.run(serverId, async () => {
      const probe = await this.probe(server.url, serverId);
      if (probe.path) {
        this.state(serverId).probed = probe.path;
        try {
          this.deps.record?.(serverId, probe.path);
        } catch (e) {
          this.log.warn('could not record the probed auth path', { serverId, error: e });
        }
        this.log.info('auth path chosen', { serverId, path: probe.path });
        this.changed(serverId);
        return probe.path;
      }
      if (!probe.reachable) {
        // The network's own failure (the proxy, its PAC file, an untrusted certificate) says what to fix; keep it.
        const cause = probe.error;
        if (cause && cause.code !== ErrorCodes.SERVER_UNREACHABLE && isNetworkErrorCode(cause.code))
          throw new LanyardError(cause.code, cause.message, cause.fix, {
            serverId,
            transient: cause.code === ErrorCodes.PAC_FAILED || cause.code === ErrorCodes.PROXY_UNREACHABLE,
          });
        throw new LanyardError(
          ErrorCodes.SERVER_UNREACHABLE,
          `Server "${serverId}" could not be reached to find out how to authenticate to it.`,
          'Check that the server is up and your network or VPN; Lanyard retries by itself.',
          { serverId, transient: true },
        );
      }
      const applicable = probe.paths.find((v) => v.applies);
      if (applicable) assertPathAllowed(policy, serverId, applicable.path);
      // Nothing applies: with an IdP, Cross-App Access's own discovery says precisely what the server lacks.
      if (this.deps.config().idp && policy.allowed.includes('xaa')) return 'xaa';
      const why = probe.paths.map((v) => `${AUTH_PATH_LABELS[v.path]}: ${v.reason}`).join('; ');
      throw new LanyardError(
        probe.error?.code ?? ErrorCodes.SERVER_NOT_XAA_CAPABLE,
        `Lanyard found no way to authenticate to server "${serverId}" (${why}).`,
        probe.error?.fix ??
          "Check the server URL; if the server uses an API key, set it with `lanyard servers set-key` or the dashboard's Set key.",
        { serverId },
      );
    });
  }

  /**
   * A fetch for the upstream MCP transport that authenticates every request to `serverId` on its path. Errors are
   * LanyardErrors that say what to do; they are thrown before anything is sent when the path cannot be used.
   */
  authorizedFetch(serverId: string, base: FetchLike = this.fetchFn): FetchLike {
    return async (input, init) => {
      try {
        const path = await this.resolvePath(serverId);
        const response = await this.fetchOn(path, serverId, base, input, init);
        this.succeeded(serverId);
        return response;
      } catch (e) {
        const error = idpPolicyBlock(serverId, e) ?? e;
        this.failed(serverId, error);
        throw error;
      }
    };
  }

  private fetchOn(
    path: AuthPath,
    serverId: string,
    base: FetchLike,
    input: string | URL,
    init: RequestInit | undefined,
  ): Promise<Response> {
    switch (path) {
      case 'xaa': {
        const engine = this.deps.engine();
        if (!engine)
          throw new LanyardError(
            ErrorCodes.CONFIG_INVALID,
            `Server "${serverId}" uses Cross-App Access, and no identity provider is configured.`,
            "Set your company's IdP in Lanyard's Settings, then sign in.",
            { serverId },
          );
        return engine.tokens.authorizedFetch(serverId, base)(input, init);
      }
      case 'oauth':
        return this.oauthFetch(serverId, base, input, init);
      case 'header':
        return this.headerFetch(serverId, base, input, init);
      case 'none':
        return this.openFetch(serverId, base, input, init);
    }
  }

  private async oauthFetch(serverId: string, base: FetchLike, input: string | URL, init: RequestInit | undefined): Promise<Response> {
    const oauth = this.requireOAuth(serverId);
    const ref = this.oauthRef(serverId);
    let token = await this.oauthToken(ref);
    this.oauthGrants.set(serverId, grantRefOf(token));
    let retried401 = false;
    // The engine presents its token itself when it can (a DPoP-bound token needs a fresh proof per request).
    const present = (oauth as OAuthPresenter).authorizedFetch?.bind(oauth);
    for (;;) {
      const headers = new Headers(init?.headers);
      headers.delete('authorization');
      if (!present) headers.set('authorization', `Bearer ${token.accessToken}`);
      const response = present ? await present(ref, base)(input, { ...init, headers }) : await base(input, { ...init, headers });
      if (response.status === 401 && !retried401) {
        retried401 = true;
        await response.body?.cancel().catch(() => {});
        await oauth.invalidate(serverId, token.accessToken);
        token = await this.oauthToken(ref);
        this.oauthGrants.set(serverId, grantRefOf(token));
        continue;
      }
      if (response.status === 403) {
        const challenge = extractWWWAuthenticateParams(response);
        if (challenge.error === 'insufficient_scope') {
          await response.body?.cancel().catch(() => {});
          // More access needs the user's consent again: the grant is kept, the next authorization asks for the union
          // (the engine refuses after a bounded number of step-ups), and the call answers with its link at once.
          await oauth.stepUp(ref, challenge.scope);
          const flow = await oauth.authorize(ref, { openBrowser: false, challenge: { scope: challenge.scope } });
          flow.done.catch(() => undefined);
          const name = this.server(serverId)?.name ?? serverId;
          throw new LanyardError(
            ErrorCodes.AUTHORIZATION_REQUIRED,
            `Authorize ${name} in Lanyard: server "${serverId}" needs more access (${challenge.scope ?? 'more scopes'}) than you granted.`,
            // The link ends the text, with nothing after it: a copied link must not carry a full stop.
            `Click "Authorize" for ${name} in the Lanyard tray or dashboard, or open this link in your browser: ${flow.authorizeUrl}`,
            { serverId },
          );
        }
      }
      return response;
    }
  }

  /** A token on the OAuth path, or AUTHORIZATION_REQUIRED with the link of the one browser flow (never opened here). */
  private async oauthToken(ref: OAuthServerRef) {
    const oauth = this.requireOAuth(ref.id);
    try {
      return await oauth.getToken(ref);
    } catch (e) {
      if (!(e instanceof LanyardError) || e.code !== ErrorCodes.AUTHORIZATION_REQUIRED) throw e;
      let link: string | undefined;
      try {
        const flow = await oauth.authorize(ref, { openBrowser: false });
        flow.done.catch(() => undefined);
        link = flow.authorizeUrl;
      } catch (startError) {
        this.log.warn('could not start the authorization flow', { serverId: ref.id, error: startError });
        throw startError;
      }
      throw authorizationRequired(this.server(ref.id)?.name ?? ref.id, ref.id, link, e);
    }
  }

  /**
   * none: nothing added. A server recorded as open that now answers 401 has started asking for credentials: its recorded
   * path is dropped (unless the administrator pinned it) so the next call probes it again, within policy.
   */
  private async openFetch(serverId: string, base: FetchLike, input: string | URL, init: RequestInit | undefined): Promise<Response> {
    const headers = new Headers(init?.headers);
    headers.delete('authorization');
    const response = await base(input, { ...init, headers });
    const server = this.server(serverId);
    if (response.status !== 401 || !server || this.policy(server).pinned) return response;
    await response.body?.cancel().catch(() => {});
    const state = this.state(serverId);
    state.probed = undefined;
    try {
      this.deps.unrecord?.(serverId, 'none');
    } catch (e) {
      this.log.warn('could not drop the recorded auth path', { serverId, error: e });
    }
    this.changed(serverId);
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `Server "${serverId}" now asks for credentials, though it needed none when Lanyard first reached it.`,
      'Retry: Lanyard checks again how to authenticate to it (`lanyard servers test ' + serverId + '` shows what it finds).',
      { serverId },
    );
  }

  private async headerFetch(serverId: string, base: FetchLike, input: string | URL, init: RequestInit | undefined): Promise<Response> {
    const server = this.requireServer(serverId);
    const name = server.header?.name;
    const key = await this.readKey(serverId);
    if (!name || key === undefined) throw keyRequired(server, 'missing');
    const headers = new Headers(init?.headers);
    headers.delete('authorization');
    headers.set(name, key);
    const response = await base(input, { ...init, headers });
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel().catch(() => {});
      const state = this.state(serverId);
      if (!state.keyRejected) {
        state.keyRejected = true;
        this.changed(serverId);
      }
      throw keyRequired(server, 'rejected');
    }
    return response;
  }

  /**
   * One server's auth as status shows it. Header servers' key presence comes from `loadKeys()` (status is built
   * synchronously).
   */
  view(server: ServerConfig): AuthView {
    const policy = this.policy(server);
    const state = this.states.get(server.id);
    const path = this.pathOf(server.id);
    const base = { authPathPinned: policy.restricted, ...(server.header ? { headerName: server.header.name } : {}) };
    const make = (authState: AuthState, extra: Partial<AuthView> = {}): AuthView => {
      const action = actionFor(authState);
      return { authPath: path ?? 'unknown', authState, ...(action ? { action } : {}), ...base, ...extra };
    };
    const lastError = state?.lastError;
    if (lastError?.code === ErrorCodes.POLICY_BLOCKED) return make('blocked', { lastError });
    if (path && !policy.allowed.includes(path)) {
      return make('blocked', {
        lastError: toErrorInfo(
          (() => {
            try {
              assertPathAllowed(policy, server.id, path);
            } catch (e) {
              return e;
            }
            return undefined;
          })(),
        ),
      });
    }
    switch (path) {
      case undefined: {
        // Not probed yet: what the token service learned, as before paths existed.
        const tokens = this.deps.engine()?.tokens.status(server.id);
        if (tokens?.authRequired === false) return { ...make('ready'), authPath: 'none' };
        return make(lastError ? 'error' : 'unknown', lastError ? { lastError } : {});
      }
      case 'none':
        return make(lastError ? 'error' : 'ready', lastError ? { lastError } : {});
      case 'header':
        if (state?.keyRejected || state?.keyPresent === false || !server.header)
          return make('key_required', { lastError: keyRequired(server, state?.keyRejected ? 'rejected' : 'missing').toInfo() });
        return make(state?.keyPresent ? (lastError ? 'error' : 'ready') : 'unknown', lastError ? { lastError } : {});
      case 'oauth': {
        const oauth = this.deps.oauth;
        if (!oauth) return make('error', { lastError: oauthUnavailable(server.id).toInfo() });
        const status = oauth.status(server.id);
        switch (status.state) {
          case 'authorized':
            return make(
              lastError && lastError.code !== ErrorCodes.AUTHORIZATION_REQUIRED ? 'error' : 'ready',
              lastError ? { lastError } : {},
            );
          case 'authorizing':
            return make('authorizing', status.authorizeUrl ? { authorizeUrl: status.authorizeUrl } : {});
          case 'authorization_required':
            return make('authorization_required', status.lastError ? { lastError: status.lastError } : {});
          default:
            return make('error', status.lastError ? { lastError: status.lastError } : lastError ? { lastError } : {});
        }
      }
      case 'xaa': {
        const engine = this.deps.engine();
        if (!engine) return make('error', { lastError: noIdp(server.id).toInfo() });
        const session = engine.identity.state.status;
        if (session !== 'signed_in') return make('sign_in_required');
        const tokens = engine.tokens.status(server.id);
        const err = lastError ?? tokens.lastError;
        if (err?.code === ErrorCodes.NOT_SIGNED_IN || err?.code === ErrorCodes.SESSION_EXPIRED)
          return make('sign_in_required', { lastError: err });
        return make(err ? 'error' : 'ready', err ? { lastError: err } : {});
      }
    }
  }

  /**
   * Whether a request to the server could be authenticated now without anyone acting and without asking an IdP or AS:
   * its path is known and a usable access token (Cross-App Access, OAuth) or stored key is held, or it needs none. The
   * upstream pool shows a server's kept catalog snapshot only then (gateway/upstream/pool.ts).
   */
  async credentialsAtHand(serverId: string): Promise<boolean> {
    const path = this.pathOf(serverId);
    try {
      switch (path) {
        case 'none':
          return true;
        case 'header':
          return (await this.readKey(serverId)) !== undefined;
        case 'xaa':
          return (await this.deps.engine()?.tokens.hasUsableToken(serverId)) ?? false;
        case 'oauth': {
          const oauth = this.deps.oauth as OAuthPresenter | undefined;
          if (!oauth) return false;
          const state = this.state(serverId);
          if (!state.oauthLoaded && oauth.load) {
            state.oauthLoaded = true;
            await oauth.load(serverId).catch(() => undefined);
          }
          return oauth.status(serverId).state === 'authorized';
        }
        default:
          return false;
      }
    } catch {
      return false;
    }
  }

  /**
   * Reads what status needs from the keychain, once per server: whether each header-path server has a key, and each
   * OAuth-path server's grant (so status is right after a restart, before the first call).
   */
  async loadKeys(servers: readonly ServerConfig[]): Promise<void> {
    const oauth = this.deps.oauth as OAuthPresenter | undefined;
    await Promise.all(
      servers.map(async (s) => {
        const path = this.pathOf(s.id);
        const state = this.state(s.id);
        if (path === 'header' && state.keyPresent === undefined) await this.readKey(s.id).catch(() => undefined);
        if (path === 'oauth' && !state.oauthLoaded && oauth?.load) {
          state.oauthLoaded = true;
          await oauth.load(s.id).catch(() => undefined);
        }
      }),
    );
  }

  /**
   * Stores (or replaces) a header-path server's key, in the keychain only. The caller has checked the path and the
   * policy; the value is never logged, returned or written anywhere else.
   */
  async storeKey(serverId: string, value: string): Promise<void> {
    const problem = keyProblem(value);
    if (problem)
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `The key was not saved: it ${problem}.`,
        'Paste the key exactly as the service issued it.',
        { serverId },
      );
    await this.deps.secrets.set(headerSecretKey(serverId), value);
    this.keys.set(serverId, value);
    const state = this.state(serverId);
    state.keyPresent = true;
    state.keyRejected = false;
    state.lastError = undefined;
    this.changed(serverId);
    this.usable.emit(serverId);
  }

  /**
   * Starts (or joins) the OAuth flow for a server on the OAuth path and returns its link. With `openBrowser` (the
   * user's "Authorize"), the browser opens once for this request even when the flow was started without one (by an
   * IDE call, which only ever gets the link).
   */
  async authorize(serverId: string, options: { openBrowser?: boolean } = {}): Promise<{ authorizeUrl: string; done: Promise<void> }> {
    const oauth = this.requireOAuth(serverId);
    const openBrowser = options.openBrowser ?? true;
    const joining = oauth.status(serverId).state === 'authorizing';
    const flow = await oauth.authorize(this.oauthRef(serverId), { openBrowser });
    if (joining && openBrowser && this.deps.openUrl) await this.deps.openUrl(flow.authorizeUrl);
    flow.done.then(
      () => {
        this.state(serverId).lastError = undefined;
        this.changed(serverId);
      },
      () => this.changed(serverId),
    );
    this.changed(serverId);
    return flow;
  }

  /** `servers remove`: the OAuth grant revoked and wiped, the key and every state dropped. */
  async forget(serverId: string): Promise<void> {
    await this.deps.oauth
      ?.forget(serverId)
      .catch((e: unknown) => this.log.warn('could not revoke the OAuth grant', { serverId, error: e }));
    await this.deps.secrets.delete(headerSecretKey(serverId)).catch(() => undefined);
    this.keys.delete(serverId);
    this.states.delete(serverId);
    this.changed(serverId);
  }

  /** Drops what this run probed for a server (its URL or path changed). */
  reset(serverId: string): void {
    const state = this.states.get(serverId);
    if (state) state.probed = undefined;
    this.keys.delete(serverId);
  }

  oauthRef(serverId: string): OAuthServerRef {
    const server = this.requireServer(serverId);
    return {
      id: server.id,
      url: server.url,
      scopes: server.scopes,
      oauthClient: server.oauthClient,
      expectedAsIssuer: server.expectedAsIssuer,
    };
  }

  private requireOAuth(serverId: string): OAuthPath {
    if (!this.deps.oauth) throw oauthUnavailable(serverId);
    return this.deps.oauth;
  }

  private async readKey(serverId: string): Promise<string | undefined> {
    const cached = this.keys.get(serverId);
    if (cached !== undefined) return cached;
    const value = await this.deps.secrets.get(headerSecretKey(serverId));
    const state = this.state(serverId);
    const present = value !== undefined && value !== null && value !== '';
    if (state.keyPresent !== present) {
      state.keyPresent = present;
      this.changed(serverId);
    }
    if (present) this.keys.set(serverId, value);
    return present ? value : undefined;
  }

  private succeeded(serverId: string): void {
    const state = this.states.get(serverId);
    if (state?.lastError || state?.keyRejected) {
      state.lastError = undefined;
      state.keyRejected = false;
      this.changed(serverId);
    }
  }

  private failed(serverId: string, e: unknown): void {
    // Network failures are the gateway's health to report; this keeps what is about credentials and policy.
    if (!(e instanceof LanyardError) || e.transient) return;
    const info = { ...toErrorInfo(e), serverId };
    const state = this.state(serverId);
    const before = state.lastError;
    state.lastError = info;
    if (before?.code !== info.code || before.message !== info.message) this.changed(serverId);
  }

  private changed(serverId: string): void {
    this.changes.emit(serverId);
  }

  private server(serverId: string): ServerConfig | undefined {
    return this.deps.config().servers.find((s) => s.id === serverId);
  }

  private requireServer(serverId: string): ServerConfig {
    const server = this.server(serverId);
    if (!server)
      throw new LanyardError(
        ErrorCodes.SERVER_UNKNOWN,
        `No server "${serverId}" is configured.`,
        'Run `lanyard servers list` to see the configured servers.',
        {
          serverId,
        },
      );
    return server;
  }

  private state(serverId: string): RouteState {
    let state = this.states.get(serverId);
    if (!state) this.states.set(serverId, (state = {}));
    return state;
  }
}

/** Why a key cannot be stored (or undefined): a header value is one line of visible characters. */
export function keyProblem(value: string): string | undefined {
  if (!value) return 'is empty';
  if (value.length > MAX_KEY_LENGTH) return `is longer than ${MAX_KEY_LENGTH} characters`;
  if (/[\r\n\0]/.test(value)) return 'contains a line break';
  if (value !== value.trim()) return 'starts or ends with white space';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return 'contains control characters';
  return undefined;
}

export { headerNameProblem };

export function keyRequired(server: Pick<ServerConfig, 'id' | 'name'>, why: 'missing' | 'rejected'): LanyardError {
  return new LanyardError(
    ErrorCodes.KEY_REQUIRED,
    why === 'rejected'
      ? `Server "${server.id}" rejected the stored key.`
      : `Server "${server.id}" needs an API key, and none is stored in Lanyard.`,
    `Set the key for ${server.name}: "Set key" in the Lanyard dashboard, or \`lanyard servers set-key ${server.id} --value-stdin\`.`,
    { serverId: server.id },
  );
}

export function authorizationRequired(name: string, serverId: string, link: string | undefined, cause?: unknown): LanyardError {
  return new LanyardError(
    ErrorCodes.AUTHORIZATION_REQUIRED,
    `Authorize ${name} in Lanyard: server "${serverId}" needs your one-time consent at its authorization server.`,
    // The link ends the text, with nothing after it: a copied link must not carry a full stop.
    link
      ? `Click "Authorize" for ${name} in the Lanyard tray or dashboard, or open this link in your browser: ${link}`
      : `Click "Authorize" for ${name} in the Lanyard tray or dashboard, or run \`lanyard servers authorize ${serverId}\`.`,
    { serverId, ...(cause !== undefined ? { cause } : {}) },
  );
}

function oauthUnavailable(serverId: string): LanyardError {
  return new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    `Server "${serverId}" uses OAuth, which this build of Lanyard cannot do.`,
    'Update Lanyard.',
    { serverId },
  );
}

function noIdp(serverId: string): LanyardError {
  return new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    `Server "${serverId}" uses Cross-App Access, and no identity provider is configured.`,
    "Set your company's IdP in Lanyard's Settings, then sign in.",
    { serverId },
  );
}
