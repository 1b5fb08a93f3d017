import type { ControlApi, ToolProfile, ToolProfileUpdate } from '../../../shared/contract';
import { PROFILE_IDS } from '../../broker/governance/profiles/schema';
import { UsageError, type CliContext } from '../context';
import { outside, printJson } from '../output';

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

const USAGE = 'Usage: lanyard profiles [show [<ide>]] | set <ide> [--budget <n>] [--favourite <ref>]... | reset <ide>';

function profileArg(value: string | undefined): ToolProfile['ide'] {
  if (value === undefined) throw new UsageError('which IDE?', `Name one of: ${PROFILE_IDS.join(', ')}.`);
  if (!(PROFILE_IDS as readonly string[]).includes(value))
    throw new UsageError(`unknown IDE '${value}'.`, `Name one of: ${PROFILE_IDS.join(', ')}.`);
  return value as ToolProfile['ide'];
}

function intOption(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new UsageError(`--${name} takes a whole number.`, `e.g. --${name} 40`);
  return n;
}

const list = (v: unknown): string[] | undefined => (Array.isArray(v) ? (v as string[]) : undefined);

function describe(p: ToolProfile): string {
  const lines = [
    `${p.ide}${p.managed ? ' (set by your administrator)' : p.customized ? '' : ' (defaults)'}`,
    `  budget          ${p.budget === 0 ? 'none' : `${p.budget} tools`}${p.ideMaxTools !== undefined ? ` (the IDE's limit: ${p.ideMaxTools})` : ''}`,
    `  name length     ≤ ${p.maxNameLength} characters`,
  ];
  if (p.favourites.length) lines.push(`  favourites      ${p.favourites.map(outside).join(', ')}`);
  if (p.servers.allow) lines.push(`  servers only    ${p.servers.allow.map(outside).join(', ')}`);
  if (p.servers.deny?.length) lines.push(`  servers never   ${p.servers.deny.map(outside).join(', ')}`);
  if (p.tools.allow) lines.push(`  tools only      ${p.tools.allow.map(outside).join(', ')}`);
  if (p.tools.deny?.length) lines.push(`  tools never     ${p.tools.deny.map(outside).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * `lanyard profiles`: each IDE's tool profile (governance/profiles). Through the running broker when there is one (its
 * gateway applies the change at once), else on this machine's config file directly.
 */
export async function profilesCommand(ctx: CliContext, args: { positionals: string[]; values: Values }): Promise<number> {
  const [action = 'show', ide, ...rest] = args.positionals;
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'.`, USAGE);
  if (!['show', 'set', 'reset'].includes(action)) throw new UsageError(`unknown profiles action '${action}'.`, USAGE);
  const json = args.values.json === true;
  const broker = await ctx.broker();
  const local = broker ? undefined : await ctx.local();
  const control: Pick<ControlApi, 'getProfiles' | 'setProfile'> = broker ? broker.client : (local!.control as unknown as ControlApi);
  try {
    if (action === 'show') {
      const wanted = ide === undefined ? undefined : profileArg(ide);
      const profiles = (await control.getProfiles({})).filter((p) => !wanted || p.ide === wanted);
      if (json) printJson(ctx.io, wanted ? profiles[0] : profiles);
      else ctx.io.out(profiles.map(describe).join('\n'));
      return 0;
    }
    const update: ToolProfileUpdate = { ide: profileArg(ide) };
    if (action === 'reset') update.reset = true;
    else {
      const v = args.values;
      const budget = intOption('budget', v.budget);
      const maxNameLength = intOption('max-name-length', v['max-name-length']);
      if (budget !== undefined) update.budget = budget;
      if (maxNameLength !== undefined) update.maxNameLength = maxNameLength;
      if (list(v.favourite)) update.favourites = list(v.favourite)!;
      const servers = { allow: list(v['allow-server']), deny: list(v['deny-server']) };
      const tools = { allow: list(v['allow-tool']), deny: list(v['deny-tool']) };
      if (servers.allow || servers.deny)
        update.servers = { ...(servers.allow ? { allow: servers.allow } : {}), ...(servers.deny ? { deny: servers.deny } : {}) };
      if (tools.allow || tools.deny)
        update.tools = { ...(tools.allow ? { allow: tools.allow } : {}), ...(tools.deny ? { deny: tools.deny } : {}) };
      if (Object.keys(update).length === 1) throw new UsageError('nothing to set.', USAGE);
    }
    const result = await control.setProfile(update);
    if (json) printJson(ctx.io, result);
    else
      ctx.io.out(
        `✓ ${action === 'reset' ? 'Reset' : 'Saved'}; connected ${result.ide} sessions are told to list their tools again.\n${describe(result)}`,
      );
    return 0;
  } finally {
    await local?.close();
  }
}
