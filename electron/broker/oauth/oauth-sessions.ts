import { postProbeInitialize } from '../util/initialize-probe';
import { randomBytes } from 'node:crypto';
import {
  auth,
  checkResourceAllowed,
  computeScopeUnion,
  DpopSession,
  discoverOAuthServerInfo,
  extractWWWAuthenticateParams,
  generateDpopKeyPair,
  isHttpsUrl,
  refreshAuthorization,
  resourceUrlFromServerUrl,
  validateAuthorizationResponseIssuer,
  withDpop,
  type AuthorizationServerMetadata,
  type DpopKeyPair,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type OAuthTokens,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
} from '@modelcontextprotocol/client';
import { calculateJwkThumbprint, exportJWK, importJWK, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { Emitter } from '../../../shared/emitter';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { LanyardError, toErrorInfo } from '../errors';
import type { BearerToken } from '../exchange/token-service';
import { openLoopbackRedirect, type LoopbackErrors } from '../identity/loopback';
import { readBoundCredential, type SecretStore } from '../secrets/secret-store';
import type { FetchLike } from '../util/http';
import { silentLogger, type Logger } from '../util/log';
import { policyFetch } from '../util/policy-fetch';
import { ACCESS_TOKEN_RENEWAL, needsRenewal } from '../util/renewal';
import { SingleFlight } from '../util/single-flight';
import { safeOrigin } from '../util/url-policy';
import { asUnreachable, authorizationRequired, authorizeAgainFix, toOAuthPathError } from './errors';
import { GrantStore, oauthKeys, sameParty, type GrantParty, type ServerRecord, type StoredGrant } from './grant-store';
import type { OAuthChallenge, OAuthEvent, OAuthPath, OAuthServerRef, OAuthStatus } from './types';

/**
 * The OAuth 2.1 path: a token for an MCP server obtained by authorization code + PKCE at the server's own
 * authorization server, on the MCP SDK's client auth (`auth()`, `discoverOAuthServerInfo`, `refreshAuthorization`,
 * `DpopSession`). What Lanyard adds around the SDK, and why (docs/protocol.md, "The OAuth 2.1 path"):
 *
 * - one browser flow per server however many callers, resolving with its link at once (IDEs never wait on a browser);
 * - the loopback redirect listener shared with the IdP sign-in (RFC 8252 §7.3), with the `state` check;
 * - refusals the SDK leaves to the host: an authorization server that does not advertise PKCE S256, a protected
 *   resource that names another resource, an authorization server other than the pinned one;
 * - the keychain as the only store (grant keyed by issuer, client id and resource), read back after a restart;
 * - refresh through one single flight per server, rotation-safe, with "authorize again" on a 4xx and backoff on a 5xx;
 * - step-up on insufficient_scope with a bounded number of attempts per scope set;
 * - RFC 7009 revocation on `forget()`;
 * - the SSRF policy (util/url-policy.ts) on every request the server or its metadata makes Lanyard send.
 */

export interface OAuthSessionsDeps {
  secrets: SecretStore;
  /** Opens the system browser (RFC 8252 §8.12). Tests pass a function that plays the user. */
  openUrl: (url: string) => void | Promise<void>;
  fetch?: FetchLike | undefined;
  log?: Logger | undefined;
  now?: (() => number) | undefined;
  /** Lanyard's Client ID Metadata Document URL (config `oauth.clientMetadataUrl`, or managed config), if any. */
  clientMetadataUrl: () => string | undefined;
  /** A fixed loopback port for the redirect (an authorization server that needs an exact redirect URI); else ephemeral. */
  redirectPort?: number | undefined;
  /** How long the browser step may take before the flow gives up (default 5 minutes). */
  authorizeTimeoutMs?: number | undefined;
  /** The client name shown on consent screens and sent in dynamic registration. */
  clientName?: string | undefined;
}

/** Step-ups for the same scope set before INSUFFICIENT_SCOPE: the first authorization plus two step-ups stay ≤ 3. */
export const MAX_STEP_UPS_PER_SCOPE_SET = 2;
/** A scope set's step-up count is forgotten after this long, so a later, legitimate step-up is not refused forever. */
const STEP_UP_WINDOW_MS = 10 * 60_000;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

interface Flow {
  started: Promise<{ authorizeUrl: string; done: Promise<void> }>;
  authorizeUrl?: string | undefined;
  abort: AbortController;
}

interface ServerState {
  record?: ServerRecord | undefined;
  grant?: StoredGrant | undefined;
  loaded: boolean;
  lastError?: ErrorInfo | undefined;
  /**
   * The last error is the server's or its authorization server's (metadata, PKCE, an outage): authorizing again does not
   * help. Otherwise (a closed browser, a refused or forged response, a dead grant) the state is "authorize again".
   */
  lastErrorBlocks?: boolean | undefined;
  /** Scopes asked for by step-up, added to the next authorization. */
  pendingScopes?: string | undefined;
  stepUps: Map<string, { count: number; since: number }>;
  backoffUntil?: number | undefined;
  backoffMs?: number | undefined;
  dpop?: DpopSession | undefined;
}

export class OAuthSessions implements OAuthPath {
  private readonly store: GrantStore;
  private readonly fetch: FetchLike;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly events = new Emitter<OAuthEvent>();
  private readonly states = new Map<string, ServerState>();
  private readonly flows = new Map<string, Flow>();
  private readonly refreshes = new SingleFlight<StoredGrant>();

  constructor(private readonly deps: OAuthSessionsDeps) {
    this.store = new GrantStore(deps.secrets);
    this.fetch = deps.fetch ?? ((input, init) => fetch(input, init));
    this.log = deps.log ?? silentLogger;
    this.now = deps.now ?? Date.now;
  }

  onEvent(listener: (event: OAuthEvent) => void): () => void {
    return this.events.on(listener);
  }

  /** Reads the server's grant back from the keychain (at start-up), so `status()` is right before the first call. */
  async load(serverId: string): Promise<OAuthStatus> {
    await this.loaded(serverId);
    return this.status(serverId);
  }

  status(serverId: string): OAuthStatus {
    const s = this.states.get(serverId);
    const flow = this.flows.get(serverId);
    const grant = s?.grant;
    const base = {
      asIssuer: s?.record?.party.issuer,
      clientId: s?.record?.party.clientId,
      scopes: grant?.scopes ?? [],
      tokenExpiresAt: grant?.expiresAt,
      lastError: s?.lastError,
    };
    if (flow) return { ...base, state: 'authorizing', authorizeUrl: flow.authorizeUrl };
    if (grant) return { ...base, state: 'authorized' };
    if (s?.lastError && s.lastErrorBlocks) return { ...base, state: 'error' };
    return { ...base, state: 'authorization_required' };
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Tokens

  async getToken(server: OAuthServerRef): Promise<BearerToken> {
    const s = await this.loaded(server.id);
    let grant = s.grant;
    if (!grant || !s.record) {
      throw this.flows.has(server.id)
        ? authorizationRequired(server.id, `Lanyard is waiting for you to authorize ${server.id} in the browser.`)
        : authorizationRequired(server.id, `Lanyard is not authorized at the authorization server of ${server.id} yet.`);
    }
    if (server.expectedAsIssuer && s.record.party.issuer !== server.expectedAsIssuer) {
      throw authorizationRequired(
        server.id,
        `Lanyard's grant for ${server.id} is from another authorization server than the one configured.`,
      );
    }
    if (this.isDue(grant)) grant = await this.refresh(server, s);
    return this.serve(grant);
  }

  private isDue(grant: StoredGrant): boolean {
    if (grant.expiresAt === undefined) return false;
    return needsRenewal({ issuedAt: grant.issuedAt, expiresAt: grant.expiresAt }, this.now(), ACCESS_TOKEN_RENEWAL);
  }

  private serve(grant: StoredGrant): BearerToken {
    return {
      accessToken: grant.accessToken,
      tokenType: grant.tokenType,
      // A token without `expires_in` is served until the server answers 401 (invalidate): an hour ahead, rolling.
      expiresAt: grant.expiresAt ?? this.now() + 3_600_000,
      scopes: grant.scopes,
    };
  }

  /** One refresh per server at a time; every caller waiting on it gets its result. */
  private refresh(server: OAuthServerRef, s: ServerState): Promise<StoredGrant> {
    return this.refreshes.run(server.id, async () => {
      const grant = s.grant;
      const record = s.record;
      if (!grant || !record)
        throw authorizationRequired(server.id, `Lanyard is not authorized at the authorization server of ${server.id}.`);
      const stillValid = grant.expiresAt === undefined || grant.expiresAt > this.now();
      if (!grant.refreshToken) {
        if (stillValid) return grant;
        await this.dropGrant(server.id, s, authorizationRequired(server.id, `Lanyard's access to ${server.id} expired.`));
        throw authorizationRequired(server.id, `Lanyard's access to ${server.id} expired.`);
      }
      if (s.backoffUntil !== undefined && this.now() < s.backoffUntil) {
        if (stillValid) return grant;
        throw asUnreachable(server.id, `The authorization server of ${server.id} is failing; Lanyard retries shortly`);
      }
      const statuses: number[] = [];
      const guarded = this.recording(this.guardedFetch(server), statuses);
      try {
        const client = await this.clientFor(server, record);
        const dpop = grant.dpopKey ? await this.dpopFor(server.id, s, grant.dpopKey) : undefined;
        const metadata = record.discovery.authorizationServerMetadata;
        const tokens = await refreshAuthorization(record.discovery.authorizationServerUrl, {
          ...(metadata ? { metadata } : {}),
          clientInformation: client,
          refreshToken: grant.refreshToken,
          // RFC 8707: the resource goes where the authorization sent it (servers without metadata got none).
          ...(record.discovery.resourceMetadata ? { resource: record.party.resource } : {}),
          ...(dpop ? { dpop } : {}),
          fetchFn: guarded,
        });
        const next = this.grantFrom(tokens, record.party, grant.dpopKey, grant.scopes);
        // Rotation-safe: the new refresh token is in the keychain before the new access token is served, so a crash
        // right after the refresh cannot leave Lanyard holding only the refresh token the server just retired.
        await this.store.writeGrant(next);
        s.grant = next;
        s.backoffUntil = undefined;
        s.backoffMs = undefined;
        s.lastError = undefined;
        this.events.emit({ type: 'oauth_refreshed', serverId: server.id, scopes: next.scopes, expiresAt: next.expiresAt });
        return next;
      } catch (e) {
        const status = statuses.at(-1);
        const error = toOAuthPathError(e, server.id, 'refresh', status);
        if (error.code === ErrorCodes.AUTHORIZATION_REQUIRED) {
          await this.dropGrant(server.id, s, error);
          throw error;
        }
        // 5xx, network, 429: back off, keep serving the current token while it is valid.
        s.backoffMs = Math.min(BACKOFF_MAX_MS, (s.backoffMs ?? BACKOFF_MIN_MS / 2) * 2);
        s.backoffUntil = this.now() + s.backoffMs;
        s.lastError = error.toInfo();
        s.lastErrorBlocks = true;
        this.log.warn('oauth: refresh failed, backing off', { serverId: server.id, code: error.code, backoffMs: s.backoffMs });
        this.events.emit({ type: 'oauth_error', serverId: server.id, error: error.toInfo() });
        if (stillValid) return grant;
        throw error;
      }
    });
  }

  /** The grant is dead (refused refresh token, expired without one): wipe it; one "authorize again" state. */
  private async dropGrant(serverId: string, s: ServerState, error: LanyardError): Promise<void> {
    if (s.record) await this.store.deleteGrant(s.record.party);
    s.grant = undefined;
    s.dpop = undefined;
    s.lastError = error.toInfo();
    s.lastErrorBlocks = false;
    this.log.info('oauth: grant dropped, authorization required', { serverId, code: error.code });
    this.events.emit({ type: 'oauth_authorization_required', serverId, error: error.toInfo() });
  }

  async invalidate(serverId: string, accessToken: string): Promise<void> {
    const s = await this.loaded(serverId);
    const grant = s.grant;
    if (!grant || grant.accessToken !== accessToken) return;
    // Expired now: the next getToken refreshes (or, without a refresh token, asks for authorization).
    const next: StoredGrant = { ...grant, issuedAt: Math.min(grant.issuedAt, this.now() - 1), expiresAt: this.now() - 1 };
    s.grant = next;
    await this.store.writeGrant(next);
  }

  async stepUp(server: OAuthServerRef, challengedScope: string | undefined): Promise<void> {
    const s = await this.loaded(server.id);
    const union = computeScopeUnion(s.grant?.scopes.join(' '), s.pendingScopes, challengedScope) ?? '';
    const key = union.split(' ').sort().join(' ');
    const now = this.now();
    const seen = s.stepUps.get(key);
    const count = seen && now - seen.since < STEP_UP_WINDOW_MS ? seen.count : 0;
    if (count >= MAX_STEP_UPS_PER_SCOPE_SET) {
      throw new LanyardError(
        ErrorCodes.INSUFFICIENT_SCOPE,
        `${server.id} keeps asking for more access (${union || 'unnamed scopes'}) after ${count} authorizations that granted what it asked for.`,
        "Ask the server's operator which scopes your account can be granted; Lanyard stops asking to avoid a loop.",
        { serverId: server.id },
      );
    }
    s.stepUps.set(key, { count: count + 1, since: seen && count > 0 ? seen.since : now });
    s.pendingScopes = union || undefined;
    this.log.info('oauth: step-up requested', { serverId: server.id, scopes: union });
  }

  // -------------------------------------------------------------------------------------------------------------------
  // The browser authorization

  authorize(
    server: OAuthServerRef,
    options: { openBrowser?: boolean; challenge?: OAuthChallenge | undefined } = {},
  ): Promise<{ authorizeUrl: string; done: Promise<void> }> {
    const existing = this.flows.get(server.id);
    if (existing) return existing.started;
    const flow: Flow = { abort: new AbortController(), started: undefined as never };
    flow.started = this.startFlow(server, options, flow);
    this.flows.set(server.id, flow);
    flow.started.catch(() => this.flows.get(server.id) === flow && this.flows.delete(server.id));
    return flow.started;
  }

  private async startFlow(
    server: OAuthServerRef,
    options: { openBrowser?: boolean; challenge?: OAuthChallenge | undefined },
    flow: Flow,
  ): Promise<{ authorizeUrl: string; done: Promise<void> }> {
    const s = await this.loaded(server.id);
    const fail = (e: unknown): never => {
      const error = toOAuthPathError(e, server.id, 'authorize');
      s.lastError = error.toInfo();
      s.lastErrorBlocks = true;
      this.events.emit({ type: 'oauth_error', serverId: server.id, error: error.toInfo() });
      this.log.warn('oauth: authorization failed', { serverId: server.id, code: error.code });
      throw error;
    };
    let redirect: Awaited<ReturnType<typeof openLoopbackRedirect>> | undefined;
    try {
      const guarded = this.guardedFetch(server);
      const challenge = options.challenge ?? (await this.probeChallenge(server, guarded));
      const discovery = await this.discover(server, guarded, challenge);
      const metadata = discovery.authorizationServerMetadata;
      const issuer = metadata?.issuer ?? discovery.authorizationServerUrl;
      const resource = discovery.resourceMetadata?.resource ?? resourceUrlFromServerUrl(server.url).href;

      redirect = await openLoopbackRedirect({
        port: this.deps.redirectPort,
        timeoutMs: this.deps.authorizeTimeoutMs ?? 5 * 60_000,
        signal: flow.abort.signal,
        errors: loopbackErrors(server.id, this.deps.redirectPort),
      });
      const provider = new FlowProvider({
        serverId: server.id,
        redirectUri: redirect.redirectUri,
        clientName: this.deps.clientName ?? 'Lanyard',
        clientMetadataUrl: cimdUrl(this.deps.clientMetadataUrl()),
        discovery,
        preRegistered: await this.preRegistered(server, issuer),
        registered: await this.registeredClient(server.id, s.record),
        saveClient: (client) => this.store.writeClient(server.id, client),
        dpop: await this.newDpopIfAdvertised(metadata),
      });
      // The challenge's scope, else the resource's scopes_supported (MCP scope selection), plus step-up and the
      // administrator's scopes; the SDK adds offline_access when the authorization server lists it.
      const scope = computeScopeUnion(
        challenge.scope ?? discovery.resourceMetadata?.scopes_supported?.join(' '),
        s.pendingScopes,
        server.scopes?.join(' '),
      );
      const authOptions = {
        serverUrl: server.url,
        fetchFn: guarded,
        ...(scope ? { scope } : {}),
        ...(challenge.resourceMetadataUrl ? { resourceMetadataUrl: new URL(challenge.resourceMetadataUrl) } : {}),
      };
      const result = await auth(provider, { ...authOptions, forceReauthorization: true });
      if (result !== 'REDIRECT' || !provider.authorizationUrl) {
        throw new LanyardError(
          ErrorCodes.AUTHORIZATION_FAILED,
          `The authorization of ${server.id} did not produce a link to open.`,
          authorizeAgainFix(server.id),
          { serverId: server.id },
        );
      }
      const authorizeUrl = provider.authorizationUrl.href;
      flow.authorizeUrl = authorizeUrl;
      s.lastError = undefined;
      this.log.info('oauth: authorization started', {
        serverId: server.id,
        issuer,
        clientIdKind: provider.clientIdKind,
        authorizationServer: safeOrigin(authorizeUrl),
      });
      const openedRedirect = redirect;
      const done = this.finishFlow(server, s, flow, provider, openedRedirect, authOptions, resource, issuer);
      done.catch(() => {});
      if (options.openBrowser !== false) {
        Promise.resolve()
          .then(() => this.deps.openUrl(authorizeUrl))
          .catch((e: unknown) =>
            this.log.warn('oauth: could not open the browser', { serverId: server.id, error: toErrorInfo(e).message }),
          );
      }
      return { authorizeUrl, done };
    } catch (e) {
      await redirect?.close().catch(() => {});
      return fail(e);
    }
  }

  private async finishFlow(
    server: OAuthServerRef,
    s: ServerState,
    flow: Flow,
    provider: FlowProvider,
    redirect: Awaited<ReturnType<typeof openLoopbackRedirect>>,
    authOptions: { serverUrl: string; fetchFn: FetchLike; scope?: string; resourceMetadataUrl?: URL },
    resource: string,
    issuer: string,
  ): Promise<void> {
    try {
      const callback = await redirect.waitForCallback();
      const params = callback.searchParams;
      const metadata = provider.discovery?.authorizationServerMetadata;
      // The state binds the response to this flow (RFC 6749 §10.12): anything else is a forged or stale redirect.
      if (!provider.expectedState || params.get('state') !== provider.expectedState) {
        throw new LanyardError(
          ErrorCodes.AUTHORIZATION_FAILED,
          `The browser came back to Lanyard with an authorization response that does not belong to this authorization of ${server.id} (state mismatch); it was ignored.`,
          authorizeAgainFix(server.id),
          { serverId: server.id },
        );
      }
      const code = params.get('code');
      if (!code) {
        // An error response: its issuer is checked first (RFC 9207 §2.4); its text is the AS's, so only the code is shown.
        validateAuthorizationResponseIssuer({
          iss: params.get('iss') ?? undefined,
          expectedIssuer: metadata?.issuer,
          issParameterSupported: metadata?.authorization_response_iss_parameter_supported === true,
        });
        const error = params.get('error') ?? 'no code';
        throw new LanyardError(
          ErrorCodes.AUTHORIZATION_FAILED,
          error === 'access_denied'
            ? `The authorization of ${server.id} was declined in the browser.`
            : `The authorization server of ${server.id} did not authorize Lanyard (${error.replace(/[^\w.-]/g, '').slice(0, 60)}).`,
          authorizeAgainFix(server.id),
          { serverId: server.id },
        );
      }
      const statuses: number[] = [];
      const result = await auth(provider, {
        ...authOptions,
        fetchFn: this.recording(authOptions.fetchFn, statuses),
        authorizationCode: code,
        ...(params.has('iss') ? { iss: params.get('iss') ?? '' } : {}),
      }).catch((e: unknown) => {
        throw toOAuthPathError(e, server.id, 'authorize', statuses.at(-1));
      });
      const tokens = provider.savedTokens;
      // The client the code was redeemed with: the one the SDK just saved, or the stored registration it was handed back.
      const client = provider.clientInformation();
      const discovery = provider.discovery;
      if (result !== 'AUTHORIZED' || !tokens || !client || !discovery) {
        throw new LanyardError(
          ErrorCodes.AUTHORIZATION_FAILED,
          `The authorization of ${server.id} did not complete.`,
          authorizeAgainFix(server.id),
          {
            serverId: server.id,
          },
        );
      }
      const party: GrantParty = { issuer, clientId: client.client_id, resource };
      const dpopKey = provider.dpopSession && tokens.token_type.toLowerCase() === 'dpop' ? provider.dpopPrivateJwk : undefined;
      const requested = authOptions.scope?.split(' ').filter(Boolean) ?? [];
      const grant = this.grantFrom(tokens, party, dpopKey, requested);
      const record: ServerRecord = { v: 1, party, discovery, clientKind: provider.clientIdKind };
      // Replace the previous grant (another party, or the same one) only now that the new one is in hand.
      if (s.record && !sameParty(s.record.party, party)) await this.store.deleteGrant(s.record.party);
      await this.store.writeGrant(grant);
      await this.store.writeRecord(server.id, record);
      s.record = record;
      s.grant = grant;
      s.dpop = dpopKey ? provider.dpopSession : undefined;
      s.pendingScopes = undefined;
      s.lastError = undefined;
      s.backoffUntil = undefined;
      redirect.respond({ ok: true, authorized: server.id });
      this.log.info('oauth: authorized', { serverId: server.id, issuer, scopes: grant.scopes, tokenType: grant.tokenType });
      this.events.emit({ type: 'oauth_authorized', serverId: server.id, scopes: grant.scopes, expiresAt: grant.expiresAt });
    } catch (e) {
      const error = toOAuthPathError(e, server.id, 'authorize');
      redirect.respond({ ok: false, message: error.message });
      s.lastError = error.toInfo();
      s.lastErrorBlocks = error.code !== ErrorCodes.AUTHORIZATION_FAILED && error.code !== ErrorCodes.AUTHORIZATION_REQUIRED;
      this.log.warn('oauth: authorization failed', { serverId: server.id, code: error.code });
      this.events.emit({ type: 'oauth_error', serverId: server.id, error: error.toInfo() });
      throw error;
    } finally {
      if (this.flows.get(server.id) === flow) this.flows.delete(server.id);
      await redirect.close().catch(() => {});
    }
  }

  private grantFrom(tokens: OAuthTokens, party: GrantParty, dpopKey: JWK | undefined, requestedScopes: string[]): StoredGrant {
    const now = this.now();
    // RFC 6749 §5.1: `scope` may be omitted when it is what was asked for.
    const scopes = tokens.scope ? tokens.scope.split(' ').filter(Boolean) : requestedScopes;
    return {
      v: 1,
      boundTo: party,
      accessToken: tokens.access_token,
      tokenType: tokens.token_type.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer',
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      issuedAt: now,
      ...(typeof tokens.expires_in === 'number' ? { expiresAt: now + tokens.expires_in * 1000 } : {}),
      scopes,
      ...(dpopKey ? { dpopKey } : {}),
    };
  }

  /**
   * The challenge an unauthenticated request gets (RFC 9728 §5.1): its `resource_metadata` and `scope` start discovery
   * and scope selection when the caller (the dashboard's Authorize button) has no 401 of its own to pass.
   */
  private async probeChallenge(server: OAuthServerRef, guarded: FetchLike): Promise<OAuthChallenge> {
    try {
      const response = await postProbeInitialize(guarded, server.url, { clientName: 'lanyard', signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel().catch(() => {});
      const session = response.headers.get('mcp-session-id');
      if (response.ok && session) {
        // The server let the probe in without a token (some only guard later calls): end the session it opened.
        await guarded(server.url, { method: 'DELETE', headers: { 'mcp-session-id': session }, signal: AbortSignal.timeout(5_000) })
          .then((r) => r.body?.cancel())
          .catch(() => {});
      }
      if (response.status !== 401 && response.status !== 403) return {};
      const params = extractWWWAuthenticateParams(response);
      return {
        ...(params.resourceMetadataUrl ? { resourceMetadataUrl: params.resourceMetadataUrl.href } : {}),
        ...(params.scope ? { scope: params.scope } : {}),
      };
    } catch {
      // No challenge to learn from: discovery starts at the well-known locations.
      return {};
    }
  }

  /**
   * RFC 9728 then RFC 8414 / OpenID discovery (the SDK's order and fallbacks), plus the checks the SDK leaves to us.
   */
  private async discover(server: OAuthServerRef, guarded: FetchLike, challenge: OAuthChallenge): Promise<OAuthDiscoveryState> {
    const statuses: number[] = [];
    let info;
    try {
      info = await discoverOAuthServerInfo(server.url, {
        fetchFn: this.recording(guarded, statuses),
        ...(challenge.resourceMetadataUrl ? { resourceMetadataUrl: new URL(challenge.resourceMetadataUrl) } : {}),
      });
    } catch (e) {
      if (statuses.some((st) => st >= 500)) throw asUnreachable(server.id, `The authorization server of ${server.id} failed`, e);
      throw toOAuthPathError(e, server.id, 'authorize');
    }
    const invalid = (what: string, fix = "Ask the server's operator to fix its OAuth metadata.") =>
      new LanyardError(ErrorCodes.SERVER_METADATA_INVALID, what, fix, { serverId: server.id });
    // A 5xx while looking for the metadata is an outage, not "this server has none".
    if (statuses.some((st) => st >= 500))
      throw asUnreachable(server.id, `${server.id} or its authorization server failed during discovery`);
    const prm = info.resourceMetadata;
    const metadata = info.authorizationServerMetadata;
    if (prm && !checkResourceAllowed({ requestedResource: resourceUrlFromServerUrl(server.url), configuredResource: prm.resource })) {
      throw invalid(
        `${server.id} publishes protected-resource metadata for another resource (${safeOrigin(prm.resource)}); Lanyard does not authorize for it (RFC 9728 §3.3).`,
      );
    }
    if (prm && !prm.authorization_servers?.length) {
      throw invalid(`${server.id}'s protected-resource metadata names no authorization server.`);
    }
    if (!metadata && prm) {
      throw invalid(
        `The authorization server ${safeOrigin(info.authorizationServerUrl)} named by ${server.id} publishes no metadata (RFC 8414).`,
      );
    }
    if (metadata && !metadata.code_challenge_methods_supported?.includes('S256')) {
      // MCP authorization: a client MUST refuse an authorization server that does not advertise PKCE S256.
      throw new LanyardError(
        ErrorCodes.AUTHORIZATION_FAILED,
        `The authorization server of ${server.id} (${safeOrigin(metadata.issuer)}) does not advertise PKCE with S256, so Lanyard will not use it.`,
        "Ask the server's operator to enable PKCE (S256) and list it in `code_challenge_methods_supported`.",
        { serverId: server.id },
      );
    }
    const issuer = metadata?.issuer ?? info.authorizationServerUrl;
    if (server.expectedAsIssuer && issuer !== server.expectedAsIssuer) {
      throw invalid(
        `${server.id} now names the authorization server ${safeOrigin(issuer)}, not the one configured for it (${safeOrigin(server.expectedAsIssuer)}).`,
        'If the change is expected, update the server in Lanyard; otherwise ask its operator.',
      );
    }
    return {
      authorizationServerUrl: info.authorizationServerUrl,
      ...(metadata ? { authorizationServerMetadata: metadata } : {}),
      ...(prm ? { resourceMetadata: prm } : {}),
      ...(challenge.resourceMetadataUrl ? { resourceMetadataUrl: challenge.resourceMetadataUrl } : {}),
    };
  }

  /** The stored registration, stamped (stampedClient); a stamp added now is written back, so storage heals once. */
  private async registeredClient(serverId: string, record: ServerRecord | undefined): Promise<StoredOAuthClientInformation | undefined> {
    const stored = await this.store.readClient(serverId);
    const stamped = stampedClient(stored, record);
    if (stamped && stamped !== stored) await this.store.writeClient(serverId, stamped);
    return stamped;
  }

  /** The administrator's pre-registered client for this server, its secret read for this authorization server only. */
  private async preRegistered(server: OAuthServerRef, issuer: string): Promise<StoredOAuthClientInformation | undefined> {
    const configured = server.oauthClient;
    if (!configured) return undefined;
    if (configured.method === 'private_key_jwt') {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `The client for ${server.id} is set to private_key_jwt, which the OAuth path does not support yet.`,
        'Use client_secret_basic, client_secret_post or none for this client.',
        { serverId: server.id },
      );
    }
    const info: StoredOAuthClientInformation = { client_id: configured.clientId, issuer, token_endpoint_auth_method: configured.method };
    if (configured.method === 'none') return info;
    const read = await readBoundCredential(this.deps.secrets, oauthKeys.preRegisteredSecret(server.id), {
      issuer,
      clientId: configured.clientId,
    });
    if (read.state !== 'ok') {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        read.state === 'missing'
          ? `No client secret is stored for Lanyard's client at ${server.id}'s authorization server.`
          : `The stored client secret for ${server.id} belongs to another authorization server or client id; Lanyard does not send it here.`,
        `Store the secret again with \`lanyard servers add ${server.id} --oauth-client-id ${configured.clientId} --client-secret-stdin\`.`,
        { serverId: server.id },
      );
    }
    return { ...info, client_secret: read.value };
  }

  /** The client to refresh with: the pre-registered one, or the one registered (dynamically or by CIMD) for this grant. */
  private async clientFor(server: OAuthServerRef, record: ServerRecord): Promise<StoredOAuthClientInformation> {
    const party = record.party;
    if (record.clientKind === 'metadata-document') return { client_id: party.clientId, issuer: party.issuer };
    if (record.clientKind === 'pre-registered') {
      const pre = await this.preRegistered(server, party.issuer);
      if (pre?.client_id === party.clientId) return pre;
    } else {
      const registered = await this.store.readClient(server.id);
      if (registered?.client_id === party.clientId && (!registered.issuer || registered.issuer === party.issuer)) return registered;
    }
    throw authorizationRequired(server.id, `Lanyard's client at the authorization server of ${server.id} changed since it was authorized.`);
  }

  // -------------------------------------------------------------------------------------------------------------------
  // DPoP (RFC 9449)

  private async newDpopIfAdvertised(
    metadata: AuthorizationServerMetadata | undefined,
  ): Promise<{ session: DpopSession; privateJwk: JWK } | undefined> {
    const algs = (metadata as { dpop_signing_alg_values_supported?: unknown } | undefined)?.dpop_signing_alg_values_supported;
    if (!Array.isArray(algs) || !algs.includes('ES256')) return undefined;
    // Extractable so it can be kept in the keychain with the grant it is bound to (restart without a browser).
    const keyPair = await generateDpopKeyPair({ alg: 'ES256', extractable: true });
    const privateJwk = await exportJWK(keyPair.privateKey);
    return { session: await DpopSession.create({ keyPair }), privateJwk };
  }

  private async dpopFor(serverId: string, s: ServerState, privateJwk: JWK): Promise<DpopSession> {
    if (s.dpop) return s.dpop;
    const { d: _d, ...publicJwk } = privateJwk;
    void _d;
    const keyPair: DpopKeyPair = {
      privateKey: (await importJWK(privateJwk, 'ES256', { extractable: false })) as DpopKeyPair['privateKey'],
      publicKey: (await importJWK(publicJwk, 'ES256')) as DpopKeyPair['publicKey'],
      publicJwk,
      thumbprint: await calculateJwkThumbprint(publicJwk),
      alg: 'ES256',
    };
    s.dpop = await DpopSession.create({ keyPair });
    this.log.debug('oauth: DPoP key restored', { serverId });
    return s.dpop;
  }

  /**
   * A fetch that presents the server's token the way it was issued: `Bearer`, or `DPoP` with a fresh proof per request
   * and the resource server's nonce retry (RFC 9449 §7, §9, through the SDK's `withDpop`). It returns 401 and 403
   * answers to the caller, which decides between invalidate + retry, step-up and "Authorize <server> in Lanyard".
   */
  authorizedFetch(server: OAuthServerRef, base: FetchLike = this.fetch): FetchLike {
    return async (input, init) => {
      const token = await this.getToken(server);
      if (token.tokenType === 'DPoP') {
        const s = await this.loaded(server.id);
        const key = s.grant?.dpopKey;
        if (!key) throw authorizationRequired(server.id, `Lanyard lost the key its access to ${server.id} is bound to.`);
        const session = await this.dpopFor(server.id, s, key);
        const headers = new Headers(init?.headers);
        headers.delete('authorization');
        return withDpop(session, () => token.accessToken)(base)(input, { ...init, headers });
      }
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${token.accessToken}`);
      return base(input, { ...init, headers });
    };
  }

  /** Ends the authorizations under way (each closes its loopback listener as its flow settles). */
  async close(): Promise<void> {
    for (const flow of this.flows.values()) flow.abort.abort();
    this.flows.clear();
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Forget

  async forget(serverId: string): Promise<void> {
    const flow = this.flows.get(serverId);
    if (flow) {
      flow.abort.abort();
      this.flows.delete(serverId);
    }
    const s = await this.loaded(serverId);
    const record = s.record ?? (await this.store.readRecord(serverId));
    const grant = s.grant ?? (record ? await this.store.readGrant(record.party) : undefined);
    const endpoint = (record?.discovery.authorizationServerMetadata as { revocation_endpoint?: string } | undefined)?.revocation_endpoint;
    if (record && grant && endpoint) {
      await this.revoke(serverId, record, grant).catch((e: unknown) =>
        // Revocation is best effort (RFC 7009 §2.2: the AS may be gone); the wipe below happens regardless.
        this.log.warn('oauth: revocation failed', { serverId, error: toErrorInfo(e).message }),
      );
    }
    await this.store.wipe(serverId, record?.party);
    this.states.delete(serverId);
    // Only a grant that existed was revoked: a server that never had one (another path, never authorized) says nothing.
    if (grant) this.events.emit({ type: 'oauth_revoked', serverId });
  }

  /** RFC 7009 through openid-client: the refresh token first (it revokes the grant), then the access token. */
  private async revoke(serverId: string, record: ServerRecord, grant: StoredGrant): Promise<void> {
    const metadata = record.discovery.authorizationServerMetadata;
    if (!metadata) return;
    let secret: string | undefined;
    let method: string | undefined;
    if (record.clientKind === 'registered') {
      const registered = await this.store.readClient(serverId);
      if (registered?.client_id === record.party.clientId) {
        secret = registered.client_secret;
        method = (registered as { token_endpoint_auth_method?: string }).token_endpoint_auth_method;
      }
    } else if (record.clientKind === 'pre-registered') {
      const read = await readBoundCredential(this.deps.secrets, oauthKeys.preRegisteredSecret(serverId), record.party);
      if (read.state === 'ok') secret = read.value;
      method = metadata.token_endpoint_auth_methods_supported?.includes('client_secret_basic')
        ? 'client_secret_basic'
        : 'client_secret_post';
    }
    const clientAuth = secret
      ? method === 'client_secret_post'
        ? oidc.ClientSecretPost(secret)
        : oidc.ClientSecretBasic(secret)
      : oidc.None();
    const config = new oidc.Configuration(metadata as oidc.ServerMetadata, record.party.clientId, undefined, clientAuth);
    const anchor = record.discovery.resourceMetadata?.resource ?? metadata.issuer;
    config[oidc.customFetch] = this.policy(anchor, serverId) as unknown as oidc.CustomFetch;
    if (new URL(metadata.issuer).protocol === 'http:') oidc.allowInsecureRequests(config);
    if (grant.refreshToken) await oidc.tokenRevocation(config, grant.refreshToken, { token_type_hint: 'refresh_token' });
    await oidc.tokenRevocation(config, grant.accessToken, { token_type_hint: 'access_token' });
    this.log.info('oauth: tokens revoked', { serverId, issuer: record.party.issuer });
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Plumbing

  private async loaded(serverId: string): Promise<ServerState> {
    let s = this.states.get(serverId);
    if (!s) {
      s = { loaded: false, stepUps: new Map() };
      this.states.set(serverId, s);
    }
    if (!s.loaded) {
      s.loaded = true;
      const record = await this.store.readRecord(serverId);
      if (record) {
        s.record = record;
        s.grant = await this.store.readGrant(record.party);
      }
    }
    return s;
  }

  /** Every request a server or its metadata makes Lanyard send goes through the URL policy, anchored at the server. */
  private guardedFetch(server: OAuthServerRef): FetchLike {
    return this.policy(server.url, server.id);
  }

  private policy(anchor: string, serverId: string): FetchLike {
    return policyFetch(this.fetch, {
      anchor,
      refuse: (target, reason) =>
        new LanyardError(
          ErrorCodes.SERVER_METADATA_INVALID,
          `${serverId} or its authorization server sends Lanyard to ${safeOrigin(target)}, which Lanyard will not contact: ${reason}.`,
          "Ask the server's operator to serve its metadata and authorization server over https, without redirects to other hosts.",
          { serverId },
        ),
    });
  }

  /** Records the status of every answer, so a failure can be told apart as 4xx (refused) or 5xx (outage). */
  private recording(base: FetchLike, statuses: number[]): FetchLike {
    return async (input, init) => {
      const response = await base(input, init);
      statuses.push(response.status);
      return response;
    };
  }
}

/**
 * The registered client read back for a new flow, always with its `issuer` stamp (SEP-2352: the SDK serves a stamped
 * client only at the authorization server that issued it). Every client Lanyard stores now carries the stamp the SDK put
 * on it; one stored before that is stamped with the issuer of the grant it was used for, and one whose authorization
 * server Lanyard cannot tell is not presented at all (the SDK registers a new one) rather than sent to an unknown AS.
 */
function stampedClient(
  client: StoredOAuthClientInformation | undefined,
  record: ServerRecord | undefined,
): StoredOAuthClientInformation | undefined {
  if (!client || typeof client.issuer === 'string') return client;
  return record?.clientKind === 'registered' && record.party.clientId === client.client_id
    ? { ...client, issuer: record.party.issuer }
    : undefined;
}

/** The CIMD URL, only when it is one an authorization server may dereference (https, with a path). */
function cimdUrl(url: string | undefined): string | undefined {
  return url && isHttpsUrl(url) ? url : undefined;
}

function loopbackErrors(serverId: string, port: number | undefined): LoopbackErrors {
  return {
    timeout: () =>
      new LanyardError(
        ErrorCodes.AUTHORIZATION_FAILED,
        `The authorization of ${serverId} timed out: the browser did not come back to Lanyard.`,
        authorizeAgainFix(serverId),
        { serverId },
      ),
    cancelled: () =>
      new LanyardError(ErrorCodes.AUTHORIZATION_FAILED, `The authorization of ${serverId} was cancelled.`, authorizeAgainFix(serverId), {
        serverId,
      }),
    portInUse: () =>
      new LanyardError(
        ErrorCodes.PORT_IN_USE,
        `The OAuth redirect port ${port} is already in use.`,
        'Close the program using that port, or change the OAuth redirect port in the settings.',
        { serverId },
      ),
  };
}

interface FlowProviderOptions {
  serverId: string;
  redirectUri: string;
  clientName: string;
  clientMetadataUrl: string | undefined;
  discovery: OAuthDiscoveryState;
  preRegistered: StoredOAuthClientInformation | undefined;
  registered: StoredOAuthClientInformation | undefined;
  saveClient: (client: StoredOAuthClientInformation) => Promise<void>;
  dpop: { session: DpopSession; privateJwk: JWK } | undefined;
}

/**
 * The SDK's OAuthClientProvider for one browser flow. It holds the flow's PKCE verifier, state and discovery in memory
 * only: a flow never outlives the process, and the discovery recorded at redirect time is what the SDK checks the
 * callback leg against (SEP-2352: the code and verifier are bound to the authorization server that minted the code).
 * Every client and token it hands back to the SDK keeps the `issuer` stamp the SDK put on it. The client identity follows the MCP authorization spec's order: the administrator's pre-registered client, then
 * Lanyard's Client ID Metadata Document (when the AS advertises `client_id_metadata_document_supported`), then Dynamic
 * Client Registration (RFC 7591) — the last two chosen by the SDK's `auth()`.
 */
class FlowProvider implements OAuthClientProvider {
  authorizationUrl: URL | undefined;
  expectedState: string | undefined;
  savedTokens: StoredOAuthTokens | undefined;
  savedClient: StoredOAuthClientInformation | undefined;
  /** Undefined once invalidated: the callback leg then has nothing to bind to and the SDK refuses it. */
  discovery: OAuthDiscoveryState | undefined;
  /** The SDK discarded the client (invalid_client): the stored registration is not offered again in this flow. */
  private clientDiscarded = false;
  /** Present only when configured: the SDK then uses it as the client id where the AS advertises CIMD support. */
  clientMetadataUrl?: string;
  private verifier: string | undefined;

  constructor(private readonly o: FlowProviderOptions) {
    this.discovery = o.discovery;
    if (o.clientMetadataUrl) this.clientMetadataUrl = o.clientMetadataUrl;
    this.savedClient = o.preRegistered;
  }

  get redirectUrl(): string {
    return this.o.redirectUri;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.o.clientName,
      redirect_uris: [this.o.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      application_type: 'native',
      ...(this.o.dpop ? { dpop_bound_access_tokens: true } : {}),
    } as OAuthClientMetadata;
  }

  get clientIdKind(): 'pre-registered' | 'metadata-document' | 'registered' {
    if (this.o.preRegistered) return 'pre-registered';
    return this.savedClient?.client_id === this.o.clientMetadataUrl ? 'metadata-document' : 'registered';
  }

  get dpopSession(): DpopSession | undefined {
    return this.o.dpop?.session;
  }

  get dpopPrivateJwk(): JWK | undefined {
    return this.o.dpop?.privateJwk;
  }

  state(): string {
    this.expectedState ??= randomBytes(24).toString('base64url');
    return this.expectedState;
  }

  clientInformation(ctx?: { issuer: string }): StoredOAuthClientInformation | undefined {
    if (this.o.preRegistered) return this.o.preRegistered;
    const client = this.savedClient ?? (this.clientDiscarded ? undefined : this.o.registered);
    // A client registered at another authorization server is never presented here (the SDK re-registers).
    if (client && ctx && client.issuer && client.issuer !== ctx.issuer) return undefined;
    return client;
  }

  async saveClientInformation(client: StoredOAuthClientInformation): Promise<void> {
    this.savedClient = client;
    // A CIMD client id is a URL, not a registration: nothing secret, nothing to keep.
    if (client.client_id !== this.o.clientMetadataUrl) await this.o.saveClient(client);
  }

  tokens(): StoredOAuthTokens | undefined {
    return this.savedTokens;
  }

  saveTokens(tokens: StoredOAuthTokens): void {
    this.savedTokens = tokens;
  }

  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    if (!this.verifier) throw new Error('no PKCE verifier for this flow');
    return this.verifier;
  }

  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovery;
  }

  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.discovery = state;
  }

  dpop(): DpopSession | undefined {
    return this.o.dpop?.session;
  }

  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    if (scope === 'all' || scope === 'tokens') this.savedTokens = undefined;
    if (scope === 'all' || scope === 'client') {
      this.savedClient = undefined;
      this.clientDiscarded = true;
    }
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }
}

/** The factory the broker uses: see docs/protocol.md, "The OAuth 2.1 path". */
export function createOAuthSessions(deps: OAuthSessionsDeps): OAuthSessions {
  return new OAuthSessions(deps);
}
