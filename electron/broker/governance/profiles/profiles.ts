import type { CallToolResult, ListToolsResult, Tool } from '@modelcontextprotocol/server';
import { DEFAULT_MAX_TOOL_NAME_LENGTH, ToolNamer, type NameOrigin } from '../../gateway/tool-names';
import { IDE_LIMITS } from './limits';
import { CALL_TOOL, callToolTool, metaToolError, SEARCH_TOOLS, searchResult, searchToolsTool } from './meta-tools';
import { DEFAULT_PROFILE, toolRef, type ProfileConfig, type ProfileId, type ProfilesConfig } from './schema';
import { ToolSearchIndex, type SearchableTool } from './search';

/**
 * Per-IDE shaping of `/mcp`'s merged tool list (see docs/architecture.md, "IDE profiles and tool budgets").
 *
 * The aggregator merges every server's tools once; each IDE profile then takes that list and
 *   1. keeps the servers and tools its allow/deny lists let through (Lanyard's own tools always pass);
 *   2. renames them for the IDE's name limit (a ToolNamer per profile: the same deterministic, collision-free rewrite
 *      the aggregator uses, at the profile's length, with its own reverse map);
 *   3. when more remain than the budget, lists the favourites plus `lanyard_search_tools` and `lanyard_call_tool`.
 * The result is cached per merged list (a new one comes with every catalog change, which also sends list_changed to
 * every session holding an older list) and per profile settings.
 *
 * A call by name — direct, or through `lanyard_call_tool` — is resolved against the profile's visible tools (the
 * whole set, not only what fits the budget), so a hidden-by-budget tool stays callable and a denied one does not.
 */

export interface ProfileSource {
  /** The effective `profiles` section (user config with the managed one laid over it). */
  config(): ProfilesConfig | undefined;
  separator: string;
  /** The name limit of plain `/mcp` (the aggregator's). */
  defaultMaxNameLength?: number;
  /** Where a merged-list tool name came from; undefined for Lanyard's own tools. */
  originOf(exposed: string): NameOrigin | undefined;
  /** The merged list, as plain `/mcp` serves it. */
  list(): Promise<ListToolsResult>;
}

/** A profile's settings with every default filled in. */
export interface EffectiveProfile {
  id: ProfileId;
  budget: number;
  maxNameLength: number;
  favourites: string[];
  servers: { allow?: string[] | undefined; deny?: string[] | undefined };
  tools: { allow?: string[] | undefined; deny?: string[] | undefined };
}

/** The tool call an IDE made, once the profile has resolved it. */
export type RoutedCall =
  /** Answered by the profile itself (a search, or a meta-tool call that cannot go anywhere). */
  | { kind: 'result'; result: CallToolResult }
  /** A server's tool: call it with these params (`lanyard_call_tool` unwrapped to the real tool and its arguments). */
  | { kind: 'tool'; origin: NameOrigin; params: ToolCallParams }
  /** Not one of the profile's tools (Lanyard's own tools, or an unknown name): the caller decides. */
  | { kind: 'unknown' };

export type ToolCallParams = { name: string; arguments?: Record<string, unknown> | undefined; _meta?: Record<string, unknown> | undefined };

interface Entry {
  origin: NameOrigin;
  tool: Tool;
  searchable: SearchableTool;
}

interface Shaped {
  source: Tool[];
  configKey: string;
  tools: Tool[];
  byName: Map<string, Entry>;
  entries: Entry[];
  overBudget: boolean;
  index?: Promise<ToolSearchIndex>;
  /** `{"tools":[…]}` serialized once (the fast path serves tools/list from these bytes). */
  json?: Buffer;
}

export function effectiveProfile(
  id: ProfileId,
  config: ProfileConfig | undefined,
  defaultMaxNameLength = DEFAULT_MAX_TOOL_NAME_LENGTH,
): EffectiveProfile {
  const limits = id === DEFAULT_PROFILE ? undefined : IDE_LIMITS[id];
  return {
    id,
    budget: config?.budget ?? limits?.defaultBudget ?? 0,
    maxNameLength: config?.maxNameLength ?? limits?.maxNameLength ?? defaultMaxNameLength,
    favourites: config?.favourites ?? [],
    servers: { allow: config?.servers?.allow, deny: config?.servers?.deny },
    tools: { allow: config?.tools?.allow, deny: config?.tools?.deny },
  };
}

/** Whether the profile lets this server's tool through. */
export function allows(profile: EffectiveProfile, origin: NameOrigin): boolean {
  const { servers, tools } = profile;
  if (servers.deny?.includes(origin.serverId)) return false;
  if (servers.allow && !servers.allow.includes(origin.serverId)) return false;
  const ref = toolRef(origin.serverId, origin.originalName);
  if (tools.deny?.includes(ref)) return false;
  return !tools.allow || tools.allow.includes(ref);
}

/**
 * Applies a profile to a merged list. Pure apart from the namer, which remembers the names it handed out (so a name
 * stays the same across lists, and resolves back).
 */
export function shapeList(
  profile: EffectiveProfile,
  tools: readonly Tool[],
  originOf: (exposed: string) => NameOrigin | undefined,
  namer: ToolNamer,
): { tools: Tool[]; entries: Entry[]; overBudget: boolean } {
  const entries: Entry[] = [];
  const own: Tool[] = [];
  for (const tool of tools) {
    const origin = originOf(tool.name);
    if (!origin) {
      own.push(tool);
      continue;
    }
    if (!allows(profile, origin)) continue;
    const name = namer.expose(origin.serverId, origin.originalName);
    const shaped = name === tool.name ? tool : { ...tool, name };
    entries.push({
      origin,
      tool: shaped,
      searchable: { name, serverId: origin.serverId, originalName: origin.originalName, title: tool.title, description: tool.description },
    });
  }
  const byRef = new Map(entries.map((e) => [toolRef(e.origin.serverId, e.origin.originalName), e]));
  const favourites: Entry[] = [];
  for (const ref of new Set(profile.favourites)) {
    const e = byRef.get(ref);
    if (e) favourites.push(e);
  }
  const budget = profile.budget;
  if (!budget || entries.length + own.length <= budget) {
    // Within budget: everything, favourites first.
    const rest = entries.filter((e) => !favourites.includes(e));
    return { tools: [...favourites.map((e) => e.tool), ...rest.map((e) => e.tool), ...own], entries, overBudget: false };
  }
  const room = Math.max(0, budget - 2 - own.length);
  return {
    tools: [...favourites.slice(0, room).map((e) => e.tool), ...own, searchToolsTool(entries.length), callToolTool()],
    entries,
    overBudget: true,
  };
}

/** One profile's state: its namer and its shaped list. */
class ProfileState {
  namer: ToolNamer;
  shaped: Shaped | undefined;

  constructor(
    readonly id: ProfileId,
    separator: string,
    maxLength: number,
  ) {
    this.namer = new ToolNamer({ separator, maxLength });
  }
}

export class ProfileRegistry {
  private readonly states = new Map<ProfileId, ProfileState>();
  /**
   * The profiles as last read: re-read by refresh() (the aggregator calls it on every config change), not per request,
   * because `active()` runs on every tools/call of plain `/mcp`.
   */
  private config: ProfilesConfig;
  private configKey: string;

  constructor(private readonly source: ProfileSource) {
    this.config = this.read();
    this.configKey = JSON.stringify(this.config);
  }

  /** The view a session on this endpoint uses (plain `/mcp` is the default profile). */
  view(id: ProfileId = DEFAULT_PROFILE): ProfileView {
    return new ProfileView(this, id);
  }

  /** True when the profiles changed since the last call (the caller then invalidates the tool lists). */
  refresh(): boolean {
    const config = this.read();
    const key = JSON.stringify(config);
    if (key === this.configKey) return false;
    this.config = config;
    this.configKey = key;
    return true;
  }

  effective(id: ProfileId): EffectiveProfile {
    return effectiveProfile(id, this.config[id], this.source.defaultMaxNameLength);
  }

  /** Plain `/mcp` without a `default` profile is served as merged, names and list unchanged. */
  active(id: ProfileId): boolean {
    return id !== DEFAULT_PROFILE || this.config[DEFAULT_PROFILE] !== undefined;
  }

  /** The shaped list for a merged one (cached on the merged array and the profile's settings). */
  shape(id: ProfileId, list: ListToolsResult): Shaped {
    const profile = this.effective(id);
    const configKey = JSON.stringify(profile);
    let state = this.states.get(id);
    if (!state || state.namer.maxLength !== profile.maxNameLength) {
      state = new ProfileState(id, this.source.separator, profile.maxNameLength);
      this.states.set(id, state);
    }
    const cached = state.shaped;
    if (cached && cached.source === list.tools && cached.configKey === configKey) return cached;
    const shaped = shapeList(profile, list.tools, (n) => this.source.originOf(n), state.namer);
    state.shaped = {
      source: list.tools,
      configKey,
      tools: shaped.tools,
      entries: shaped.entries,
      byName: new Map(shaped.entries.map((e) => [e.searchable.name, e])),
      overBudget: shaped.overBudget,
    };
    return state.shaped;
  }

  async current(id: ProfileId): Promise<Shaped> {
    return this.shape(id, await this.source.list());
  }

  /** The shaped list as tools/list result bytes, kept with the shaped list (so keyed like it). */
  async listJson(id: ProfileId): Promise<Buffer> {
    const shaped = await this.current(id);
    shaped.json ??= Buffer.from(JSON.stringify({ tools: shaped.tools }));
    return shaped.json;
  }

  async search(id: ProfileId, query: string, limit?: number): Promise<CallToolResult> {
    const shaped = await this.current(id);
    shaped.index ??= ToolSearchIndex.build(shaped.entries.map((e) => e.searchable));
    const index = await shaped.index;
    const found = index.search(query, limit);
    return searchResult(
      found.map((tool) => ({ tool, inputSchema: shaped.byName.get(tool.name)!.tool.inputSchema })),
      query,
    );
  }

  async route(id: ProfileId, params: ToolCallParams): Promise<RoutedCall> {
    const args = params.arguments ?? {};
    if (params.name === SEARCH_TOOLS) {
      const query = typeof args.query === 'string' ? args.query : '';
      const limit = typeof args.limit === 'number' ? args.limit : undefined;
      return { kind: 'result', result: await this.search(id, query, limit) };
    }
    const shaped = await this.current(id);
    if (params.name === CALL_TOOL) {
      const name = typeof args.name === 'string' ? args.name : undefined;
      if (!name) return { kind: 'result', result: metaToolError(`${CALL_TOOL} needs "name": a tool name from ${SEARCH_TOOLS}.`) };
      const inner = args.arguments;
      if (inner !== undefined && (typeof inner !== 'object' || inner === null || Array.isArray(inner)))
        return { kind: 'result', result: metaToolError(`${CALL_TOOL}: "arguments" must be an object.`) };
      const entry = shaped.byName.get(name);
      if (!entry)
        return {
          kind: 'result',
          result: metaToolError(`No tool named ${JSON.stringify(name.slice(0, 200))} is available here. Find it with ${SEARCH_TOOLS}.`),
        };
      const { arguments: _outer, ...rest } = params;
      return {
        kind: 'tool',
        origin: entry.origin,
        params: { ...rest, name, ...(inner !== undefined ? { arguments: inner as Record<string, unknown> } : {}) },
      };
    }
    const entry = shaped.byName.get(params.name);
    return entry ? { kind: 'tool', origin: entry.origin, params } : { kind: 'unknown' };
  }

  private read(): ProfilesConfig {
    try {
      return this.source.config() ?? {};
    } catch {
      // An unreadable config keeps the last good profiles (the config store reports the error itself).
      return this.config ?? {};
    }
  }
}

/** What one IDE session holds: its profile, read live (a profile edited in the dashboard applies to open sessions). */
export class ProfileView {
  constructor(
    private readonly registry: ProfileRegistry,
    readonly id: ProfileId,
  ) {}

  /** False: the session is served the merged list as is, and names resolve as on plain `/mcp`. */
  active(): boolean {
    return this.registry.active(this.id);
  }

  shape(list: ListToolsResult): ListToolsResult {
    if (!this.active()) return list;
    const { tools } = this.registry.shape(this.id, list);
    return { ...list, tools };
  }

  /** The shaped list serialized (for an active profile): reused while the merged list and the settings stay the same. */
  listJson(): Promise<Buffer> {
    return this.registry.listJson(this.id);
  }

  /** undefined when the profile is not active (the caller resolves the name as plain `/mcp` does). */
  async route(params: ToolCallParams): Promise<RoutedCall | undefined> {
    if (!this.active()) return undefined;
    return this.registry.route(this.id, params);
  }
}
