import {
  ProtocolError,
  ProtocolErrorCode,
  type Client,
  type Prompt,
  type Resource,
  type ResourceTemplateType,
  type ServerCapabilities,
  type Tool,
  MAX_CACHE_TTL_MS,
} from '@modelcontextprotocol/client';
import { rawList } from './raw-list';
import type { UpstreamLane } from './session';

/** The four lists a server publishes; `resources` covers resources and resource templates. */
export type CatalogKind = 'tools' | 'prompts' | 'resources';
export const CATALOG_KINDS: readonly CatalogKind[] = ['tools', 'prompts', 'resources'];

/** A server's caching hint for one list (2026-07-28 `ttlMs` / `cacheScope`), as Lanyard applies it. */
export interface CatalogFreshness {
  /** The hint, bounded: negative counts as 0, more than MAX_CATALOG_TTL_MS as MAX_CATALOG_TTL_MS. */
  ttlMs: number;
  /** 'private' unless the server said 'public' (a missing or unknown scope is the safe 'private'). */
  scope: 'public' | 'private';
  /** When the list stops being fresh (local clock, from when it was received). */
  expiresAt: number;
}

/** The longest a server may ask Lanyard to keep a list without asking again (the SDK's own bound, 24 h). */
export const MAX_CATALOG_TTL_MS = MAX_CACHE_TTL_MS;
/**
 * However short a list's TTL (0 means "stale at once"), it is listed again at most this often: every IDE tools/list
 * would otherwise become a round trip to the server.
 */
export const MIN_RELIST_INTERVAL_MS = 1_000;

/**
 * The freshness a list result asks for, or undefined when it gives no `ttlMs` (2025-11-25 servers): such lists are
 * kept until the server says they changed (list_changed), as before. Bad values are bounded, never trusted: a
 * negative TTL is 0, a huge one is MAX_CATALOG_TTL_MS, anything not a finite number is no hint.
 */
export function freshnessOf(results: readonly unknown[], now: number): CatalogFreshness | undefined {
  let ttlMs: number | undefined;
  let scope: 'public' | 'private' = 'public';
  for (const result of results) {
    const hint = result as { ttlMs?: unknown; cacheScope?: unknown } | undefined;
    if (typeof hint?.ttlMs !== 'number' || !Number.isFinite(hint.ttlMs)) return undefined;
    const bounded = Math.min(Math.max(0, Math.floor(hint.ttlMs)), MAX_CATALOG_TTL_MS);
    ttlMs = ttlMs === undefined ? bounded : Math.min(ttlMs, bounded);
    if (hint.cacheScope !== 'public') scope = 'private';
  }
  if (ttlMs === undefined) return undefined;
  return { ttlMs, scope, expiresAt: now + ttlMs };
}

/** The kinds whose TTL has run out (kinds without a TTL never do: they wait for list_changed). */
export function staleKinds(catalog: ServerCatalog, now: number): CatalogKind[] {
  const out: CatalogKind[] = [];
  for (const kind of CATALOG_KINDS) {
    const f = catalog.freshness?.[kind];
    if (f && now >= Math.max(f.expiresAt, (catalog.listedAt?.[kind] ?? 0) + MIN_RELIST_INTERVAL_MS)) out.push(kind);
  }
  return out;
}

/** True while a kind's TTL says it is fresh (it is then not listed again, even after a reconnect). */
export function isFresh(catalog: ServerCatalog, kind: CatalogKind, now: number): boolean {
  const f = catalog.freshness?.[kind];
  return f !== undefined && now < f.expiresAt;
}

/** What one server offers, as last listed by its catalog session. */
export interface ServerCatalog {
  serverId: string;
  tools: Tool[];
  prompts: Prompt[];
  resources: Resource[];
  resourceTemplates: ResourceTemplateType[];
  capabilities: ServerCapabilities;
  instructions?: string | undefined;
  loadedAt: number;
  /** Per kind, the server's caching hint (2026-07-28 servers); absent for a kind the server gave none for. */
  freshness?: Partial<Record<CatalogKind, CatalogFreshness>> | undefined;
  /** Per kind, when it was last listed. */
  listedAt?: Partial<Record<CatalogKind, number>> | undefined;
}

/** One kind's lists as listed, with the freshness the server asked for. */
export type KindListing = Partial<Pick<ServerCatalog, 'tools' | 'prompts' | 'resources' | 'resourceTemplates'>> & {
  kind: CatalogKind;
  freshness?: CatalogFreshness | undefined;
};

/**
 * The session's raw lane, when it has one (a connected 2025-11-25 Streamable HTTP session): lists go there as raw
 * JSON-RPC first (raw-list.ts), and through the SDK client when that declines.
 */
export type LaneSource = () => UpstreamLane | undefined;

/** One list through the raw lane when there is one and it answers plainly, else through the SDK client. */
async function viaLane<T extends object>(lane: LaneSource | undefined, method: string, timeoutMs: number, sdk: () => Promise<T>) {
  const current = lane?.();
  const raw = current ? await rawList(current, method, timeoutMs) : undefined;
  return raw ? (raw as Partial<T>) : orEmpty(sdk());
}

/** The lists of one kind, fetched from a connected client (only those the server advertises). */
export async function listKind(
  client: Client,
  kind: CatalogKind,
  timeoutMs: number,
  now: () => number = Date.now,
  lane?: LaneSource,
): Promise<KindListing> {
  const caps = client.getServerCapabilities() ?? {};
  // No client-side cache: the catalog is ours to keep (with the server's hints), and list_changed must always fetch.
  const options = { timeout: timeoutMs, cacheMode: 'bypass' as const };
  switch (kind) {
    case 'tools': {
      if (!caps.tools) return { kind, tools: [] };
      const result = await viaLane(lane, 'tools/list', timeoutMs, () => client.listTools(undefined, options));
      return { kind, tools: result.tools ?? [], freshness: freshnessOf([result], now()) };
    }
    case 'prompts': {
      if (!caps.prompts) return { kind, prompts: [] };
      const result = await viaLane(lane, 'prompts/list', timeoutMs, () => client.listPrompts(undefined, options));
      return { kind, prompts: result.prompts ?? [], freshness: freshnessOf([result], now()) };
    }
    case 'resources': {
      if (!caps.resources) return { kind, resources: [], resourceTemplates: [] };
      const [resources, templates] = await Promise.all([
        viaLane(lane, 'resources/list', timeoutMs, () => client.listResources(undefined, options)),
        viaLane(lane, 'resources/templates/list', timeoutMs, () => client.listResourceTemplates(undefined, options)),
      ]);
      return {
        kind,
        resources: resources.resources ?? [],
        resourceTemplates: templates.resourceTemplates ?? [],
        freshness: freshnessOf([resources, templates], now()),
      };
    }
  }
}

/** A catalog with some kinds listed again: their lists, freshness and listing time replaced, the rest kept. */
export function withListings(catalog: ServerCatalog, listings: readonly KindListing[], now: number): ServerCatalog {
  const next: ServerCatalog = { ...catalog, freshness: { ...catalog.freshness }, listedAt: { ...catalog.listedAt }, loadedAt: now };
  for (const { kind, freshness, ...lists } of listings) {
    Object.assign(next, lists);
    if (freshness) next.freshness![kind] = freshness;
    else delete next.freshness![kind];
    next.listedAt![kind] = now;
  }
  return next;
}

/** Every list of a server, in parallel. */
export async function listCatalog(
  client: Client,
  serverId: string,
  timeoutMs: number,
  now: () => number = Date.now,
  lane?: LaneSource,
): Promise<ServerCatalog> {
  const listings = await Promise.all(CATALOG_KINDS.map((kind) => listKind(client, kind, timeoutMs, now, lane)));
  const empty: ServerCatalog = {
    serverId,
    tools: [],
    prompts: [],
    resources: [],
    resourceTemplates: [],
    capabilities: client.getServerCapabilities() ?? {},
    instructions: client.getInstructions(),
    loadedAt: now(),
  };
  return withListings(empty, listings, now());
}

/** Which kinds differ between two catalogs (all of them when there was none before). */
export function changedKinds(before: ServerCatalog | undefined, after: ServerCatalog): CatalogKind[] {
  if (!before) return [...CATALOG_KINDS];
  const out: CatalogKind[] = [];
  if (JSON.stringify(before.tools) !== JSON.stringify(after.tools)) out.push('tools');
  if (JSON.stringify(before.prompts) !== JSON.stringify(after.prompts)) out.push('prompts');
  if (JSON.stringify([before.resources, before.resourceTemplates]) !== JSON.stringify([after.resources, after.resourceTemplates]))
    out.push('resources');
  return out;
}

/**
 * A server that advertises a capability but does not implement one of its list methods (a common gap for
 * resources/templates/list) is treated as having none, rather than failing the whole catalog.
 */
async function orEmpty<T extends object>(request: Promise<T>): Promise<Partial<T>> {
  try {
    return await request;
  } catch (e) {
    if (ProtocolError.isInstance(e) && e.code === ProtocolErrorCode.MethodNotFound) return {};
    throw e;
  }
}

/** At most this many tools (and prompts) of one server reach IDEs: far above real servers, and IDEs cap lower still. */
export const MAX_CATALOG_ITEMS = 1_000;
/** A tool or prompt whose definition (schema, description) is larger than this is left out. */
export const MAX_CATALOG_ITEM_BYTES = 256 * 1024;

/**
 * Bounds what one server may put in front of every IDE: a hostile or broken server publishing 20,000 tools or a
 * multi-megabyte schema would otherwise make every aggregated tools/list enormous. Oversized definitions are dropped,
 * then the lists are cut to MAX_CATALOG_ITEMS. Returns the catalog and what was left out (for the log).
 */
export function boundCatalog(catalog: ServerCatalog): { catalog: ServerCatalog; dropped: { oversized: number; beyondLimit: number } } {
  const dropped = { oversized: 0, beyondLimit: 0 };
  const bound = <T>(items: T[]): T[] => {
    const fitting = items.filter((item) => {
      const ok = JSON.stringify(item).length <= MAX_CATALOG_ITEM_BYTES;
      if (!ok) dropped.oversized++;
      return ok;
    });
    if (fitting.length > MAX_CATALOG_ITEMS) dropped.beyondLimit += fitting.length - MAX_CATALOG_ITEMS;
    return fitting.length > MAX_CATALOG_ITEMS ? fitting.slice(0, MAX_CATALOG_ITEMS) : fitting;
  };
  if (
    catalog.tools.length <= MAX_CATALOG_ITEMS &&
    catalog.prompts.length <= MAX_CATALOG_ITEMS &&
    JSON.stringify(catalog.tools).length + JSON.stringify(catalog.prompts).length <= MAX_CATALOG_ITEM_BYTES
  ) {
    return { catalog, dropped };
  }
  return { catalog: { ...catalog, tools: bound(catalog.tools), prompts: bound(catalog.prompts) }, dropped };
}
