import type { ControlApi } from '../../../shared/contract';
import { applyConfigProposal, parseConfigLink, summarizeProposal } from '../../broker/config/managed';
import { CliError, ExitCode, UsageError, type CliContext } from '../context';
import { outside, printJson } from '../output';

/**
 * `lanyard accept-link <lanyard://configure?config=…> [--yes]`: shows what a configuration link would change and
 * applies it only once the user agrees. A link can come from anyone, so nothing happens without that "y".
 */
export async function acceptLinkCommand(ctx: CliContext, args: { positionals: string[]; yes: boolean; json: boolean }): Promise<number> {
  if (args.positionals.length !== 1)
    throw new UsageError('pass exactly one link.', 'Usage: lanyard accept-link <lanyard://configure?config=…> [--yes]');
  const { proposal } = parseConfigLink(args.positionals[0]!);
  const broker = await ctx.broker();
  const control: Pick<ControlApi, 'updateSettings' | 'addServer' | 'listServers' | 'getSettings'> = broker
    ? broker.client
    : ((await ctx.local()).control as unknown as ControlApi);
  // Against the settings now, so a change of identity provider is shown from which to which.
  const summary = summarizeProposal(proposal, { idp: (await control.getSettings({})).idp });
  if (!args.json) ctx.io.out(`${summary.map(outside).join('\n')}\n`);
  if (!args.yes) {
    if (!ctx.io.interactive && !ctx.deps.confirm)
      throw new CliError(
        'Not applied: the link needs your confirmation.',
        'Read the summary above, then run the same command with --yes to accept it.',
        ExitCode.NEEDS_ACTION,
      );
    if (!(await ctx.confirm('Accept this configuration?'))) {
      ctx.io.out('Nothing changed.\n');
      return ExitCode.NEEDS_ACTION;
    }
  }
  const result = await applyConfigProposal(control, proposal);
  if (args.json) {
    printJson(ctx.io, result);
  } else {
    if (result.idpChanged) ctx.io.out('✓ Identity provider set. Sign in with `lanyard login`.\n');
    if (result.added.length) ctx.io.out(`✓ Added ${outside(result.added.join(', '))}.\n`);
    for (const s of result.skipped) ctx.io.out(`· ${outside(s.url)}: ${outside(s.reason)}\n`);
  }
  return result.skipped.some((s) => s.reason !== 'already configured') ? ExitCode.FAILURE : ExitCode.OK;
}
