import type MiniSearch from 'minisearch';

/**
 * Ranked keyword search over the tools an IDE profile may call, for `lanyard_search_tools`: BM25 (MiniSearch's
 * BM25+ scoring) over the exposed name, the words of the name (snake_case and camelCase split), the title and the
 * description, with prefix matching and a little fuzziness for longer words. Names weigh most: an agent usually
 * searches for the action ("create issue") and the name says it best.
 *
 * Everything is bounded, because the query comes from a model and the catalog from remote servers: the query is cut to
 * MAX_QUERY_CHARS and MAX_QUERY_TERMS distinct terms, each description is indexed up to MAX_INDEXED_DESCRIPTION
 * characters, and at most MAX_RESULTS tools come back.
 */

export interface SearchableTool {
  /** The name the IDE calls it by (on this profile). */
  name: string;
  serverId: string;
  /** The server's own name for it. */
  originalName: string;
  title?: string | undefined;
  description?: string | undefined;
}

export const MAX_QUERY_CHARS = 1_000;
export const MAX_QUERY_TERMS = 16;
export const MAX_INDEXED_DESCRIPTION = 2_000;
export const MAX_RESULTS = 50;
export const DEFAULT_RESULTS = 10;

interface Doc {
  id: number;
  name: string;
  words: string;
  title: string;
  description: string;
  server: string;
}

/** Words of an identifier or sentence: split at anything not a letter or digit, and at camelCase humps. */
export function tokenize(text: string): string[] {
  return text
    .replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1 $2')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((t) => t.length > 0 && t.length <= 64);
}

/** The query a model sent, cut to size: distinct terms, in order, at most MAX_QUERY_TERMS. */
export function boundedQuery(query: string): string[] {
  const terms = new Set<string>();
  for (const t of tokenize(query.slice(0, MAX_QUERY_CHARS))) {
    terms.add(t.toLowerCase());
    if (terms.size >= MAX_QUERY_TERMS) break;
  }
  return [...terms];
}

let miniSearch: Promise<typeof MiniSearch> | undefined;
/** Loaded with the first search, not at broker start: most brokers never need it. */
function loadMiniSearch(): Promise<typeof MiniSearch> {
  miniSearch ??= import('minisearch').then((m) => m.default);
  return miniSearch;
}

export class ToolSearchIndex {
  private constructor(
    private readonly index: MiniSearch<Doc>,
    private readonly tools: readonly SearchableTool[],
  ) {}

  static async build(tools: readonly SearchableTool[]): Promise<ToolSearchIndex> {
    const MiniSearchClass = await loadMiniSearch();
    const index = new MiniSearchClass<Doc>({
      fields: ['name', 'words', 'title', 'description', 'server'],
      storeFields: [],
      tokenize,
      searchOptions: {
        boost: { name: 3, words: 3, title: 2, server: 1.5 },
        prefix: (term) => term.length >= 3,
        fuzzy: (term) => (term.length >= 5 ? 0.2 : false),
        maxFuzzy: 2,
        combineWith: 'OR',
      },
    });
    index.addAll(
      tools.map((t, id) => ({
        id,
        name: t.name,
        words: `${t.originalName} ${t.name}`,
        title: t.title?.slice(0, 300) ?? '',
        description: t.description?.slice(0, MAX_INDEXED_DESCRIPTION) ?? '',
        server: t.serverId,
      })),
    );
    return new ToolSearchIndex(index, tools);
  }

  get size(): number {
    return this.tools.length;
  }

  /** The best matches first; an empty query lists the first tools (so "what is there?" has an answer). */
  search(query: string, limit: number = DEFAULT_RESULTS): SearchableTool[] {
    const max = Math.max(1, Math.min(MAX_RESULTS, Math.floor(limit) || DEFAULT_RESULTS));
    const terms = boundedQuery(query);
    if (!terms.length) return this.tools.slice(0, max);
    const hits = this.index.search(terms.join(' '));
    const out: SearchableTool[] = [];
    for (const hit of hits) {
      const tool = this.tools[hit.id as number];
      if (tool) out.push(tool);
      if (out.length >= max) break;
    }
    return out;
  }
}
