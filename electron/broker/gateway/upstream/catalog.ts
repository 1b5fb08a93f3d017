import {
  ProtocolError,
  ProtocolErrorCode,
  type Client,
  type Prompt,
  type Resource,
  type ResourceTemplateType,
  type ServerCapabilities,
  type Tool,
} from '@modelcontextprotocol/client';

/** The four lists a server publishes; `resources` covers resources and resource templates. */
export type CatalogKind = 'tools' | 'prompts' | 'resources';
export const CATALOG_KINDS: readonly CatalogKind[] = ['tools', 'prompts', 'resources'];

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
}

/** The lists of one kind, fetched from a connected client (only those the server advertises). */
export async function listKind(client: Client, kind: CatalogKind, timeoutMs: number): Promise<Partial<ServerCatalog>> {
  const caps = client.getServerCapabilities() ?? {};
  // No client-side cache: the catalog is ours to keep, and list_changed must always fetch.
  const options = { timeout: timeoutMs, cacheMode: 'bypass' as const };
  switch (kind) {
    case 'tools':
      return { tools: caps.tools ? ((await orEmpty(client.listTools(undefined, options))).tools ?? []) : [] };
    case 'prompts':
      return { prompts: caps.prompts ? ((await orEmpty(client.listPrompts(undefined, options))).prompts ?? []) : [] };
    case 'resources': {
      if (!caps.resources) return { resources: [], resourceTemplates: [] };
      const [resources, templates] = await Promise.all([
        orEmpty(client.listResources(undefined, options)),
        orEmpty(client.listResourceTemplates(undefined, options)),
      ]);
      return { resources: resources.resources ?? [], resourceTemplates: templates.resourceTemplates ?? [] };
    }
  }
}

/** Every list of a server, in parallel. */
export async function listCatalog(
  client: Client,
  serverId: string,
  timeoutMs: number,
  now: () => number = Date.now,
): Promise<ServerCatalog> {
  const parts = await Promise.all(CATALOG_KINDS.map((kind) => listKind(client, kind, timeoutMs)));
  return {
    serverId,
    tools: [],
    prompts: [],
    resources: [],
    resourceTemplates: [],
    ...Object.assign({}, ...parts),
    capabilities: client.getServerCapabilities() ?? {},
    instructions: client.getInstructions(),
    loadedAt: now(),
  };
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
