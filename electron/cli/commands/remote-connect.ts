import type { IdeName } from '../../../shared/contract';
import { IDE_TARGETS } from '../../broker/ide/targets';
import { ExitCode, UsageError, type CliContext } from '../context';
import { printJson, tildify } from '../output';
import { endpointArg, requireRemoteCredential } from './remote';

/**
 * `lanyard connect <ide> --remote <laptop endpoint>`, on the remote side: the IDE's entry runs
 * `lanyard stdio --remote <endpoint> --ide <ide>` here, which reaches the laptop's broker with the remote token. The
 * IDE's file holds no token (the bridge reads it from the 0600 credentials file). Pairing comes first.
 */
export async function connectRemote(
  ctx: CliContext,
  ide: IdeName,
  args: { stdio: boolean; link: boolean; json: boolean; remote?: string | undefined },
): Promise<number> {
  if (!args.stdio || args.link)
    throw new UsageError('--remote writes a `lanyard stdio --remote` entry; it cannot be combined with --http or --link.');
  const endpoint = endpointArg(args.remote);
  const credential = await requireRemoteCredential(ctx, endpoint);
  const local = await ctx.local({
    launcher: () => {
      const launcher = ctx.launcher();
      return { ...launcher, args: [...launcher.args, '--remote', endpoint.origin] };
    },
  });
  try {
    const result = await local.control.connectIde({ ide, stdio: true });
    if (args.json) printJson(ctx.io, { ...result, remote: endpoint.origin, deviceId: credential.deviceId });
    else {
      const target = IDE_TARGETS[ide];
      ctx.io.out(
        result.changed
          ? `✓ ${target.displayName} here now reaches the laptop's Lanyard at ${endpoint.origin} (as "${credential.label}").\n  Wrote ${tildify(result.configPath, ctx.machine.homedir)}${result.backupPath ? `; backup: ${tildify(result.backupPath, ctx.machine.homedir)}` : ''}.\n`
          : `✓ ${target.displayName} was already connected (${tildify(result.configPath, ctx.machine.homedir)}); nothing changed.\n`,
      );
      if (result.reloadHint) ctx.io.out(`  ${result.reloadHint}\n`);
    }
    return ExitCode.OK;
  } finally {
    await local.close();
  }
}
