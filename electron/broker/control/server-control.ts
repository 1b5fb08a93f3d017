import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ControlApi, ProbeResult, ServerStatus, TestResult } from '../../../shared/contract';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import type { ActivityLog } from '../activity/activity-log';
import { SERVER_ID_PATTERN, type ServerConfig } from '../config/schema';
import type { ConfigStore } from '../config/store';
import { LanyardError, toErrorInfo } from '../errors';
import { discoverServerAuth } from '../exchange/discovery';
import type { TokenService } from '../exchange/token-service';
import { OKTA_MONTHLY_ID_JAG_QUOTA } from '../exchange/usage';
import { sealCredential, secretKeys, type SecretStore } from '../secrets/secret-store';
import { withTimeout } from '../util/http';
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
  gateway: () => ServerGatewayView | undefined;
  /** Asks for a status push (coalesced by the control service). */
  statusChanged: () => void;
}

/** The control methods about the configured MCP servers: listing, adding, removing, enabling, probing and testing them. */
export class ServerControl {
  constructor(private readonly deps: ServerControlDeps) {}

  async listServers(): Promise<ServerStatus[]> {
    return this.deps.config.load().servers.map((s) => this.serverStatus(s));
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
    this.deps.statusChanged();
    return this.serverStatus(this.deps.config.load().servers.find((s) => s.id === id)!);
  }

  async removeServer(input: { id: string }): Promise<{ ok: true }> {
    assertUnlocked(this.deps, 'servers', input.id);
    this.requireServer(input.id);
    this.deps.config.update((draft) => {
      draft.servers = draft.servers.filter((s) => s.id !== input.id);
    });
    await this.deps.secrets.deleteAll(secretKeys.serverPrefix(input.id));
    this.deps.engine()?.tokens.forget(input.id);
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

  // The OAuth and API-key paths land these two; until then a server has no path that needs them.
  authorizeServer(input: { id: string }): Promise<{ authorizeUrl: string }> {
    this.requireServer(input.id);
    return Promise.reject(
      new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `Server "${input.id}" is not on the OAuth path.`,
        'Nothing to authorize for this server.',
        {
          serverId: input.id,
        },
      ),
    );
  }

  setServerKey(input: { id: string; value: string; headerName?: string | undefined }): Promise<ServerStatus> {
    this.requireServer(input.id);
    return Promise.reject(
      new LanyardError(ErrorCodes.CONFIG_INVALID, `Server "${input.id}" is not on the API-key path.`, 'Nothing to set for this server.', {
        serverId: input.id,
      }),
    );
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

  /** One server's status: its config, the token service's view of it, and the running gateway's health. */
  serverStatus(server: ServerConfig): ServerStatus {
    const engine = this.deps.engine();
    const tokenStatus = engine?.tokens.status(server.id);
    const health = this.deps.gateway()?.serverHealth(server.id);
    const lastError = health?.lastError ?? tokenStatus?.lastError;
    return {
      id: server.id,
      name: server.name,
      url: server.url,
      enabled: server.enabled,
      managed: this.deps.managedServerIds().includes(server.id),
      health: !server.enabled ? 'disabled' : (health?.health ?? (lastError ? 'error' : 'idle')),
      authPath: tokenStatus?.authRequired === undefined ? 'unknown' : tokenStatus.authRequired ? 'xaa' : 'none',
      authState:
        !tokenStatus || tokenStatus.authRequired === undefined
          ? lastError
            ? 'error'
            : 'unknown'
          : !tokenStatus.authRequired || tokenStatus.tokenExpiresAt
            ? 'ready'
            : lastError?.code === ErrorCodes.NOT_SIGNED_IN
              ? 'sign_in_required'
              : lastError
                ? 'error'
                : 'unknown',
      authPathPinned: false,
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
