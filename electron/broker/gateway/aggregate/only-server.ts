import type { ListToolsResult, Prompt } from '@modelcontextprotocol/server';
import type { NameOrigin } from '../tool-names';
import type { AggregatorCore } from './core';
import { ResourceIndex } from './merged';

/**
 * `/mcp/only/<server-id>`: the aggregated pipeline (IDE sessions, fast path, bound upstream sessions, the 2026-07-28
 * layer) carrying exactly one server, with the server's own names — no `<server>__` prefix, no Lanyard tools. A
 * diagnostic endpoint: it lets the conformance suite measure the aggregated path against the server itself
 * (docs/protocol.md, "Diagnostic endpoint /mcp/only/<id>").
 */
export function onlyServerCore(core: AggregatorCore, serverId: string): AggregatorCore {
  const enabled = () => core.pool.server(serverId) !== undefined && core.canServe(serverId);
  const origin = (name: string): NameOrigin | undefined => (enabled() ? { serverId, originalName: name } : undefined);
  // A tool is admitted here exactly as on /mcp: after a restart's snapshot, once live; held back for review, refused.
  const unlessQuarantined = async (kind: 'tools' | 'prompts', found: NameOrigin | undefined): Promise<NameOrigin | undefined> => {
    if (kind === 'tools' && found) await core.admitToolCall(found.serverId, found.originalName);
    return found;
  };
  let toolsJson: { tools: unknown; json: Buffer } | undefined;
  const catalog = async () => {
    if (!enabled()) return undefined;
    return core.pool.catalog(serverId) ?? (await core.pool.ensureCatalog(serverId).catch(() => undefined));
  };
  const listToolsForIde = async (): Promise<ListToolsResult> => ({ tools: (await catalog())?.tools ?? [] });
  const listPrompts = async (): Promise<Prompt[]> => (await catalog())?.prompts ?? [];
  const listResources = async (): Promise<ResourceIndex> => {
    const c = await catalog();
    return new ResourceIndex(c ? [c] : []);
  };
  return {
    pool: core.pool,
    log: core.log,
    now: core.now,
    version: core.version,
    separator: core.separator,
    scope: `only/${serverId}`,
    onlyServer: serverId,
    signedIn: () => core.signedIn(),
    canServe: (id) => id === serverId && core.canServe(id),
    signInHint: () => core.signInHint(),
    listToolsForIde,
    listToolsJson: async () => {
      const result = await listToolsForIde();
      if (toolsJson?.tools !== result.tools) toolsJson = { tools: result.tools, json: Buffer.from(JSON.stringify(result)) };
      return toolsJson.json;
    },
    listPrompts,
    listResources,
    resolveName: (kind, exposed) => unlessQuarantined(kind, origin(exposed)),
    // Not the fast path's when held back (resolveName refuses it with the reason) or while the snapshot is served.
    knownName: (kind, exposed) => {
      const found = origin(exposed);
      if (kind === 'tools' && found && core.pool.servingSnapshot(serverId)) return undefined;
      return kind === 'tools' && found && core.toolRefusal(serverId, exposed) ? undefined : found;
    },
    toolRefusal: (id, tool) => core.toolRefusal(id, tool),
    admitToolCall: (id, tool) => core.admitToolCall(id, tool),
    guard: core.guard,
    // A diagnostic endpoint: no IDE profile shapes it.
    profileView: () => core.profileView(undefined),
    knownServerForUri: () => (enabled() ? serverId : undefined),
    serverForUri: async () => (enabled() ? serverId : undefined),
    builtinTool: () => undefined,
    versions: () => core.versions(),
    activity: (event) => core.activity(event),
    ideSession: (event) => core.ideSession(event),
    warmInBackground: () => {
      if (enabled()) core.pool.ensureCatalog(serverId).catch(() => undefined);
    },
  };
}
