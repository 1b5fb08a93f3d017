import type { Client, ClientCapabilities, Implementation, LoggingLevel, Progress, ResultTypeMap } from '@modelcontextprotocol/client';
import { ErrorCodes, type ErrorInfo } from '../../../../shared/errors';
import { LanyardError } from '../../errors';
import type { FetchLike } from '../../util/http';
import type { Logger } from '../../util/log';
import { activeCall, Deadline, forwardFor, track, type ActiveCall, type DownstreamTarget } from './call-context';
import {
  boundCatalog,
  CATALOG_KINDS,
  changedKinds,
  listCatalog,
  listKind,
  MAX_CATALOG_ITEM_BYTES,
  MAX_CATALOG_ITEMS,
  type CatalogKind,
  type ServerCatalog,
} from './catalog';
import { unreachable } from './errors';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy, type UpstreamHealth } from './health';
import { UpstreamSession, type TransportMemory, type UpstreamSessionEvent } from './session';

/** A server the pool may connect to (an enabled entry of the config). */
export interface PoolServer {
  id: string;
  name: string;
  url: string;
}

/** The part of the TokenService upstream sessions use. */
export interface UpstreamTokenSource {
  authorizedFetch(serverId: string, base?: FetchLike): FetchLike;
}

/** Requests an IDE session can send to one server through its bound session. */
export type ForwardedMethod =
  'tools/call' | 'prompts/get' | 'resources/read' | 'completion/complete' | 'resources/subscribe' | 'resources/unsubscribe';

export type PoolEvent =
  { type: 'catalog'; serverId: string; kinds: CatalogKind[] } | { type: 'health'; serverId: string; health: UpstreamHealth };

export interface UpstreamPoolOptions {
  tokens: UpstreamTokenSource;
  /** The fetch upstream MCP traffic goes through, before the token service wraps it (default global fetch). */
  fetch?: FetchLike;
  clientInfo: Implementation;
  log: Logger;
  /** Per-request budget for calls, restarted on progress, paused while the IDE answers (default 60 s). */
  requestTimeoutMs?: number;
  /** Budget for one list request of the catalog (default 30 s; the IDE-facing budget is the aggregator's). */
  listTimeoutMs?: number;
  connectTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** A bound session unused this long (no call in flight, no subscription) is closed (default 10 min). */
  boundIdleMs?: number;
  now?: () => number;
}

/** An IDE session as the upstream side sees it: where its unsolicited traffic goes, and what it can answer. */
export interface DownstreamPeer extends DownstreamTarget {
  readonly id: string;
  /** The IDE's capabilities from its initialize: bound sessions declare exactly these (never more). */
  readonly capabilities: ClientCapabilities;
  readonly clientName: string;
}

/** The SDK's own per-request timer is replaced by Deadline (it cannot pause while the IDE answers). */
const NO_SDK_TIMEOUT = 24 * 60 * 60 * 1000;
const RELIST_DEBOUNCE_MS = 50;
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_BOUND_IDLE_MS = 10 * 60_000;

interface ServerEntry {
  server: PoolServer;
  memory: TransportMemory;
  health: UpstreamHealth;
  catalog?: ServerCatalog | undefined;
  session?: UpstreamSession | undefined;
  loading?: Promise<ServerCatalog> | undefined;
  failures: number;
  retryAt: number;
  lastError?: LanyardError | undefined;
  retryTimer?: NodeJS.Timeout | undefined;
  relistTimer?: NodeJS.Timeout | undefined;
  relistKinds: Set<CatalogKind>;
  closed: boolean;
}

/**
 * All upstream sessions, keyed by server id. Per server it owns:
 *   (a) one shared catalog session that lists tools, prompts, resources and templates, keeps the result, and
 *       re-lists on `notifications/…/list_changed` (then emits a `catalog` event), reconnecting in the background;
 *   (b) through `attach()`, one bound session per (IDE session, server), created on the IDE session's first request
 *       to that server. Calls run there, so everything the server sends back during a call (elicitation, sampling,
 *       roots, progress, log messages) belongs to exactly one IDE session, and to the one IDE request whose
 *       response stream carried it.
 * It also keeps each server's health, from whatever session last talked to it.
 */
export class UpstreamPool {
  private readonly entries = new Map<string, ServerEntry>();
  private readonly peers = new Set<BoundPeer>();
  private readonly listeners = new Set<(event: PoolEvent) => void>();
  private readonly now: () => number;
  readonly log: Logger;

  private readonly sweepTimer: NodeJS.Timeout;

  constructor(private readonly options: UpstreamPoolOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.log;
    // Bound sessions of idle IDE sessions are closed (each holds a GET stream at its server) and re-created on use.
    const idleMs = options.boundIdleMs ?? DEFAULT_BOUND_IDLE_MS;
    this.sweepTimer = setInterval(
      () => {
        for (const peer of this.peers) void peer.closeIdle(idleMs, this.now());
      },
      Math.max(1_000, Math.min(idleMs, 60_000)),
    );
    this.sweepTimer.unref?.();
  }

  onEvent(listener: (event: PoolEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces the set of servers: new ones start idle, removed ones (or a changed URL) are closed everywhere. */
  setServers(servers: readonly PoolServer[]): void {
    const wanted = new Map(servers.map((s) => [s.id, s]));
    for (const [id, entry] of this.entries) {
      const next = wanted.get(id);
      if (next && next.url === entry.server.url) {
        entry.server = next;
        continue;
      }
      this.closeEntry(entry);
      this.entries.delete(id);
      for (const peer of this.peers) void peer.closeServer(id);
    }
    for (const server of servers) {
      if (!this.entries.has(server.id)) this.entries.set(server.id, this.newEntry(server));
    }
  }

  serverIds(): string[] {
    return [...this.entries.keys()];
  }

  server(serverId: string): PoolServer | undefined {
    return this.entries.get(serverId)?.server;
  }

  health(serverId: string): UpstreamHealth | undefined {
    const entry = this.entries.get(serverId);
    return entry ? { ...entry.health, transport: entry.memory.kind } : undefined;
  }

  /** The last listed catalog, without any network traffic. */
  catalog(serverId: string): ServerCatalog | undefined {
    return this.entries.get(serverId)?.catalog;
  }

  /**
   * The server's catalog, listing it first if needed. One listing at a time per server; after a failure, callers
   * get that failure until the backoff delay has passed (a dead server is not hammered by every tools/list), and a
   * transient failure is retried in the background.
   */
  ensureCatalog(serverId: string): Promise<ServerCatalog> {
    const entry = this.entries.get(serverId);
    if (!entry)
      return Promise.reject(
        new LanyardError(
          ErrorCodes.SERVER_UNKNOWN,
          `No server "${serverId}" is configured.`,
          'Run `lanyard servers list` to see the configured servers.',
          { serverId },
        ),
      );
    if (entry.catalog) return Promise.resolve(entry.catalog);
    if (entry.loading) return entry.loading;
    if (entry.lastError && this.now() < entry.retryAt) return Promise.reject(entry.lastError);
    entry.loading = this.loadCatalog(entry).finally(() => {
      entry.loading = undefined;
    });
    return entry.loading;
  }

  /** Connects an IDE session: its bound sessions are created on demand and closed with it. */
  attach(peer: DownstreamPeer): BoundPeer {
    const bound = new BoundPeer(this, peer, {
      clientInfo: this.options.clientInfo,
      requestTimeoutMs: this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      now: this.now,
      onClosed: () => this.peers.delete(bound),
    });
    this.peers.add(bound);
    return bound;
  }

  /**
   * Forgets every session and catalog (the user signed out or changed): nothing listed or connected for one user
   * may be served to the next. Servers stay configured.
   */
  reset(): Promise<void> {
    // The swap is synchronous, so a request right after a sign-in already sees fresh entries; closing goes on behind.
    const old = [...this.entries.values()];
    this.entries.clear();
    for (const entry of old) this.entries.set(entry.server.id, this.newEntry(entry.server));
    const closing = [...old.map((e) => this.closeEntry(e)), ...[...this.peers].map((p) => p.closeAll())];
    return Promise.all(closing).then(() => undefined);
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await Promise.all([...this.peers].map((p) => p.close()));
    const sessions = [...this.entries.values()].map((e) => this.closeEntry(e));
    this.entries.clear();
    await Promise.all(sessions);
  }

  /** @internal A new upstream session for a server (used by the catalog and by BoundPeer). */
  createSession(
    serverId: string,
    spec: {
      capabilities: ClientCapabilities;
      clientInfo?: Implementation;
      setup?: (client: Client) => void;
      onConnected?: (client: Client, reconnect: boolean) => Promise<void>;
      keepAlive?: () => boolean;
    },
  ): UpstreamSession {
    const entry = this.entries.get(serverId);
    if (!entry)
      throw new LanyardError(
        ErrorCodes.SERVER_UNKNOWN,
        `No server "${serverId}" is configured (or it is disabled).`,
        'Run `lanyard servers list` to see the configured servers.',
        { serverId },
      );
    return new UpstreamSession({
      serverId,
      url: entry.server.url,
      fetch: this.options.tokens.authorizedFetch(serverId, this.options.fetch),
      clientInfo: spec.clientInfo ?? this.options.clientInfo,
      capabilities: spec.capabilities,
      transportMemory: entry.memory,
      log: this.log,
      onEvent: (event) => this.sessionEvent(entry, event),
      ...(spec.setup ? { setup: spec.setup } : {}),
      ...(spec.onConnected ? { onConnected: spec.onConnected } : {}),
      ...(spec.keepAlive ? { keepAlive: spec.keepAlive } : {}),
      ...(this.options.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.options.connectTimeoutMs } : {}),
      ...(this.options.backoff ? { backoff: this.options.backoff } : {}),
    });
  }

  /** @internal A session saw `…/list_changed`: re-list that kind (debounced; every session of a server may say so). */
  listChanged(serverId: string, kind: CatalogKind): void {
    const entry = this.entries.get(serverId);
    if (!entry || entry.closed || !entry.catalog) return;
    entry.relistKinds.add(kind);
    if (entry.relistTimer) return;
    entry.relistTimer = setTimeout(() => {
      entry.relistTimer = undefined;
      const kinds = [...entry.relistKinds];
      entry.relistKinds.clear();
      void this.relist(entry, kinds);
    }, RELIST_DEBOUNCE_MS);
    entry.relistTimer.unref?.();
  }

  private newEntry(server: PoolServer): ServerEntry {
    return {
      server,
      memory: {},
      health: { state: 'idle', since: this.now() },
      failures: 0,
      retryAt: 0,
      relistKinds: new Set(),
      closed: false,
    };
  }

  private catalogSession(entry: ServerEntry): UpstreamSession {
    entry.session ??= this.createSession(entry.server.id, {
      // The catalog session never answers server→client requests: it declares nothing.
      capabilities: {},
      setup: (client) => {
        client.setNotificationHandler('notifications/tools/list_changed', () => this.listChanged(entry.server.id, 'tools'));
        client.setNotificationHandler('notifications/prompts/list_changed', () => this.listChanged(entry.server.id, 'prompts'));
        client.setNotificationHandler('notifications/resources/list_changed', () => this.listChanged(entry.server.id, 'resources'));
      },
      onConnected: async (client, reconnect) => {
        // Back after a lost connection: the server may have restarted with other tools.
        if (reconnect && entry.catalog) this.applyCatalog(entry, await listCatalog(client, entry.server.id, this.listTimeout, this.now));
      },
      // Once there is a catalog to keep fresh, a lost connection is re-established without waiting for a request.
      keepAlive: () => !entry.closed && entry.catalog !== undefined,
    });
    return entry.session;
  }

  private get listTimeout(): number {
    return this.options.listTimeoutMs ?? 30_000;
  }

  private async loadCatalog(entry: ServerEntry): Promise<ServerCatalog> {
    try {
      const session = this.catalogSession(entry);
      const catalog = await session.run((client) => listCatalog(client, entry.server.id, this.listTimeout, this.now));
      if (entry.closed) throw unreachable(entry.server.id, 'was removed from the configuration');
      entry.failures = 0;
      entry.lastError = undefined;
      this.applyCatalog(entry, catalog);
      return catalog;
    } catch (e) {
      const error = e instanceof LanyardError ? e : unreachable(entry.server.id, 'could not be listed', e);
      entry.failures++;
      entry.lastError = error;
      entry.retryAt = this.now() + backoffDelay(entry.failures - 1, this.options.backoff ?? DEFAULT_BACKOFF);
      this.setHealth(entry, 'error', error);
      if (error.transient && !entry.closed) {
        // Keep trying in the background, so the tools appear (with a list_changed) once the server is back.
        if (entry.retryTimer) clearTimeout(entry.retryTimer);
        entry.retryTimer = setTimeout(
          () => {
            entry.retryTimer = undefined;
            if (!entry.closed && !entry.catalog) this.ensureCatalog(entry.server.id).catch(() => undefined);
          },
          Math.max(0, entry.retryAt - this.now()),
        );
        entry.retryTimer.unref?.();
      }
      throw error;
    }
  }

  private async relist(entry: ServerEntry, kinds: CatalogKind[]): Promise<void> {
    const session = entry.session;
    if (!session || !entry.catalog) return;
    try {
      const parts = await session.run((client) => Promise.all(kinds.map((k) => listKind(client, k, this.listTimeout))));
      if (!entry.catalog || entry.closed) return;
      this.applyCatalog(entry, { ...entry.catalog, ...Object.assign({}, ...parts), loadedAt: this.now() });
    } catch (e) {
      this.log.warn('re-listing after list_changed failed', { serverId: entry.server.id, error: e });
    }
  }

  private applyCatalog(entry: ServerEntry, listed: ServerCatalog): void {
    const { catalog, dropped } = boundCatalog(listed);
    if (dropped.oversized || dropped.beyondLimit) {
      this.log.warn('server catalog bounded: definitions left out', {
        serverId: entry.server.id,
        oversized: dropped.oversized,
        beyondLimit: dropped.beyondLimit,
        maxItems: MAX_CATALOG_ITEMS,
        maxItemBytes: MAX_CATALOG_ITEM_BYTES,
      });
    }
    const kinds = changedKinds(entry.catalog, catalog);
    entry.catalog = catalog;
    if (kinds.length) this.emit({ type: 'catalog', serverId: entry.server.id, kinds });
  }

  private sessionEvent(entry: ServerEntry, event: UpstreamSessionEvent): void {
    if (entry.closed) return;
    switch (event.type) {
      case 'connecting':
        // The last error stays visible while Lanyard tries again.
        if (entry.health.state === 'idle' || entry.health.state === 'error') this.setHealth(entry, 'connecting', entry.health.lastError);
        return;
      case 'connected':
      case 'succeeded':
        this.setHealth(entry, 'ready', undefined);
        return;
      case 'failed':
      case 'lost':
        // With a catalog still listed (and a transient problem) the server is degraded, not gone.
        this.setHealth(entry, entry.catalog && event.error.transient ? 'degraded' : 'error', event.error);
        return;
    }
  }

  private setHealth(entry: ServerEntry, state: UpstreamHealth['state'], error: LanyardError | ErrorInfo | undefined): void {
    const lastError = error instanceof LanyardError ? error.toInfo() : error;
    const before = entry.health;
    if (before.state === state && before.lastError?.code === lastError?.code && before.lastError?.message === lastError?.message) return;
    entry.health = { state, since: this.now(), ...(lastError ? { lastError } : {}) };
    this.emit({ type: 'health', serverId: entry.server.id, health: { ...entry.health, transport: entry.memory.kind } });
  }

  private closeEntry(entry: ServerEntry): Promise<void> {
    entry.closed = true;
    if (entry.retryTimer) clearTimeout(entry.retryTimer);
    if (entry.relistTimer) clearTimeout(entry.relistTimer);
    const session = entry.session;
    entry.session = undefined;
    entry.catalog = undefined;
    return session ? session.close() : Promise.resolve();
  }

  private emit(event: PoolEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (e) {
        this.log.error('pool listener failed', { error: e });
      }
    }
  }
}

/** What a bound session declares: the IDE's own capabilities for server→client requests, and nothing else. */
export function mirrorCapabilities(ide: ClientCapabilities): ClientCapabilities {
  return {
    ...(ide.elicitation ? { elicitation: ide.elicitation } : {}),
    ...(ide.sampling ? { sampling: ide.sampling } : {}),
    ...(ide.roots ? { roots: ide.roots } : {}),
  };
}

/** `<server>/<logger>`: the IDE can tell which server a log message came from. */
export function prefixLogger(serverId: string, logger: string | undefined): string {
  return logger ? `${serverId}/${logger}` : serverId;
}

/**
 * One IDE session's view of the pool: its bound upstream sessions (one per server, created on first use), its log
 * level and its resource subscriptions, which are restored on every new upstream session.
 */
export class BoundPeer {
  private readonly sessions = new Map<string, UpstreamSession>();
  /** Calls in flight per server: the fallback route for traffic that arrives outside any call's stream. */
  private readonly inflight = new Map<string, Set<ActiveCall>>();
  private readonly subscriptions = new Map<string, Set<string>>();
  /** When each server's bound session was last used (for closing idle ones). */
  private readonly lastUsed = new Map<string, number>();
  private logLevel: LoggingLevel | undefined;
  private closed = false;

  constructor(
    private readonly pool: UpstreamPool,
    readonly peer: DownstreamPeer,
    private readonly options: { clientInfo: Implementation; requestTimeoutMs: number; now: () => number; onClosed: () => void },
  ) {}

  /**
   * Sends one request to a server on this IDE session's bound session. `target` is the IDE request it serves (where
   * related server→client traffic goes); `onprogress` receives the server's progress.
   */
  async request<M extends ForwardedMethod>(
    serverId: string,
    method: M,
    params: Record<string, unknown>,
    options: { signal: AbortSignal; target: DownstreamTarget; onprogress?: ((progress: Progress) => Promise<void> | void) | undefined },
  ): Promise<ResultTypeMap[M]> {
    const session = this.session(serverId);
    const deadline = new Deadline(this.options.requestTimeoutMs);
    const call: ActiveCall = { target: options.target, deadline, pending: new Set() };
    const signal = AbortSignal.any([options.signal, deadline.signal]);
    let calls = this.inflight.get(serverId);
    if (!calls) this.inflight.set(serverId, (calls = new Set()));
    calls.add(call);
    this.lastUsed.set(serverId, this.options.now());
    try {
      const result = await activeCall.run(call, () =>
        session.run(
          (client) =>
            client.request(
              { method, params },
              {
                signal,
                timeout: NO_SDK_TIMEOUT,
                // Always asked for: progress is what restarts the deadline of a long-running call.
                onprogress: (progress: Progress) => {
                  deadline.reset();
                  track(call, options.onprogress?.(progress));
                },
              },
            ),
          { signal },
        ),
      );
      // Progress and log messages the server sent before its answer go out first, on the same stream.
      await Promise.allSettled([...call.pending]);
      return result;
    } catch (e) {
      if (deadline.expired && !options.signal.aborted) {
        throw unreachable(
          serverId,
          `did not answer ${method} within ${Math.round(this.options.requestTimeoutMs / 1000)} s (without progress)`,
        );
      }
      throw e;
    } finally {
      deadline.clear();
      calls.delete(call);
      this.lastUsed.set(serverId, this.options.now());
    }
  }

  /** Closes bound sessions unused for `idleMs` that hold no subscription and no call; they come back on next use. */
  async closeIdle(idleMs: number, now: number): Promise<void> {
    const idle = [...this.sessions.keys()].filter(
      (id) => now - (this.lastUsed.get(id) ?? 0) >= idleMs && !this.inflight.get(id)?.size && !this.subscriptions.get(id)?.size,
    );
    await Promise.all(
      idle.map((id) => {
        const session = this.sessions.get(id);
        this.sessions.delete(id);
        return session?.close();
      }),
    );
  }

  /** logging/setLevel from the IDE: applied to every bound session now, and to each new one when it connects. */
  async setLogLevel(level: LoggingLevel): Promise<void> {
    this.logLevel = level;
    await Promise.all(
      [...this.sessions.values()]
        .filter((s) => s.connected)
        .map((s) =>
          s
            .run(async (client) => {
              if (client.getServerCapabilities()?.logging) await client.setLoggingLevel(level);
            })
            .catch((e: unknown) => this.pool.log.warn('setting the log level upstream failed', { serverId: s.serverId, error: e })),
        ),
    );
  }

  /** resources/subscribe: remembered so it can be restored on a new upstream session. */
  async subscribe(serverId: string, uri: string, signal: AbortSignal, target: DownstreamTarget): Promise<void> {
    let uris = this.subscriptions.get(serverId);
    if (!uris) this.subscriptions.set(serverId, (uris = new Set()));
    uris.add(uri);
    try {
      await this.request(serverId, 'resources/subscribe', { uri }, { signal, target });
    } catch (e) {
      uris.delete(uri);
      throw e;
    }
    // With a subscription, a lost connection must come back by itself, or updates would silently stop.
    this.sessions.get(serverId)?.ensureAlive();
  }

  async unsubscribe(serverId: string, uri: string, signal: AbortSignal, target: DownstreamTarget): Promise<void> {
    this.subscriptions.get(serverId)?.delete(uri);
    await this.request(serverId, 'resources/unsubscribe', { uri }, { signal, target });
  }

  isSubscribed(serverId: string, uri: string): boolean {
    return this.subscriptions.get(serverId)?.has(uri) ?? false;
  }

  /** notifications/roots/list_changed from the IDE, passed to every connected bound session. */
  rootsChanged(): void {
    for (const session of this.sessions.values()) {
      if (!session.connected) continue;
      void session
        .client()
        .then((c) => c.sendRootsListChanged())
        .catch(() => undefined);
    }
  }

  /** The server was removed or its URL changed. */
  async closeServer(serverId: string): Promise<void> {
    const session = this.sessions.get(serverId);
    this.sessions.delete(serverId);
    this.subscriptions.delete(serverId);
    await session?.close();
  }

  /** Closes the bound sessions but keeps the peer usable (sign-out: new sessions come with the next user's tokens). */
  async closeAll(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    this.subscriptions.clear();
    await Promise.all(sessions.map((s) => s.close()));
  }

  /** The IDE session ended. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeAll();
    this.options.onClosed();
  }

  private session(serverId: string): UpstreamSession {
    if (this.closed) throw unreachable(serverId, 'session was closed (the IDE disconnected)');
    let session = this.sessions.get(serverId);
    if (session) return session;
    const capabilities = mirrorCapabilities(this.peer.capabilities);
    session = this.pool.createSession(serverId, {
      capabilities,
      clientInfo: { ...this.options.clientInfo, title: `Lanyard for ${this.peer.clientName}`.slice(0, 100) },
      setup: (client) => this.setup(serverId, client, capabilities),
      onConnected: async (client) => {
        const caps = client.getServerCapabilities() ?? {};
        if (this.logLevel && caps.logging) await client.setLoggingLevel(this.logLevel);
        for (const uri of this.subscriptions.get(serverId) ?? []) {
          await client
            .subscribeResource({ uri })
            .catch((e: unknown) => this.pool.log.warn('re-subscribing failed', { serverId, error: e }));
        }
      },
      keepAlive: () => !this.closed && (this.subscriptions.get(serverId)?.size ?? 0) > 0,
    });
    this.sessions.set(serverId, session);
    return session;
  }

  /** Where traffic of this server goes when it arrived outside a call's context: the only call in flight, else the session. */
  private route(serverId: string): ActiveCall | undefined {
    const store = activeCall.getStore();
    if (store) return store;
    const calls = this.inflight.get(serverId);
    return calls?.size === 1 ? calls.values().next().value : undefined;
  }

  private setup(serverId: string, client: Client, capabilities: ClientCapabilities): void {
    // Handlers exist only for what was declared (the SDK refuses others): a server cannot ask the IDE for more than
    // the IDE offered.
    const paused = async <T>(run: (target: DownstreamTarget) => Promise<T>): Promise<T> => {
      const call = this.route(serverId);
      call?.deadline.pause();
      try {
        return await run(call?.target ?? this.peer);
      } finally {
        call?.deadline.resume();
      }
    };
    if (capabilities.elicitation)
      client.setRequestHandler('elicitation/create', (request, ctx) => paused((t) => t.elicit(request.params, ctx.mcpReq.signal)));
    if (capabilities.sampling)
      client.setRequestHandler('sampling/createMessage', (request, ctx) => paused((t) => t.sample(request.params, ctx.mcpReq.signal)));
    if (capabilities.roots) client.setRequestHandler('roots/list', (_request, ctx) => paused((t) => t.listRoots(ctx.mcpReq.signal)));
    client.setNotificationHandler('notifications/message', (notification) => {
      const params = { ...notification.params, logger: prefixLogger(serverId, notification.params.logger) };
      forwardFor(this.route(serverId), this.peer, { method: 'notifications/message', params });
    });
    if (capabilities.elicitation?.url) {
      // URL-mode elicitation finishes out of band; the IDE that opened the URL learns it here.
      client.setNotificationHandler('notifications/elicitation/complete', (notification) => {
        forwardFor(this.route(serverId), this.peer, { method: 'notifications/elicitation/complete', params: notification.params });
      });
    }
    client.setNotificationHandler('notifications/resources/updated', (notification) => {
      // Only what this IDE session subscribed to (a server may notify more than it was asked for).
      if (this.isSubscribed(serverId, notification.params.uri))
        void this.peer.notify({ method: 'notifications/resources/updated', params: notification.params }).catch(() => undefined);
    });
    for (const kind of CATALOG_KINDS) {
      client.setNotificationHandler(`notifications/${kind}/list_changed`, () => this.pool.listChanged(serverId, kind));
    }
  }
}
