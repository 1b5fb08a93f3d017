import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { AUTH_PATH_LABELS, headerNameProblem, type AuthPath } from '../../../shared/auth-paths';
import type { ControlApi, ProbeResult, ServerStatus, TestResult } from '../../../shared/contract';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import type { ActivityLog } from '../activity/activity-log';
import { assertPathAllowed, assertPathsUnlocked } from '../auth/policy';
import { keyProblem, type AuthRouter } from '../auth/router';
import { SERVER_ID_PATTERN, type ServerConfig } from '../config/schema';
import type { ConfigStore } from '../config/store';
import { LanyardError, toErrorInfo } from '../errors';
import type { TokenService } from '../exchange/token-service';
import { OKTA_MONTHLY_ID_JAG_QUOTA } from '../exchange/usage';
import { sealCredential, secretKeys, type SecretStore } from '../secrets/secret-store';
import { assertUnlocked, notConfigured, type ManagedLocks } from './guards';

/** What the server methods need from the running gateway (absent while it is not started). */
export interface ServerGatewayView {
  serverHealth(
    serverId: string,
  ): { health: ServerStatus['health']; toolCount?: number | undefined; lastError?: ErrorInfo | undefined } | undefined;
  listTools(serverId: string): Promise<Array<{ name: string; exposedName: string; description?: string | undefined }>>;
  serversChanged(): void;
}

export interface ServerControlDeps extends ManagedLocks {
  /** Lanyard's version, sent as the client version by `testServer`. */
  version: string;
  config: ConfigStore;
  secrets: SecretStore;
  activity: ActivityLog;
  engine: () => { tokens: TokenService } | undefined;
  /** Each server's auth path: status, probe, keys and the OAuth flow (auth/router.ts). */
  auth: AuthRouter;
  gateway: () => ServerGatewayView | undefined;
  /** Asks for a status push (coalesced by the control service). */
  statusChanged: () => void;
}

/** The control methods about the configured MCP servers: listing, adding, removing, enabling, probing and testing them. */
export class ServerControl {
  constructor(private readonly deps: ServerControlDeps) {}

  async listServers(): Promise<ServerStatus[]> {
    const servers = this.deps.config.load().servers;
    await this.deps.auth.loadKeys(servers);
    return servers.map((s) => this.serverStatus(s));
  }

  async addServer(input: Parameters<ControlApi['addServer']>[0]): Promise<ServerStatus> {
    assertUnlocked(this.deps, 'servers');
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
    const authPath = await this.addPath(id, url, input);
    const server: Record<string, unknown> = { id, name: input.name?.trim() || suggestName(url), url, enabled: true };
    if (authPath) server.authPath = authPath;
    if (input.header) server.header = { name: input.header.name.trim() };
    if (input.oauthClientId?.trim()) server.oauthClient = { clientId: input.oauthClientId.trim(), method: 'none' };
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
    // The key goes to the keychain only; the config holds the header's name.
    if (input.header) await this.deps.auth.storeKey(id, input.header.value);
    this.deps.activity.record({
      kind: 'server',
      serverId: id,
      summary: `Added server ${id} (${url})${authPath ? `, ${AUTH_PATH_LABELS[authPath]}` : ''}`,
      outcome: 'ok',
    });
    this.deps.gateway()?.serversChanged();
    this.deps.statusChanged();
    return this.serverStatus(this.deps.config.load().servers.find((s) => s.id === id)!);
  }

  async removeServer(input: { id: string }): Promise<{ ok: true }> {
    assertUnlocked(this.deps, 'servers', input.id);
    this.requireServer(input.id);
    this.deps.config.update((draft) => {
      draft.servers = draft.servers.filter((s) => s.id !== input.id);
    });
    await this.deps.auth.forget(input.id);
    await this.deps.secrets.deleteAll(secretKeys.serverPrefix(input.id));
    await this.deps.engine()?.tokens.forget(input.id);
    this.deps.activity.record({ kind: 'server', serverId: input.id, summary: `Removed server ${input.id}`, outcome: 'info' });
    this.deps.gateway()?.serversChanged();
    this.deps.statusChanged();
    return { ok: true };
  }

  async setServerEnabled(input: { id: string; enabled: boolean }): Promise<ServerStatus> {
    assertUnlocked(this.deps, 'servers', input.id);
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
    this.deps.statusChanged();
    return this.serverStatus(this.requireServer(input.id));
  }

  /**
   * Which auth paths apply to a URL, in order, and why (auth/probe.ts), within the administrator's policy for new
   * servers; `path` is the one Lanyard would use.
   */
  async probeUrl(input: { url: string }): Promise<ProbeResult> {
    const url = input.url.trim();
    const existing = this.deps.config.load().servers.map((s) => s.id);
    const base: ProbeResult = {
      url,
      reachable: false,
      scopes: [],
      xaa: 'unknown',
      needsClientId: true,
      paths: [],
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
      const probe = await this.deps.auth.probe(url);
      return {
        ...base,
        reachable: probe.reachable,
        ...(probe.authRequired !== undefined ? { authRequired: probe.authRequired } : {}),
        ...(probe.resource ? { resource: probe.resource } : {}),
        ...(probe.asIssuer ? { asIssuer: probe.asIssuer } : {}),
        scopes: probe.scopes,
        xaa: probe.xaa,
        // Only Cross-App Access needs Lanyard's client id at the server's AS from the admin; OAuth registers itself.
        needsClientId: probe.path === 'xaa' || (probe.path === undefined && probe.authRequired === true),
        paths: probe.paths,
        ...(probe.path ? { path: probe.path } : {}),
        ...(probe.error ? { error: probe.error } : {}),
      };
    } catch (e) {
      const error = toErrorInfo(e);
      return { ...base, reachable: error.code !== ErrorCodes.SERVER_UNREACHABLE, error };
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
    const path =
      this.deps.auth.pathOf(server.id) ??
      (await step(
        'Auth path',
        () => this.deps.auth.resolvePath(server.id),
        (p) => AUTH_PATH_LABELS[p],
      ));
    if (!path) return { serverId: server.id, ok: false, steps };
    if (path !== 'xaa') return this.testOtherPath(server, steps, step);
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
    return this.tested(server, steps, toolCount);
  }

  /** testServer for the OAuth, API-key and no-auth paths: the MCP connection through the auth router. */
  private async testOtherPath(
    server: ServerConfig,
    steps: TestResult['steps'],
    step: <T>(name: string, run: () => Promise<T>, detail: (v: T) => string) => Promise<T | undefined>,
  ): Promise<TestResult> {
    const toolCount = await step(
      'MCP connection',
      async () => {
        const client = new Client({ name: 'lanyard-test', version: this.deps.version }, { capabilities: {} });
        await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { fetch: this.deps.auth.authorizedFetch(server.id) }));
        try {
          return (await client.listTools()).tools.length;
        } finally {
          await client.close().catch(() => {});
        }
      },
      (n) => `Connected; ${n} tools`,
    );
    return this.tested(server, steps, toolCount);
  }

  private tested(server: ServerConfig, steps: TestResult['steps'], toolCount: number | undefined): TestResult {
    const ok = steps.every((s) => s.ok);
    this.deps.activity.record({
      kind: 'server',
      serverId: server.id,
      summary: `Tested server ${server.id}: ${ok ? 'all steps passed' : 'failed'}`,
      outcome: ok ? 'ok' : 'error',
    });
    return { serverId: server.id, ok, steps, ...(toolCount !== undefined ? { toolCount } : {}) };
  }

  /**
   * oauth path: starts (or joins) the one browser authorization for the server, opens the browser once and returns its
   * link; the status push reports the outcome.
   */
  async authorizeServer(input: { id: string }): Promise<{ authorizeUrl: string }> {
    const server = this.requireServer(input.id);
    const path = await this.deps.auth.resolvePath(server.id);
    if (path !== 'oauth') {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `Server "${server.id}" uses ${AUTH_PATH_LABELS[path]}, not OAuth: there is nothing to authorize for it.`,
        path === 'xaa' ? 'Sign in to your identity provider instead.' : path === 'header' ? 'Set its key instead.' : 'Nothing to do.',
        { serverId: server.id },
      );
    }
    const flow = await this.deps.auth.authorize(server.id, { openBrowser: true });
    this.deps.activity.record({
      kind: 'token',
      serverId: server.id,
      summary: `Authorization of ${server.id} started in the browser`,
      outcome: 'info',
    });
    flow.done.then(
      () => this.deps.gateway()?.serversChanged(),
      () => undefined,
    );
    this.deps.statusChanged();
    return { authorizeUrl: flow.authorizeUrl };
  }

  /**
   * header path: stores (or replaces) the server's key in the keychain. A server on another path moves to the header
   * path only when the administrator's policy allows it and does not lock paths.
   */
  async setServerKey(input: { id: string; value: string; headerName?: string | undefined }): Promise<ServerStatus> {
    const server = this.requireServer(input.id);
    const policy = this.deps.auth.policy(server);
    const headerName = input.headerName?.trim() || server.header?.name;
    if (!headerName) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `Say which header carries the key for server "${server.id}".`,
        'Give the header name too (for example X-API-Key, or Authorization with the value "Bearer <key>").',
        { serverId: server.id },
      );
    }
    const nameProblem = headerNameProblem(headerName);
    if (nameProblem)
      throw new LanyardError(ErrorCodes.CONFIG_INVALID, `The header name ${nameProblem}.`, 'Use the header name the service documents.', {
        serverId: server.id,
      });
    const valueProblem = keyProblem(input.value);
    if (valueProblem)
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `The key was not saved: it ${valueProblem}.`,
        'Paste the key exactly as the service issued it.',
        { serverId: server.id },
      );
    // A server not probed yet is probed first: an API-key server is then already on the header path.
    const current = this.deps.auth.pathOf(server.id) ?? (await this.deps.auth.resolvePath(server.id).catch(() => undefined));
    const switching = current !== 'header';
    const renaming = server.header !== undefined && server.header.name !== headerName;
    if (switching || renaming) {
      assertPathAllowed(policy, server.id, 'header');
      assertPathsUnlocked(policy, server.id);
      if (this.deps.managedServerIds().includes(server.id))
        throw new LanyardError(
          ErrorCodes.MANAGED_LOCKED,
          `Server "${server.id}" is managed by your administrator; its auth path cannot be changed here.`,
          'Ask your IT team to change it in the managed configuration.',
          { serverId: server.id },
        );
    }
    // The key first: a failing keychain leaves the config as it was.
    await this.deps.auth.storeKey(server.id, input.value);
    if (switching || server.header?.name !== headerName) {
      this.deps.config.update((draft) => {
        const s = draft.servers.find((x) => x.id === server.id);
        if (!s) return;
        s.authPath = 'header';
        s.header = { name: headerName };
      });
      this.deps.auth.reset(server.id);
    }
    this.deps.activity.record({
      kind: 'server',
      serverId: server.id,
      summary: `Stored the key for ${server.id} in the keychain (header ${headerName})`,
      outcome: 'ok',
    });
    this.deps.gateway()?.serversChanged();
    this.deps.statusChanged();
    const updated = this.requireServer(server.id);
    await this.deps.auth.loadKeys([updated]);
    return this.serverStatus(updated);
  }

  /**
   * The path `addServer` records: the given one (within policy), the header path with a key, else none yet (the first
   * use probes). While the administrator locks paths, a given path must be the one the probe chooses.
   */
  private async addPath(id: string, url: string, input: Parameters<ControlApi['addServer']>[0]): Promise<AuthPath | undefined> {
    const policy = this.deps.auth.policy({ id, authPath: undefined, fallback: undefined });
    if (input.header) {
      const problem = headerNameProblem(input.header.name.trim());
      if (problem)
        throw new LanyardError(ErrorCodes.CONFIG_INVALID, `The header name ${problem}.`, 'Use the header name the service documents.');
      const valueProblem = keyProblem(input.header.value);
      if (valueProblem)
        throw new LanyardError(
          ErrorCodes.CONFIG_INVALID,
          `The key was not saved: it ${valueProblem}.`,
          'Paste the key exactly as the service issued it.',
        );
      if (input.authPath && input.authPath !== 'header')
        throw new LanyardError(
          ErrorCodes.CONFIG_INVALID,
          `A key was given for a server on the ${AUTH_PATH_LABELS[input.authPath]} path.`,
          'Give a key only for the API-key path.',
        );
    }
    const path = input.authPath ?? (input.header ? 'header' : undefined);
    if (!path) return undefined;
    assertPathAllowed(policy, id, path);
    if (policy.locked) {
      const probe = await this.deps.auth.probe(url).catch(() => undefined);
      if (probe?.path !== path) assertPathsUnlocked(policy, id);
    }
    return path;
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
    this.deps.statusChanged();
    return tools.map((t) => ({ name: t.name, exposedName: t.exposedName, ...(t.description ? { description: t.description } : {}) }));
  }

  /**
   * One server's status: its config, its auth path and state (auth/router.ts), the token service's view of it, and the
   * running gateway's health. Header servers' key presence must have been loaded (`listServers`, `ControlService.status`).
   */
  serverStatus(server: ServerConfig): ServerStatus {
    const engine = this.deps.engine();
    const tokenStatus = engine?.tokens.status(server.id);
    const auth = this.deps.auth.view(server);
    const oauth = auth.authPath === 'oauth' ? this.deps.auth.oauth?.status(server.id) : undefined;
    const health = this.deps.gateway()?.serverHealth(server.id);
    // What the user must act on (blocked, a key, a consent) says more than the transport's failure it caused.
    const actionable = auth.authState === 'blocked' || auth.action !== undefined;
    const lastError = (actionable ? auth.lastError : undefined) ?? health?.lastError ?? auth.lastError ?? tokenStatus?.lastError;
    const asIssuer = oauth?.asIssuer ?? tokenStatus?.asIssuer;
    const clientId = server.asClient?.clientId ?? server.oauthClient?.clientId ?? oauth?.clientId;
    const expiresAt = oauth ? oauth.tokenExpiresAt : tokenStatus?.tokenExpiresAt;
    return {
      id: server.id,
      name: server.name,
      url: server.url,
      enabled: server.enabled,
      managed: this.deps.managedServerIds().includes(server.id),
      health: !server.enabled ? 'disabled' : (health?.health ?? (lastError ? 'error' : 'idle')),
      authPath: auth.authPath,
      authState: auth.authState,
      ...(auth.action ? { action: auth.action } : {}),
      authPathPinned: auth.authPathPinned,
      ...(auth.authorizeUrl ? { authorizeUrl: auth.authorizeUrl } : {}),
      ...(auth.headerName ? { headerName: auth.headerName } : {}),
      ...(asIssuer ? { asIssuer } : {}),
      ...(clientId ? { clientId } : {}),
      ...(health?.toolCount !== undefined ? { toolCount: health.toolCount } : {}),
      scopes: oauth?.scopes ?? tokenStatus?.scopes ?? [],
      ...(expiresAt ? { tokenExpiresAt: expiresAt } : {}),
      idJagsThisMonth: tokenStatus?.idJagsThisMonth ?? 0,
      idJagMonthlyQuota: OKTA_MONTHLY_ID_JAG_QUOTA,
      ...(tokenStatus?.idJagQuotaWarning
        ? { idJagQuotaWarning: { message: tokenStatus.idJagQuotaWarning.message, fix: tokenStatus.idJagQuotaWarning.fix } }
        : {}),
      ...(lastError ? { lastError } : {}),
    };
  }

  /** The configured server with this id; SERVER_UNKNOWN otherwise. */
  requireServer(id: string): ServerConfig {
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
