import type { CallToolResult, Tool } from '@modelcontextprotocol/server';
import type { ErrorInfo } from '../../../../shared/errors';
import { redactText } from '../../errors';
import type { UpstreamHealth } from '../upstream/health';

/**
 * Lanyard's own tools on `/mcp`. They exist so that an IDE never meets an empty or hanging tool list: when the user
 * is not signed in, or a server cannot be listed, the list carries one tool whose description (what the model and the
 * person read in the tool picker) and result say exactly what to do.
 */
export const SIGN_IN_TOOL = 'lanyard_sign_in';
export const STATUS_TOOL = 'lanyard_status';

const EMPTY_INPUT = { type: 'object' as const, properties: {} };
const DESCRIPTION_LIMIT = 1_000;

export function signInTool(hint: string): Tool {
  return {
    name: SIGN_IN_TOOL,
    title: 'Sign in to Lanyard',
    description:
      `You are not signed in to Lanyard, so your company's MCP servers are not available yet. ${hint} Their tools appear here as soon as you are signed in.`.slice(
        0,
        DESCRIPTION_LIMIT,
      ),
    inputSchema: EMPTY_INPUT,
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

export function signInResult(hint: string): CallToolResult {
  return { content: [{ type: 'text', text: `Not signed in to Lanyard. ${hint}` }], isError: true };
}

/** Signed in, but no server is configured (or all are disabled): say so rather than list nothing. */
export function noServersTool(): Tool {
  return {
    name: STATUS_TOOL,
    title: 'Lanyard status',
    description:
      'Lanyard has no MCP servers enabled yet, so there are no tools here. Add or enable a server in the Lanyard dashboard (Servers), or ask your IT team which servers your company offers.',
    inputSchema: EMPTY_INPUT,
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

/** One server's line in the status tool. */
export interface ServerStatusLine {
  id: string;
  name: string;
  health: UpstreamHealth | undefined;
  toolCount: number | undefined;
}

function describeProblem(line: ServerStatusLine): string {
  const error: ErrorInfo | undefined = line.health?.lastError;
  if (error) return `${line.id}: ${error.message} Fix: ${error.fix}`;
  if (line.health?.state === 'connecting' || line.health?.state === 'idle' || !line.health)
    return `${line.id}: still connecting (its tools appear when it answers).`;
  return `${line.id}: not listed yet.`;
}

/** Listed while some enabled server has no tools listed: names them and says why. */
export function statusTool(unavailable: readonly ServerStatusLine[]): Tool {
  const problems = unavailable.map(describeProblem).join(' ');
  return {
    name: STATUS_TOOL,
    title: 'Lanyard status',
    description: redactText(
      `Lanyard could not list ${unavailable.length === 1 ? 'one server' : `${unavailable.length} servers`}; their tools are missing from this list. ${problems} Call this tool for the current status of every server.`,
    ).slice(0, DESCRIPTION_LIMIT),
    inputSchema: EMPTY_INPUT,
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

/** The status tool's answer: every enabled server, its state and, for a problem, what to do. */
export function statusResult(lines: readonly ServerStatusLine[], signedIn: boolean, hint: string): CallToolResult {
  const text = [
    signedIn ? 'Signed in to Lanyard.' : `Not signed in to Lanyard. ${hint}`,
    ...lines.map((line) => {
      const state = line.health?.state ?? 'idle';
      const tools = line.toolCount !== undefined ? `, ${line.toolCount} tools` : '';
      const error = line.health?.lastError;
      return `- ${line.id} (${line.name}): ${state}${tools}${error && state !== 'ready' ? ` — ${error.message} Fix: ${error.fix}` : ''}`;
    }),
  ].join('\n');
  return { content: [{ type: 'text', text: redactText(text) }] };
}
