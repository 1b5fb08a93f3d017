import type { ControlApi, ToolReview } from '../../../shared/contract';
import { diffLines, unifiedDiff } from '../../../shared/line-diff';
import { UsageError, type CliContext } from '../context';
import { outside, printJson } from '../output';

type ReviewControl = Pick<ControlApi, 'toolReviews' | 'approveTools' | 'rejectTools'>;

/**
 * `lanyard tools review|approve|reject`: the tool changes Lanyard holds back (tool pinning, the injection scan). With a
 * broker running they go through it (so IDEs get list_changed at once); without one, through the pin file directly.
 */
export async function toolsCommand(ctx: CliContext, args: { positionals: string[]; all: boolean; json: boolean }): Promise<number> {
  const [action, serverId, ...tools] = args.positionals;
  const usage = 'Usage: lanyard tools review [--json] | lanyard tools approve|reject <server> (<tool>... | --all)';
  if (action !== 'review' && action !== 'approve' && action !== 'reject')
    throw new UsageError(action === undefined ? 'missing action.' : `unknown tools action '${action}'.`, usage);
  if (action !== 'review') {
    if (!serverId) throw new UsageError(`${action} needs a server id.`, usage);
    if (!tools.length && !args.all)
      throw new UsageError(`name the tools to ${action}, or pass --all for every tool of ${serverId} waiting for review.`, usage);
    if (tools.length && args.all) throw new UsageError('name tools or pass --all, not both.', usage);
  }
  const broker = await ctx.broker();
  const local = broker ? undefined : await ctx.local();
  const control: ReviewControl = broker ? broker.client : (local!.control as unknown as ReviewControl);
  try {
    if (action === 'review') {
      const reviews = await control.toolReviews({});
      if (args.json) printJson(ctx.io, reviews);
      else ctx.io.out(reviews.length ? reviews.map(formatReview).join('\n') : '✓ No tool changes are waiting for review.\n');
      return 0;
    }
    const input = { serverId: serverId!, ...(tools.length ? { tools } : {}) };
    const result = action === 'approve' ? await control.approveTools(input) : await control.rejectTools(input);
    if (args.json) printJson(ctx.io, result);
    else
      ctx.io.out(
        action === 'approve'
          ? `✓ Approved ${result.tools.map((t) => outside(t)).join(', ')} of ${outside(serverId)}: IDEs see ${result.tools.length === 1 ? 'it' : 'them'} again.\n`
          : `✓ Rejected ${result.tools.map((t) => outside(t)).join(', ')} of ${outside(serverId)}: ${result.tools.length === 1 ? 'it stays' : 'they stay'} hidden; a later version comes back for review.\n`,
      );
    return 0;
  } finally {
    await local?.close();
  }
}

/** One review item: what happened, the scan's findings, and a unified diff of the old and new definition per tool. */
export function formatReview(review: ToolReview): string {
  const lines = [`● ${outside(review.summary)}${review.approvable ? '' : ' (locked by your administrator)'}`];
  for (const tool of review.tools) {
    if (review.kind === 'catalog' || review.tools.length > 1)
      lines.push(`  ${outside(tool.name)} (${tool.change}${tool.fields.length ? `: ${tool.fields.join(', ')}` : ''})`);
    for (const f of tool.findings) lines.push(`    ! ${outside(f.field)}: ${outside(f.detail)}`);
    const rows = diffLines(tool.before ?? '', tool.after);
    for (const line of unifiedDiff(rows)) lines.push(`    ${outside(line)}`);
  }
  const tools = review.tools.map((t) => t.name);
  const target = review.kind === 'catalog' ? '--all' : tools.join(' ');
  lines.push(
    `  → lanyard tools approve ${outside(review.serverId)} ${outside(target)}   or   lanyard tools reject ${outside(review.serverId)} ${outside(target)}`,
  );
  return `${lines.join('\n')}\n`;
}
