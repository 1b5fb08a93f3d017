// The client package (loaded at start anyway) rather than the server one, which loads with the first IDE session.
import { UriTemplate } from '@modelcontextprotocol/client';
import type { Prompt, Resource, ResourceTemplateType, Tool } from '@modelcontextprotocol/server';
import type { ServerCatalog } from '../upstream/catalog';
import type { ToolNamer } from '../tool-names';

/**
 * The aggregated lists and the indexes that route requests back to a server, built from the servers' catalogs in
 * config order (the first server wins a URI that several publish). Built once per change and then served as is:
 * tools/list on a warm gateway is a cached array, whatever the number of servers.
 */

export function mergeTools(catalogs: readonly ServerCatalog[], namer: ToolNamer): Tool[] {
  const out: Tool[] = [];
  for (const catalog of catalogs) {
    const names = new Set<string>();
    for (const tool of catalog.tools) {
      names.add(tool.name);
      out.push({ ...tool, name: namer.expose(catalog.serverId, tool.name) });
    }
    // Names of tools that disappeared are released, so the reverse map does not grow with every re-list.
    namer.retain(catalog.serverId, names);
  }
  return out;
}

export function mergePrompts(catalogs: readonly ServerCatalog[], namer: ToolNamer): Prompt[] {
  const out: Prompt[] = [];
  for (const catalog of catalogs) {
    const names = new Set<string>();
    for (const prompt of catalog.prompts) {
      names.add(prompt.name);
      out.push({ ...prompt, name: namer.expose(catalog.serverId, prompt.name) });
    }
    namer.retain(catalog.serverId, names);
  }
  return out;
}

/** Resources keep their URIs (they are the servers' identifiers); the index maps each back to its server. */
export class ResourceIndex {
  readonly resources: Resource[] = [];
  readonly resourceTemplates: ResourceTemplateType[] = [];
  private readonly byUri = new Map<string, string>();
  private readonly byTemplate = new Map<string, string>();
  private readonly matchers: Array<{ serverId: string; template: UriTemplate }> = [];
  /** Servers that publish resources at all: the last resort for a URI nobody listed. */
  private readonly withResources: string[] = [];

  constructor(catalogs: readonly ServerCatalog[]) {
    for (const catalog of catalogs) {
      if (catalog.capabilities.resources) this.withResources.push(catalog.serverId);
      for (const resource of catalog.resources) {
        this.resources.push(resource);
        if (!this.byUri.has(resource.uri)) this.byUri.set(resource.uri, catalog.serverId);
      }
      for (const template of catalog.resourceTemplates) {
        this.resourceTemplates.push(template);
        if (this.byTemplate.has(template.uriTemplate)) continue;
        this.byTemplate.set(template.uriTemplate, catalog.serverId);
        try {
          this.matchers.push({ serverId: catalog.serverId, template: new UriTemplate(template.uriTemplate) });
        } catch {
          // A template the SDK cannot parse still routes by its exact text (completion refs), not by matching.
        }
      }
    }
  }

  /**
   * The server a resource URI belongs to: listed URIs first, then templates, then — when only one server publishes
   * resources at all — that one.
   */
  serverForUri(uri: string): string | undefined {
    const listed = this.byUri.get(uri);
    if (listed) return listed;
    for (const { serverId, template } of this.matchers) {
      if (template.match(uri)) return serverId;
    }
    return this.withResources.length === 1 ? this.withResources[0] : undefined;
  }

  /** The server of a resource template reference (completion/complete `ref/resource`), by its exact template text. */
  serverForTemplate(uriTemplate: string): string | undefined {
    return this.byTemplate.get(uriTemplate) ?? this.serverForUri(uriTemplate);
  }
}
