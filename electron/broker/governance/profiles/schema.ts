import { z } from 'zod';
import { IdeNameSchema } from '../../../../shared/contract';
import { SERVER_ID_PATTERN } from '../../../../shared/server-id';

/**
 * The `profiles` section of config.json (and of the managed configuration): per connected IDE, which servers and tools
 * it sees, its favourites and its tool budget. Keys are the IDE names of `lanyard connect` plus `default` (plain
 * `/mcp`, and `lanyard stdio` without `--ide`). Tools are referred to as `<server-id>/<tool name>` — the server's own
 * tool name, not the shortened name an IDE sees, so a reference survives a change of separator or name limit.
 */

export const DEFAULT_PROFILE = 'default';
export const PROFILE_IDS = [DEFAULT_PROFILE, ...IdeNameSchema.options] as const;
export const ProfileIdSchema = z.enum(PROFILE_IDS);
export type ProfileId = z.output<typeof ProfileIdSchema>;

/** The most entries one list may hold: far above any real catalog, low enough that a pasted blob is refused. */
const MAX_LIST = 5_000;
export const MIN_BUDGET = 3;
export const MAX_BUDGET = 1_000;

const serverIdRef = z.string().regex(SERVER_ID_PATTERN, { error: 'must be a server id' });

/** `<server-id>/<tool name>`: the id has no `/`, so the first `/` splits it; the name is the server's own. */
export const ToolRefSchema = z
  .string()
  .max(300, { error: 'must be at most 300 characters' })
  .refine(
    (ref) => {
      const slash = ref.indexOf('/');
      return slash > 0 && slash < ref.length - 1 && SERVER_ID_PATTERN.test(ref.slice(0, slash));
    },
    { error: 'must be <server-id>/<tool name>, e.g. "github/create_issue"' },
  );

const allowDeny = <T extends z.ZodType<string>>(item: T) =>
  z.strictObject({
    /** Only these (absent: all). */
    allow: z.array(item).max(MAX_LIST).optional(),
    /** Never these (wins over allow). */
    deny: z.array(item).max(MAX_LIST).optional(),
  });

export const ProfileConfigSchema = z.strictObject({
  servers: allowDeny(serverIdRef).optional(),
  tools: allowDeny(ToolRefSchema).optional(),
  /** Listed first, and the ones still listed when the visible tools exceed the budget. */
  favourites: z.array(ToolRefSchema).max(MAX_LIST).optional(),
  /**
   * The most tools the IDE is shown. Past it, the IDE sees its favourites plus `lanyard_search_tools` and
   * `lanyard_call_tool`, through which every other visible tool stays reachable. 0 = no budget.
   */
  budget: z
    .int()
    .refine((n) => n === 0 || (n >= MIN_BUDGET && n <= MAX_BUDGET), { error: `must be 0 (no budget) or ${MIN_BUDGET}-${MAX_BUDGET}` })
    .optional(),
  /** The longest tool name handed to this IDE (default: the IDE's own limit). */
  maxNameLength: z.int().min(16).max(128).optional(),
});
export type ProfileConfig = z.output<typeof ProfileConfigSchema>;

export const ProfilesConfigSchema = z.partialRecord(ProfileIdSchema, ProfileConfigSchema);
export type ProfilesConfig = z.output<typeof ProfilesConfigSchema>;

/** Splits `<server-id>/<tool name>`. */
export function parseToolRef(ref: string): { serverId: string; name: string } | undefined {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1) return undefined;
  return { serverId: ref.slice(0, slash), name: ref.slice(slash + 1) };
}

export function toolRef(serverId: string, name: string): string {
  return `${serverId}/${name}`;
}
