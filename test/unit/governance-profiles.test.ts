/**
 * IDE profiles and tool budgets (electron/broker/governance/profiles): which tools a profile lists, the names it hands
 * out at each IDE's length limit, the ranked search behind `lanyard_search_tools`, and how `lanyard_call_tool` and
 * direct calls are routed to the real tool.
 */
import type { ListToolsResult, Tool } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { LanyardConfigSchema } from '../../electron/broker/config/schema';
import { ManagedConfigSchema, mergeManagedConfig } from '../../electron/broker/config/managed';
import {
  boundedQuery,
  CALL_TOOL,
  effectiveProfile,
  IDE_LIMITS,
  ideFromPath,
  ideMcpUrl,
  ProfileRegistry,
  ProfilesConfigSchema,
  SEARCH_TOOLS,
  shapeList,
  ToolSearchIndex,
  type ProfilesConfig,
} from '../../electron/broker/governance/profiles';
import { ToolNamer, type NameOrigin } from '../../electron/broker/gateway/tool-names';

const schema = { type: 'object' as const, properties: { text: { type: 'string' } } };

/** A merged list as the aggregator builds it: `<server>__<tool>` names, with the reverse map. */
function merged(spec: Record<string, Array<string | { name: string; description?: string; title?: string }>>) {
  const namer = new ToolNamer({ separator: '__', maxLength: 64 });
  const tools: Tool[] = [];
  for (const [serverId, list] of Object.entries(spec)) {
    for (const item of list) {
      const t = typeof item === 'string' ? { name: item } : item;
      tools.push({ ...t, name: namer.expose(serverId, t.name), inputSchema: schema });
    }
  }
  return { tools, originOf: (n: string): NameOrigin | undefined => namer.resolve(n) };
}

const STATUS: Tool = { name: 'lanyard_status', description: 'What is wrong', inputSchema: { type: 'object' } };

describe('budget selection', () => {
  const many = merged({ github: Array.from({ length: 30 }, (_, i) => `tool_${i}`), wiki: ['read_page', 'search'] });

  it('lists every visible tool, favourites first, while they fit the budget', () => {
    const profile = effectiveProfile('cursor', { budget: 40, favourites: ['wiki/search'] });
    const out = shapeList(profile, many.tools, many.originOf, new ToolNamer({ separator: '__', maxLength: 51 }));
    expect(out.overBudget).toBe(false);
    expect(out.tools).toHaveLength(32);
    expect(out.tools[0]!.name).toBe('wiki__search');
  });

  it('past the budget: the favourites that fit, Lanyard’s own tools, and the two meta-tools — exactly the budget', () => {
    const profile = effectiveProfile('cursor', { budget: 6, favourites: ['wiki/read_page', 'github/tool_3', 'github/tool_4', 'nope/x'] });
    const out = shapeList(profile, [...many.tools, STATUS], many.originOf, new ToolNamer({ separator: '__', maxLength: 51 }));
    expect(out.overBudget).toBe(true);
    expect(out.tools.map((t) => t.name)).toEqual([
      'wiki__read_page',
      'github__tool_3',
      'github__tool_4',
      'lanyard_status',
      SEARCH_TOOLS,
      CALL_TOOL,
    ]);
    // Every visible tool is still known to the profile (searchable and callable).
    expect(out.entries).toHaveLength(32);
  });

  it('servers and tools denied or not allowed are neither listed nor searchable', () => {
    const profile = effectiveProfile('vscode', { servers: { deny: ['wiki'] }, tools: { deny: ['github/tool_0'] } });
    const out = shapeList(profile, many.tools, many.originOf, new ToolNamer({ separator: '__', maxLength: 64 }));
    const names = out.entries.map((e) => e.searchable.name);
    expect(names).not.toContain('wiki__search');
    expect(names).not.toContain('github__tool_0');
    expect(names).toHaveLength(29);
    const onlyWiki = shapeList(
      effectiveProfile('vscode', { servers: { allow: ['wiki'] }, tools: { allow: ['wiki/search'] } }),
      many.tools,
      many.originOf,
      new ToolNamer({ separator: '__', maxLength: 64 }),
    );
    expect(onlyWiki.tools.map((t) => t.name)).toEqual(['wiki__search']);
  });

  it('each IDE starts from its own documented limits', () => {
    expect(effectiveProfile('cursor', undefined)).toMatchObject({ budget: 40, maxNameLength: IDE_LIMITS.cursor.maxNameLength });
    expect(effectiveProfile('windsurf', undefined).budget).toBe(100);
    expect(effectiveProfile('vscode', undefined).budget).toBeLessThanOrEqual(128);
    expect(effectiveProfile('claude-code', undefined)).toMatchObject({ budget: 0, maxNameLength: 50 });
    expect(effectiveProfile('default', undefined, 64)).toMatchObject({ budget: 0, maxNameLength: 64 });
  });
});

describe('names at the IDE limit', () => {
  for (const limit of [60, 64]) {
    it(`${limit} characters: every name fits, none collides, each resolves back to its tool`, () => {
      const namer = new ToolNamer({ separator: '__', maxLength: limit });
      const seen = new Map<string, string>();
      const servers = ['github-enterprise-production', 'wiki'];
      for (const serverId of servers) {
        for (let i = 0; i < 300; i++) {
          // Long names sharing their first 60+ characters: a plain cut would collide.
          const original = `summarize_all_the_open_issues_of_the_current_sprint_for_the_team_${i}`;
          const name = namer.expose(serverId, original);
          expect(name.length).toBeLessThanOrEqual(limit);
          expect(name).toMatch(/^[A-Za-z0-9_.-]+$/);
          expect(seen.has(name)).toBe(false);
          seen.set(name, `${serverId}/${original}`);
          expect(namer.resolve(name)).toEqual({ serverId, originalName: original });
          // Stable: the same tool gets the same name again.
          expect(namer.expose(serverId, original)).toBe(name);
        }
      }
      expect(seen.size).toBe(600);
    });
  }
});

describe('search ranking', () => {
  const tools = [
    { name: 'github__create_issue', serverId: 'github', originalName: 'create_issue', description: 'Open a new issue in a repository' },
    { name: 'github__list_issues', serverId: 'github', originalName: 'list_issues', description: 'List the issues of a repository' },
    { name: 'jira__createTicket', serverId: 'jira', originalName: 'createTicket', description: 'Create a Jira ticket (an issue)' },
    { name: 'wiki__read_page', serverId: 'wiki', originalName: 'read_page', title: 'Read a wiki page', description: 'Returns a page' },
    { name: 'wiki__search', serverId: 'wiki', originalName: 'search', description: 'Full-text search over the wiki' },
  ];

  it('puts the tool whose name says it first', async () => {
    const index = await ToolSearchIndex.build(tools);
    expect(index.search('create issue')[0]!.name).toBe('github__create_issue');
    expect(index.search('read wiki page')[0]!.name).toBe('wiki__read_page');
    // camelCase names are split into words.
    expect(index.search('create ticket')[0]!.name).toBe('jira__createTicket');
    // Prefixes and small typos still find it.
    expect(index.search('issu')[0]!.originalName).toMatch(/issue/);
    expect(index.search('serch wiki')[0]!.name).toBe('wiki__search');
  });

  it('honours the limit and answers an empty query with the first tools', async () => {
    const index = await ToolSearchIndex.build(tools);
    expect(index.search('issue', 1)).toHaveLength(1);
    expect(index.search('', 3).map((t) => t.name)).toEqual(tools.slice(0, 3).map((t) => t.name));
  });

  it('cuts a query of megabytes to a bounded number of terms', () => {
    const terms = boundedQuery('word '.repeat(1_000_000) + Array.from({ length: 100 }, (_, i) => `t${i}`).join(' '));
    expect(terms.length).toBeLessThanOrEqual(16);
  });
});

describe('meta-tool call routing', () => {
  function registry(config: ProfilesConfig) {
    const m = merged({ github: ['create_issue', 'delete_repo', ...Array.from({ length: 50 }, (_, i) => `t${i}`)], wiki: ['read_page'] });
    const list: ListToolsResult = { tools: [...m.tools, STATUS] };
    return new ProfileRegistry({ config: () => config, separator: '__', originOf: m.originOf, list: async () => list });
  }

  it('lanyard_call_tool reaches the real tool with its own arguments (the progress token kept)', async () => {
    const r = registry({ cursor: { budget: 5, tools: { deny: ['github/delete_repo'] } } });
    const routed = await r.route('cursor', {
      name: CALL_TOOL,
      arguments: { name: 'wiki__read_page', arguments: { text: 'Home' } },
      _meta: { progressToken: 7 },
    });
    expect(routed).toEqual({
      kind: 'tool',
      origin: { serverId: 'wiki', originalName: 'read_page' },
      params: { name: 'wiki__read_page', arguments: { text: 'Home' }, _meta: { progressToken: 7 } },
    });
  });

  it('a direct call to a tool hidden by the budget still works; a denied tool is unknown', async () => {
    const r = registry({ cursor: { budget: 5, tools: { deny: ['github/delete_repo'] } } });
    expect(await r.route('cursor', { name: 'github__t42' })).toMatchObject({ kind: 'tool', origin: { originalName: 't42' } });
    expect(await r.route('cursor', { name: 'github__delete_repo' })).toEqual({ kind: 'unknown' });
    const viaMeta = await r.route('cursor', { name: CALL_TOOL, arguments: { name: 'github__delete_repo' } });
    expect(viaMeta).toMatchObject({ kind: 'result', result: { isError: true } });
    // Lanyard's own tools are left to the caller.
    expect(await r.route('cursor', { name: 'lanyard_status' })).toEqual({ kind: 'unknown' });
  });

  it('lanyard_search_tools returns matches with their input schemas, never a denied tool', async () => {
    const r = registry({ cursor: { budget: 5, tools: { deny: ['github/delete_repo'] } } });
    const routed = await r.route('cursor', { name: SEARCH_TOOLS, arguments: { query: 'create issue', limit: 3 } });
    expect(routed.kind).toBe('result');
    const tools = (routed as { result: { structuredContent: { tools: Array<{ name: string; inputSchema: unknown }> } } }).result
      .structuredContent.tools;
    expect(tools[0]).toMatchObject({ name: 'github__create_issue', inputSchema: schema });
    const repo = await r.route('cursor', { name: SEARCH_TOOLS, arguments: { query: 'delete repo' } });
    expect(JSON.stringify(repo)).not.toContain('delete_repo');
  });

  it('lanyard_call_tool without a name, or with arguments that are not an object, is a tool error', async () => {
    const r = registry({});
    expect(await r.route('cursor', { name: CALL_TOOL, arguments: {} })).toMatchObject({ kind: 'result', result: { isError: true } });
    expect(await r.route('cursor', { name: CALL_TOOL, arguments: { name: 'wiki__read_page', arguments: [1] } })).toMatchObject({
      kind: 'result',
      result: { isError: true },
    });
  });

  it('plain /mcp is shaped only once a default profile exists; a config change is noticed by refresh()', async () => {
    let config: ProfilesConfig = {};
    const m = merged({ wiki: ['read_page'] });
    const r = new ProfileRegistry({ config: () => config, separator: '__', originOf: m.originOf, list: async () => ({ tools: m.tools }) });
    expect(r.view().active()).toBe(false);
    expect(r.view('cursor').active()).toBe(true);
    config = { default: { tools: { deny: ['wiki/read_page'] } } };
    expect(r.refresh()).toBe(true);
    expect(r.refresh()).toBe(false);
    expect(r.view().shape({ tools: m.tools }).tools).toEqual([]);
  });
});

describe('IDE endpoints and the profiles section', () => {
  it('names the IDE in the endpoint path, without colliding with the relay', () => {
    expect(ideFromPath('/ide/cursor/mcp')).toBe('cursor');
    expect(ideFromPath('/ide/claude-code/mcp/')).toBe('claude-code');
    expect(ideFromPath('/ide/notepad/mcp')).toBeUndefined();
    expect(ideFromPath('/mcp/cursor')).toBeUndefined();
    expect(ideMcpUrl('http://127.0.0.1:47821/mcp', 'windsurf')).toBe('http://127.0.0.1:47821/ide/windsurf/mcp');
  });

  it('config.json takes a profiles section and refuses a malformed one with the path', () => {
    const ok = LanyardConfigSchema.parse({ version: 1, profiles: { cursor: { budget: 20, favourites: ['github/create_issue'] } } });
    expect(ok.profiles?.cursor?.budget).toBe(20);
    const bad = LanyardConfigSchema.safeParse({ version: 1, profiles: { cursor: { favourites: ['create_issue'] } } });
    expect(bad.success).toBe(false);
    expect(ProfilesConfigSchema.safeParse({ notepad: {} }).success).toBe(false);
    expect(ProfilesConfigSchema.safeParse({ cursor: { budget: 1 } }).success).toBe(false);
  });

  it('managed profiles replace the user’s per IDE, and locked, the user’s are ignored', () => {
    const user = LanyardConfigSchema.parse({ version: 1, profiles: { cursor: { budget: 20 }, vscode: { budget: 50 } } });
    const managed = ManagedConfigSchema.parse({ profiles: { cursor: { budget: 10 } } });
    expect(mergeManagedConfig(user, managed).profiles).toEqual({ cursor: { budget: 10 }, vscode: { budget: 50 } });
    const locked = ManagedConfigSchema.parse({ profiles: { cursor: { budget: 10 } }, lock: ['profiles'] });
    expect(mergeManagedConfig(user, locked).profiles).toEqual({ cursor: { budget: 10 } });
  });
});
