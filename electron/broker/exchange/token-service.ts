import { extractWWWAuthenticateParams } from '@modelcontextprotocol/client';
import { grantRefOf, shortHash } from '../governance/grant-ref';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Emitter } from '../../../shared/emitter';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { LanyardError, toErrorInfo } from '../errors';
import type { IdentitySession } from '../identity/identity-session';
import type { SecretStore } from '../secrets/secret-store';
import { withTimeout, type FetchLike } from '../util/http';
import { silentLogger, type Logger } from '../util/log';
import type { RenewalPolicy } from '../util/renewal';
import { SingleFlight } from '../util/single-flight';
import { discoverServerAuth, sameIssuer, splitScopes, type ServerAuthInfo } from './discovery';
import type { DiscoveryState } from './discovery-state';
import { loadAsCredentials, type AsClientAuthMethod } from './as-client-auth';
import { redeemIdJag } from './redeem';
import { TokenCache, tokenCacheKey, type CachedToken, type TokenKeyParts } from './token-cache';
import type { QuotaWarning, ResourceAppUse, UsageCounter } from './usage';

/** What the token service needs to know about a configured server (a subset of the config's server entry). */
export interface BrokeredServer {
  id: string;
  url: string;
  enabled?: boolean;
  asClient?: { clientId: string; method: AsClientAuthMethod } | undefined;
  scopes?: string[] | undefined;
  expectedAsIssuer?: string | undefined;
}

export interface BearerToken {
  accessToken: string;
  tokenType: string;
  expiresAt: number;
  scopes: string[];
}

export type TokenEvent =
  | {
      type: 'token_minted';
      serverId: string;
      scopes: string[];
      expiresAt: number;
      durationMs: number;
      /** Audit references (short hashes): the access token, and the `jti` of the ID-JAG redeemed for it. */
      grant?: string | undefined;
      idJag?: string | undefined;
    }
  | { type: 'token_step_up'; serverId: string; scopes: string[] }
  | { type: 'token_error'; serverId: string; error: ErrorInfo }
  /** The user's ID-JAGs at this server's resource app reached the warning threshold this month (once per month). */
  | { type: 'quota_warning'; serverId: string; warning: QuotaWarning };

export interface ServerTokenStatus {
  serverId: string;
  authRequired: boolean | undefined;
  asIssuer: string | undefined;
  resource: string | undefined;
  scopes: string[];
  tokenExpiresAt: number | undefined;
  idJagsThisMonth: number;
  /** Set once the signed-in user's ID-JAGs at this server's resource app reached the warning threshold this month. */
  idJagQuotaWarning?: QuotaWarning | undefined;
  lastError: ErrorInfo | undefined;
}

interface ServerState {
  info?: ServerAuthInfo | undefined;
  /** The scope set requested for this server; grows by union on step-up (SEP-2350) and is shared by every caller. */
  scopes?: string[] | undefined;
  lastError?: ErrorInfo | undefined;
  lastToken?: CachedToken | undefined;
  /** `info` came from the discovery state file (a restart), not from a discovery in this run. */
  infoFromFile?: boolean | undefined;
  /** The last cache key computed for this server and what it was computed from (see keyOf). */
  lastKey?: { parts: TokenKeyParts; key: string } | undefined;
}

const MAX_STEP_UPS = 2;

/**
 * "A bearer token for server S": the only thing the gateway asks for. It owns discovery, the token cache and the two
 * legs of cross-app access (leg 1 through the identity session), and it is the single place that decides when to mint:
 *   - one exchange at a time per cache key, however many IDE sessions wait;
 *   - a cached token is reused until it is within its renewal margin (a share of its lifetime, ../util/renewal.ts),
 *     and from the keychain after a restart;
 *   - on 401 the token is dropped and minted again once; on 403 insufficient_scope the scope set becomes the union and
 *     a new token is minted, a bounded number of times, with a clear error when the IdP grants less than needed;
 *   - when the IdP or AS is down, a token that is still valid keeps being served until it really expires.
 */
export class TokenService {
  private readonly identity: IdentitySession;
  private readonly secrets: SecretStore;
  private readonly cache: TokenCache;
  private readonly usage: UsageCounter;
  private readonly getServer: (id: string) => BrokeredServer | undefined;
  private readonly fetchFn: FetchLike;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly metadataTtlMs: number;
  private readonly states = new Map<string, ServerState>();
  private readonly discoverFlight = new SingleFlight<ServerAuthInfo>();
  private readonly mintFlight = new SingleFlight<CachedToken>();
  private readonly events: Emitter<TokenEvent>;
  private readonly remembered: DiscoveryState | undefined;

  constructor(options: {
    identity: IdentitySession;
    secrets: SecretStore;
    usage: UsageCounter;
    getServer: (id: string) => BrokeredServer | undefined;
    fetch?: FetchLike;
    now?: () => number;
    log?: Logger;
    requestTimeoutMs?: number;
    /** When a cached token is renewed; defaults to a margin that fits each token's lifetime (../util/renewal.ts). */
    renewal?: RenewalPolicy;
    metadataTtlMs?: number;
    /** What discovery learnt in earlier runs (and where this run's results are kept for the next). */
    discoveryState?: DiscoveryState;
  }) {
    this.identity = options.identity;
    this.secrets = options.secrets;
    this.usage = options.usage;
    this.getServer = options.getServer;
    this.now = options.now ?? Date.now;
    this.fetchFn = withTimeout(options.fetch ?? fetch, options.requestTimeoutMs ?? 15_000);
    this.log = (options.log ?? silentLogger).child('tokens');
    this.events = new Emitter((e) => this.log.error('token event listener failed', { error: e }));
    this.metadataTtlMs = options.metadataTtlMs ?? 60 * 60_000;
    this.remembered = options.discoveryState;
    this.cache = new TokenCache({
      secrets: options.secrets,
      now: this.now,
      ...(options.renewal ? { renewal: options.renewal } : {}),
      log: this.log,
    });
    // Tokens belong to a user: when the user signs out or changes, none of them may be served again.
    this.identity.onSubjectEnded(() => {
      void this.clear();
    });
  }

  onEvent(listener: (event: TokenEvent) => void): () => void {
    return this.events.on(listener);
  }

  /** The audit ledger's reference to the token last served for the server (a short hash, never the token). */
  grantRef(serverId: string): string | undefined {
    const token = this.states.get(serverId)?.lastToken;
    return token ? grantRefOf(token) : undefined;
  }

  /** The access tokens served now, for the outbound secret scan's comparison (never logged or returned elsewhere). */
  heldTokens(): string[] {
    const out: string[] = [];
    for (const state of this.states.values()) if (state.lastToken) out.push(state.lastToken.accessToken);
    return out;
  }

  /** Drops every cached token and all discovery state of this run (what the state file remembers is not the user's). */
  async clear(): Promise<void> {
    this.states.clear();
    await this.cache.clear();
  }

  /** Discovery for a configured server, cached for an hour (or refreshed with `force`). */
  async discover(
    serverId: string,
    options: { force?: boolean; challenge?: { resourceMetadataUrl?: string; scope?: string } } = {},
  ): Promise<ServerAuthInfo> {
    const server = this.requireServer(serverId);
    const state = this.state(serverId);
    if (!options.force && !options.challenge && !state.info) {
      // A restart: what an earlier run learnt about this server (same URL and pinned issuer, within the file's TTL) is
      // used without a round trip; it counts as discovered now for the in-memory TTL, and any failure forgets it.
      const remembered = this.remembered?.auth(serverId, server.url, server.expectedAsIssuer);
      if (remembered) {
        state.info = { ...remembered, discoveredAt: this.now() };
        state.infoFromFile = true;
      }
    }
    if (!options.force && !options.challenge && state.info && this.now() - state.info.discoveredAt < this.metadataTtlMs) return state.info;
    return this.discoverFlight.run(serverId, async () => {
      try {
        const info = await discoverServerAuth(server.url, {
          fetch: this.fetchFn,
          expectedAsIssuer: server.expectedAsIssuer,
          challenge: options.challenge,
          serverId,
          now: this.now,
        });
        const previous = state.info;
        state.info = info;
        state.infoFromFile = false;
        if (previous && (previous.asIssuer !== info.asIssuer || previous.resource !== info.resource)) state.scopes = undefined;
        this.remembered?.setAuth(serverId, server.url, server.expectedAsIssuer, info);
        return info;
      } catch (e) {
        state.lastError = toErrorInfo(e);
        this.remembered?.forgetAuth(serverId);
        throw e;
      }
    });
  }

  /**
   * A bearer token for the server, or null when the server needs none. Throws a LanyardError that says what to do.
   */
  getToken(serverId: string): Promise<BearerToken | null> {
    return this.tokenFor(serverId, true);
  }

  /**
   * Whether a token for the server is cached and not due for renewal, for the signed-in user, from what is already
   * known (discovery in memory or in the state file): no IdP, AS or server is asked. False when anything is missing.
   */
  async hasUsableToken(serverId: string): Promise<boolean> {
    const server = this.getServer(serverId);
    const s = this.identity.state;
    if (!server || s.status !== 'signed_in' || !server.asClient?.clientId) return false;
    const state = this.states.get(serverId);
    const info = state?.info ?? this.remembered?.auth(serverId, server.url, server.expectedAsIssuer);
    if (!info) return false;
    if (!info.authRequired) return true;
    const key = tokenCacheKey({
      serverId,
      idpIssuer: this.identity.issuer,
      subject: s.user.sub,
      resource: info.resource,
      asIssuer: info.asIssuer,
      clientId: server.asClient.clientId,
      scopes: state?.scopes ?? initialScopes(info, server),
    });
    return (await this.cache.get(key)) !== undefined;
  }

  private async tokenFor(serverId: string, mayRediscover: boolean): Promise<BearerToken | null> {
    const server = this.requireServer(serverId);
    const state = this.state(serverId);
    try {
      const info = await this.discover(serverId);
      if (!info.authRequired) return null;
      const user = this.currentUser();
      const credentialsId = server.asClient?.clientId;
      if (!credentialsId) {
        throw new LanyardError(
          ErrorCodes.CONFIG_INVALID,
          `Server "${serverId}" needs Lanyard's client id at its authorization server (${info.asIssuer}).`,
          "Your IdP admin knows it: it is the client id set in the resource connection for this server. Add it under the server's settings.",
          { serverId },
        );
      }
      state.scopes ??= initialScopes(info, server);
      const key = keyOf(state, {
        serverId,
        idpIssuer: this.identity.issuer,
        subject: user.sub,
        resource: info.resource,
        asIssuer: info.asIssuer,
        clientId: credentialsId,
        scopes: state.scopes,
      });
      const cached = await this.cache.get(key);
      if (cached) return this.serve(state, cached);
      try {
        const minted = await this.mintFlight.run(
          key,
          async () => (await this.cache.get(key)) ?? this.mint(server, info, state.scopes!, key),
        );
        return this.serve(state, minted);
      } catch (e) {
        // IdP or AS down: a token that still works keeps being served until it really expires.
        const stale = this.cache.peek(key);
        if (stale && e instanceof LanyardError && e.transient) {
          this.log.info('renewal failed transiently; serving the still-valid token', { serverId, reason: e.code });
          return this.serve(state, stale);
        }
        throw e;
      }
    } catch (e) {
      if (mayRediscover && state.infoFromFile && !(e instanceof LanyardError && e.code === ErrorCodes.NOT_SIGNED_IN)) {
        // The remembered discovery may be what failed (the server moved to another AS, its token endpoint changed):
        // it is forgotten, and the server discovered again once before the failure counts.
        this.log.info('the remembered discovery did not work; discovering the server again', { serverId });
        this.forgetRemembered(serverId);
        return this.tokenFor(serverId, false);
      }
      const info = toErrorInfo(e);
      state.lastError = { ...info, serverId };
      this.emit({ type: 'token_error', serverId, error: state.lastError });
      throw e;
    }
  }

  /** After a 401 with this token: drop it (only if it is still the current one, so concurrent 401s mint once). */
  async invalidate(serverId: string, accessToken: string): Promise<void> {
    const state = this.states.get(serverId);
    const info = state?.info;
    const server = this.getServer(serverId);
    if (!state || !info || !server?.asClient || !state.scopes) return;
    const user = this.identity.state;
    if (user.status !== 'signed_in' && user.status !== 'expired') return;
    const key = keyOf(state, {
      serverId,
      idpIssuer: this.identity.issuer,
      subject: user.user.sub,
      resource: info.resource,
      asIssuer: info.asIssuer,
      clientId: server.asClient.clientId,
      scopes: state.scopes,
    });
    const current = this.cache.peek(key);
    if (!current || current.accessToken === accessToken) await this.cache.invalidate(key);
  }

  /**
   * After 403 insufficient_scope: the next token is requested with the union of what was asked and what the server
   * challenged. Throws INSUFFICIENT_SCOPE when the current token was already minted for all of those (the IdP or AS
   * granted less than the server needs: a policy matter, not something a retry fixes).
   */
  stepUp(serverId: string, challengedScope: string | undefined): void {
    const state = this.state(serverId);
    const challenged = splitScopes(challengedScope);
    const current = state.scopes ?? [];
    const union = [...new Set([...current, ...challenged])];
    const granted = state.lastToken?.scopes ?? [];
    const missing = challenged.filter((s) => !granted.includes(s));
    if (union.length === current.length && missing.length > 0 && state.lastToken) {
      const error = new LanyardError(
        ErrorCodes.INSUFFICIENT_SCOPE,
        `Server "${serverId}" needs ${missing.join(', ')}, which your identity provider did not grant (granted: ${granted.join(' ') || 'none'}).`,
        `Ask your IdP admin to allow ${missing.join(', ')} for you in this server's resource connection.`,
        { serverId },
      );
      state.lastError = error.toInfo();
      this.emit({ type: 'token_error', serverId, error: state.lastError });
      throw error;
    }
    state.scopes = union;
    this.emit({ type: 'token_step_up', serverId, scopes: union });
  }

  /**
   * A fetch for the upstream MCP transport: injects the server's bearer token (never the IDE's Authorization header),
   * re-mints once on 401 and steps up on 403 insufficient_scope, a bounded number of times.
   */
  authorizedFetch(serverId: string, base: FetchLike = this.fetchFn): FetchLike {
    return async (input, init) => {
      let token = await this.getToken(serverId);
      let retried401 = false;
      for (let stepUps = 0; ;) {
        const headers = withAuthorization(init?.headers, token ? `Bearer ${token.accessToken}` : undefined);
        const response = await base(input, { ...init, headers });
        if (response.status === 401 && !retried401) {
          retried401 = true;
          const challenge = extractWWWAuthenticateParams(response);
          await response.body?.cancel().catch(() => {});
          if (token) await this.invalidate(serverId, token.accessToken);
          // A 401 may mean the remembered resource or AS is out of date: the retry discovers afresh.
          if (this.states.get(serverId)?.infoFromFile) this.forgetRemembered(serverId);
          else if (!token)
            await this.discover(serverId, {
              challenge: {
                ...(challenge.resourceMetadataUrl ? { resourceMetadataUrl: challenge.resourceMetadataUrl.href } : {}),
                ...(challenge.scope ? { scope: challenge.scope } : {}),
              },
            });
          token = await this.getToken(serverId);
          continue;
        }
        if (response.status === 403 && stepUps < MAX_STEP_UPS) {
          const challenge = extractWWWAuthenticateParams(response);
          if (challenge.error === 'insufficient_scope') {
            await response.body?.cancel().catch(() => {});
            stepUps++;
            this.stepUp(serverId, challenge.scope);
            token = await this.getToken(serverId);
            continue;
          }
        }
        return response;
      }
    };
  }

  status(serverId: string): ServerTokenStatus {
    const state = this.states.get(serverId);
    const token = state?.lastToken && state.lastToken.expiresAt > this.now() ? state.lastToken : undefined;
    const app = state?.info?.authRequired ? this.resourceApp(state.info.asIssuer) : undefined;
    return {
      serverId,
      authRequired: state?.info?.authRequired,
      asIssuer: state?.info?.asIssuer || undefined,
      resource: state?.info?.resource,
      scopes: token?.scopes ?? state?.scopes ?? [],
      tokenExpiresAt: token?.expiresAt,
      idJagsThisMonth: this.usage.count(serverId),
      idJagQuotaWarning: app ? this.usage.warning(serverId, app) : undefined,
      lastError: state?.lastError,
    };
  }

  /** Forget a server (removed from config): its discovery state and its cached tokens, in memory and in the keychain. */
  async forget(serverId: string): Promise<void> {
    this.states.delete(serverId);
    this.remembered?.forget(serverId);
    await this.cache.forget(serverId);
  }

  private async mint(server: BrokeredServer, info: ServerAuthInfo, scopes: string[], key: string): Promise<CachedToken> {
    const started = this.now();
    const credentials = await loadAsCredentials(this.secrets, { id: server.id, asClient: server.asClient! }, info.asIssuer);
    for (let attempt = 0; ; attempt++) {
      const grant = await this.identity.requestIdJag({
        audience: info.asIssuer,
        resource: info.resource,
        scope: scopes.length ? scopes.join(' ') : undefined,
        serverId: server.id,
      });
      const app = this.resourceApp(info.asIssuer);
      const warning = await this.usage.increment(server.id, app);
      if (warning) {
        this.log.warn('ID-JAG quota warning', { serverId: server.id, count: warning.count, quota: warning.quota });
        this.emit({ type: 'quota_warning', serverId: server.id, warning });
      }
      // Validity is judged on the wall clock, like the parties do; the injectable `now` only drives renewal timing.
      const grantScopes = checkIdJag(grant.idJag, info, credentials.clientId, server.id, Date.now());
      try {
        const redeemed = await redeemIdJag({
          tokenEndpoint: info.tokenEndpoint,
          asIssuer: info.asIssuer,
          idJag: grant.idJag,
          credentials,
          fetch: this.fetchFn,
          serverId: server.id,
        });
        const now = this.now();
        const token: CachedToken = {
          accessToken: redeemed.accessToken,
          tokenType: redeemed.tokenType,
          // Without expires_in, assume a short life rather than forever.
          expiresAt: now + (redeemed.expiresIn ?? 300) * 1000,
          obtainedAt: now,
          scopes: splitScopes(redeemed.scope ?? grant.scope).length ? splitScopes(redeemed.scope ?? grant.scope) : (grantScopes ?? scopes),
        };
        await this.cache.put(key, token);
        this.emit({
          type: 'token_minted',
          serverId: server.id,
          scopes: token.scopes,
          expiresAt: token.expiresAt,
          durationMs: now - started,
          grant: grantRefOf(token),
          idJag: jtiRef(grant.idJag),
        });
        this.log.info('token minted', {
          serverId: server.id,
          scopes: token.scopes.join(' '),
          expiresInS: Math.round((token.expiresAt - now) / 1000),
        });
        return token;
      } catch (e) {
        // An ID-JAG is single use: the AS answers invalid_grant to a replayed or expired one, which gets one fresh ID-JAG.
        if (attempt === 0 && e instanceof LanyardError && e.code === ErrorCodes.AS_GRANT_REJECTED && e.oauth?.error === 'invalid_grant')
          continue;
        throw e;
      }
    }
  }

  /** Drops a discovery that came from the state file, in memory and in the file. */
  private forgetRemembered(serverId: string): void {
    const state = this.states.get(serverId);
    if (state?.infoFromFile) {
      state.info = undefined;
      state.infoFromFile = false;
      // Chosen from the remembered metadata (challenged or supported scopes): chosen again from the new one.
      state.scopes = undefined;
    }
    this.remembered?.forgetAuth(serverId);
  }

  private serve(state: ServerState, token: CachedToken): BearerToken {
    state.lastToken = token;
    state.lastError = undefined;
    return { accessToken: token.accessToken, tokenType: token.tokenType, expiresAt: token.expiresAt, scopes: token.scopes };
  }

  /** Who the IdP meters an ID-JAG against: the signed-in user at the resource app (the AS the grant is for). */
  private resourceApp(audience: string): ResourceAppUse | undefined {
    const s = this.identity.state;
    if (s.status !== 'signed_in' && s.status !== 'expired') return undefined;
    return { idpIssuer: this.identity.issuer, subject: s.user.sub, audience };
  }

  private currentUser() {
    const s = this.identity.state;
    if (s.status === 'signed_in' || s.status === 'expired') return s.user;
    throw new LanyardError(
      ErrorCodes.NOT_SIGNED_IN,
      'You are not signed in to your identity provider.',
      'Click "Sign in" in the Lanyard tray or dashboard, or run `lanyard login`.',
    );
  }

  private requireServer(serverId: string): BrokeredServer {
    const server = this.getServer(serverId);
    if (!server)
      throw new LanyardError(
        ErrorCodes.SERVER_UNKNOWN,
        `No server "${serverId}" is configured.`,
        'Run `lanyard servers list` to see the configured servers.',
        { serverId },
      );
    return server;
  }

  private state(serverId: string): ServerState {
    let state = this.states.get(serverId);
    if (!state) this.states.set(serverId, (state = {}));
    return state;
  }

  private emit(event: TokenEvent): void {
    this.events.emit(event);
  }
}

/**
 * The request's headers as a plain object with the authorization header replaced (or removed): on every upstream
 * request, so no Headers object is built for it (node:http and fetch both take a plain object). Names are lowercased;
 * repeated names are joined with ", " as Headers would.
 */
export function withAuthorization(from: RequestInit['headers'], authorization: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (name: string, value: string) => {
    const key = name.toLowerCase();
    out[key] = out[key] === undefined ? value : `${out[key]}, ${value}`;
  };
  if (from instanceof Headers) from.forEach((value, name) => add(name, value));
  else if (Array.isArray(from)) for (const [name, value] of from as Array<[string, string]>) add(name, value);
  else if (from) for (const name of Object.keys(from)) add(name, (from as Record<string, string>)[name]!);
  delete out.authorization;
  if (authorization !== undefined) out.authorization = authorization;
  return out;
}

/**
 * tokenCacheKey for a server's parts, reusing the last one while nothing it was made from changed (a SHA-256 and a
 * sorted copy of the scopes on every upstream request otherwise). The scope list is compared by identity: the service
 * replaces it (step-up, rediscovery), never edits it in place.
 */
function keyOf(state: ServerState, parts: TokenKeyParts): string {
  const last = state.lastKey;
  if (
    last &&
    last.parts.serverId === parts.serverId &&
    last.parts.idpIssuer === parts.idpIssuer &&
    last.parts.subject === parts.subject &&
    last.parts.resource === parts.resource &&
    last.parts.asIssuer === parts.asIssuer &&
    last.parts.clientId === parts.clientId &&
    last.parts.scopes === parts.scopes
  )
    return last.key;
  const key = tokenCacheKey(parts);
  state.lastKey = { parts, key };
  return key;
}

/** MCP scope selection: challenged scopes, else the PRM's scopes_supported, plus any the admin configured. */
function initialScopes(info: ServerAuthInfo, server: BrokeredServer): string[] {
  const base = info.challengedScopes.length ? info.challengedScopes : info.scopesSupported;
  return [...new Set([...base, ...(server.scopes ?? [])])];
}

/**
 * Sanity-checks the ID-JAG before it is sent anywhere: it must be for this AS and name the client
 * Lanyard will authenticate as. A client_id mismatch is an admin mapping problem worth naming precisely, and sending
 * our AS credentials with a grant that cannot work would only burn the grant.
 */
function checkIdJag(idJag: string, info: ServerAuthInfo, clientId: string, serverId: string, now: number): string[] | undefined {
  let claims: ReturnType<typeof decodeJwt>;
  try {
    const header = decodeProtectedHeader(idJag);
    claims = decodeJwt(idJag);
    if (header.typ && header.typ.toLowerCase() !== 'oauth-id-jag+jwt') throw new Error('typ');
  } catch {
    throw new LanyardError(
      ErrorCodes.IDP_NOT_XAA_CAPABLE,
      'The identity provider returned something that is not an ID-JAG.',
      'Check that the IdP supports Cross-App Access (Okta: org authorization server).',
      { serverId },
    );
  }
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.some((a) => a !== undefined && sameIssuer(a, info.asIssuer))) {
    throw new LanyardError(
      ErrorCodes.EXCHANGE_DENIED,
      `The identity provider issued a grant for ${String(aud[0])}, not for this server's authorization server (${info.asIssuer}).`,
      'Ask your IdP admin to check the issuer URL set for this resource connection.',
      { serverId },
    );
  }
  if (claims.client_id !== undefined && claims.client_id !== clientId) {
    throw new LanyardError(
      ErrorCodes.AS_CLIENT_REJECTED,
      `The identity provider maps Lanyard to client id "${String(claims.client_id)}" at ${info.asIssuer}, but this server is configured with "${clientId}".`,
      `Set this server's client id to "${String(claims.client_id)}", or ask your IdP admin to fix the resource connection.`,
      { serverId },
    );
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 < now - 30_000) {
    throw new LanyardError(
      ErrorCodes.EXCHANGE_DENIED,
      "The identity provider issued an already expired grant; this machine's clock may be wrong.",
      'Check the system clock and time zone, then retry.',
      { serverId },
    );
  }
  return typeof claims.scope === 'string' ? splitScopes(claims.scope) : undefined;
}

/** The audit reference of an ID-JAG (a short hash of its `jti`), or undefined when it carries none. */
function jtiRef(idJag: string): string | undefined {
  try {
    const jti = decodeJwt(idJag).jti;
    return typeof jti === 'string' ? shortHash('jti', jti) : undefined;
  } catch {
    return undefined;
  }
}
