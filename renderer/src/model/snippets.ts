/**
 * "Connect an IDE": the exact configuration each IDE needs to reach Lanyard, over HTTP (the local endpoint) or stdio
 * (`lanyard stdio`). Pure.
 *
 * The HTTP snippets carry the placeholder `${LANYARD_TOKEN}`, never the local token itself: the renderer never holds
 * a credential (docs/architecture.md "Data flow"), and the same page is served to a browser. The Connect button asks the broker to
 * write the IDE's config, token included, on the user's behalf; stdio needs no token at all.
 */
import type { IdeName } from '../../../shared/contract';

export const TOKEN_PLACEHOLDER = '${LANYARD_TOKEN}';
export const SERVER_KEY = 'lanyard';

export type Transport = 'http' | 'stdio';

export interface IdeInfo {
  ide: IdeName;
  name: string;
  /** Where the snippet goes. */
  location: string;
  /** The snippet is a shell command rather than a file's JSON. */
  kind: 'json' | 'command';
  transports: readonly Transport[];
  note?: string;
}

export const IDES: readonly IdeInfo[] = [
  { ide: 'cursor', name: 'Cursor', location: '~/.cursor/mcp.json', kind: 'json', transports: ['stdio', 'http'] },
  {
    ide: 'vscode',
    name: 'VS Code',
    location: '.vscode/mcp.json (workspace) or the user mcp.json',
    kind: 'json',
    transports: ['stdio', 'http'],
  },
  { ide: 'claude-code', name: 'Claude Code', location: 'Run in a terminal', kind: 'command', transports: ['stdio', 'http'] },
  {
    ide: 'claude-desktop',
    name: 'Claude Desktop',
    location: 'claude_desktop_config.json',
    kind: 'json',
    transports: ['stdio'],
    note: 'Claude Desktop starts local servers over stdio only; `lanyard stdio` bridges it to the same broker.',
  },
  { ide: 'windsurf', name: 'Windsurf', location: '~/.codeium/windsurf/mcp_config.json', kind: 'json', transports: ['stdio', 'http'] },
];

export function ideInfo(ide: IdeName): IdeInfo {
  const info = IDES.find((i) => i.ide === ide);
  if (info === undefined) throw new Error(`unknown IDE ${ide}`);
  return info;
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** The snippet for one IDE and transport. `mcpUrl` is the aggregated endpoint, e.g. http://127.0.0.1:47821/mcp. */
export function ideSnippet(ide: IdeName, transport: Transport, aggregateUrl: string): string {
  const authorization = `Bearer ${TOKEN_PLACEHOLDER}`;
  // Each IDE's own endpoint (`/ide/<ide>/mcp`, or `lanyard stdio --ide <ide>`): it names the IDE, so its tool profile applies.
  const mcpUrl = aggregateUrl.replace(/\/mcp\/?$/, `/ide/${ide}/mcp`);
  const stdio = { command: 'lanyard', args: ['stdio', '--ide', ide] };
  switch (ide) {
    case 'cursor':
      return json({
        mcpServers: { [SERVER_KEY]: transport === 'http' ? { url: mcpUrl, headers: { Authorization: authorization } } : stdio },
      });
    case 'vscode':
      return json({
        servers: {
          [SERVER_KEY]:
            transport === 'http' ? { type: 'http', url: mcpUrl, headers: { Authorization: authorization } } : { type: 'stdio', ...stdio },
        },
      });
    case 'windsurf':
      return json({
        mcpServers: { [SERVER_KEY]: transport === 'http' ? { serverUrl: mcpUrl, headers: { Authorization: authorization } } : stdio },
      });
    case 'claude-desktop':
      return json({ mcpServers: { [SERVER_KEY]: stdio } });
    case 'claude-code':
      return transport === 'http'
        ? `claude mcp add --transport http ${SERVER_KEY} ${mcpUrl} --header "Authorization: ${authorization}"`
        : `claude mcp add ${SERVER_KEY} -- lanyard stdio --ide claude-code`;
  }
}

/** The transport to show first: HTTP where the IDE supports it (one endpoint, no process per session). */
/**
 * stdio wherever the IDE takes it: the bridge finds the broker through its owner-checked runtime file, so the entry
 * holds no token and cannot be captured by another program on the port (SECURITY.md, "Other processes").
 */
export function defaultTransport(ide: IdeName): Transport {
  const { transports } = ideInfo(ide);
  return transports.includes('stdio') ? 'stdio' : (transports[0] ?? 'stdio');
}

/** "Cursor ✓ connected" — an IDE session the gateway saw, matched loosely on the client's self-reported name. */
export function isIdeConnected(ide: IdeName, sessions: ReadonlyArray<{ clientName: string }>): boolean {
  const needles: Record<IdeName, RegExp> = {
    cursor: /cursor/i,
    vscode: /visual studio code|vscode|vs code/i,
    'claude-code': /claude[- ]code/i,
    'claude-desktop': /claude(?![- ]code)/i,
    windsurf: /windsurf|codeium/i,
  };
  return sessions.some((s) => needles[ide].test(s.clientName));
}
