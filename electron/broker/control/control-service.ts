import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { homedir } from 'node:os';
import path from 'node:path';
import type {
  ActivityEvent,
  ConnectIdeResult,
  RotateLocalTokenResult,
  ControlApi,
  DisconnectIdeResult,
  IdeName,
  ControlEventName,
  ControlEventPayload,
  IdeSession,
  ProbeResult,
  ServerStatus,
  SessionStatus,
  Settings,
  Status,
  TestResult,
} from '../../../shared/contract';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import type { ActivityLog } from '../activity/activity-log';
import { SERVER_ID_PATTERN, type LanyardConfig, type ServerConfig } from '../config/schema';
import type { ConfigStore } from '../config/store';
import { LanyardError, toErrorInfo } from '../errors';
import { discoverServerAuth } from '../exchange/discovery';
import type { TokenService } from '../exchange/token-service';
import { LocalAuth } from '../gateway/local-auth';
import { connectIde, disconnectIde, refreshHttpConnections } from '../ide/connector';
import { resolveStdioLauncher } from '../ide/launcher';
import { IDE_TARGETS, type HttpEndpoint, type IdeEnvironment, type StdioLauncher } from '../ide/targets';
import { OKTA_MONTHLY_ID_JAG_QUOTA } from '../exchange/usage';
import type { IdentitySession } from '../identity/identity-session';
import { sealCredential, secretKeys, type SecretStore } from '../secrets/secret-store';
import { withTimeout } from '../util/http';
import { silentLogger, type Logger } from '../util/log';

/** What the control service needs from the running gateway (absent while it is not started). */
export interface GatewayView {
  url: string;
  port: number;
  ideSessions(): IdeSession[];
  serverHealth(
    serverId: string,
  ): { health: ServerStatus['health']; toolCount?: number | undefined; lastError?: ErrorInfo | undefined } | undefined;
  listTools(serverId: string): Promise<Array<{ name: string; exposedName: string; description?: string | undefined }>>;
  serversChanged(): void;
}

export interface ControlServiceDeps {
  version: string;
  config: ConfigStore;
  secrets: SecretStore;
  activity: ActivityLog;
  /** The current identity session and token service (replaced when the IdP settings change). */
  engine: () => { identity: IdentitySession; tokens: TokenService } | undefined;
  gateway: () => GatewayView | undefined;
  /** Which config fields an administrator's managed configuration locks (e.g. 'idp', 'servers'). */
  locked?: () => string[];
  managedServerIds?: () => string[];
  /** Applies config changes that need the engine rebuilt (IdP settings). */
  reconfigure: () => Promise<void>;
  /** Where IDE config files are and how IDEs start Lanyard (`connectIde`); defaults suit the CLI and `lanyard serve`. */
  ide?: IdeConnectDeps;
  log?: Logger;
}

/** What `connectIde` / `disconnectIde` need beyond the config; every field has a default. */
export interface IdeConnectDeps {
  /** Lanyard's home, where the connection ledger lives. Default: the config file's directory. */
  home?: string;
  /** The user's machine. Default: `os.homedir()`, `process.env`, `process.platform`. */
  machine?: IdeEnvironment;
  /**
   * How IDEs start `lanyard stdio`. Default: this interpreter and the running `lanyard` script (the CLI and `lanyard
   * serve`). The Electron app passes its bundled CLI, run with ELECTRON_RUN_AS_NODE=1.
   */
  launcher?: () => StdioLauncher;
  /** The local endpoint and its token. Default: the running gateway's port (else gateway.port) and the keychain's token. */
  endpoint?: () => Promise<HttpEndpoint>;
}

type Listener = <E extends ControlEventName>(event: E, payload: ControlEventPayload<E>) => void;

/**
 * The one implementation of the control contract (shared/contract.ts). The Electron IPC bridge and the HTTP API are
 * thin transports over this class. Inputs arrive already parsed by the transport; outputs never contain a token.
 */
export class ControlService implements ControlApi {
  private readonly listeners = new Set<Listener>();
  private readonly log: Logger;
  private statusTimer: NodeJS.Timeout | undefined;
  private localAuth: LocalAuth | undefined;

  constructor(private readonly deps: ControlServiceDeps) {
    this.log = (deps.log ?? silentLogger).child('control');
    deps.activity.onEvent((event) => this.emit('activity', event));
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Coalesces bursts of changes (200 token events) into one status push. */
  statusChanged(): void {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      if (this.listeners.size === 0) return;
      this.status().then(
        (status) => this.emit('status', status),
        (e: unknown) => this.log.warn('status push failed', { error: e }),
      );
    }, 50);
    this.statusTimer.unref();
  }

  async status(): Promise<Status> {
    const config = this.deps.config.load();
    const engine = this.deps.engine();
    const gateway = this.deps.gateway();
    const locked = this.deps.locked?.() ?? [];
    return {
      version: this.deps.version,
      session: sessionOf(engine?.identity),
      ...(config.idp ? { idp: { issuer: config.idp.issuer, clientId: config.idp.clientId, managed: locked.includes('idp') } } : {}),
      servers: config.servers.map((s) => this.serverStatus(s)),
      gateway: {
        url: gateway ? `${gateway.url}/mcp` : `http://127.0.0.1:${config.gateway.port}/mcp`,
        port: gateway?.port ?? config.gateway.port,
        running: Boolean(gateway),
      },
      secretStore: { kind: this.deps.secrets.kind, description: this.deps.secrets.description },
      ideSessions: gateway?.ideSessions() ?? [],
    };
  }

  async signIn(): Promise<{ ok: true }> {
    const engine = this.requireEngine();
    this.deps.activity.record({ kind: 'session', summary: 'Sign-in started in the browser', outcome: 'info' });
    try {
      const user = await engine.identity.signIn();
      this.deps.activity.record({ kind: 'session', summary: `Signed in as ${user.email ?? user.sub}`, outcome: 'ok' });
    } catch (e) {
      this.deps.activity.record({ kind: 'session', summary: 'Sign-in failed', outcome: 'error', error: toErrorInfo(e) });
      throw e;
    }
    this.statusChanged();
    return { ok: true };
  }

  async signOut(): Promise<{ ok: true }> {
    const engine = this.deps.engine();
    if (engine) {
      await engine.identity.signOut();
      await engine.tokens.clear();
    }
    this.deps.activity.record({ kind: 'session', summary: 'Signed out; tokens removed from the keychain', outcome: 'info' });
    this.statusChanged();
    return { ok: true };
  }

  async listServers(): Promise<ServerStatus[]> {
    return this.deps.config.load().servers.map((s) => this.serverStatus(s));
  }

  async addServer(input: Parameters<ControlApi['addServer']>[0]): Promise<ServerStatus> {
    this.assertUnlocked('servers');
    const config = this.deps.config.load();
    const url = input.url.trim();
    const id =
      input.id?.trim() ||
      suggestId(
        url,
        config.servers.map((s) => s.id),
      );
    if (config.servers.some((s) => s.id === id)) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `A server with id "${id}" already exists.`,
        'Choose another id, or remove the existing server first.',
      );
    }
    if (config.servers.some((s) => s.url === url)) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `${url} is already configured.`,
        'Each server is added once; enable it if it is disabled.',
      );
    }
    if (input.clientSecret && !input.clientId?.trim()) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        'A client secret was given without the client id it belongs to.',
        "Give the server's client id too (the secret is only ever sent as that client).",
      );
    }
    const server: Record<string, unknown> = { id, name: input.name?.trim() || suggestName(url), url, enabled: true };
    if (input.clientId)
      server.asClient = {
        clientId: input.clientId.trim(),
        method: input.clientAuthMethod ?? (input.clientSecret ? 'client_secret_basic' : 'none'),
      };
    if (input.scopes?.length) server.scopes = input.scopes;
    // Validated as a whole before anything is written: an invalid entry leaves the file as it was.
    this.deps.config.update((draft) => {
      draft.servers.push(server as ServerConfig);
    });
    if (input.clientSecret) {
      // Bound to the client id now and to the server's authorization server at its first use (not known before discovery).
      const clientId = (server.asClient as { clientId: string }).clientId;
      await this.deps.secrets.set(secretKeys.serverClientSecret(id), sealCredential(input.clientSecret, { clientId }));
    }
    this.deps.activity.record({ kind: 'server', serverId: id, summary: `Added server ${id} (${url})`, outcome: 'ok' });
    this.deps.gateway()?.serversChanged();
    this.statusChanged();
    return this.serverStatus(this.deps.config.load().servers.find((s) => s.id === id)!);
  }

  async removeServer(input: { id: string }): Promise<{ ok: true }> {
    this.assertUnlocked('servers', input.id);
    this.requireServer(input.id);
    this.deps.config.update((draft) => {
      draft.servers = draft.servers.filter((s) => s.id !== input.id);
    });
    await this.deps.secrets.deleteAll(secretKeys.serverPrefix(input.id));
    this.deps.engine()?.tokens.forget(input.id);
    this.deps.activity.record({ kind: 'server', serverId: input.id, summary: `Removed server ${input.id}`, outcome: 'info' });
    this.deps.gateway()?.serversChanged();
    this.statusChanged();
    return { ok: true };
  }

  async setServerEnabled(input: { id: string; enabled: boolean }): Promise<ServerStatus> {
    this.assertUnlocked('servers', input.id);
    this.requireServer(input.id);
    this.deps.config.update((draft) => {
      const s = draft.servers.find((x) => x.id === input.id);
      if (s) s.enabled = input.enabled;
    });
    this.deps.activity.record({
      kind: 'server',
      serverId: input.id,
      summary: `${input.enabled ? 'Enabled' : 'Disabled'} server ${input.id}`,
      outcome: 'info',
    });
    this.deps.gateway()?.serversChanged();
    this.statusChanged();
    return this.serverStatus(this.requireServer(input.id));
  }

  async probeUrl(input: { url: string }): Promise<ProbeResult> {
    const url = input.url.trim();
    const existing = this.deps.config.load().servers.map((s) => s.id);
    const base: ProbeResult = {
      url,
      reachable: false,
      scopes: [],
      xaa: 'unknown',
      needsClientId: true,
      suggestedId: suggestId(url, existing),
      suggestedName: suggestName(url),
    };
    try {
      new URL(url);
    } catch {
      return {
        ...base,
        error: new LanyardError(
          ErrorCodes.CONFIG_INVALID,
          `"${url}" is not a URL.`,
          'Paste the MCP endpoint, e.g. https://mcp.example.com/mcp',
        ).toInfo(),
      };
    }
    try {
      const info = await discoverServerAuth(url, { fetch: withTimeout(fetch, 10_000) });
      if (!info.authRequired && info.unverifiedOpenStatus) {
        return {
          ...base,
          reachable: true,
          xaa: 'unknown',
          needsClientId: false,
          error: new LanyardError(
            ErrorCodes.SERVER_NOT_XAA_CAPABLE,
            `${url} answered HTTP ${info.unverifiedOpenStatus} and publishes no authorization metadata.`,
            'Check that this is the MCP endpoint (often ending in /mcp or /sse); an old SSE-only server without authorization can still be added.',
          ).toInfo(),
        };
      }
      if (!info.authRequired) return { ...base, reachable: true, authRequired: false, xaa: 'not_needed', needsClientId: false };
      return {
        ...base,
        reachable: true,
        authRequired: true,
        resource: info.resource,
        asIssuer: info.asIssuer,
        scopes: info.challengedScopes.length ? info.challengedScopes : info.scopesSupported,
        xaa: info.advertisesIdJagProfile && info.advertisesJwtBearer ? 'supported' : 'not_advertised',
        needsClientId: true,
      };
    } catch (e) {
      const error = toErrorInfo(e);
      const reachable = error.code !== ErrorCodes.SERVER_UNREACHABLE;
      return { ...base, reachable, xaa: error.code === ErrorCodes.SERVER_NOT_XAA_CAPABLE ? 'unsupported' : 'unknown', error };
    }
  }

  async testServer(input: { id: string }): Promise<TestResult> {
    const server = this.requireServer(input.id);
    const steps: TestResult['steps'] = [];
    const engine = this.deps.engine();
    const step = async <T>(name: string, run: () => Promise<T>, detail: (v: T) => string): Promise<T | undefined> => {
      try {
        const value = await run();
        steps.push({ name, ok: true, detail: detail(value) });
        return value;
      } catch (e) {
        const error = toErrorInfo(e);
        steps.push({ name, ok: false, detail: error.message, error });
        return undefined;
      }
    };
    if (!engine) {
      steps.push({ name: 'Identity provider', ok: false, detail: 'No identity provider is configured.', error: notConfigured().toInfo() });
      return { serverId: server.id, ok: false, steps };
    }
    const info = await step(
      'Discovery',
      () => engine.tokens.discover(server.id, { force: true }),
      (i) => (i.authRequired ? `Authorization server ${i.asIssuer}` : 'No authorization needed'),
    );
    const token = info
      ? await step(
          'Token',
          () => engine.tokens.getToken(server.id),
          (t) => (t ? `Token valid until ${new Date(t.expiresAt).toISOString()} (${t.scopes.join(' ') || 'no scopes'})` : 'Not needed'),
        )
      : undefined;
    let toolCount: number | undefined;
    if (info && (token !== undefined || !info.authRequired)) {
      await step(
        'MCP connection',
        async () => {
          const client = new Client({ name: 'lanyard-test', version: this.deps.version }, { capabilities: {} });
          await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { fetch: engine.tokens.authorizedFetch(server.id) }));
          try {
            const tools = await client.listTools();
            toolCount = tools.tools.length;
            return toolCount;
          } finally {
            await client.close().catch(() => {});
          }
        },
        (n) => `Connected; ${n} tools`,
      );
    }
    const ok = steps.every((s) => s.ok);
    this.deps.activity.record({
      kind: 'server',
      serverId: server.id,
      summary: `Tested server ${server.id}: ${ok ? 'all steps passed' : 'failed'}`,
      outcome: ok ? 'ok' : 'error',
    });
    return { serverId: server.id, ok, steps, ...(toolCount !== undefined ? { toolCount } : {}) };
  }

  async listTools(input: { id: string }): Promise<Array<{ name: string; exposedName: string; description?: string }>> {
    this.requireServer(input.id);
    const gateway = this.deps.gateway();
    if (!gateway)
      throw new LanyardError(
        ErrorCodes.BROKER_NOT_RUNNING,
        'The local MCP endpoint is not running.',
        'Start Lanyard (or `lanyard serve`).',
      );
    const tools = await gateway.listTools(input.id);
    // Listing fills the server's catalog, and with it the tool count in status. The gateway pushed status when the
    // server became ready, which is before its tools were listed (by a slow listing, long before): without a push
    // now, the dashboard would show "—" tools until some unrelated change.
    this.statusChanged();
    return tools.map((t) => ({ name: t.name, exposedName: t.exposedName, ...(t.description ? { description: t.description } : {}) }));
  }

  /**
   * Writes the IDE's user-level MCP config so it reaches Lanyard (ide/connector.ts): the HTTP endpoint with the local
   * token, or `lanyard stdio` by absolute path. The result carries the masked snippet and the IDE's install link, never
   * the token itself.
   */
  async connectIde(input: { ide: IdeName; stdio?: boolean | undefined }): Promise<ConnectIdeResult> {
    const target = IDE_TARGETS[input.ide];
    // stdio unless HTTP is asked for: the stdio entry holds no token and cannot be squatted (SECURITY.md).
    const http = input.stdio === false && target.supportsHttp;
    let launcher: StdioLauncher | undefined;
    try {
      launcher = this.deps.ide?.launcher?.() ?? resolveStdioLauncher({ home: this.ideHome() });
    } catch (e) {
      // Only the stdio entry needs it; for HTTP it just feeds the optional install link.
      if (!http) throw e;
    }
    const endpoint = http ? await (this.deps.ide?.endpoint ?? (() => this.localEndpoint()))() : undefined;
    const outcome = await connectIde(
      input.ide,
      { transport: http ? 'http' : 'stdio', endpoint, launcher },
      { home: this.ideHome(), machine: this.ideMachine() },
    );
    this.deps.activity.record({
      kind: 'ide',
      summary: outcome.changed
        ? `Connected ${outcome.displayName} to Lanyard (${outcome.transport}): ${outcome.configPath}`
        : `${outcome.displayName} was already connected (${outcome.configPath})`,
      outcome: 'ok',
    });
    return {
      ide: outcome.ide,
      configPath: outcome.configPath,
      ...(outcome.backupPath ? { backupPath: outcome.backupPath } : {}),
      changed: outcome.changed,
      ...(outcome.deepLink ? { deepLink: outcome.deepLink } : {}),
      snippet: outcome.snippet,
      transport: outcome.transport,
      created: outcome.created,
      reloadHint: outcome.reloadHint,
    };
  }

  /** Undoes `connectIde`: the file back byte for byte when untouched since, otherwise only Lanyard's entry removed. */
  async disconnectIde(input: { ide: IdeName }): Promise<DisconnectIdeResult> {
    const outcome = await disconnectIde(input.ide, { home: this.ideHome(), machine: this.ideMachine() });
    if (outcome.changed)
      this.deps.activity.record({ kind: 'ide', summary: `Disconnected ${outcome.displayName}: ${outcome.detail}`, outcome: 'info' });
    return {
      ide: outcome.ide,
      configPath: outcome.configPath,
      changed: outcome.changed,
      action: outcome.action,
      ...(outcome.backupPath ? { backupPath: outcome.backupPath } : {}),
      detail: outcome.detail,
    };
  }

  /**
   * The running gateway's LocalAuth. Its token is new at every start (see LocalAuth), so the HTTP-mode IDE configs
   * Lanyard wrote are rewritten with it now; `rotateLocalToken` then rotates this one. Returns the detach function.
   */
  useLocalAuth(auth: LocalAuth): () => void {
    this.localAuth = auth;
    void this.rewriteIdeTokens().catch((e: unknown) => this.log.warn('IDE configs not rewritten with the new local token', { error: e }));
    return () => {
      if (this.localAuth === auth) this.localAuth = undefined;
    };
  }

  /**
   * `lanyard token rotate`: a new local token at once (the running gateway's, or the keychain's when none runs), then
   * the HTTP-mode IDE configs rewritten with it. IDEs using `lanyard stdio` need nothing.
   */
  async rotateLocalToken(): Promise<RotateLocalTokenResult> {
    if (this.localAuth) await this.localAuth.rotate();
    else await (await LocalAuth.open(this.deps.secrets)).rotate();
    this.deps.activity.record({ kind: 'session', summary: 'Local token rotated', outcome: 'info' });
    return this.rewriteIdeTokens();
  }

  private async rewriteIdeTokens(): Promise<RotateLocalTokenResult> {
    const ctx = { home: this.ideHome(), machine: this.ideMachine() };
    const result = await refreshHttpConnections(() => this.httpEndpoint(), ctx);
    for (const r of result.rewritten)
      this.deps.activity.record({ kind: 'ide', summary: `Wrote the new local token into ${r.configPath}`, outcome: 'info' });
    for (const f of result.failed)
      this.deps.activity.record({ kind: 'ide', summary: `Could not write the new local token into ${f.configPath}`, outcome: 'error' });
    return result;
  }

  private async httpEndpoint(): Promise<HttpEndpoint> {
    const gateway = this.deps.gateway();
    if (this.localAuth && gateway) return { url: `http://127.0.0.1:${gateway.port}/mcp`, token: this.localAuth.token };
    return (this.deps.ide?.endpoint ?? (() => this.localEndpoint()))();
  }

  private ideHome(): string {
    return this.deps.ide?.home ?? path.dirname(this.deps.config.path);
  }

  private ideMachine(): IdeEnvironment {
    return this.deps.ide?.machine ?? { homedir: homedir(), env: process.env, platform: process.platform };
  }

  /** The gateway's port (else the configured one) and the local token from the keychain (created on first use). */
  private async localEndpoint(): Promise<HttpEndpoint> {
    const port = this.deps.gateway()?.port ?? this.deps.config.load().gateway.port;
    if (!port) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        'The local endpoint has no fixed port (gateway.port is 0).',
        'Set gateway.port to a fixed port, or connect with `--stdio`.',
      );
    }
    let auth: LocalAuth;
    try {
      auth = await LocalAuth.open(this.deps.secrets);
    } catch (e) {
      // The HTTP entry needs the local token from the keychain; the stdio entry needs nothing from it.
      if (e instanceof LanyardError && e.code === ErrorCodes.KEYCHAIN_UNAVAILABLE) {
        throw new LanyardError(
          e.code,
          e.message,
          `${e.fix} Or connect with \`--stdio\` (or "stdio" in the dashboard), which puts no token in the IDE's file.`,
          { cause: e },
        );
      }
      throw e;
    }
    return { url: `http://127.0.0.1:${port}/mcp`, token: auth.token };
  }

  async recentActivity(input: { limit?: number | undefined }): Promise<ActivityEvent[]> {
    return this.deps.activity.recent(input.limit ?? 100);
  }

  async getSettings(): Promise<Settings> {
    return settingsOf(this.deps.config.load(), this.deps.locked?.() ?? []);
  }

  /**
   * Changes the settings. Changing the identity provider's issuer or client id (here, from a configuration link, or
   * from the CLI) also signs the user out — the session and the server tokens minted with it belong to the old IdP —
   * and removes the old IdP's client secret and private key from the keychain: they are the old IdP's, and must be
   * entered again for the new one. (The IdP client refuses a credential stored for another party anyway; this is so the
   * old one does not linger.) A client secret given here is stored bound to the IdP and client id it was entered with.
   */
  async updateSettings(input: Parameters<ControlApi['updateSettings']>[0]): Promise<Settings> {
    if (input.idp) this.assertUnlocked('idp');
    const before = this.deps.config.load().idp;
    // The engine built for the old IdP, captured before anything changes: it signs out at the IdP that issued the session.
    const oldEngine = this.deps.engine();
    this.deps.config.update((draft) => {
      if (input.idp) {
        draft.idp = {
          issuer: input.idp.issuer.trim(),
          clientId: input.idp.clientId.trim(),
          clientAuth: { method: input.idp.clientAuthMethod ?? 'none' } as NonNullable<LanyardConfig['idp']>['clientAuth'],
          scopes: draft.idp?.scopes ?? ['openid', 'profile', 'email', 'offline_access'],
          ...(input.idp.redirectPort ? { redirectPort: input.idp.redirectPort } : {}),
        };
      }
      if (input.gatewayPort !== undefined) draft.gateway.port = input.gatewayPort;
      if (input.toolNameSeparator !== undefined) draft.gateway.toolNameSeparator = input.toolNameSeparator;
      if (input.allowedOrigins !== undefined) draft.gateway.allowedOrigins = input.allowedOrigins;
      if (input.startAtLogin !== undefined) draft.ui = { ...draft.ui, startAtLogin: input.startAtLogin };
    });
    const after = this.deps.config.load().idp;
    if (after && (before?.issuer !== after.issuer || before?.clientId !== after.clientId)) {
      await this.endIdpSession(oldEngine);
      await this.deps.secrets.delete(secretKeys.idpClientSecret);
      await this.deps.secrets.delete(secretKeys.idpPrivateKey);
      this.deps.activity.record({
        kind: 'session',
        summary: before
          ? `Identity provider changed from ${before.issuer} to ${after.issuer}: signed out, and the old client credentials removed from the keychain`
          : `Identity provider set to ${after.issuer}`,
        outcome: 'info',
      });
    }
    if (input.idp?.clientSecret && after) {
      await this.deps.secrets.set(
        secretKeys.idpClientSecret,
        sealCredential(input.idp.clientSecret, { issuer: after.issuer, clientId: after.clientId }),
      );
    }
    if (JSON.stringify(after ?? null) !== JSON.stringify(before ?? null)) await this.deps.reconfigure();
    this.deps.activity.record({ kind: 'session', summary: 'Settings changed', outcome: 'info' });
    this.statusChanged();
    return this.getSettings();
  }

  /**
   * Ends the session of an IdP that is being replaced: through its engine when one is running (revokes the refresh token
   * at that IdP, then wipes the session and the cached server tokens), otherwise straight from the keychain.
   */
  private async endIdpSession(engine: { identity: IdentitySession; tokens: TokenService } | undefined): Promise<void> {
    if (engine) {
      await engine.identity.signOut();
      await engine.tokens.clear();
    }
    await this.deps.secrets.delete(secretKeys.idpSession);
    await this.deps.secrets.deleteAll(secretKeys.tokenPrefix);
  }

  private serverStatus(server: ServerConfig): ServerStatus {
    const engine = this.deps.engine();
    const tokenStatus = engine?.tokens.status(server.id);
    const health = this.deps.gateway()?.serverHealth(server.id);
    const lastError = health?.lastError ?? tokenStatus?.lastError;
    return {
      id: server.id,
      name: server.name,
      url: server.url,
      enabled: server.enabled,
      managed: this.deps.managedServerIds?.().includes(server.id) ?? false,
      health: !server.enabled ? 'disabled' : (health?.health ?? (lastError ? 'error' : 'idle')),
      authPath: tokenStatus?.authRequired === undefined ? 'unknown' : tokenStatus.authRequired ? 'xaa' : 'none',
      ...(tokenStatus?.asIssuer ? { asIssuer: tokenStatus.asIssuer } : {}),
      ...(server.asClient ? { clientId: server.asClient.clientId } : {}),
      ...(health?.toolCount !== undefined ? { toolCount: health.toolCount } : {}),
      scopes: tokenStatus?.scopes ?? [],
      ...(tokenStatus?.tokenExpiresAt ? { tokenExpiresAt: tokenStatus.tokenExpiresAt } : {}),
      idJagsThisMonth: tokenStatus?.idJagsThisMonth ?? 0,
      idJagMonthlyQuota: OKTA_MONTHLY_ID_JAG_QUOTA,
      ...(tokenStatus?.idJagQuotaWarning
        ? { idJagQuotaWarning: { message: tokenStatus.idJagQuotaWarning.message, fix: tokenStatus.idJagQuotaWarning.fix } }
        : {}),
      ...(lastError ? { lastError } : {}),
    };
  }

  private requireServer(id: string): ServerConfig {
    const server = this.deps.config.load().servers.find((s) => s.id === id);
    if (!server)
      throw new LanyardError(
        ErrorCodes.SERVER_UNKNOWN,
        `No server "${id}" is configured.`,
        'Run `lanyard servers list` to see the configured servers.',
        { serverId: id },
      );
    return server;
  }

  private requireEngine() {
    const engine = this.deps.engine();
    if (!engine) throw notConfigured();
    return engine;
  }

  private assertUnlocked(field: 'idp' | 'servers', serverId?: string): void {
    const locked = this.deps.locked?.() ?? [];
    if (locked.includes(field) || (serverId && this.deps.managedServerIds?.().includes(serverId))) {
      throw new LanyardError(
        ErrorCodes.MANAGED_LOCKED,
        `${field === 'idp' ? 'The identity provider' : serverId ? `Server "${serverId}"` : 'The server list'} is managed by your administrator.`,
        'Ask your IT team to change it in the managed configuration.',
      );
    }
  }

  private emit<E extends ControlEventName>(event: E, payload: ControlEventPayload<E>): void {
    for (const listener of this.listeners) {
      try {
        listener(event, payload);
      } catch (e) {
        this.log.warn('control listener failed', { error: e });
      }
    }
  }
}

function notConfigured(): LanyardError {
  return new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    'No identity provider is configured.',
    "Set your company's IdP in Settings (issuer URL and client id), or run `npm run demo` for the sandbox.",
  );
}

function sessionOf(identity: IdentitySession | undefined): SessionStatus {
  if (!identity) return { status: 'not_configured' };
  const s = identity.state;
  switch (s.status) {
    case 'signed_in':
      return { status: 'signed_in', user: cleanUser(s.user), idTokenExpiresAt: s.idTokenExpiresAt };
    case 'expired':
      return { status: 'expired', user: cleanUser(s.user), error: s.error };
    case 'signing_in':
      return s.authorizeUrl ? { status: 'signing_in', authorizeUrl: s.authorizeUrl } : { status: 'signing_in' };
    default:
      return { status: s.status };
  }
}

function cleanUser(u: { issuer: string; sub: string; email?: string | undefined; name?: string | undefined }) {
  return { issuer: u.issuer, sub: u.sub, ...(u.email ? { email: u.email } : {}), ...(u.name ? { name: u.name } : {}) };
}

function settingsOf(config: LanyardConfig, locked: string[]): Settings {
  return {
    ...(config.idp
      ? {
          idp: {
            issuer: config.idp.issuer,
            clientId: config.idp.clientId,
            clientAuthMethod: config.idp.clientAuth.method,
            ...(config.idp.redirectPort ? { redirectPort: config.idp.redirectPort } : {}),
          },
        }
      : {}),
    gatewayPort: config.gateway.port,
    toolNameSeparator: config.gateway.toolNameSeparator,
    allowedOrigins: config.gateway.allowedOrigins,
    startAtLogin: config.ui?.startAtLogin ?? false,
    locked,
  };
}

/** A readable, unique server id from a URL: `mcp.linear.app` → `linear`, `api.acme.dev/wiki/mcp` → `acme-wiki`. */
export function suggestId(url: string, taken: string[]): string {
  let base = 'server';
  try {
    const u = new URL(url);
    const labels = u.hostname
      .split('.')
      .filter((l) => !['www', 'mcp', 'api', 'com', 'io', 'app', 'dev', 'net', 'org', 'ai', 'co'].includes(l));
    const host = u.hostname === '127.0.0.1' || u.hostname === 'localhost' ? 'local' : (labels[0] ?? u.hostname.split('.')[0] ?? 'server');
    const pathPart = u.pathname.split('/').filter((p) => p && p !== 'mcp' && p !== 'sse' && p !== 'v1')[0];
    base = [host, pathPart].filter(Boolean).join('-');
  } catch {
    // keep 'server'
  }
  base =
    base
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 28) || 'server';
  if (!SERVER_ID_PATTERN.test(base)) base = 'server';
  let id = base;
  for (let n = 2; taken.includes(id); n++) id = `${base}-${n}`;
  return id;
}

export function suggestName(url: string): string {
  try {
    const host = new URL(url).hostname.replace(/^(www|mcp|api)\./, '');
    return host.charAt(0).toUpperCase() + host.slice(1);
  } catch {
    return 'MCP server';
  }
}
