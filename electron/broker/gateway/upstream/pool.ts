import type { Client, Implementation, McpSubscription, SubscriptionFilter } from '@modelcontextprotocol/client';
import { ErrorCodes, type ErrorInfo } from '../../../../shared/errors';
import { Emitter } from '../../../../shared/emitter';
import { LanyardError } from '../../errors';
import type { SnapshotCatalog } from '../../exchange/catalog-snapshots';
import type { FetchLike } from '../../util/http';
import type { Logger } from '../../util/log';
import { nodeHttpFetch, nodeStreamFetch } from '../relay-transport';
import { BoundPeer, type BoundSessionFactory, type DownstreamPeer, type SessionSpec } from './bound-peer';
import {
  boundCatalog,
  CATALOG_KINDS,
  changedKinds,
  isFresh,
  listCatalog,
  listKind,
  MAX_CATALOG_ITEM_BYTES,
  MAX_CATALOG_ITEMS,
  staleKinds,
  withListings,
  type CatalogKind,
  type ServerCatalog,
} from './catalog';
import { unreachable } from './errors';
import { wellFormed } from './raw-list';
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

export type PoolEvent =
  { type: 'catalog'; serverId: string; kinds: CatalogKind[] } | { type: 'health'; serverId: string; health: UpstreamHealth };

export interface UpstreamPoolOptions {
  tokens: UpstreamTokenSource;
  /** The fetch upstream MCP traffic goes through, before the token service wraps it (default: the relay's node:http stack). */
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
  /**
   * Applied to every listed catalog before anyone sees it (tool pinning: quarantined tools are left out). Called
   * again by `refilter` when its answer may have changed (an approval).
   */
  catalogFilter?: (catalog: ServerCatalog) => ServerCatalog;
  /**
   * Keeps each server's transport memory (transport kind, protocol era verdict) across restarts: read when a server is
   * added, written after a connect or a failure changed it (exchange/discovery-state.ts).
   */
  transportMemory?: TransportMemoryStore;
  /**
   * The last live catalog of each server, kept across restarts (exchange/catalog-snapshots.ts): the first listing of a
   * server after a start is answered from it while the live session connects.
   */
  snapshots?: CatalogSnapshotStore;
}

/**
 * Where the pool keeps each server's last live catalog between runs. `read` answers only when the snapshot may be shown
 * now (same URL and user, fresh, the server's credentials at hand); the caller checks that, the pool checks the shape.
 */
export interface CatalogSnapshotStore {
  /** `verified`: the lists are exactly as a live listing had checked them (the pool then skips its shape check). */
  read(serverId: string, url: string): Promise<{ catalog: SnapshotLists; savedAt: number; verified?: boolean } | undefined>;
  /** A live catalog was listed; `changed`: it differs from the snapshot the pool started from (or there was none). */
  write(serverId: string, url: string, catalog: ServerCatalog, changed: boolean): void;
}

/** A server's lists and initialize answer as a snapshot keeps them (its items checked before use). */
export type SnapshotLists = SnapshotCatalog;

/** Where the pool keeps what it learnt about a server's transport and protocol era between runs. */
export interface TransportMemoryStore {
  read(serverId: string, url: string): TransportMemory | undefined;
  write(serverId: string, url: string, memory: TransportMemory): void;
}

const RELIST_DEBOUNCE_MS = 50;
/** The longest live listings wait for snapshot reads still in flight. */
const SEED_WAIT_MS = 500;
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_BOUND_IDLE_MS = 10 * 60_000;

interface ServerEntry {
  server: PoolServer;
  memory: TransportMemory;
  health: UpstreamHealth;
  catalog?: ServerCatalog | undefined;
  /** The catalog as listed (bounded), before catalogFilter. */
  listed?: ServerCatalog | undefined;
  session?: UpstreamSession | undefined;
  loading?: Promise<ServerCatalog> | undefined;
  /** While a snapshot may still answer the first listing: the first of the snapshot and the live listing. */
  seeding?: Promise<ServerCatalog> | undefined;
  failures: number;
  retryAt: number;
  lastError?: LanyardError | undefined;
  retryTimer?: NodeJS.Timeout | undefined;
  relistTimer?: NodeJS.Timeout | undefined;
  relistKinds: Set<CatalogKind>;
  /** A re-list in flight (list_changed, TTL expiry): one at a time per server. */
  relisting?: Promise<void> | undefined;
  /** The catalog session's subscriptions/listen stream on a 2026-07-28 server (its list_changed notifications). */
  listen?: McpSubscription | undefined;
  listenTimer?: NodeJS.Timeout | undefined;
  listenFailures: number;
  /** The kinds whose list_changed the server agreed to send on that stream. */
  listenKinds: Set<CatalogKind>;
  /** A catalog from the live session has been applied (until then `catalog`, if any, is the snapshot's). */
  live: boolean;
  /** The snapshot was asked for (once per entry: a restart's first listing only). */
  snapshotAsked: boolean;
  /** The unfiltered snapshot being served, kept to tell whether the live catalog differs from it. */
  snapshot?: ServerCatalog | undefined;
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
  /** Snapshot reads in flight (restart's first listings): live listings start after them. */
  private readonly seeds = new Set<Promise<unknown>>();
  private readonly events = new Emitter<PoolEvent>((e) => this.log.error('pool listener failed', { error: e }));
  private readonly now: () => number;
  readonly log: Logger;

  private readonly sweepTimer: NodeJS.Timeout;
  /** All a BoundPeer may do with the pool: open sessions to configured servers, report list_changed. */
  private readonly sessionFactory: BoundSessionFactory = {
    createSession: (serverId, spec) => this.createSession(serverId, spec),
    listChanged: (serverId, kind) => this.listChanged(serverId, kind),
    tool: (serverId, name) => this.entries.get(serverId)?.catalog?.tools.find((t) => t.name === name),
    warn: (...args) => this.log.warn(...args),
  };

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
    return this.events.on(listener);
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

  /**
   * The last listed catalog, at once. When a list's TTL (a 2026-07-28 server's `ttlMs`) has run out, it is listed
   * again behind this answer, and a change reaches IDEs as a `catalog` event (list_changed); lists without a TTL are
   * kept until the server says they changed.
   */
  catalog(serverId: string): ServerCatalog | undefined {
    const entry = this.entries.get(serverId);
    if (entry?.catalog && !entry.relisting && !entry.closed) {
      const catalog = entry.catalog;
      // A TTL of 0 ("stale at once") on a list whose changes the server pushes on the listen stream: the
      // notification is the signal, not every access (the caching spec's "complementary" case).
      const stale = staleKinds(catalog, this.now()).filter((k) => !(catalog.freshness?.[k]?.ttlMs === 0 && entry.listenKinds.has(k)));
      if (stale.length) void this.relist(entry, stale);
    }
    return entry?.catalog;
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
    if (entry.catalog) return Promise.resolve(this.catalog(serverId) ?? entry.catalog);
    if (entry.loading) return entry.seeding ?? entry.loading;
    if (entry.lastError && this.now() < entry.retryAt) return Promise.reject(entry.lastError);
    return this.load(entry);
  }

  /**
   * Resolves once the server's catalog is the live one: while a restart's snapshot is being served, a call must not
   * reach a tool before tool pinning has seen the server's live definition of it (the server may have changed it while
   * Lanyard was off). Rejects as the live listing does (the server is then unreachable for the call too). At once when
   * the catalog is live already, or there is no snapshot.
   */
  whenLive(serverId: string): Promise<void> {
    return this.liveListing(serverId)?.then(() => undefined) ?? Promise.resolve();
  }

  /** Whether the server's catalog is still a restart's snapshot (a call must wait for `whenLive` first). */
  servingSnapshot(serverId: string): boolean {
    return this.liveListing(serverId) !== undefined;
  }

  /** The live listing running while a restart's snapshot is served in its place (none once live, or without one). */
  private liveListing(serverId: string): Promise<ServerCatalog> | undefined {
    const entry = this.entries.get(serverId);
    return entry && !entry.live && !entry.closed && entry.snapshot ? entry.loading : undefined;
  }

  /** Starts listing the server (its snapshot first, on a restart's first listing); the backoff is the caller's to check. */
  private load(entry: ServerEntry): Promise<ServerCatalog> {
    const seeded = this.seedFromSnapshot(entry);
    // With snapshots being read, live listings start once they are read and the lists waiting for them answered: fifty
    // connects would otherwise hold the CPU the first list from the snapshots needs.
    const live = seeded ? this.afterSeeds().then(() => this.loadCatalog(entry)) : this.loadCatalog(entry);
    const loading = live.finally(() => {
      if (entry.loading === loading) entry.loading = undefined;
      entry.seeding = undefined;
    });
    entry.loading = loading;
    if (!seeded) return loading;
    // The first of the two: the snapshot when there is one, else the live listing (or its failure).
    entry.seeding = new Promise<ServerCatalog>((resolve, reject) => {
      loading.then(resolve, reject);
      void seeded.then((catalog) => {
        if (catalog) resolve(catalog);
      });
    });
    return entry.seeding;
  }

  /**
   * A restart's first listing of a server: its kept snapshot, when there is one and it may be shown, is applied as the
   * server's catalog until the live listing replaces it (IDEs hear of a difference as for any re-list). Resolves with
   * the catalog IDEs get, or undefined (no snapshot, or none to ask for: undefined is returned at once instead).
   */
  private seedFromSnapshot(entry: ServerEntry): Promise<ServerCatalog | undefined> | undefined {
    const store = this.options.snapshots;
    if (!store || entry.snapshotAsked || entry.live) return undefined;
    entry.snapshotAsked = true;
    const seeded = store
      .read(entry.server.id, entry.server.url)
      .catch((e: unknown) => {
        this.log.warn('reading the catalog snapshot failed; listing live only', { serverId: entry.server.id, error: e });
        return undefined;
      })
      .then((kept) => {
        if (!kept || entry.closed || entry.live || entry.catalog) return undefined;
        const snapshot = snapshotCatalog(entry.server.id, kept.catalog, kept.savedAt, kept.verified === true);
        if (!snapshot) {
          this.log.warn('catalog snapshot ignored (not the shape a listing has)', { serverId: entry.server.id });
          return undefined;
        }
        entry.snapshot = snapshot;
        this.applyCatalog(entry, snapshot);
        return entry.catalog;
      })
      .finally(() => this.seeds.delete(seeded));
    this.seeds.add(seeded);
    return seeded;
  }

  /**
   * Resolves once no snapshot read is in flight (bounded: a keychain that does not answer must not hold the live
   * listings up for long), and the lists waiting for the snapshots have had their turn (one macrotask later).
   */
  private async afterSeeds(): Promise<void> {
    // A wait measured on the monotonic clock: `now` is the wall clock, which may be set back or jump meanwhile.
    const deadline = performance.now() + SEED_WAIT_MS;
    while (this.seeds.size && performance.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.seeds]),
        new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - performance.now())))),
      ]);
      clearTimeout(timer);
    }
    await new Promise((r) => setImmediate(r));
  }

  /**
   * The server's credentials changed (authorized in the browser, a key stored): forget the last failure's backoff and
   * list it again now, so its tools appear (with list_changed) without waiting for the next retry.
   */
  retryNow(serverId: string): void {
    const entry = this.entries.get(serverId);
    if (!entry || entry.catalog || entry.loading || entry.closed) return;
    entry.retryAt = 0;
    this.ensureCatalog(serverId).catch(() => undefined);
  }

  /** Connects an IDE session: its bound sessions are created on demand and closed with it. */
  attach(peer: DownstreamPeer): BoundPeer {
    const bound = new BoundPeer(this.sessionFactory, peer, {
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

  /** A new upstream session for a server (the catalog's, or a bound one through the factory). */
  private createSession(serverId: string, spec: SessionSpec): UpstreamSession {
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
      fetch: this.options.tokens.authorizedFetch(serverId, this.options.fetch ?? nodeHttpFetch),
      rawFetch: this.options.tokens.authorizedFetch(serverId, this.options.fetch ?? nodeStreamFetch),
      clientInfo: spec.clientInfo ?? this.options.clientInfo,
      capabilities: spec.capabilities,
      ...(spec.preferLegacy ? { preferLegacy: true } : {}),
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

  /** A session saw `…/list_changed`: re-list that kind (debounced; every session of a server may say so). */
  private listChanged(serverId: string, kind: CatalogKind): void {
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
      memory: { ...this.options.transportMemory?.read(server.id, server.url) },
      health: { state: 'idle', since: this.now() },
      failures: 0,
      retryAt: 0,
      relistKinds: new Set(),
      listenFailures: 0,
      listenKinds: new Set(),
      live: false,
      snapshotAsked: false,
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
        if (client.getProtocolEra() === 'modern') this.listen(entry, client);
        // Back after a lost connection: the server may have restarted with other tools; lists its TTL still calls
        // fresh are not asked for again.
        if (reconnect && entry.catalog) {
          const kinds = CATALOG_KINDS.filter((k) => !isFresh(entry.catalog!, k, this.now()));
          if (kinds.length)
            this.applyCatalog(entry, withListings(entry.listed ?? entry.catalog, await this.listKinds(client, kinds, entry), this.now()));
        }
      },
      // Once there is a catalog to keep fresh, a lost connection is re-established without waiting for a request.
      // (A snapshot shown while the first connect runs is not such a catalog: a failure there drops it.)
      keepAlive: () => !entry.closed && entry.live && entry.catalog !== undefined,
    });
    return entry.session;
  }

  private get listTimeout(): number {
    return this.options.listTimeoutMs ?? 30_000;
  }

  private async loadCatalog(entry: ServerEntry): Promise<ServerCatalog> {
    try {
      if (entry.closed) throw unreachable(entry.server.id, 'was removed from the configuration');
      const session = this.catalogSession(entry);
      const catalog = await session.run((client) => listCatalog(client, entry.server.id, this.listTimeout, this.now, () => session.lane()));
      if (entry.closed) throw unreachable(entry.server.id, 'was removed from the configuration');
      entry.failures = 0;
      entry.lastError = undefined;
      const snapshot = entry.snapshot;
      entry.snapshot = undefined;
      entry.live = true;
      if (snapshot && entry.listed && entry.catalog && !changedKinds(entry.listed, catalog).length) {
        // The live lists are the snapshot's: the filtered lists IDEs have stay as they are (filtering the same
        // definitions again would give the same answer, and fingerprint 5,000 tools again at start); the rest of the
        // live listing (capabilities, instructions, freshness) replaces the snapshot's.
        const kept = (c: ServerCatalog) => ({
          tools: c.tools,
          prompts: c.prompts,
          resources: c.resources,
          resourceTemplates: c.resourceTemplates,
        });
        entry.listed = { ...catalog, ...kept(entry.listed) };
        entry.catalog = { ...catalog, ...kept(entry.catalog) };
        this.keepSnapshot(entry, false);
      } else {
        this.applyCatalog(entry, catalog);
        this.keepSnapshot(entry, true);
      }
      // Callers get what IDEs get: the filtered catalog.
      return entry.catalog ?? catalog;
    } catch (e) {
      const error = e instanceof LanyardError ? e : unreachable(entry.server.id, 'could not be listed', e);
      this.dropSnapshot(entry);
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
            // Not through ensureCatalog's backoff check: the timer runs on the monotonic clock and `now` is the wall
            // clock, so it may fire before `now` says the delay has passed (each is rounded to the millisecond; the
            // wall clock may be set back). The check would then refuse this one retry, and the server would stay
            // unlisted until something else asked for it.
            if (!entry.closed && !entry.catalog && !entry.loading) this.load(entry).catch(() => undefined);
          },
          Math.max(0, entry.retryAt - this.now()),
        );
        entry.retryTimer.unref?.();
      }
      throw error;
    }
  }

  /** Lists some kinds again (list_changed, an expired TTL); on failure the last lists stay (the spec allows serving stale). */
  private relist(entry: ServerEntry, kinds: CatalogKind[]): Promise<void> {
    const session = entry.session;
    // A snapshot is replaced by the first live listing as a whole: nothing to re-list before it.
    if (!session || !entry.catalog || !entry.live) return Promise.resolve();
    const run = async () => {
      try {
        const listings = await session.run((client) => this.listKinds(client, kinds, entry));
        if (!entry.catalog || entry.closed) return;
        // Re-listed parts go onto the unfiltered listing (entry.listed): applyCatalog filters the whole again.
        const before = entry.listed;
        this.applyCatalog(entry, withListings(entry.listed ?? entry.catalog, listings, this.now()));
        this.keepSnapshot(entry, !before || changedKinds(before, entry.listed!).length > 0);
      } catch (e) {
        this.log.warn('re-listing the server failed; its last lists stay in use', { serverId: entry.server.id, error: e });
        // An expired list that could not be re-listed is tried again after the floor, not on every access.
        if (entry.catalog) entry.catalog = withListingTime(entry.catalog, kinds, this.now());
        if (entry.listed) entry.listed = withListingTime(entry.listed, kinds, this.now());
      }
    };
    const previous = entry.relisting ?? Promise.resolve();
    const current = previous.then(run).finally(() => {
      if (entry.relisting === current) entry.relisting = undefined;
    });
    entry.relisting = current;
    return current;
  }

  private listKinds(client: Client, kinds: readonly CatalogKind[], entry: ServerEntry) {
    const lane = () => entry.session?.lane();
    return Promise.all(kinds.map((k) => listKind(client, k, this.listTimeout, this.now, lane)));
  }

  /**
   * On a 2026-07-28 server, list_changed notifications come only on a subscriptions/listen stream: the catalog
   * session keeps one open for the kinds the server says can change. When the stream ends unexpectedly, it is opened
   * again with backoff, and the lists without a fresh TTL are listed again (changes may have been missed meanwhile).
   */
  private listen(entry: ServerEntry, client: Client): void {
    const caps = client.getServerCapabilities() ?? {};
    const filter: SubscriptionFilter = {
      ...(caps.tools?.listChanged ? { toolsListChanged: true } : {}),
      ...(caps.prompts?.listChanged ? { promptsListChanged: true } : {}),
      ...(caps.resources?.listChanged ? { resourcesListChanged: true } : {}),
    };
    if (!Object.keys(filter).length || entry.closed) return;
    const previous = entry.listen;
    entry.listen = undefined;
    void previous?.close().catch(() => undefined);
    client.listen(filter).then(
      (subscription) => {
        if (entry.closed || entry.session === undefined) {
          void subscription.close().catch(() => undefined);
          return;
        }
        entry.listen = subscription;
        entry.listenFailures = 0;
        const honored = subscription.honoredFilter;
        entry.listenKinds = new Set<CatalogKind>([
          ...(honored.toolsListChanged ? (['tools'] as const) : []),
          ...(honored.promptsListChanged ? (['prompts'] as const) : []),
          ...(honored.resourcesListChanged ? (['resources'] as const) : []),
        ]);
        void subscription.closed.then((how) => {
          if (entry.listen !== subscription || entry.closed) return;
          entry.listen = undefined;
          entry.listenKinds = new Set();
          if (how !== 'local') this.relisten(entry);
        });
      },
      (e: unknown) => {
        this.log.warn('subscriptions/listen at the server failed; lists are refreshed by their TTL only', {
          serverId: entry.server.id,
          error: e,
        });
        this.relisten(entry);
      },
    );
  }

  private relisten(entry: ServerEntry): void {
    if (entry.closed || entry.listenTimer) return;
    const delay = backoffDelay(entry.listenFailures++, this.options.backoff ?? DEFAULT_BACKOFF);
    entry.listenTimer = setTimeout(() => {
      entry.listenTimer = undefined;
      const session = entry.session;
      if (entry.closed || !session || !entry.catalog) return;
      session
        .run(async (client) => {
          this.listen(entry, client);
          const kinds = CATALOG_KINDS.filter((k) => !isFresh(entry.catalog!, k, this.now()));
          if (kinds.length) await this.relist(entry, kinds);
        })
        .catch(() => undefined);
    }, delay);
    entry.listenTimer.unref?.();
  }

  /** Applies catalogFilter again to the server's last listing (its answer changed); IDEs hear of a difference. */
  refilter(serverId: string): void {
    const entry = this.entries.get(serverId);
    if (entry?.listed && !entry.closed) this.applyCatalog(entry, entry.listed);
  }

  /** Hands the live, unfiltered listing to the snapshot store (it writes when `changed` or when its copy gets old). */
  private keepSnapshot(entry: ServerEntry, changed: boolean): void {
    if (!entry.listed || entry.closed) return;
    try {
      this.options.snapshots?.write(entry.server.id, entry.server.url, entry.listed, changed);
    } catch (e) {
      this.log.warn('keeping the catalog snapshot failed', { serverId: entry.server.id, error: e });
    }
  }

  /**
   * The live session could not list the server: a snapshot shown meanwhile goes (its tools leave IDEs' lists with
   * list_changed, and the server is reported as today); the server is retried as any server that failed.
   */
  private dropSnapshot(entry: ServerEntry): void {
    entry.seeding = undefined;
    if (entry.live || !entry.snapshot) return;
    entry.snapshot = undefined;
    const had = entry.catalog;
    entry.catalog = undefined;
    entry.listed = undefined;
    if (had && !entry.closed) this.events.emit({ type: 'catalog', serverId: entry.server.id, kinds: [...CATALOG_KINDS] });
  }

  private applyCatalog(entry: ServerEntry, listed: ServerCatalog): void {
    const { catalog: bounded, dropped } = boundCatalog(listed);
    entry.listed = bounded;
    const catalog = this.options.catalogFilter ? this.options.catalogFilter(bounded) : bounded;
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
    if (kinds.length) this.events.emit({ type: 'catalog', serverId: entry.server.id, kinds });
  }

  private sessionEvent(entry: ServerEntry, event: UpstreamSessionEvent): void {
    if (entry.closed) return;
    // A connect learns (or a failure forgets) the transport and the era verdict: kept for the next run.
    if (event.type === 'connected' || event.type === 'failed')
      this.options.transportMemory?.write(entry.server.id, entry.server.url, entry.memory);
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
    this.events.emit({ type: 'health', serverId: entry.server.id, health: { ...entry.health, transport: entry.memory.kind } });
  }

  private closeEntry(entry: ServerEntry): Promise<void> {
    entry.closed = true;
    if (entry.retryTimer) clearTimeout(entry.retryTimer);
    if (entry.relistTimer) clearTimeout(entry.relistTimer);
    if (entry.listenTimer) clearTimeout(entry.listenTimer);
    void entry.listen?.close().catch(() => undefined);
    entry.listen = undefined;
    const session = entry.session;
    entry.session = undefined;
    entry.catalog = undefined;
    entry.listed = undefined;
    entry.snapshot = undefined;
    return session ? session.close() : Promise.resolve();
  }
}

/** The kinds marked as listed now without new lists (a failed re-list waits for the floor before the next try). */
function withListingTime(catalog: ServerCatalog, kinds: readonly CatalogKind[], now: number): ServerCatalog {
  const listedAt = { ...catalog.listedAt };
  for (const kind of kinds) listedAt[kind] = now;
  return { ...catalog, listedAt };
}

/** The kinds whose lists a snapshot keeps, with the list method whose shape each must have. */
const SNAPSHOT_LISTS = [
  ['tools', 'tools/list'],
  ['prompts', 'prompts/list'],
  ['resources', 'resources/list'],
  ['resourceTemplates', 'resources/templates/list'],
] as const;

/**
 * A snapshot as a catalog, or undefined when any of its lists is not what a live listing would have passed
 * (raw-list.ts's check): a hand-edited file cannot put a malformed tool in front of IDEs. A verified snapshot (exactly
 * what Lanyard wrote from checked lists) is not checked again.
 */
function snapshotCatalog(serverId: string, kept: SnapshotLists, savedAt: number, verified: boolean): ServerCatalog | undefined {
  if (!verified) for (const [key, method] of SNAPSHOT_LISTS) if (!wellFormed(method, { [key]: kept[key] })) return undefined;
  return {
    serverId,
    tools: kept.tools as ServerCatalog['tools'],
    prompts: kept.prompts as ServerCatalog['prompts'],
    resources: kept.resources as ServerCatalog['resources'],
    resourceTemplates: kept.resourceTemplates as ServerCatalog['resourceTemplates'],
    capabilities: kept.capabilities as ServerCatalog['capabilities'],
    ...(kept.instructions !== undefined ? { instructions: kept.instructions } : {}),
    loadedAt: savedAt,
  };
}
