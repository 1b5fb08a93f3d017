import type { CallToolResult, Tool } from '@modelcontextprotocol/server';
import { DEFAULT_RESULTS, MAX_RESULTS, type SearchableTool } from './search';

/**
 * The two tools an IDE over its tool budget sees beside its favourites: one finds tools, the other calls them. With
 * both, every tool the profile allows stays reachable however small the budget.
 */

export const SEARCH_TOOLS = 'lanyard_search_tools';
export const CALL_TOOL = 'lanyard_call_tool';
export const META_TOOLS: ReadonlySet<string> = new Set([SEARCH_TOOLS, CALL_TOOL]);

/** A description returned by a search is cut here: the agent needs what the tool does, not a manual. */
const RESULT_DESCRIPTION_CHARS = 1_000;

export function searchToolsTool(available: number): Tool {
  return {
    name: SEARCH_TOOLS,
    title: 'Search tools',
    description:
      `Finds tools by keyword among the ${available} tools available through Lanyard (most are not listed directly, to stay ` +
      `within this client's tool limit). Returns the best matches with their input schemas; call one with ${CALL_TOOL}.`,
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'What the tool should do, e.g. "create issue" or "read wiki page".' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_RESULTS, description: `How many tools to return (default ${DEFAULT_RESULTS}).` },
      },
      required: ['query'],
    },
    annotations: { title: 'Search tools', readOnlyHint: true, openWorldHint: false },
  };
}

export function callToolTool(): Tool {
  return {
    name: CALL_TOOL,
    title: 'Call a tool',
    description: `Calls a tool found with ${SEARCH_TOOLS}, by its name, with arguments that follow its input schema.`,
    inputSchema: {
      type: 'object',
      properties: {
        name: { type: 'string', description: `The tool's name as ${SEARCH_TOOLS} returned it.` },
        arguments: { type: 'object', description: "The tool's arguments.", additionalProperties: true },
      },
      required: ['name'],
    },
  };
}

export interface SearchMatch {
  name: string;
  title?: string | undefined;
  description?: string | undefined;
  server: string;
  inputSchema: Tool['inputSchema'];
}

export function searchResult(matches: Array<{ tool: SearchableTool; inputSchema: Tool['inputSchema'] }>, query: string): CallToolResult {
  const tools: SearchMatch[] = matches.map(({ tool, inputSchema }) => ({
    name: tool.name,
    ...(tool.title ? { title: tool.title } : {}),
    ...(tool.description ? { description: tool.description.slice(0, RESULT_DESCRIPTION_CHARS) } : {}),
    server: tool.serverId,
    inputSchema,
  }));
  const head = tools.length
    ? `${tools.length} tool${tools.length === 1 ? '' : 's'} found. Call one with ${CALL_TOOL} { "name": …, "arguments": … }.`
    : `No tool matches ${JSON.stringify(query.slice(0, 100))}. Try other words.`;
  return {
    content: [{ type: 'text', text: `${head}\n${JSON.stringify(tools)}` }],
    structuredContent: { tools },
  };
}

export function metaToolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}
