import { Emitter } from '../../shared/emitter';
import { ActivityLog } from './activity/activity-log';
import { AuthRouter } from './auth/router';
import type { LanyardConfig } from './config/schema';
import { createOAuthSessions } from './oauth/oauth-sessions';
import type { OAuthEvent, OAuthPath } from './oauth/types';
import { createManagedPolicy, type ManagedPolicy } from './config/managed';
import { createConfBackend, ConfigStore, type ConfigBackend } from './config/store';
import type { IdeConnectDeps } from './control/control-service';
import { createDashboard, withDashboardSessions, type Dashboard } from './control/dashboard';
import { createControlHttpHandler } from './control/http-api';
import { ControlService, type GatewayView } from './control/control-service';
import { createEngine, type Engine } from './engine';
import type { TokenEvent } from './exchange/token-service';
import { UsageCounter } from './exchange/usage';
import { DiscoveryState, discoveryStateFile } from './exchange/discovery-state';
import { CatalogSnapshots, catalogSnapshotFile, snapshotSubject } from './exchange/catalog-snapshots';
import { ensurePrivateDir, lanyardPaths, resolveLanyardHome, type LanyardPaths } from './paths';
import { createAggregator, type Aggregator, type AggregatorOptions } from './gateway/aggregate/aggregator';
import { startGatewayServer, type GatewayRoute, type GatewayServer } from './gateway/http-server';
import { LocalAuth } from './gateway/local-auth';
import { createRelay, type RelayOptions } from './gateway/relay';
import { toolPinsFile } from './governance/pins/control';
import { ToolGate } from './governance/pins/gate';
import { createRelayToolGate } from './governance/pins/relay-gate';
import { publishRuntime, readRuntimeFile } from './gateway/runtime-file';
import { acquireBrokerLock, type BrokerLock } from './broker-lock';
import { portInUseError } from './startup-failure';
import { createNetworkStack, type NetworkStack, type SystemProxyResolver } from './net/network-stack';
import { readSystemPac } from './net/system-pac';
import { useUpstreamRouter } from './gateway/relay-transport';
import { createSecretStore } from './secrets';
import type { FetchLike } from './util/http';
import type { SecretStore } from './secrets/secret-store';
import { createLogger, type Logger } from './util/log';
import { auditLogView } from './governance/audit-view';
import { Governance } from './governance/governance';
import { createOtlpExport } from './governance/otlp/exporter';
import { identityRecorder, recordOAuthEvent, recordTokenEvent } from './governance/token-events';
import { identityIdeDeps } from './identities/ide';
import { IdentityProfiles } from './identities/identity-profiles';
import { identityProfileOf } from './identities/summary';
import { profileSignInErrors, signInHint } from './identities/sign-in';
import type { IdentityProfile } from '../../shared/contract';
import { openRemoteAccess, withRemoteCaller } from './remote/access';
import type { PairingService } from './remote/pairing';
import { pairingRoutes } from './remote/routes';

export interface BrokerOptions {
  version: string;
  /** Opens the system browser for sign-in (Electron: shell.openExternal; headless: `open`/`xdg-open` or print). */
  openUrl: (url: string) => Promise<void> | void;
  env?: NodeJS.ProcessEnv;
  home?: string;
  /** The Electron app passes electron-store here; headless uses conf. Same file, same schema. */
  configBackend?: ConfigBackend;
  /** Default: the keychain (or the opted-in file) for `home`, created on first use. */
  secrets?: SecretStore | undefined;
  log?: Logger | undefined;
  fetch?: typeof fetch | undefined;
  /**
   * The outbound network (proxy, CA trust) for every hop (net/network-stack.ts). Default: the environment's
   * HTTPS_PROXY / NO_PROXY and the config's `network` section. `fetch`, when given, replaces its fetch for the
   * request/response hops (the Electron app passes Chromium's there).
   */
  network?: NetworkStack | undefined;
  /**
   * The fetch of the request/response hops only (IdP, authorization servers, discovery, probes), MCP traffic keeping
   * the network stack's agents: the Electron app passes Chromium's (system proxy, PAC, OS trust store; net/chromium.ts).
   */
  hopFetch?: FetchLike | undefined;
  /**
   * The system's proxy resolver for MCP traffic (net/network-stack.ts SystemProxyResolver): the Electron app passes
   * Chromium's `session.resolveProxy` (system settings and their PAC file). Ignored when `network` is given.
   */
  systemProxy?: SystemProxyResolver | undefined;
  /** The administrator's managed configuration (default: the documented system file, or LANYARD_MANAGED_CONFIG). */
  managed?: ManagedPolicy | undefined;
  /** How `connectIde` writes IDE configs (the Electron app passes its bundled CLI launcher). */
  ide?: Partial<IdeConnectDeps> | undefined;
  /**
   * When the identity session and token service are built and restored from the keychain. 'eager' (the running
   * broker): in `create()`. 'on-demand' (the CLI when no broker runs): on the first `loadEngine()` call, so a command that
   * needs neither (`lanyard servers list`) never opens the keychain or the OIDC client.
   */
  engine?: 'eager' | 'on-demand';
  /**
   * The OAuth 2.1 path, or a factory given what it needs. Default: the OAuth engine (oauth/oauth-sessions.ts).
   */
  oauth?: OAuthPath | ((deps: OAuthPathDeps) => OAuthPath) | undefined;
  /** Set on an identity profile's own broker (identities/): its name. Such a broker hosts no further profiles. */
  identityProfile?: string | undefined;
  /** An identity profile's broker lists every profile through the default profile's (`listIdentityProfiles`). */
  identityListing?: ((current: string | null) => Promise<IdentityProfile[]>) | undefined;
}

/** What the broker hands the OAuth path's factory. */
export interface OAuthPathDeps {
  secrets: SecretStore;
  openUrl: (url: string) => Promise<void> | void;
  log: Logger;
  fetch?: typeof fetch | undefined;
  /** The effective configuration (its `oauth.clientMetadataUrl`, managed over user). */
  config: () => LanyardConfig;
}

export type { Engine } from './engine';

/** Upstream time bounds of the gateway; each defaults to the product's value (see the aggregator and the relay). */
export interface GatewayTimeouts {
  /** `/mcp`: one call's budget without progress (default 60 s). */
  requestMs?: number;
  /** `/mcp`: initialize of a new upstream session (default 30 s). */
  connectMs?: number;
  /** `/mcp`: how long lists wait for servers not listed yet (default 3 s). */
  listBudgetMs?: number;
  /** `/mcp/<id>`: how long the relay waits for the upstream's response headers (default 120 s). */
  relayResponseMs?: number;
}

/** What the aggregator and the relay of one profile's endpoints (the default one's or an identity profile's) are built with. */
export interface GatewayEndpointOptions {
  aggregator: AggregatorOptions;
  relay: RelayOptions;
}

export interface RunningGateway {
  server: GatewayServer;
  aggregator: Aggregator;
  localAuth: LocalAuth;
  /** The headless dashboard, when started with `dashboard`. */
  dashboard: Dashboard | undefined;
  stop(): Promise<void>;
}

/**
 * The composition root of Lanyard's logic: config, keychain, identity session, token service, activity and the control
 * service, and (once started) the local MCP gateway. Plain Node — the Electron shell and the CLI both build one of
 * these and differ only in how they open a browser and show status.
 */
export class Broker {
  readonly home: string;
  readonly paths: LanyardPaths;
  readonly config: ConfigStore;
  readonly secrets: SecretStore;
  readonly activity: ActivityLog;
  readonly usage: UsageCounter;
  /** What discovery learnt about each server (metadata, transport, protocol era), kept for the next start. */
  private readonly discoveryState: DiscoveryState;
  private readonly catalogSnapshots: CatalogSnapshots;
  private readonly oauth: OAuthPath | undefined;
  readonly control: ControlService;
  readonly log: Logger;
  readonly managed: ManagedPolicy;
  /** Tool pinning and quarantine (governance/pins/): every endpoint's tool lists pass through it. */
  readonly toolGate: ToolGate;
  /** Each server's auth path (xaa, oauth, header, none): what the gateway, the control service and doctor use. */
  readonly auth: AuthRouter;
  /** Audit ledger, OTLP export and outbound secret scan (governance/): records while the gateway runs. */
  readonly governance: Governance;
  /** The outbound network every hop goes through (proxy, CA trust). */
  readonly network: NetworkStack;
  /** The fetch of the request/response hops: the injected one, else the network stack's. */
  private readonly outboundFetch: typeof fetch;
  private engine: Engine | undefined;
  private engineKey = '';
  /** Whether the engine is wanted: from the start ('eager'), or once a command asked for it ('on-demand'). */
  private engineWanted: boolean;
  /** Builds and rebuilds one at a time, so two callers never restore two engines for the same IdP. */
  private engineQueue: Promise<unknown> = Promise.resolve();
  private gatewayView: GatewayView | undefined;
  private readonly detach: Array<() => void> = [];
  private readonly engineStateChanged: Emitter<void>;
  /** The identity profile this broker serves (undefined: the default one). */
  readonly identityProfile: string | undefined;
  /** The other identity profiles (`/p/<name>/`, `--profile`), on the default profile's broker only; started lazily. */
  readonly identities: IdentityProfiles | undefined;
  /** Remote development: pairing and the paired devices (remote/), opened on first use. */
  private remote: Promise<PairingService> | undefined;

  private constructor(private readonly options: BrokerOptions) {
    const env = options.env ?? process.env;
    this.home = options.home ?? resolveLanyardHome(env);
    this.paths = lanyardPaths(this.home);
    this.log = options.log ?? createLogger();
    this.engineWanted = (options.engine ?? 'eager') === 'eager';
    this.engineStateChanged = new Emitter((e) => this.log.warn('session listener failed', { error: e }));
    this.managed = options.managed ?? createManagedPolicy({ env });
    // The admin's managed file overlays the user's own config (and may lock the IdP and the server list).
    this.config = new ConfigStore(options.configBackend ?? createConfBackend(this.home), {
      overlay: (c) => this.managed.overlay(c),
      log: this.log,
    });
    this.network =
      options.network ??
      createNetworkStack({
        env,
        settings: () => this.config.load().network,
        systemProxy: options.systemProxy,
        // Headless: the desktop's PAC setting, for the hops nothing configured decides.
        systemPac: options.systemProxy ? undefined : () => readSystemPac(process.platform),
      });
    this.outboundFetch = options.fetch ?? ((options.hopFetch ?? this.network.fetch) as typeof fetch);
    this.secrets = options.secrets ?? lazySecretStore(() => createSecretStore({ home: this.home, env }));
    this.activity = new ActivityLog({ file: this.paths.activityFile, log: this.log });
    this.usage = new UsageCounter(this.paths.stateFile, Date.now, this.log);
    this.discoveryState = new DiscoveryState(discoveryStateFile(this.home), { log: this.log });
    this.catalogSnapshots = new CatalogSnapshots(catalogSnapshotFile(this.home), {
      log: this.log,
      // Under the managed pin policy the user-writable file's fingerprints do not stand for the definitions.
      trustFingerprints: () => this.toolGate.policy() !== 'managed-only',
    });
    const oauthDeps: OAuthPathDeps = {
      secrets: this.secrets,
      openUrl: options.openUrl,
      log: this.log,
      fetch: this.outboundFetch,
      config: () => this.config.load(),
    };
    const oauth = typeof options.oauth === 'function' ? options.oauth(oauthDeps) : (options.oauth ?? createDefaultOAuthPath(oauthDeps));
    this.auth = new AuthRouter({
      config: () => this.config.load(),
      managed: () => {
        const state = this.managed.state();
        return state.state === 'ok' ? state.config : undefined;
      },
      locked: () => this.managed.locked(),
      engine: () => this.engine,
      oauth,
      openUrl: options.openUrl,
      secrets: this.secrets,
      record: (serverId, path) => {
        // Recorded in the user's own entry; a managed server's path lives in the managed file, or in the discovery
        // state file (so a restart does not probe it again).
        if (!this.config.loadUser().servers.some((s) => s.id === serverId)) {
          const url = this.config.load().servers.find((s) => s.id === serverId)?.url;
          if (url) this.discoveryState.setAuthPath(serverId, url, path);
          return;
        }
        if (!this.config.loadUser().servers.some((s) => s.id === serverId && !s.authPath)) return;
        this.config.update((draft) => {
          const server = draft.servers.find((s) => s.id === serverId);
          if (server && !server.authPath) server.authPath = path;
        });
      },
      remembered: (serverId) => {
        const url = this.config.load().servers.find((s) => s.id === serverId)?.url;
        return url ? this.discoveryState.authPath(serverId, url) : undefined;
      },
      unrecord: (serverId, path) => {
        const url = this.config.load().servers.find((s) => s.id === serverId)?.url;
        if (url && this.discoveryState.authPath(serverId, url) === path) this.discoveryState.setAuthPath(serverId, url, undefined);
        if (!this.config.loadUser().servers.some((s) => s.id === serverId && s.authPath === path)) return;
        this.config.update((draft) => {
          const server = draft.servers.find((s) => s.id === serverId);
          if (server?.authPath === path) delete server.authPath;
        });
      },
      fetch: this.outboundFetch,
      log: this.log,
    });
    this.governance = this.createGovernance();
    oauth?.onEvent((event) => this.recordOAuthEvent(event));
    oauth?.onEvent((event) => recordOAuthEvent(this.governance, event));
    this.oauth = oauth;
    this.auth.onChange(() => this.control.statusChanged());
    this.toolGate = new ToolGate({
      file: toolPinsFile(this.home),
      managed: () => {
        const state = this.managed.state();
        return { toolPins: state.state === 'ok' ? state.config.toolPins : undefined, locked: this.managed.locked().includes('toolPins') };
      },
      log: this.log,
    });
    this.toolGate.onEvent((event) => {
      if (event.type === 'reviews') this.control.statusChanged();
    });
    this.control = new ControlService({
      toolGate: this.toolGate,
      version: options.version,
      config: this.config,
      secrets: this.secrets,
      activity: this.activity,
      engine: () => this.engine,
      gateway: () => this.gatewayView,
      reconfigure: () => this.reconfigure(),
      locked: () => this.managed.locked(),
      managedServerIds: () => this.managed.managedServerIds(),
      auth: this.auth,
      ide: { home: this.home, ...options.ide },
      log: this.log,
      audit: (input) => auditLogView(this.home, this.governance.recording ? this.governance.status() : undefined, input),
      identities: options.identityListing ?? ((current) => this.listIdentities(current)),
      remote: () => this.remoteAccess(),
    });
    this.identityProfile = options.identityProfile;
    this.identities =
      options.identityProfile === undefined
        ? new IdentityProfiles({
            home: this.home,
            managed: this.managed,
            log: this.log,
            open: (profile) =>
              Broker.create({
                ...identityBrokerOptions(options, this.network, this.home, profile),
                identityListing: (current) => this.listIdentities(current),
              }),
          })
        : undefined;
  }

  /** Pairing and the paired remote devices (their file is read once; the running broker keeps it in memory). */
  remoteAccess(): Promise<PairingService> {
    return (this.remote ??= openRemoteAccess({ home: this.home, activity: this.activity, log: this.log }));
  }

  static async create(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options);
    await ensurePrivateDir(broker.home);
    await Promise.all([broker.activity.load(), broker.usage.load(), broker.discoveryState.load()]);
    await broker.reconfigure();
    return broker;
  }

  /**
   * The identity session and token service for the configured IdP as built so far: undefined when none is configured,
   * or (with `engine: 'on-demand'`) before the first `loadEngine()` call.
   */
  getEngine(): Engine | undefined {
    return this.engine;
  }

  /** Builds (on first use, or after an IdP change) and restores the engine; undefined when no IdP is configured. */
  loadEngine(): Promise<Engine | undefined> {
    this.engineWanted = true;
    const run = this.engineQueue.then(() => this.ensureEngine());
    this.engineQueue = run.catch(() => undefined);
    return run;
  }

  /** Every identity profile with its sign-in state (just this one when it hosts none: a CLI's profile broker). */
  private async listIdentities(current: string | null): Promise<IdentityProfile[]> {
    if (this.identities) return this.identities.list(current, () => this.control.status());
    return [identityProfileOf(this.identityProfile ?? null, await this.control.status(), { managed: false, current: true })];
  }

  /** Sign-in, sign-out and expiry of this broker's identity session. */
  onSessionChange(listener: () => void): () => void {
    return this.engineStateChanged.on(listener);
  }

  /** Lets the gateway (started separately) report into status; undefined when it stops. */
  setGateway(view: GatewayView | undefined): void {
    this.gatewayView = view;
    this.control.statusChanged();
  }

  /**
   * (Re)builds the engine when the IdP settings change; keeps it otherwise (tokens and sessions stay). With
   * `engine: 'on-demand'`, nothing happens until a command has asked for the engine.
   */
  async reconfigure(): Promise<void> {
    if (this.engineWanted) await this.loadEngine();
  }

  private async ensureEngine(): Promise<Engine | undefined> {
    const config = this.config.load();
    const key = JSON.stringify(config.idp ?? null);
    if (this.engine && key === this.engineKey) return this.engine;
    for (const off of this.detach.splice(0)) off();
    this.engineKey = key;
    if (!config.idp) {
      this.engine = undefined;
      this.control.statusChanged();
      return undefined;
    }
    const engine = this.buildEngine(config.idp);
    this.engine = engine;
    await engine.identity.restore();
    this.control.statusChanged();
    return engine;
  }

  /** The signed-in user a catalog snapshot belongs to (none signed out: no snapshot is read or kept). */
  private snapshotSubject(): string | undefined {
    const state = this.engine?.identity.state;
    return state?.status === 'signed_in' ? snapshotSubject(state.user.issuer, state.user.sub) : undefined;
  }

  private buildEngine(idp: NonNullable<LanyardConfig['idp']>): Engine {
    const { identity, tokens } = createEngine(idp, {
      config: this.config,
      secrets: this.secrets,
      usage: this.usage,
      discoveryState: this.discoveryState,
      openUrl: this.options.openUrl,
      log: this.log,
      fetch: this.outboundFetch,
    });
    this.detach.push(
      identity.onChange((state) => {
        if (state.status === 'expired')
          this.activity.record({ kind: 'session', summary: 'Sign-in expired: sign in again', outcome: 'error', error: state.error });
        this.engineStateChanged.emit();
        this.control.statusChanged();
      }),
      tokens.onEvent((event) => this.recordTokenEvent(event)),
      // Catalogs listed for one user are not shown to the next (the snapshots are also keyed by user).
      identity.onSubjectEnded(() => this.catalogSnapshots.clear()),
      identity.onChange(identityRecorder(this.governance)),
      tokens.onEvent((event) => recordTokenEvent(this.governance, event)),
    );
    return { identity, tokens };
  }

  private createGovernance(): Governance {
    const managed = () => {
      const state = this.managed.state();
      return state.state === 'ok' ? state.config : undefined;
    };
    return new Governance({
      home: this.home,
      log: this.log,
      userSettings: () => this.config.loadUser(),
      managedSettings: managed,
      locked: () => this.managed.locked(),
      serverUrl: (id) => this.config.load().servers.find((s) => s.id === id)?.url,
      auth: this.auth,
      user: () => {
        const s = this.engine?.identity.state;
        return s && (s.status === 'signed_in' || s.status === 'expired')
          ? { iss: s.user.issuer, sub: s.user.sub, ...(s.user.email ? { email: s.user.email } : {}) }
          : undefined;
      },
      heldTokens: () => (this.engine ? [...this.engine.identity.heldTokens(), ...this.engine.tokens.heldTokens()] : []),
      activity: (event) => this.activity.record(event),
      otlp: createOtlpExport,
    });
  }

  private recordTokenEvent(event: TokenEvent): void {
    switch (event.type) {
      case 'token_minted':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `New token for ${event.serverId} (${event.scopes.join(' ') || 'default scopes'})`,
          outcome: 'ok',
          durationMs: event.durationMs,
        });
        break;
      case 'token_step_up':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `Step-up for ${event.serverId}: requesting ${event.scopes.join(' ')}`,
          outcome: 'info',
        });
        break;
      case 'quota_warning':
        // Recorded once per user, resource app and month (the usage meter decides), before the IdP starts refusing.
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `ID-JAG quota: ${event.warning.count} of ${event.warning.quota} used this month for ${event.serverId}. ${event.warning.fix}`,
          outcome: 'info',
        });
        break;
      case 'token_error':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `No token for ${event.serverId}: ${event.error.code}`,
          outcome: 'error',
          error: event.error,
        });
        break;
    }
    this.control.statusChanged();
  }

  /** OAuth path events in the activity view: server ids, scopes and error codes only (never a token or a code). */
  private recordOAuthEvent(event: OAuthEvent): void {
    switch (event.type) {
      case 'oauth_authorized':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `Authorized ${event.serverId} (${event.scopes.join(' ') || 'default scopes'})`,
          outcome: 'ok',
        });
        break;
      case 'oauth_refreshed':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `Refreshed the token for ${event.serverId}`,
          outcome: 'ok',
        });
        break;
      case 'oauth_authorization_required':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `${event.serverId} needs authorizing again: ${event.error.code}`,
          outcome: 'error',
          error: event.error,
        });
        break;
      case 'oauth_error':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `OAuth for ${event.serverId} failed: ${event.error.code}`,
          outcome: 'error',
          error: event.error,
        });
        break;
      case 'oauth_revoked':
        this.activity.record({
          kind: 'token',
          serverId: event.serverId,
          summary: `Revoked the OAuth grant for ${event.serverId}`,
          outcome: 'info',
        });
        break;
    }
  }

  /**
   * Starts the local MCP endpoint: the front door (Host/Origin/local token), `/mcp` (aggregated), `/mcp/<id>` (relay),
   * plus any extra routes (the control API and dashboard), then publishes the runtime file for the CLI and
   * `lanyard stdio`. The gateway asks the current engine for tokens on every call, so an IdP change needs no restart.
   */
  async startGateway(
    options: {
      port?: number;
      routes?: (auth: LocalAuth) => GatewayRoute[];
      dashboard?: { rendererDir: string };
      timeouts?: GatewayTimeouts;
    } = {},
  ): Promise<RunningGateway> {
    const wantedPort = options.port ?? this.config.load().gateway.port;
    // One broker per home: taken before anything of the home changes, held until stop (see broker-lock.ts).
    const lock = await acquireBrokerLock(this.home);
    if ('heldBy' in lock) {
      const running = await readRuntimeFile(this.home);
      const port = running.state === 'running' && running.info.pid === lock.heldBy ? running.info.port : wantedPort;
      throw portInUseError(port, { kind: 'lanyard', pid: lock.heldBy, home: this.home });
    }
    try {
      return await this.startGatewayLocked(options, wantedPort, lock);
    } catch (e) {
      await this.governance.stop();
      await lock.release();
      throw e;
    }
  }

  private async startGatewayLocked(
    options: Parameters<Broker['startGateway']>[0] & {},
    wantedPort: number,
    lock: BrokerLock,
  ): Promise<RunningGateway> {
    const timeouts = options.timeouts ?? {};
    const localAuth = await LocalAuth.open(this.secrets, {
      fresh: true,
      allowedOrigins: () => this.config.load().gateway.allowedOrigins,
      log: this.log,
    });
    await this.governance.start({ localToken: () => localAuth.token });
    // The headless dashboard: control API + UI, opened in a browser through a one-time link exchanged for a session
    // the page sends as a header. That session opens /api only (session-or-token routes), never the MCP endpoints.
    let port = 0;
    const dashboard = options.dashboard
      ? createDashboard({ rendererDir: options.dashboard.rendererDir, localAuth, port: () => port })
      : undefined;
    const guard = dashboard ? withDashboardSessions(localAuth, dashboard) : localAuth;
    const routes: GatewayRoute[] = [...(options.routes?.(localAuth) ?? [])];
    // Remote development: paired devices' tokens open the MCP endpoints (never the control API); pairing routes.
    const pairing = await this.remoteAccess();
    localAuth.useRemoteTokens((token) => pairing.devices.verify(token));
    routes.push(...pairingRoutes(() => pairing));
    if (dashboard) {
      routes.push(
        { prefix: '/api', auth: 'session-or-token', handler: createControlHttpHandler(this.control) },
        { prefix: '/', auth: 'none', handler: (req, res) => dashboard.handler(req, res) },
      );
    }
    const endpoints = this.gatewayOptions(timeouts);
    const aggregator = createAggregator(endpoints.aggregator);
    const relay = createRelay(endpoints.relay);
    let server: GatewayServer;
    try {
      server = await startGatewayServer({
        port: wantedPort,
        localAuth: guard,
        aggregator,
        relay,
        routes,
        log: this.log,
        ...(this.identities ? { identities: (name: string) => this.identities!.endpoints(name) } : {}),
      });
      port = server.port;
    } catch (e) {
      await aggregator.close();
      throw e;
    }
    // Only now, with the port ours, does the new local token replace the keychain's: a broker that lost the port to
    // another one of this home must leave that one's token (and its runtime file and IDE configs, written below) alone.
    try {
      await localAuth.save();
    } catch (e) {
      await server.close();
      await aggregator.close();
      throw e;
    }
    const runtime = await publishRuntime({
      home: this.home,
      port: server.port,
      version: this.options.version,
      localAuth,
      onError: (e) => this.log.warn('runtime file', { error: e }),
    });
    await this.identities?.useGateway({
      url: server.url,
      port: server.port,
      localAuth,
      timeouts,
    });
    // MCP traffic on the node:http(s) transport takes its agent (company CA) or proxy from the network stack.
    const offRouter = useUpstreamRouter((url) => this.network.upstream(url));
    const offHealth = aggregator.onServerHealth(() => this.control.statusChanged());
    // Sign-in, sign-out and config edits change what /mcp lists: tell every IDE session.
    const offConfig = this.config.onChange(
      () => aggregator.notifyServersChanged(),
      (e) => this.log.warn('config change ignored', { error: e }),
    );
    const offSession = this.engineStateChanged.on(() => aggregator.notifyServersChanged());
    // A server whose path became known may now be listed signed out (or need the sign-in after all).
    const offAuthChange = this.auth.onChange(() => aggregator.notifyServersChanged());
    const offUsable = this.auth.onCredentialsUsable((serverId) => aggregator.credentialsChanged(serverId));
    const offAuth = (): void => {
      offAuthChange();
      offUsable();
    };
    const offProbe = this.config.onChange(
      () => this.auth.probeUnknown(),
      () => undefined,
    );
    this.auth.probeUnknown();
    this.setGateway({
      url: server.url,
      port: server.port,
      ideSessions: () => aggregator.ideSessions().map((s) => ({ ...s })),
      serverHealth: (id) => aggregator.serverHealth(id),
      listTools: (id) => aggregator.listTools(id),
      serversChanged: () => aggregator.notifyServersChanged(),
    });
    // A fresh local token at every start: HTTP-mode IDE configs Lanyard wrote get it now (see LocalAuth).
    const offLocalAuth = this.control.useLocalAuth(localAuth);
    this.activity.record({ kind: 'server', summary: `Local MCP endpoint listening on ${server.mcpUrl}`, outcome: 'ok' });
    let stopped = false;
    // A rotated local token ends every dashboard session opened with the old one.
    const offRotate = dashboard ? localAuth.onRotate(() => dashboard.revokeAll()) : () => {};
    return {
      server,
      aggregator,
      localAuth,
      dashboard,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        offRouter();
        offHealth();
        offRotate();
        offLocalAuth();
        offConfig();
        offSession();
        offAuth();
        offProbe();
        this.setGateway(undefined);
        await this.identities?.useGateway(undefined);
        await runtime.close();
        await server.close();
        await aggregator.close();
        await this.governance.stop();
        await lock.release();
      },
    };
  }

  /**
   * The options of the aggregator (`/mcp`) and the relay (`/mcp/<id>`) on this broker's own home and services: its
   * config, auth router, governance, tool pins, activity and discovery state. The default profile's gateway and every
   * identity profile's (identities/profile-gateway.ts) are built from this one list, so a profile's endpoints behave as
   * the default's: its transport verdicts kept in its own discovery state, a remote device named in its Activity.
   */
  gatewayOptions(timeouts: GatewayTimeouts = {}): GatewayEndpointOptions {
    const profile = this.identityProfile;
    // Every upstream request is authenticated on its server's path (auth/router.ts): signed out or with no IdP at all,
    // OAuth, API-key and open servers keep working. An identity profile's sign-in errors name its own `--profile` login.
    const tokens = {
      authorizedFetch: (serverId: string, base?: FetchLike): FetchLike =>
        profile === undefined
          ? this.auth.authorizedFetch(serverId, base)
          : profileSignInErrors(this.auth.authorizedFetch(serverId, base), profile),
    };
    const servers = () => this.config.load().servers;
    return {
      aggregator: {
        tokens,
        getServers: () => servers().map((s) => ({ id: s.id, name: s.name, url: s.url, enabled: s.enabled })),
        separator: this.config.load().gateway.toolNameSeparator,
        profiles: () => this.config.load().profiles,
        log: this.log,
        version: this.options.version,
        isSignedIn: () => this.engine?.identity.state.status === 'signed_in',
        needsSignIn: (serverId) => this.auth.needsSignIn(serverId),
        guard: this.governance,
        signInHint: () => signInHint(profile, this.engine !== undefined),
        onActivity: (event) => this.activity.record(withRemoteCaller(event)),
        onIdeSession: (event) => {
          this.activity.record({
            kind: 'ide',
            summary: `${event.session.clientName}${event.session.clientVersion ? ` ${event.session.clientVersion}` : ''} ${event.type === 'connected' ? 'connected' : 'disconnected'}`,
            outcome: 'info',
          });
          this.control.statusChanged();
        },
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
        ...(timeouts.requestMs !== undefined ? { requestTimeoutMs: timeouts.requestMs } : {}),
        ...(timeouts.connectMs !== undefined ? { connectTimeoutMs: timeouts.connectMs } : {}),
        ...(timeouts.listBudgetMs !== undefined ? { listBudgetMs: timeouts.listBudgetMs } : {}),
        toolGate: this.toolGate,
        transportMemory: {
          read: (id, url) => this.discoveryState.transport(id, url),
          write: (id, url, memory) => this.discoveryState.setTransport(id, url, memory),
        },
        // A restart's first lists come from the last live catalogs: for the same signed-in user, and only for servers
        // whose credentials are at hand (a cached token, a stored key), so what is shown is what a call can reach.
        catalogSnapshots: {
          read: async (id, url) => {
            const subject = this.snapshotSubject();
            const kept = subject ? await this.catalogSnapshots.read(id, url, subject) : undefined;
            return kept && (await this.auth.credentialsAtHand(id)) ? kept : undefined;
          },
          write: (id, url, catalog, changed) => {
            const subject = this.snapshotSubject();
            if (subject) this.catalogSnapshots.write(id, url, subject, catalog, changed);
          },
        },
      },
      relay: {
        getServer: (id) => servers().find((s) => s.id === id),
        tokens,
        guard: this.governance,
        log: this.log,
        toolGate: createRelayToolGate(this.toolGate, this.log.child('relay')),
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
        ...(timeouts.relayResponseMs !== undefined ? { responseTimeoutMs: timeouts.relayResponseMs } : {}),
      },
    };
  }

  async close(): Promise<void> {
    for (const off of this.detach.splice(0)) off();
    // A browser authorization waiting for the user must not keep a stopping broker's process alive.
    await this.oauth?.close?.();
    await this.identities?.close();
    this.config.close();
    await this.activity.flush();
    await this.toolGate.flush();
    await this.discoveryState.flush();
    await this.catalogSnapshots.flush();
    await (await this.remote)?.devices.flush();
    await this.network.close();
  }
}

/** The OAuth 2.1 engine (oauth/oauth-sessions.ts), with Lanyard's Client ID Metadata Document URL from the config. */
function createDefaultOAuthPath(deps: OAuthPathDeps): OAuthPath {
  return createOAuthSessions({
    secrets: deps.secrets,
    openUrl: deps.openUrl,
    log: deps.log.child('oauth'),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    clientMetadataUrl: () => deps.config().oauth?.clientMetadataUrl,
  });
}

/**
 * A secret store created on first use: the CLI builds a Broker for every command, and most never need the keychain
 * (loading its native binding and, on Linux, reaching D-Bus costs time and can prompt).
 */
function lazySecretStore(create: () => SecretStore): SecretStore {
  let store: SecretStore | undefined;
  const get = (): SecretStore => (store ??= create());
  return {
    get kind() {
      return get().kind;
    },
    get description() {
      return get().description;
    },
    get: (key) => get().get(key),
    set: (key, value) => get().set(key, value),
    delete: (key) => get().delete(key),
    deleteAll: (prefix) => get().deleteAll(prefix),
  };
}

/**
 * What an identity profile's broker is built with: the default profile's browser opener, outbound network (one proxy
 * and CA trust for every profile; closed by the default profile's broker only) and IDE deps, and nothing of its
 * state — no config backend and no secret store, so each profile opens its own config file and keychain namespace.
 */
function identityBrokerOptions(
  root: BrokerOptions,
  network: NetworkStack,
  rootHome: string,
  profile: { home: string; managed: ManagedPolicy; log: Logger; identityProfile: string },
): BrokerOptions {
  return {
    version: root.version,
    openUrl: root.openUrl,
    ...(root.env ? { env: root.env } : {}),
    fetch: root.fetch,
    hopFetch: root.hopFetch,
    ...(typeof root.oauth === 'function' ? { oauth: root.oauth } : {}),
    network: { ...network, close: async () => undefined },
    ide: identityIdeDeps(root.ide, rootHome, profile.identityProfile, root.env),
    engine: 'eager',
    ...profile,
  };
}
