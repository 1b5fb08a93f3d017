import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallToolResult, ListToolsResult, Prompt, Tool } from '@modelcontextprotocol/server';
import { ErrorCodes, type ErrorInfo } from '../../../../shared/errors';
import { Emitter } from '../../../../shared/emitter';
import { LanyardError } from '../../errors';
import { openCallGuard, type CallGuard } from '../../governance/call-guard';
import type { FetchLike } from '../../util/http';
import { silentLogger, type Logger } from '../../util/log';
import { sendJsonRpcError } from '../http-util';
import { DEFAULT_TOOL_NAME_SEPARATOR } from '../../config/schema';
import { ProfileRegistry, type ProfileId, type ProfilesConfig, type ProfileView } from '../../governance/profiles';
import { DEFAULT_MAX_TOOL_NAME_LENGTH, ToolNamer, type NameOrigin } from '../tool-names';
import { CATALOG_KINDS, type CatalogKind, type ServerCatalog } from '../upstream/catalog';
import type { BackoffPolicy, UpstreamHealth } from '../upstream/health';
import { UpstreamPool, type CatalogSnapshotStore, type TransportMemoryStore, type UpstreamTokenSource } from '../upstream/pool';
import {
  noServersTool,
  SIGN_IN_TOOL,
  signInResult,
  signInTool,
  STATUS_TOOL,
  statusResult,
  statusTool,
  type ServerStatusLine,
} from './builtin-tools';
import type { AggregatorActivity, AggregatorCore, IdeSessionEvent, IdeSessionInfo } from './core';
import { ModernEndpoint } from '../mcp-2026/modern-endpoint';
import { IdeSessions } from './ide-sessions';
import { onlyServerCore } from './only-server';
import { mergePrompts, mergeTools, ResourceIndex } from './merged';
import { toProtocolError } from './errors';
import type { ToolGate } from '../../governance/pins/gate';

/** A configured server as the aggregator sees it (a subset of the config entry). */
export interface AggregatorServer {
  id: string;
  name: string;
  url: string;
  enabled: boolean;
}

export type { AggregatorActivity, IdeSessionEvent, IdeSessionInfo } from './core';

export interface AggregatorOptions {
  tokens: UpstreamTokenSource;
  getServers: () => AggregatorServer[];
  /** gateway.toolNameSeparator (default `__`). */
  separator?: string;
  /** Longest tool/prompt name handed to IDEs (default 64; 60 for Cursor). */
  maxToolNameLength?: number;
  /** The effective `profiles` section: per-IDE tool lists and budgets (governance/profiles). */
  profiles?: () => ProfilesConfig | undefined;
  log?: Logger;
  /** Tool calls (names, outcome, duration; never arguments or results) and server health transitions. */
  onActivity?: (event: AggregatorActivity) => void;
  /** An IDE session initialized or ended (with its clientInfo name and version). */
  onIdeSession?: (event: IdeSessionEvent) => void;
  isSignedIn: () => boolean;
  /**
   * Whether a server needs the IdP sign-in (Cross-App Access). Signed out, only the others are listed and called, with
   * `lanyard_sign_in` beside them. Default: every server does.
   */
  needsSignIn?: (serverId: string) => boolean;
  /** One sentence saying how to sign in (tray, dashboard, `lanyard login`). */
  signInHint: () => string;
  /** The fetch upstream MCP traffic goes through, before the token service wraps it. */
  fetch?: FetchLike;
  /** Lanyard's version, announced to IDEs and servers. */
  version?: string;
  /** How long tools/list (and the other lists) wait for servers not listed yet (default 3 s; they load in parallel). */
  listBudgetMs?: number;
  /** Per-call upstream budget, restarted by progress, paused while the IDE answers (default 60 s). */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** An IDE session's upstream session to a server is closed after this long unused (default 10 min). */
  boundIdleMs?: number;
  now?: () => number;
  /** Governance (audit ledger, secret scan): admits and settles every upstream request (default: admits all). */
  guard?: CallGuard | undefined;
  /** Tool pinning: quarantined tools are left out of every server's catalog and refused on call. */
  toolGate?: ToolGate;
  /** Each server's transport and protocol era verdict, kept across restarts (the upstream pool's). */
  transportMemory?: TransportMemoryStore;
  /** Each server's last live catalog, kept across restarts: a restart's first lists come from it while servers connect. */
  catalogSnapshots?: CatalogSnapshotStore;
}

/** One server's lists as the dashboard shows them. */
export interface CatalogView {
  serverId: string;
  tools: Array<{ name: string; exposedName: string; title?: string | undefined; description?: string | undefined }>;
  prompts: Array<{ name: string; exposedName: string; description?: string | undefined }>;
  resources: number;
  resourceTemplates: number;
  loadedAt: number;
}

export interface Aggregator {
  /**
   * Serves one HTTP request to `/mcp`, or to an IDE's `/ide/<ide>/mcp` with `profile` (the front door has checked Host,
   * Origin and the local token).
   */
  handleRequest(req: IncomingMessage, res: ServerResponse, parsedBody?: unknown, profile?: ProfileId): Promise<void>;
  /** `/mcp/only/<server-id>`: the same pipeline carrying one server with its own names (a diagnostic endpoint). */
  handleOnlyRequest(serverId: string, req: IncomingMessage, res: ServerResponse, parsedBody?: unknown): Promise<void>;
  close(): Promise<void>;
  /** The config's servers, or the signed-in user, changed: re-read them and tell every IDE session. */
  notifyServersChanged(): void;
  ideSessions(): IdeSessionInfo[];
  /** The cached lists of one server (no network), or undefined when it has not been listed. */
  catalog(serverId: string): CatalogView | undefined;
  /** One server's tools, listing it if needed (within the list budget). */
  listTools(serverId: string): Promise<CatalogView['tools']>;
  /** One server's health for the tray, the dashboard and `lanyard status`. */
  serverHealth(serverId: string):
    | {
        health: UpstreamHealth['state'];
        toolCount?: number | undefined;
        lastError?: ErrorInfo | undefined;
        since: number;
        transport?: string | undefined;
      }
    | undefined;
  onServerHealth(listener: (serverId: string, health: UpstreamHealth) => void): () => void;
  /** A server's credentials became usable (authorized, key stored): list it again now instead of after its backoff. */
  credentialsChanged(serverId: string): void;
}

const DEFAULT_LIST_BUDGET_MS = 3_000;
/** list_changed bursts (fifty servers arriving after start-up) become one notification per kind. */
const BROADCAST_DEBOUNCE_MS = 100;

/**
 * `/mcp`: every enabled server behind one MCP endpoint. Tools and prompts are named `<server><sep><name>` (shortened
 * with a reverse map past the IDE limit); resources keep their URIs and are routed back through an index. Each IDE
 * session is one SDK `Server` on a stateful Streamable HTTP transport (ide-sessions.ts); its calls run on its own
 * bound upstream sessions (upstream/pool.ts), so server→client traffic reaches exactly the IDE session — and the IDE
 * request — that caused it.
 *
 * Start-up never hangs: initialize is answered locally at once; the lists wait at most `listBudgetMs` for servers not
 * listed yet (in parallel) and leave out the slow or failing ones, adding `lanyard_status` (or, signed out,
 * `lanyard_sign_in`) to say what to do. Servers that arrive later are announced with list_changed.
 */
export function createAggregator(options: AggregatorOptions): Aggregator {
  return new AggregatorImpl(options);
}

class AggregatorImpl implements Aggregator, AggregatorCore {
  readonly pool: UpstreamPool;
  readonly log: Logger;
  readonly now: () => number;
  readonly version: string;
  readonly separator: string;
  readonly guard: CallGuard;
  private readonly toolNamer: ToolNamer;
  private readonly promptNamer: ToolNamer;
  private readonly sessions: IdeSessions;
  private readonly profiles: ProfileRegistry;
  private readonly modern: ModernEndpoint;
  /** `/mcp/only/<id>` endpoints, created on first use. */
  private readonly onlyEndpoints = new Map<string, { sessions: IdeSessions; modern: ModernEndpoint }>();
  private readonly healthEvents = new Emitter<{ serverId: string; health: UpstreamHealth }>((e) =>
    this.log.error('health listener failed', { error: e }),
  );
  private readonly lastHealth = new Map<string, UpstreamHealth['state']>();
  private servers: AggregatorServer[] = [];
  private serversKey = '';
  private lastSignedIn: boolean;
  private readonly kindVersions: Record<CatalogKind, number> = { tools: 1, prompts: 1, resources: 1 };
  private toolsCache: Tool[] | undefined;
  /** `{"tools":[…]}` of toolsCache, serialized once. */
  private toolsJson: { tools: Tool[]; json: Buffer } | undefined;
  private promptsCache: Prompt[] | undefined;
  private resourcesCache: ResourceIndex | undefined;
  private readonly pendingBroadcast = new Set<CatalogKind>();
  private broadcastTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: AggregatorOptions) {
    this.log = (options.log ?? silentLogger).child('aggregate');
    this.now = options.now ?? Date.now;
    this.version = options.version ?? '0.0.0';
    this.separator = options.separator ?? DEFAULT_TOOL_NAME_SEPARATOR;
    this.guard = options.guard ?? openCallGuard;
    const namerOptions = { separator: this.separator, maxLength: options.maxToolNameLength ?? DEFAULT_MAX_TOOL_NAME_LENGTH };
    this.toolNamer = new ToolNamer(namerOptions);
    this.promptNamer = new ToolNamer(namerOptions);
    this.pool = new UpstreamPool({
      tokens: options.tokens,
      clientInfo: { name: 'lanyard', title: 'Lanyard', version: this.version },
      log: this.log.child('upstream'),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.boundIdleMs !== undefined ? { boundIdleMs: options.boundIdleMs } : {}),
      ...(options.transportMemory ? { transportMemory: options.transportMemory } : {}),
      ...(options.catalogSnapshots ? { snapshots: options.catalogSnapshots } : {}),
      ...(options.toolGate
        ? { catalogFilter: (c: ServerCatalog) => ({ ...c, tools: options.toolGate!.filterTools(c.serverId, c.tools) }) }
        : {}),
      now: this.now,
    });
    // An approval makes a tool visible: that server's catalog is filtered again, and IDEs get list_changed.
    options.toolGate?.onEvent((event) => {
      if (event.type === 'visible' && !this.closed) this.pool.refilter(event.serverId);
    });
    this.pool.onEvent((event) => {
      if (event.type === 'catalog') {
        this.invalidate(event.kinds);
        // A new or relisted catalog changes the tool count the tray and dashboard show: tell them, as for health.
        const health = this.pool.health(event.serverId);
        if (health) this.healthEvents.emit({ serverId: event.serverId, health });
      } else this.healthChanged(event.serverId, event.health);
    });
    this.profiles = new ProfileRegistry({
      config: () => options.profiles?.(),
      separator: this.separator,
      defaultMaxNameLength: namerOptions.maxLength,
      originOf: (exposed) => this.knownName('tools', exposed),
      list: () => this.listToolsForIde(),
    });
    this.sessions = new IdeSessions(this);
    this.modern = new ModernEndpoint(this);
    this.lastSignedIn = options.isSignedIn();
    this.readServers();
  }

  // ---- Aggregator (the front door and the control service) ----

  async handleRequest(req: IncomingMessage, res: ServerResponse, parsedBody?: unknown, profile?: ProfileId): Promise<void> {
    this.checkSignIn();
    // 2026-07-28 traffic (no session, `_meta` envelope) goes to the SDK's per-request handler; 2025-11-25 as before.
    // Both eras get the IDE profile of the endpoint (`/ide/<ide>/mcp`): its budget, short names and meta-tools.
    if (!this.closed && (await this.modern.claims(req, parsedBody))) return this.modern.handle(req, res, parsedBody, profile);
    return this.sessions.handleRequest(req, res, parsedBody, this.closed, profile);
  }

  async handleOnlyRequest(serverId: string, req: IncomingMessage, res: ServerResponse, parsedBody?: unknown): Promise<void> {
    this.checkSignIn();
    if (!this.pool.server(serverId)) {
      req.resume();
      sendJsonRpcError(res, 404, -32601, `No enabled server "${serverId}". /mcp/only/<id> serves one configured, enabled server.`);
      return;
    }
    let only = this.onlyEndpoints.get(serverId);
    if (!only) {
      const core = onlyServerCore(this, serverId);
      only = { sessions: new IdeSessions(core), modern: new ModernEndpoint(core) };
      this.onlyEndpoints.set(serverId, only);
    }
    if (!this.closed && (await only.modern.claims(req, parsedBody))) return only.modern.handle(req, res, parsedBody);
    return only.sessions.handleRequest(req, res, parsedBody, this.closed);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.broadcastTimer) clearTimeout(this.broadcastTimer);
    await this.sessions.close();
    await this.modern.close();
    for (const only of this.onlyEndpoints.values()) await Promise.all([only.sessions.close(), only.modern.close()]);
    await this.pool.close();
  }

  notifyServersChanged(): void {
    if (this.closed) return;
    const changed = this.readServers();
    const signInChanged = this.checkSignIn();
    if (changed && !signInChanged) this.invalidate(CATALOG_KINDS);
    // A profile edited (dashboard, CLI, managed config): the sessions of that IDE get list_changed.
    else if (this.profiles.refresh()) this.invalidate(['tools']);
  }

  ideSessions(): IdeSessionInfo[] {
    return this.sessions.list();
  }

  catalog(serverId: string): CatalogView | undefined {
    const catalog = this.pool.catalog(serverId);
    return catalog ? this.view(catalog) : undefined;
  }

  async listTools(serverId: string): Promise<CatalogView['tools']> {
    // Unlike the IDE lists, the dashboard wants the reason when a server cannot be listed: errors pass through.
    const catalog = await this.withBudget(this.pool.ensureCatalog(serverId), { rethrow: true });
    if (!catalog)
      throw new LanyardError(
        ErrorCodes.SERVER_UNREACHABLE,
        `Server "${serverId}" did not list its tools in time.`,
        'Try again in a moment; `lanyard doctor` tests every hop.',
        { serverId, transient: true },
      );
    return this.view(catalog).tools;
  }

  serverHealth(serverId: string): ReturnType<Aggregator['serverHealth']> {
    const health = this.pool.health(serverId);
    if (!health) return undefined;
    const catalog = this.pool.catalog(serverId);
    return {
      health: health.state,
      since: health.since,
      toolCount: catalog?.tools.length,
      lastError: health.lastError,
      transport: health.transport,
    };
  }

  onServerHealth(listener: (serverId: string, health: UpstreamHealth) => void): () => void {
    return this.healthEvents.on(({ serverId, health }) => listener(serverId, health));
  }

  credentialsChanged(serverId: string): void {
    if (this.closed || !this.canServe(serverId)) return;
    this.pool.retryNow(serverId);
  }

  // ---- AggregatorCore (the IDE sessions) ----

  signInHint(): string {
    return this.options.signInHint();
  }

  signedIn(): boolean {
    return this.lastSignedIn;
  }

  canServe(serverId: string): boolean {
    return this.lastSignedIn || !(this.options.needsSignIn?.(serverId) ?? true);
  }

  /** The servers listed and called now: all when signed in, else those that need no IdP sign-in. */
  private activeIds(): string[] {
    const ids = this.pool.serverIds();
    return this.lastSignedIn ? ids : ids.filter((id) => this.canServe(id));
  }

  /** Signed out with servers that need the sign-in: `lanyard_sign_in` is listed (alone, when nothing else can be). */
  private signInNeeded(): boolean {
    return !this.lastSignedIn && this.pool.serverIds().some((id) => !this.canServe(id));
  }

  versions(): Readonly<Record<CatalogKind, number>> {
    return this.kindVersions;
  }

  async listPrompts(): Promise<Prompt[]> {
    if (!this.activeIds().length) return [];
    await this.warm();
    this.promptsCache ??= mergePrompts(this.catalogs(), this.promptNamer);
    return this.promptsCache;
  }

  async listResources(): Promise<ResourceIndex> {
    if (!this.activeIds().length) return new ResourceIndex([]);
    await this.warm();
    this.resourcesCache ??= new ResourceIndex(this.catalogs());
    return this.resourcesCache;
  }

  async resolveName(kind: 'tools' | 'prompts', exposed: string): Promise<NameOrigin | undefined> {
    const namer = kind === 'tools' ? this.toolNamer : this.promptNamer;
    const enabled = (origin: NameOrigin | undefined) => (origin && this.pool.server(origin.serverId) ? origin : undefined);
    const known = enabled(namer.resolve(exposed));
    if (known) return this.unlessQuarantined(kind, known);
    // Not handed out by this run yet (an IDE calling from a list it cached before a restart): list, then look again.
    if (kind === 'tools') await this.listToolsForIde();
    else await this.listPrompts();
    return this.unlessQuarantined(kind, enabled(namer.resolveOrSplit(exposed)));
  }

  knownName(kind: 'tools' | 'prompts', exposed: string): NameOrigin | undefined {
    const origin = (kind === 'tools' ? this.toolNamer : this.promptNamer).resolve(exposed);
    // A quarantined tool is not the fast path's: resolveName refuses it with the reason. Nor is one named by a restart's
    // snapshot while the live listing runs: resolveName waits for it, so pinning checks the live definition.
    if (kind === 'tools' && origin && this.pool.servingSnapshot(origin.serverId)) return undefined;
    if (kind === 'tools' && origin && this.options.toolGate?.refusal(origin.serverId, origin.originalName)) return undefined;
    return origin && this.pool.server(origin.serverId) ? origin : undefined;
  }

  toolRefusal(serverId: string, tool: string): Error | undefined {
    return this.options.toolGate?.refusal(serverId, tool);
  }

  async admitToolCall(serverId: string, tool: string): Promise<void> {
    try {
      await this.pool.whenLive(serverId);
    } catch (e) {
      throw toProtocolError(serverId, e);
    }
    const refused = this.toolRefusal(serverId, tool);
    if (refused) throw toProtocolError(serverId, refused);
  }

  /** A tool is resolved for a call only once admitted (admitToolCall); a prompt as it is. */
  private async unlessQuarantined(kind: 'tools' | 'prompts', origin: NameOrigin | undefined): Promise<NameOrigin | undefined> {
    if (kind === 'tools' && origin) await this.admitToolCall(origin.serverId, origin.originalName);
    return origin;
  }

  knownServerForUri(uri: string): string | undefined {
    return this.signedIn() ? this.resourcesCache?.serverForUri(uri) : undefined;
  }

  async serverForUri(uri: string, template = false): Promise<string | undefined> {
    const index = await this.listResources();
    return template ? index.serverForTemplate(uri) : index.serverForUri(uri);
  }

  builtinTool(name: string): CallToolResult | undefined {
    const signedIn = !this.signInNeeded();
    if (name === SIGN_IN_TOOL)
      return signedIn ? statusResult(this.statusLines(), true, this.options.signInHint()) : signInResult(this.options.signInHint());
    if (name === STATUS_TOOL) return statusResult(this.statusLines(), signedIn, this.options.signInHint());
    return undefined;
  }

  activity(event: AggregatorActivity): void {
    try {
      this.options.onActivity?.(event);
    } catch (e) {
      this.log.error('activity listener failed', { error: e });
    }
  }

  ideSession(event: IdeSessionEvent): void {
    try {
      this.options.onIdeSession?.(event);
    } catch (e) {
      this.log.error('IDE session listener failed', { error: e });
    }
  }

  profileView(id: ProfileId | undefined): ProfileView {
    return this.profiles.view(id);
  }

  /** An IDE connected: start listing every server now, so its tools/list finds warm catalogs. */
  warmInBackground(): void {
    for (const id of this.activeIds()) this.pool.ensureCatalog(id).catch(() => undefined);
  }

  /** tools/list for an IDE: the merged tools of every listed server, plus Lanyard's own tool when something is wrong. */
  async listToolsForIde(): Promise<ListToolsResult> {
    const active = this.activeIds();
    const signIn = this.signInNeeded() ? [signInTool(this.options.signInHint())] : [];
    if (!active.length) return { tools: signIn.length ? signIn : [noServersTool()] };
    await this.warm();
    this.toolsCache ??= mergeTools(this.catalogs(), this.toolNamer);
    const missing = active.filter((id) => !this.pool.catalog(id));
    // The complete list is returned as the cached array itself: listToolsJson keys its serialised bytes on it.
    if (!missing.length) return { tools: signIn.length ? [...this.toolsCache, ...signIn] : this.toolsCache };
    return { tools: [...this.toolsCache, ...signIn, statusTool(missing.map((id) => this.statusLine(id)))] };
  }

  async listToolsJson(): Promise<Buffer> {
    const result = await this.listToolsForIde();
    // Only the complete merged list is kept; the variants with Lanyard's own tool are small and short-lived.
    if (result.tools !== this.toolsCache) return Buffer.from(JSON.stringify(result));
    if (this.toolsJson?.tools !== result.tools) this.toolsJson = { tools: result.tools, json: Buffer.from(JSON.stringify(result)) };
    return this.toolsJson.json;
  }

  // ---- internals ----

  /**
   * Tells the UI, and records in the activity view the transitions a person cares about (a working server failing,
   * a failing one coming back) — not every retry of one that is down.
   */
  private healthChanged(serverId: string, health: UpstreamHealth): void {
    const before = this.lastHealth.get(serverId);
    this.lastHealth.set(serverId, health.state);
    const wasOk = before === 'ready';
    const isOk = health.state === 'ready';
    if (wasOk && (health.state === 'error' || health.state === 'degraded')) {
      this.activity({
        kind: 'server',
        serverId,
        summary: `Server ${serverId} is failing: ${health.lastError?.message ?? health.state}`,
        outcome: 'error',
        ...(health.lastError ? { error: health.lastError } : {}),
      });
    } else if (isOk && (before === 'error' || before === 'degraded')) {
      this.activity({ kind: 'server', serverId, summary: `Server ${serverId} is working again`, outcome: 'ok' });
    }
    this.healthEvents.emit({ serverId, health });
  }

  /** Waits (at most the list budget) for servers that have no catalog yet; they load in parallel. */
  private async warm(): Promise<void> {
    const missing = this.activeIds().filter((id) => !this.pool.catalog(id));
    if (!missing.length) return;
    await this.withBudget(Promise.allSettled(missing.map((id) => this.pool.ensureCatalog(id))));
  }

  /** The promise's value, or undefined once the list budget has passed (the work goes on in the background). */
  private async withBudget<T>(work: Promise<T>, options: { rethrow?: boolean } = {}): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.options.listBudgetMs ?? DEFAULT_LIST_BUDGET_MS);
    });
    try {
      return await Promise.race([options.rethrow ? work : work.catch(() => undefined), budget]);
    } finally {
      clearTimeout(timer);
    }
  }

  private catalogs(): ServerCatalog[] {
    const out: ServerCatalog[] = [];
    for (const id of this.activeIds()) {
      const catalog = this.pool.catalog(id);
      if (catalog) out.push(catalog);
    }
    return out;
  }

  private statusLines(): ServerStatusLine[] {
    return this.pool.serverIds().map((id) => this.statusLine(id));
  }

  private statusLine(id: string): ServerStatusLine {
    return { id, name: this.pool.server(id)?.name ?? id, health: this.pool.health(id), toolCount: this.pool.catalog(id)?.tools.length };
  }

  /** Re-reads the servers; true when the enabled set (ids, names, URLs) changed. */
  private readServers(): boolean {
    let servers: AggregatorServer[];
    try {
      servers = this.options.getServers().filter((s) => s.enabled);
    } catch (e) {
      this.log.error('reading the configured servers failed; keeping the previous set', { error: e });
      return false;
    }
    // Whether each needs the sign-in is part of the set: a server found to be on another path is listed signed out.
    const key = JSON.stringify(servers.map((s) => [s.id, s.name, s.url, this.options.needsSignIn?.(s.id) ?? true]));
    if (key === this.serversKey) return false;
    const removed = this.servers.filter((s) => !servers.some((n) => n.id === s.id && n.url === s.url));
    this.servers = servers;
    this.serversKey = key;
    this.pool.setServers(servers);
    for (const server of removed) {
      this.toolNamer.retain(server.id);
      this.promptNamer.retain(server.id);
    }
    return true;
  }

  /** Notices sign-in and sign-out; true when it changed (every list is then different). */
  private checkSignIn(): boolean {
    const now = this.options.isSignedIn();
    if (now === this.lastSignedIn) return false;
    this.lastSignedIn = now;
    this.log.info(now ? 'signed in: listing servers' : 'signed out: closing upstream sessions');
    // Nothing listed or connected for one user may be served to the next.
    void this.pool.reset();
    this.invalidate(CATALOG_KINDS);
    if (now) this.warmInBackground();
    return true;
  }

  private invalidate(kinds: readonly CatalogKind[]): void {
    for (const kind of kinds) {
      this.kindVersions[kind]++;
      this.pendingBroadcast.add(kind);
      if (kind === 'tools') {
        this.toolsCache = undefined;
        this.toolsJson = undefined;
      } else if (kind === 'prompts') this.promptsCache = undefined;
      else this.resourcesCache = undefined;
    }
    if (this.broadcastTimer || this.closed) return;
    this.broadcastTimer = setTimeout(() => {
      this.broadcastTimer = undefined;
      const pending = [...this.pendingBroadcast];
      this.pendingBroadcast.clear();
      this.sessions.broadcastListChanged(pending);
      this.modern.listChanged(pending);
      for (const only of this.onlyEndpoints.values()) {
        only.sessions.broadcastListChanged(pending);
        only.modern.listChanged(pending);
      }
    }, BROADCAST_DEBOUNCE_MS);
    this.broadcastTimer.unref?.();
  }

  private view(catalog: ServerCatalog): CatalogView {
    return {
      serverId: catalog.serverId,
      tools: catalog.tools.map((t) => ({
        name: t.name,
        exposedName: this.toolNamer.expose(catalog.serverId, t.name),
        title: t.title,
        description: t.description,
      })),
      prompts: catalog.prompts.map((p) => ({
        name: p.name,
        exposedName: this.promptNamer.expose(catalog.serverId, p.name),
        description: p.description,
      })),
      resources: catalog.resources.length,
      resourceTemplates: catalog.resourceTemplates.length,
      loadedAt: catalog.loadedAt,
    };
  }
}
