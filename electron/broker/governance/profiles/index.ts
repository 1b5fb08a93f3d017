/**
 * Per-IDE tool profiles and budgets: how an IDE is identified (endpoint.ts), its limits (limits.ts), its settings
 * (schema.ts), the shaping of its tool list and the routing of its calls (profiles.ts), and the two meta-tools that keep
 * every tool reachable past the budget (meta-tools.ts, search.ts).
 */
export { ideFromPath, ideMcpPath, ideMcpUrl, ideStdioArgs } from './endpoint';
export { IDE_LIMITS, type IdeLimits } from './limits';
export { CALL_TOOL, META_TOOLS, SEARCH_TOOLS } from './meta-tools';
export {
  allows,
  effectiveProfile,
  ProfileRegistry,
  ProfileView,
  shapeList,
  type EffectiveProfile,
  type ProfileSource,
  type RoutedCall,
  type ToolCallParams,
} from './profiles';
export {
  DEFAULT_PROFILE,
  parseToolRef,
  PROFILE_IDS,
  ProfileConfigSchema,
  ProfileIdSchema,
  ProfilesConfigSchema,
  toolRef,
  type ProfileConfig,
  type ProfileId,
  type ProfilesConfig,
} from './schema';
export { boundedQuery, ToolSearchIndex, type SearchableTool } from './search';
