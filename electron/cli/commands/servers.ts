import { CLIENT_AUTH_METHODS, isClientAuthMethod, usesClientSecret, type ClientAuthMethod } from '../../../shared/auth-methods';
import type { ControlApi, ServerStatus } from '../../../shared/contract';
import { ExitCode, UsageError, type CliContext } from '../context';
import { printJson, table } from '../output';

type ClientAuth = ClientAuthMethod;

export interface ServersArgs {
  positionals: string[];
  json: boolean;
  id?: string | undefined;
  name?: string | undefined;
  clientId?: string | undefined;
  clientAuth?: string | undefined;
  clientSecretStdin: boolean;
  scope?: string[] | undefined;
}

/**
 * `lanyard servers list|add|remove|enable|disable`: through the running broker when there is one (so it applies at
 * once), otherwise directly on config.json (and the keychain, for a client secret) — the broker reads both at start.
 */
export async function serversCommand(ctx: CliContext, args: ServersArgs): Promise<number> {
  const [action = 'list', ...rest] = args.positionals;
  const control = await controlFor(ctx);
  switch (action) {
    case 'list': {
      expectArgs(rest, 0, 'lanyard servers list [--json]');
      const servers = await control.listServers({});
      if (args.json) printJson(ctx.io, servers);
      else ctx.io.out(renderServers(servers));
      return ExitCode.OK;
    }
    case 'add': {
      expectArgs(
        rest,
        1,
        'lanyard servers add <url> [--id <id>] [--name <name>] [--client-id <id>] [--client-auth <method>] [--client-secret-stdin] [--scope <scope>]…',
      );
      const url = rest[0]!;
      if (args.clientAuth !== undefined && !isClientAuthMethod(args.clientAuth)) {
        throw new UsageError(`--client-auth must be one of ${CLIENT_AUTH_METHODS.join(', ')}.`);
      }
      if ((args.clientAuth !== undefined || args.clientSecretStdin) && !args.clientId) {
        throw new UsageError('--client-auth and --client-secret-stdin describe a client: pass --client-id too.');
      }
      let clientSecret: string | undefined;
      if (args.clientSecretStdin) {
        // From stdin, never from an argument: arguments end up in shell history and `ps`.
        clientSecret = await ctx.readStdin();
        if (!clientSecret)
          throw new UsageError(
            '--client-secret-stdin read an empty secret.',
            'Pipe the secret in, e.g. `pass show lanyard/linear | lanyard servers add … --client-secret-stdin`.',
          );
      }
      const method = args.clientAuth as ClientAuth | undefined;
      const server = await control.addServer({
        url,
        ...(args.id ? { id: args.id } : {}),
        ...(args.name ? { name: args.name } : {}),
        ...(args.clientId ? { clientId: args.clientId } : {}),
        ...(method ? { clientAuthMethod: method } : {}),
        ...(clientSecret ? { clientSecret } : {}),
        ...(args.scope?.length ? { scopes: args.scope } : {}),
      });
      if (args.json) printJson(ctx.io, server);
      else {
        ctx.io.out(
          `Added server ${server.id} (${server.name}) → ${server.url}${clientSecret ? '; its client secret is in the keychain' : ''}.\n`,
        );
        if (method !== undefined && usesClientSecret(method) && !clientSecret) {
          ctx.io.err(`Note: ${method} needs a client secret; add it with --client-secret-stdin (remove and add the server again).\n`);
        }
        ctx.io.out(`Check every hop to it with \`lanyard doctor --server ${server.id}\`.\n`);
      }
      return ExitCode.OK;
    }
    case 'remove': {
      expectArgs(rest, 1, 'lanyard servers remove <id>');
      await control.removeServer({ id: rest[0]! });
      if (args.json) printJson(ctx.io, { ok: true, id: rest[0] });
      else ctx.io.out(`Removed server ${rest[0]} (and its secrets and tokens from the keychain).\n`);
      return ExitCode.OK;
    }
    case 'enable':
    case 'disable': {
      expectArgs(rest, 1, `lanyard servers ${action} <id>`);
      const server = await control.setServerEnabled({ id: rest[0]!, enabled: action === 'enable' });
      if (args.json) printJson(ctx.io, server);
      else ctx.io.out(`${action === 'enable' ? 'Enabled' : 'Disabled'} server ${server.id}.\n`);
      return ExitCode.OK;
    }
    default:
      throw new UsageError(
        `unknown servers action '${action}'.`,
        'Use one of: list, add, remove, enable, disable (`lanyard servers --help`).',
      );
  }
}

async function controlFor(ctx: CliContext): Promise<ControlApi> {
  const broker = await ctx.broker();
  return broker ? broker.client : ((await ctx.local()).control as unknown as ControlApi);
}

function expectArgs(rest: string[], count: number, usage: string): void {
  if (rest.length !== count)
    throw new UsageError(rest.length < count ? 'missing argument.' : `unexpected argument '${rest[count]}'.`, `Usage: ${usage}`);
}

function renderServers(servers: ServerStatus[]): string {
  if (servers.length === 0)
    return "No servers configured. Add one with `lanyard servers add <url>`, or move your IDEs' with `lanyard import`.\n";
  return table(
    [
      ['ID', 'NAME', 'URL', 'STATE', 'AUTH', 'CLIENT ID', ''],
      ...servers.map((s) => [
        s.id,
        s.name,
        s.url,
        s.enabled ? s.health : 'disabled',
        s.authPath,
        s.clientId ?? '-',
        s.managed ? 'managed' : '',
      ]),
    ],
    '',
  );
}
