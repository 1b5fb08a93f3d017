import type { Tool } from '@modelcontextprotocol/server';
import { ProfileRegistry, SEARCH_TOOLS } from '../../electron/broker/governance/profiles';
import { ToolNamer } from '../../electron/broker/gateway/tool-names';
import { percentile, round } from './stats';

/**
 * e. `lanyard_search_tools` over 5,000 tools: the budget is ≤ 5 ms p50 (docs/architecture.md "Budgets"). Measured
 * in-process, as the broker answers it: the profile's route (argument checks, BM25 search, the answer with input
 * schemas built and serialized by the MCP SDK afterwards — that last step is not included). The index is built once
 * per catalog change, so its build time is reported apart.
 *
 * The catalog is synthetic but shaped like real ones: 50 servers × 100 tools whose names and descriptions are built
 * from a vocabulary of verbs and objects (so many tools share words, as in real catalogs), and the queries are the
 * kind an agent sends ("create issue", "list open pull requests", a word with a typo).
 */

export const SEARCH_BUDGET_P50_MS = 5;

export interface ToolSearchResult {
  tools: number;
  queries: number;
  index_build_ms: number;
  p50_ms: number;
  p99_ms: number;
  pass: boolean;
}

const VERBS = ['create', 'list', 'get', 'update', 'delete', 'search', 'archive', 'assign', 'close', 'merge', 'comment', 'export'];
const OBJECTS = [
  'issue',
  'pull_request',
  'page',
  'ticket',
  'user',
  'repository',
  'branch',
  'invoice',
  'event',
  'document',
  'label',
  'team',
];
const QUALIFIERS = ['', '_by_id', '_in_project', '_for_team', '_bulk', '_draft', '_history', '_summary', '_attachment'];

function catalog(servers: number, perServer: number): { tools: Tool[]; originOf: (n: string) => ReturnType<ToolNamer['resolve']> } {
  const namer = new ToolNamer({ separator: '__', maxLength: 64 });
  const tools: Tool[] = [];
  let n = 0;
  for (let s = 0; s < servers; s++) {
    const serverId = `svc-${String(s).padStart(2, '0')}`;
    for (let t = 0; t < perServer; t++, n++) {
      const verb = VERBS[n % VERBS.length]!;
      const object = OBJECTS[Math.floor(n / VERBS.length) % OBJECTS.length]!;
      const qualifier = QUALIFIERS[Math.floor(n / (VERBS.length * OBJECTS.length)) % QUALIFIERS.length]!;
      const name = `${verb}_${object}${qualifier}_${t}`;
      tools.push({
        name: namer.expose(serverId, name),
        title: `${verb} ${object.replace('_', ' ')}`,
        description: `${verb[0]!.toUpperCase()}${verb.slice(1)}s a ${object.replace('_', ' ')}${qualifier.replace(/_/g, ' ')} in service ${serverId}. Returns the ${object} as JSON with its id, owner, status and timestamps; fails when the caller lacks access.`,
        inputSchema: { type: 'object', properties: { id: { type: 'string' }, project: { type: 'string' }, limit: { type: 'integer' } } },
      });
    }
  }
  return { tools, originOf: (name) => namer.resolve(name) };
}

const QUERIES = [
  'create issue',
  'list open pull requests',
  'delete branch',
  'search documents about invoices',
  'assign ticket to user',
  'export team history',
  'merge pull request',
  'comment on issue',
  'archive repository',
  'get invoice by id',
  'update label',
  'close ticket',
  'serch documnt', // typos
  'attachment',
  'bulk update users in project',
  'what events happened for team',
];

export async function toolSearchCase(options: { tools?: number; queries?: number } = {}): Promise<ToolSearchResult> {
  const total = options.tools ?? 5_000;
  const perServer = 100;
  const { tools, originOf } = catalog(Math.ceil(total / perServer), perServer);
  const registry = new ProfileRegistry({
    config: () => ({ cursor: { budget: 40 } }),
    separator: '__',
    originOf,
    list: async () => ({ tools }),
  });
  const route = (query: string) => registry.route('cursor', { name: SEARCH_TOOLS, arguments: { query } });

  const buildStart = performance.now();
  await route('warm up');
  const indexBuild = performance.now() - buildStart;

  const runs = options.queries ?? 2_000;
  for (let i = 0; i < 200; i++) await route(QUERIES[i % QUERIES.length]!);
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const query = QUERIES[i % QUERIES.length]!;
    const started = performance.now();
    await route(query);
    samples.push(performance.now() - started);
  }
  const p50 = percentile(samples, 50);
  return {
    tools: tools.length,
    queries: runs,
    index_build_ms: round(indexBuild),
    p50_ms: round(p50),
    p99_ms: round(percentile(samples, 99)),
    pass: p50 <= SEARCH_BUDGET_P50_MS,
  };
}
