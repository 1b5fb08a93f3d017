import type { ToolProfile, ToolProfileUpdate } from '../../../../shared/contract';
import { ErrorCodes } from '../../../../shared/errors';
import type { ActivityLog } from '../../activity/activity-log';
import type { ConfigStore } from '../../config/store';
import { LanyardError } from '../../errors';
import { IDE_LIMITS } from './limits';
import { effectiveProfile } from './profiles';
import { DEFAULT_PROFILE, PROFILE_IDS, ProfileConfigSchema, type ProfileConfig, type ProfileId } from './schema';

export interface ProfileControlDeps {
  config: Pick<ConfigStore, 'load' | 'loadUser' | 'update'>;
  /** Fields the managed configuration locks (`profiles` among them when the administrator locks every profile). */
  locked: () => string[];
  activity: Pick<ActivityLog, 'record'>;
}

/**
 * `getProfiles` / `setProfile`: the IDE profiles as the dashboard's Connect view and `lanyard profiles` edit them. A
 * change is written to the user's config.json (`profiles.<ide>`); the config watcher then tells the gateway, which
 * sends list_changed to that IDE's sessions.
 */
export class ProfileControl {
  constructor(private readonly deps: ProfileControlDeps) {}

  async getProfiles(): Promise<ToolProfile[]> {
    return PROFILE_IDS.map((id) => this.view(id));
  }

  async setProfile(input: ToolProfileUpdate): Promise<ToolProfile> {
    const id = input.ide as ProfileId;
    if (this.managed(id))
      throw new LanyardError(
        ErrorCodes.MANAGED_LOCKED,
        `The tool profile of ${id} is managed by your administrator.`,
        'Ask your IT team to change it in the managed configuration.',
      );
    const current = this.deps.config.loadUser().profiles?.[id] ?? {};
    let next: ProfileConfig | undefined;
    if (input.reset) next = undefined;
    else {
      const merged: Record<string, unknown> = { ...current };
      for (const key of ['budget', 'maxNameLength', 'favourites', 'servers', 'tools'] as const) {
        if (input[key] !== undefined) merged[key] = input[key];
      }
      // The same schema config.json is validated with: a bad reference is refused naming the field, nothing written.
      const parsed = ProfileConfigSchema.safeParse(merged);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new LanyardError(
          ErrorCodes.CONFIG_INVALID,
          `profiles.${id}.${issue.path.join('.')} ${issue.message}.`,
          'Fix the value and try again; tools are named <server-id>/<tool name>.',
        );
      }
      next = parsed.data;
    }
    this.deps.config.update((draft) => {
      const profiles = { ...draft.profiles };
      if (next === undefined) delete profiles[id];
      else profiles[id] = next;
      if (Object.keys(profiles).length) draft.profiles = profiles;
      else delete draft.profiles;
    });
    this.deps.activity.record({
      kind: 'ide',
      summary: input.reset ? `Tool profile of ${id} reset to its defaults` : `Tool profile of ${id} changed`,
      outcome: 'info',
    });
    return this.view(id);
  }

  private managed(id: ProfileId): boolean {
    if (this.deps.locked().includes('profiles')) return true;
    // A profile the managed configuration sets for this IDE replaces the user's (config/managed.ts).
    const effective = this.deps.config.load().profiles?.[id];
    const own = this.deps.config.loadUser().profiles?.[id];
    return JSON.stringify(effective) !== JSON.stringify(own);
  }

  private view(id: ProfileId): ToolProfile {
    const config = this.deps.config.load().profiles?.[id];
    const effective = effectiveProfile(id, config);
    const ideMaxTools = id === DEFAULT_PROFILE ? undefined : IDE_LIMITS[id].maxTools;
    return {
      ide: id,
      budget: effective.budget,
      maxNameLength: effective.maxNameLength,
      ...(ideMaxTools !== undefined ? { ideMaxTools } : {}),
      favourites: effective.favourites,
      servers: clean(effective.servers),
      tools: clean(effective.tools),
      customized: config !== undefined,
      managed: this.managed(id),
    };
  }
}

function clean(list: { allow?: string[] | undefined; deny?: string[] | undefined }): { allow?: string[]; deny?: string[] } {
  return { ...(list.allow ? { allow: list.allow } : {}), ...(list.deny ? { deny: list.deny } : {}) };
}
