import path from 'node:path';
import type { IdeName } from '../../../shared/contract';

/**
 * Where each IDE keeps its user-level MCP configuration, per OS, and what an entry pointing at Lanyard looks like in
 * it. Everything is computed from an injectable home directory, environment and platform, so tests write into a
 * temporary home and can check the Windows and macOS paths on Linux.
 *
 * Sources (checked when this was written; the README's "Connect your IDE" section repeats them):
 * - Cursor: https://cursor.com/docs/context/mcp — global `~/.cursor/mcp.json`, `mcpServers`, remote entries are
 *   `{ url, headers }`; install links https://cursor.com/docs/mcp/install-links.
 * - VS Code: https://code.visualstudio.com/docs/copilot/reference/mcp-configuration — `mcp.json` in the user profile,
 *   top-level `servers`, `{ type: "http", url, headers }` / `{ type: "stdio", command, args }`; the user-data directory
 *   rules are microsoft/vscode `src/vs/platform/environment/node/userDataPath.ts`; install URL `vscode:mcp/install?…`
 *   https://code.visualstudio.com/docs/copilot/guides/mcp-developer-guide#_mcp-url-handler.
 * - Claude Code: https://code.claude.com/docs/en/mcp — user scope lives in `~/.claude.json` under `mcpServers`, HTTP
 *   servers are `{ type: "http", url, headers }`; `CLAUDE_CONFIG_DIR` moves the file to `$CLAUDE_CONFIG_DIR/.claude.json`.
 * - Claude Desktop: https://modelcontextprotocol.io/docs/develop/connect-local-servers — `claude_desktop_config.json` in
 *   `~/Library/Application Support/Claude` (macOS) or `%APPDATA%\Claude` (Windows); remote servers configured in that
 *   file are ignored (https://support.anthropic.com/en/articles/11503834), so Lanyard always uses `lanyard stdio` there.
 * - Windsurf: https://docs.windsurf.com/windsurf/cascade/mcp — `~/.codeium/windsurf/mcp_config.json`, `mcpServers`,
 *   remote entries use `serverUrl` (plus `headers`).
 */

type Env = Record<string, string | undefined>;

/** The machine an IDE config path is computed for. */
export interface IdeEnvironment {
  /** The user's home directory (`os.homedir()`; `%USERPROFILE%` on Windows). */
  homedir: string;
  env: Env;
  platform: NodeJS.Platform;
}

/** How an IDE starts `lanyard stdio`: absolute paths only, never `npx` (GUI apps get a minimal PATH; see launcher.ts). */
export interface StdioLauncher {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/** The local endpoint and the local bearer token an HTTP entry carries. */
export interface HttpEndpoint {
  /** `http://127.0.0.1:<port>/mcp` */
  url: string;
  token: string;
}

export type IdeTransport = 'http' | 'stdio';

export interface IdeTarget {
  name: IdeName;
  displayName: string;
  /** The document key that maps server names to entries. */
  containerKey: 'mcpServers' | 'servers';
  /** False for Claude Desktop, which only starts local (stdio) servers from its config file. */
  supportsHttp: boolean;
  configPath(machine: IdeEnvironment): string;
  httpEntry(endpoint: HttpEndpoint): Record<string, unknown>;
  stdioEntry(launcher: StdioLauncher): Record<string, unknown>;
  /** The IDE's own "install this MCP server" link, where one exists. Always the stdio variant (no token in a URL). */
  deepLink?(launcher: StdioLauncher): string;
  /** What the user does, if anything, for the IDE to pick the change up. Lanyard never restarts an IDE itself. */
  reloadHint: string;
  /** Where the format above is documented. */
  source: string;
}

/** The name of the one entry Lanyard owns in every IDE file. */
export const LANYARD_ENTRY = 'lanyard';

function pathFor(platform: NodeJS.Platform): path.PlatformPath {
  return platform === 'win32' ? path.win32 : path.posix;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** `%APPDATA%` (Windows), with the documented fallback when the variable is missing. */
function windowsAppData(m: IdeEnvironment): string {
  return nonEmpty(m.env.APPDATA) ?? path.win32.join(m.homedir, 'AppData', 'Roaming');
}

/** `$XDG_CONFIG_HOME` when absolute (the XDG spec says to ignore a relative one), else `~/.config`. */
function xdgConfigHome(m: IdeEnvironment): string {
  const xdg = nonEmpty(m.env.XDG_CONFIG_HOME);
  return xdg !== undefined && path.posix.isAbsolute(xdg) ? xdg : path.posix.join(m.homedir, '.config');
}

/** VS Code's user-data directory, by the rules of its `userDataPath.ts` (portable mode, VSCODE_APPDATA, per OS). */
export function vscodeUserDataDir(m: IdeEnvironment): string {
  const p = pathFor(m.platform);
  const portable = nonEmpty(m.env.VSCODE_PORTABLE);
  if (portable) return p.join(portable, 'user-data');
  const appData = nonEmpty(m.env.VSCODE_APPDATA);
  if (appData) return p.join(appData, 'Code');
  switch (m.platform) {
    case 'win32':
      return path.win32.join(windowsAppData(m), 'Code');
    case 'darwin':
      return path.posix.join(m.homedir, 'Library', 'Application Support', 'Code');
    default:
      return path.posix.join(xdgConfigHome(m), 'Code');
  }
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const withEnv = (launcher: StdioLauncher) => (launcher.env && Object.keys(launcher.env).length > 0 ? { env: { ...launcher.env } } : {});

const cursor: IdeTarget = {
  name: 'cursor',
  displayName: 'Cursor',
  containerKey: 'mcpServers',
  supportsHttp: true,
  configPath: (m) => pathFor(m.platform).join(m.homedir, '.cursor', 'mcp.json'),
  httpEntry: (e) => ({ url: e.url, headers: bearer(e.token) }),
  stdioEntry: (l) => ({ command: l.command, args: [...l.args], ...withEnv(l) }),
  // The config is the server's entry itself (not wrapped in its name), standard base64, then URL-encoded.
  deepLink: (l) =>
    `cursor://anysphere.cursor-deeplink/mcp/install?${new URLSearchParams({
      name: LANYARD_ENTRY,
      config: Buffer.from(JSON.stringify(cursor.stdioEntry(l)), 'utf8').toString('base64'),
    }).toString()}`,
  reloadHint: 'Cursor reloads ~/.cursor/mcp.json by itself; check Settings → MCP that "lanyard" is enabled.',
  source: 'https://cursor.com/docs/context/mcp',
};

const vscode: IdeTarget = {
  name: 'vscode',
  displayName: 'VS Code',
  containerKey: 'servers',
  supportsHttp: true,
  configPath: (m) => pathFor(m.platform).join(vscodeUserDataDir(m), 'User', 'mcp.json'),
  httpEntry: (e) => ({ type: 'http', url: e.url, headers: bearer(e.token) }),
  stdioEntry: (l) => ({ type: 'stdio', command: l.command, args: [...l.args], ...withEnv(l) }),
  // The same object `code --add-mcp` takes: the entry plus its name.
  deepLink: (l) => `vscode:mcp/install?${encodeURIComponent(JSON.stringify({ name: LANYARD_ENTRY, ...vscode.stdioEntry(l) }))}`,
  reloadHint: 'VS Code picks up the user mcp.json by itself; start "lanyard" from "MCP: List Servers" if it is not running.',
  source: 'https://code.visualstudio.com/docs/copilot/reference/mcp-configuration',
};

const claudeCode: IdeTarget = {
  name: 'claude-code',
  displayName: 'Claude Code',
  containerKey: 'mcpServers',
  supportsHttp: true,
  configPath: (m) => {
    const p = pathFor(m.platform);
    const dir = nonEmpty(m.env.CLAUDE_CONFIG_DIR);
    return dir ? p.join(dir, '.claude.json') : p.join(m.homedir, '.claude.json');
  },
  httpEntry: (e) => ({ type: 'http', url: e.url, headers: bearer(e.token) }),
  stdioEntry: (l) => ({ type: 'stdio', command: l.command, args: [...l.args], ...withEnv(l) }),
  reloadHint: 'New Claude Code sessions see it; in a running session, `/mcp` shows it.',
  source: 'https://code.claude.com/docs/en/mcp',
};

const claudeDesktop: IdeTarget = {
  name: 'claude-desktop',
  displayName: 'Claude Desktop',
  containerKey: 'mcpServers',
  supportsHttp: false,
  configPath: (m) => {
    switch (m.platform) {
      case 'win32':
        return path.win32.join(windowsAppData(m), 'Claude', 'claude_desktop_config.json');
      case 'darwin':
        return path.posix.join(m.homedir, 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json');
      default:
        // No official Linux build; the community builds use the XDG location.
        return path.posix.join(xdgConfigHome(m), 'Claude', 'claude_desktop_config.json');
    }
  },
  httpEntry: () => {
    throw new Error('Claude Desktop starts only local (stdio) servers from its config file');
  },
  stdioEntry: (l) => ({ command: l.command, args: [...l.args], ...withEnv(l) }),
  reloadHint: 'Claude Desktop reads its config at start: quit it (from the menu bar / tray, not just the window) and open it again.',
  source: 'https://modelcontextprotocol.io/docs/develop/connect-local-servers',
};

const windsurf: IdeTarget = {
  name: 'windsurf',
  displayName: 'Windsurf',
  containerKey: 'mcpServers',
  supportsHttp: true,
  configPath: (m) => pathFor(m.platform).join(m.homedir, '.codeium', 'windsurf', 'mcp_config.json'),
  httpEntry: (e) => ({ serverUrl: e.url, headers: bearer(e.token) }),
  stdioEntry: (l) => ({ command: l.command, args: [...l.args], ...withEnv(l) }),
  reloadHint: 'In Windsurf, press the refresh button in Cascade → MCP servers.',
  source: 'https://docs.windsurf.com/windsurf/cascade/mcp',
};

export const IDE_TARGETS: Readonly<Record<IdeName, IdeTarget>> = {
  cursor,
  vscode,
  'claude-code': claudeCode,
  'claude-desktop': claudeDesktop,
  windsurf,
};

export const IDE_NAMES = Object.keys(IDE_TARGETS) as IdeName[];

export function isIdeName(value: string): value is IdeName {
  return Object.hasOwn(IDE_TARGETS, value);
}
