import type { ControlApi, IdeName } from '../../../shared/contract';
import { applyImport, planImport, type ImportItem } from '../../broker/ide/import';
import { localEndpoint } from '../../broker/control/ide-control';
import { ideMcpUrl, ideStdioArgs } from '../../broker/governance/profiles/endpoint';
import { IDE_NAMES, IDE_TARGETS, isIdeName } from '../../broker/ide/targets';
import { CliError, ExitCode, UsageError, type CliContext } from '../context';
import { outside, printJson, tildify } from '../output';

function ideArg(value: string | undefined): IdeName {
  if (value === undefined) throw new UsageError('which IDE?', `Name one of: ${IDE_NAMES.join(', ')}.`);
  if (!isIdeName(value)) throw new UsageError(`unknown IDE '${value}'.`, `Name one of: ${IDE_NAMES.join(', ')}.`);
  return value;
}

/**
 * `lanyard connect <ide> [--http] [--link]`: writes the IDE's user-level MCP config to reach Lanyard (see
 * ide/connector.ts), or with --link opens the IDE's own install link instead. Never restarts the IDE.
 *
 * The default is `lanyard stdio`: the file holds no token, and the bridge reads the token from the owner-checked
 * runtime file and checks the broker's health before sending it, so nobody holding the port while Lanyard is down can
 * collect it. `--http` writes the token into the file (rewritten whenever it rotates).
 */
export async function connectCommand(
  ctx: CliContext,
  args: { positionals: string[]; stdio: boolean; link: boolean; json: boolean; remote?: string | undefined },
): Promise<number> {
  if (args.positionals.length > 1)
    throw new UsageError(`unexpected argument '${args.positionals[1]}'.`, 'Usage: lanyard connect <ide> [--http] [--link] [--json]');
  const ide = ideArg(args.positionals[0]);
  if (args.remote !== undefined) return (await import('./remote-connect')).connectRemote(ctx, ide, args);
  const target = IDE_TARGETS[ide];
  if (args.link) {
    if (!target.deepLink)
      throw new UsageError(
        `${target.displayName} has no install link.`,
        `Run \`lanyard connect ${ide}\` to write its config file instead.`,
      );
    const launcher = ctx.launcher();
    // The same entry `connect` writes: `lanyard stdio --ide <ide>`, so the IDE's profile applies.
    const link = target.deepLink({ ...launcher, args: [...launcher.args, ...ideStdioArgs(ide)] });
    if (args.json) printJson(ctx.io, { ide, deepLink: link });
    else ctx.io.out(`${target.displayName}'s install link (it runs \`lanyard stdio\`; no token in it):\n${link}\n`);
    await ctx.openUrl(link);
    return ExitCode.OK;
  }
  const broker = await ctx.broker();
  const local = await ctx.local(broker ? { endpoint: async () => broker.endpoint } : {});
  const result = await local.control.connectIde({ ide, stdio: args.stdio });
  const configuredPort = local.config.load().gateway.port;
  const url = ideMcpUrl(broker?.endpoint.url ?? `http://127.0.0.1:${configuredPort}/mcp`, ide);
  await local.close();
  if (args.json) {
    printJson(ctx.io, result);
    return ExitCode.OK;
  }
  const home = ctx.machine.homedir;
  const via = result.transport === 'stdio' ? '`lanyard stdio`' : url;
  ctx.io.out(
    result.changed
      ? `✓ ${target.displayName} now reaches Lanyard through ${via}.\n  Wrote ${tildify(result.configPath, home)}${result.created ? ' (new file)' : ''}${result.backupPath ? `; backup: ${tildify(result.backupPath, home)}` : ''}.\n`
      : `✓ ${target.displayName} was already connected (${tildify(result.configPath, home)}); nothing changed.\n`,
  );
  if (ide === 'claude-desktop' && !args.stdio && result.transport === 'stdio')
    ctx.io.out('  Claude Desktop only starts local servers from its config, so it uses `lanyard stdio`.\n');
  if (result.reloadHint) ctx.io.out(`  ${result.reloadHint}\n`);
  if (result.transport === 'http' && !broker)
    ctx.io.out(
      '  Lanyard is not running now: start the app or `lanyard serve`; it writes a new token into this file when it starts. (Without --http, `lanyard stdio` starts it on demand.)\n',
    );
  if (result.transport === 'http' && broker && configuredPort !== 0 && broker.info.port !== configuredPort) {
    ctx.io.out(
      `  Note: Lanyard runs on port ${broker.info.port} for now, not gateway.port ${configuredPort}; after it restarts, run this again (or connect without --http).\n`,
    );
  }
  if (result.deepLink)
    ctx.io.out(`  Alternatively, ${target.displayName}'s own install link (stdio, no token): lanyard connect ${ide} --link\n`);
  return ExitCode.OK;
}

/** `lanyard disconnect <ide>`: puts the IDE's file back as it was before `connect`. */
export async function disconnectCommand(ctx: CliContext, args: { positionals: string[]; json: boolean }): Promise<number> {
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument '${args.positionals[1]}'.`, 'Usage: lanyard disconnect <ide>');
  const ide = ideArg(args.positionals[0]);
  const local = await ctx.local();
  const result = await local.control.disconnectIde({ ide });
  if (args.json) printJson(ctx.io, result);
  else
    ctx.io.out(
      `${result.changed ? '✓' : '·'} ${IDE_TARGETS[ide].displayName}: ${result.detail}${result.backupPath ? ` (backup: ${tildify(result.backupPath, ctx.machine.homedir)})` : ''}\n`,
    );
  return ExitCode.OK;
}

export interface ImportArgs {
  dryRun: boolean;
  yes: boolean;
  stdio: boolean;
  probe: boolean;
  ide?: string[] | undefined;
  json: boolean;
}

/**
 * `lanyard import [--dry-run | --yes]`: shows which remote servers in the IDEs' files move behind Lanyard and which
 * stay (and why); with --yes (or a "y" at the prompt) adds them to Lanyard and rewrites each IDE file once.
 */
export async function importCommand(ctx: CliContext, args: ImportArgs): Promise<number> {
  if (args.dryRun && args.yes) throw new UsageError('--dry-run and --yes contradict each other.');
  const ides = (args.ide ?? []).map((v) => ideArg(v));
  const broker = await ctx.broker();
  const local = broker ? undefined : await ctx.local();
  const control: Pick<ControlApi, 'listServers' | 'probeUrl' | 'getSettings' | 'addServer'> = broker
    ? broker.client
    : (local!.control as unknown as ControlApi);
  const plan = await planImport({ ctx: { machine: ctx.machine }, control, ...(ides.length ? { ides } : {}), probe: args.probe });
  const moving = plan.items.filter((i) => i.action === 'move');

  if (args.json && (args.dryRun || moving.length === 0)) {
    printJson(ctx.io, { plan, applied: false });
    return ExitCode.OK;
  }
  if (!args.json) ctx.io.out(renderPlan(ctx, plan.items, plan.unreadable));
  if (moving.length === 0) {
    if (!args.json) ctx.io.out('Nothing to move.\n');
    return ExitCode.OK;
  }
  if (args.dryRun) {
    ctx.io.out(`Dry run: nothing changed. Apply with \`lanyard import --yes\`.\n`);
    return ExitCode.OK;
  }
  if (!args.yes) {
    if (!ctx.io.interactive && !ctx.deps.confirm) {
      throw new CliError(
        'Not applied: the plan needs your confirmation.',
        'Run `lanyard import --yes` to apply it (or --dry-run to only see it).',
        ExitCode.NEEDS_ACTION,
      );
    }
    const keys = moving.filter((i) => i.keyHeader && !i.existing);
    const question = `Move ${moving.length} entr${moving.length === 1 ? 'y' : 'ies'} behind Lanyard (backups are taken first)${
      keys.length
        ? `, moving the API key${keys.length === 1 ? '' : 's'} of ${keys.map((i) => outside(i.name)).join(', ')} into the keychain`
        : ''
    }?`;
    if (!(await ctx.confirm(question))) {
      ctx.io.out('Nothing changed.\n');
      return ExitCode.NEEDS_ACTION;
    }
  }
  const transport = args.stdio ? 'stdio' : 'http';
  const endpoint =
    transport === 'http' ? (broker?.endpoint ?? (await localEndpoint(local!.config.load().gateway.port, local!.secrets))) : undefined;
  // The keychain takes the moved keys (through the control API) and the keys of the backups (here, ide/credentials.ts).
  const secrets = (local ?? (await ctx.local())).secrets;
  const result = await applyImport({
    plan,
    ctx: { ...ctx.ideContext, secrets },
    control,
    transport,
    endpoint,
    launcher: ctx.launcherIfKnown() ?? undefined,
  });
  if (args.json) {
    printJson(ctx.io, { plan, applied: true, result });
  } else {
    const home = ctx.machine.homedir;
    for (const file of result.files)
      ctx.io.out(
        `✓ ${file.displayName}: moved ${outside(file.removed.join(', '))}; wrote ${tildify(file.configPath, home)}${file.backupPath ? ` (backup: ${tildify(file.backupPath, home)})` : ''}\n`,
      );
    for (const f of result.failed)
      ctx.io.out(
        `✗ ${f.item.displayName} / ${outside(f.item.name)}: not moved — ${outside(f.error.message)}\n  → ${outside(f.error.fix)}\n`,
      );
    ctx.io.out('`lanyard disconnect <ide>` undoes it for one IDE.\n');
  }
  return result.failed.length ? ExitCode.FAILURE : ExitCode.OK;
}

function renderPlan(
  ctx: CliContext,
  items: ImportItem[],
  unreadable: Array<{ displayName?: string; ide: IdeName; configPath: string; problem: string }>,
): string {
  const home = ctx.machine.homedir;
  const lines: string[] = [];
  const files = [...new Set(items.map((i) => `${i.ide}\u0000${i.configPath}`))];
  if (files.length === 0 && unreadable.length === 0) return 'No MCP servers found in the IDEs’ config files.\n';
  for (const key of files) {
    const [ide, configPath] = key.split('\u0000') as [IdeName, string];
    lines.push(`${IDE_TARGETS[ide].displayName} (${tildify(configPath, home)}):`);
    for (const item of items.filter((i) => i.ide === ide && i.configPath === configPath)) {
      if (item.action === 'move') {
        lines.push(
          `  → move  ${outside(item.name)}  ${outside(item.url ?? '')}  as "${item.serverId}"${item.existing ? ' (already in Lanyard)' : ''}${
            item.keyHeader && !item.existing ? ` — its API key (${outside(item.keyHeader)} header) goes to the keychain` : ''
          }`,
        );
        if (item.warning) lines.push(`          ! ${outside(item.warning)}`);
      } else {
        lines.push(`  · keep  ${outside(item.name)}: ${outside(item.reason)}`);
      }
    }
  }
  for (const u of unreadable) lines.push(`${IDE_TARGETS[u.ide].displayName} (${tildify(u.configPath, home)}): not read — ${u.problem}`);
  return `${lines.join('\n')}\n`;
}
