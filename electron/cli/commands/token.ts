import type { ControlApi } from '../../../shared/contract';
import { UsageError, type CliContext } from '../context';
import { outside, printJson, tildify } from '../output';

/**
 * `lanyard token rotate`: a new local token at once. The running broker's token changes (the old one stops working on
 * the next request); with no broker running, the keychain's. Either way the HTTP-mode IDE configs Lanyard wrote are
 * rewritten with the new token. The token itself is never printed.
 */
export async function tokenCommand(ctx: CliContext, args: { positionals: string[]; json: boolean }): Promise<number> {
  const [action, ...rest] = args.positionals;
  if (action !== 'rotate' || rest.length > 0)
    throw new UsageError(action === undefined ? 'missing action.' : `unknown token action '${action}'.`, 'Usage: lanyard token rotate');
  const broker = await ctx.broker();
  const local = broker ? undefined : await ctx.local();
  const control: Pick<ControlApi, 'rotateLocalToken'> = broker ? broker.client : (local!.control as unknown as ControlApi);
  const result = await control.rotateLocalToken({});
  await local?.close();
  if (args.json) {
    printJson(ctx.io, result);
    return result.failed.length ? 1 : 0;
  }
  const home = ctx.machine.homedir;
  ctx.io.out(
    `✓ New local token${broker ? ' (the old one no longer works)' : '; a running Lanyard also makes a new one at every start'}.\n`,
  );
  for (const r of result.rewritten) ctx.io.out(`  Rewrote ${outside(tildify(r.configPath, home))} with it.\n`);
  for (const f of result.failed) ctx.io.out(`✗ ${outside(tildify(f.configPath, home))}: ${outside(f.message)}\n`);
  if (result.rewritten.length === 0 && result.failed.length === 0)
    ctx.io.out('  No IDE config Lanyard wrote holds it (IDEs using `lanyard stdio` need nothing).\n');
  return result.failed.length ? 1 : 0;
}
