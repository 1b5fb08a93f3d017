import type { IdeName } from '../../../../shared/contract';

/**
 * What each IDE accepts from one MCP endpoint: how many tools its agent is given, and how long a tool name may be. The
 * defaults of every IDE profile come from here. Each number is what the IDE's vendor documented, or what its own
 * error message says, when this was written; the source is beside it, so a changed limit is found and fixed in one
 * place (`lanyard profiles show` prints the effective values).
 */
export interface IdeLimits {
  /** The most tools the IDE hands its agent; undefined when it sets no fixed number. */
  maxTools: number | undefined;
  /** The longest tool name Lanyard hands out on this IDE's endpoint (already less what the IDE puts in front of it). */
  maxNameLength: number;
  /** The tool budget a new profile starts with (at most maxTools; leaves room for the IDE's own tools). */
  defaultBudget: number | undefined;
}

/** The entry name `lanyard connect` writes; Cursor and Claude Code count it as part of every tool name. */
const ENTRY_NAME_LENGTH = 'lanyard'.length;

export const IDE_LIMITS: Readonly<Record<IdeName, IdeLimits>> = {
  cursor: {
    // "Cursor will only send the first 40 tools to the Agent": https://docs.cursor.com/context/model-context-protocol#limitations
    // (quoted in https://github.com/getsentry/sentry-mcp-stdio/issues/3 and https://github.com/anyproto/anytype-mcp/issues/5).
    maxTools: 40,
    // "Combined server and tool name length (60) exceeds 60 characters" — the tool is filtered out:
    // https://github.com/ComposioHQ/composio/issues/2788, https://github.com/idosal/git-mcp/issues/163. A combined length
    // of 60 is already refused, so server name + tool name stay at 59 or less: 59 − "lanyard" − 1 (its separator).
    maxNameLength: 59 - ENTRY_NAME_LENGTH - 1,
    defaultBudget: 40,
  },
  windsurf: {
    // "Cascade has a limit of 100 total tools that it has access to at any given time":
    // https://docs.windsurf.com/windsurf/cascade/mcp
    maxTools: 100,
    // No Windsurf-specific rule is documented; the model APIs behind it take function names of at most 64 characters
    // (https://platform.openai.com/docs/api-reference/chat/create — `name`, "maximum length of 64").
    maxNameLength: 64,
    defaultBudget: 100,
  },
  vscode: {
    // "Cannot have more than 128 tools per request." (thrown by Copilot Chat):
    // https://github.com/microsoft/vscode-copilot-release/issues/11653, https://github.com/microsoft/vscode/issues/255585.
    maxTools: 128,
    // Tool names over 64 characters fail the model request with a 400: https://github.com/microsoft/vscode/issues/243602
    maxNameLength: 64,
    // The 128 include Copilot's built-in tools (https://github.com/microsoft/vscode-copilot-release/issues/13337: the
    // error at 122 selected MCP tools), so Lanyard's share is kept well below.
    defaultBudget: 96,
  },
  'claude-code': {
    // No fixed count: Claude Code defers MCP tools behind its own tool search once their definitions pass 10% of the
    // context window (https://code.claude.com/docs/en/mcp, "MCP Tool Search").
    maxTools: undefined,
    // Claude Code names a tool `mcp__<entry>__<tool>` and the API refuses names over 64 characters ("tools.N.custom.name:
    // String should have at most 64 characters", https://github.com/anthropics/claude-code/issues/2326; the prefix
    // counts, https://github.com/mims-harvard/ToolUniverse/issues/65): 64 − "mcp__lanyard__".
    maxNameLength: 64 - (ENTRY_NAME_LENGTH + 7),
    defaultBudget: undefined,
  },
  'claude-desktop': {
    // No documented count. Names: "FrontendRemoteMcpToolDefinition.name: String should have at most 64 characters"
    // (https://github.com/anthropics/claude-code/issues/34960).
    maxTools: undefined,
    maxNameLength: 64,
    defaultBudget: undefined,
  },
};
