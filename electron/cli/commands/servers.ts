import { AUTH_PATH_LABELS, AUTH_PATHS, headerNameProblem, type AuthPath } from '../../../shared/auth-paths';
import { CLIENT_AUTH_METHODS, isClientAuthMethod, usesClientSecret, type ClientAuthMethod } from '../../../shared/auth-methods';
import type { ControlApi, ProbeResult, ServerStatus } from '../../../shared/contract';
import { urlProblem } from '../../broker/config/schema';
import { CliError, ExitCode, UsageError, type CliContext } from '../context';
import { outside, printJson, table } from '../output';
import { actionText, renderProbe, serverRows } from '../server-lines';

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
  auth?: string | undefined;
  header?: string | undefined;
  valueStdin?: boolean | undefined;
  /** Only so that a key on the command line is refused with the reason (it is never used, nor printed). */
  value?: string | undefined;
  oauthClientId?: string | undefined;
  /** add: probe the server first (default true). */
  probe?: boolean | undefined;
}

const ADD_USAGE =
  'lanyard servers add <url> [--auth xaa|oauth|header|none] [--header <name> --value-stdin] [--oauth-client-id <id>] [--id <id>] [--name <name>] [--client-id <id>] [--client-auth <method>] [--client-secret-stdin] [--scope <scope>]…';
const SET_KEY_USAGE = 'lanyard servers set-key <id> [--header <name>] --value-stdin';

/**
 * `lanyard servers list|add|remove|enable|disable|authorize|set-key`: through the running broker when there is one (so
 * it applies at once), otherwise directly on config.json and the keychain — the broker reads both at start.
 */
export async function serversCommand(ctx: CliContext, args: ServersArgs): Promise<number> {
  const [action = 'list', ...rest] = args.positionals;
  if (args.value !== undefined) {
    // Refused before anything else, and never echoed: arguments end up in shell history and in `ps`.
    throw new UsageError(
      'a key on the command line is refused (it would end up in your shell history and in `ps`); it was not stored.',
      `Pipe it in instead: \`… | lanyard servers ${action === 'add' ? 'add <url> --header <name>' : 'set-key <id>'} --value-stdin\`.`,
    );
  }
  const control = await controlFor(ctx);
  switch (action) {
    case 'list': {
      expectArgs(rest, 0, 'lanyard servers list [--json]');
      const servers = await control.listServers({});
      if (args.json) printJson(ctx.io, servers);
      else ctx.io.out(renderServers(servers));
      return ExitCode.OK;
    }
    case 'add':
      expectArgs(rest, 1, ADD_USAGE, true);
      return addServer(ctx, control, rest[0]!, args);
    case 'set-key':
      expectArgs(rest, 1, SET_KEY_USAGE, true);
      return setKey(ctx, control, rest[0]!, args);
    case 'authorize':
      expectArgs(rest, 1, 'lanyard servers authorize <id> [--json]');
      return authorize(ctx, control, rest[0]!, { json: args.json });
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
        `unknown servers action '${outside(action)}'.`,
        'Use one of: list, add, remove, enable, disable, authorize, set-key (`lanyard servers --help`).',
      );
  }
}

function authPathArg(value: string | undefined): AuthPath | undefined {
  if (value === undefined) return undefined;
  if (!(AUTH_PATHS as readonly string[]).includes(value)) throw new UsageError(`--auth must be one of ${AUTH_PATHS.join(', ')}.`);
  return value as AuthPath;
}

/** The header name, checked; a `Name: value` pair is refused without echoing it (its value is a key). */
function headerArg(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.includes(':'))
    throw new UsageError(
      "--header takes only the header's name (e.g. X-API-Key or Authorization); the value goes on stdin. Nothing was stored.",
      'Run `… | lanyard servers add <url> --header <name> --value-stdin`.',
    );
  const problem = headerNameProblem(value);
  if (problem) throw new UsageError(`--header ${problem}.`);
  return value;
}

async function readKey(ctx: CliContext, flag: string): Promise<string> {
  const value = await ctx.readStdin();
  if (!value)
    throw new UsageError(
      `${flag} read an empty value.`,
      'Pipe the key in, e.g. `pass show lanyard/todo | lanyard servers set-key todo --value-stdin`.',
    );
  return value;
}

async function addServer(ctx: CliContext, control: ControlApi, url: string, args: ServersArgs): Promise<number> {
  let authPath = authPathArg(args.auth);
  const headerName = headerArg(args.header);
  if (args.clientAuth !== undefined && !isClientAuthMethod(args.clientAuth)) {
    throw new UsageError(`--client-auth must be one of ${CLIENT_AUTH_METHODS.join(', ')}.`);
  }
  if ((args.clientAuth !== undefined || args.clientSecretStdin) && !args.clientId) {
    throw new UsageError('--client-auth and --client-secret-stdin describe a client: pass --client-id too.');
  }
  if (args.valueStdin && args.clientSecretStdin) throw new UsageError('--value-stdin and --client-secret-stdin both read stdin: pass one.');
  if (args.valueStdin && !headerName)
    throw new UsageError(
      '--value-stdin needs --header <name>: the header the key goes in.',
      'E.g. `--header X-API-Key`, or `--header Authorization` with a value such as "Bearer sk-…".',
    );
  if (headerName) {
    if (authPath !== undefined && authPath !== 'header')
      throw new UsageError(`--header is for the API-key path; it contradicts --auth ${authPath}.`);
    authPath = 'header';
  }
  if (args.oauthClientId !== undefined) {
    if (authPath !== undefined && authPath !== 'oauth')
      throw new UsageError(`--oauth-client-id is for the OAuth path; it contradicts --auth ${authPath}.`);
    authPath = 'oauth';
  }
  if (authPath === 'header' && !headerName) throw new UsageError('--auth header needs --header <name> and the key with --value-stdin.');
  if (headerName && !args.valueStdin)
    throw new UsageError(
      '--header needs the key: pipe it in with --value-stdin (it goes to the keychain only).',
      `E.g. \`pass show lanyard/key | lanyard servers add <url> --header ${headerName} --value-stdin\`.`,
    );
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
  const key = args.valueStdin ? await readKey(ctx, '--value-stdin') : undefined;

  // The probe first, so the user sees why a path applies (or not) before anything is saved.
  // A URL the config would refuse is not probed (nothing is sent to it); adding it reports the problem.
  const probe: ProbeResult | undefined = args.probe === false || urlProblem(url) ? undefined : await control.probeUrl({ url });
  const chosen = authPath ?? probe?.path;
  if (probe && !args.json) ctx.io.out(renderProbe(probe, chosen));

  const method = args.clientAuth as ClientAuth | undefined;
  // The probe's choice is recorded with the server (so `servers list` shows it at once), unless the administrator
  // locks the paths: then the broker applies the policy's own choice at first use.
  const record = authPath ?? (probe?.path && !(await control.getSettings({})).locked.includes('authPaths') ? probe.path : undefined);
  const server = await control.addServer({
    url,
    ...(args.id ? { id: args.id } : {}),
    ...(args.name ? { name: args.name } : {}),
    ...(args.clientId ? { clientId: args.clientId } : {}),
    ...(method ? { clientAuthMethod: method } : {}),
    ...(clientSecret ? { clientSecret } : {}),
    ...(args.scope?.length ? { scopes: args.scope } : {}),
    ...(record ? { authPath: record } : {}),
    ...(headerName && key ? { header: { name: headerName, value: key } } : {}),
    ...(args.oauthClientId ? { oauthClientId: args.oauthClientId } : {}),
  });
  if (args.json) {
    printJson(ctx.io, { ...server, ...(probe ? { probe } : {}) });
    return ExitCode.OK;
  }
  const path = server.authPath === 'unknown' ? chosen : server.authPath;
  ctx.io.out(
    `Added server ${server.id} (${outside(server.name)}) → ${outside(server.url)}${path ? ` on the ${path} path (${AUTH_PATH_LABELS[path]})` : ''}${
      key ? `; its key is in the keychain (sent as ${headerName})` : ''
    }${clientSecret ? '; its client secret is in the keychain' : ''}.\n`,
  );
  if (method !== undefined && usesClientSecret(method) && !clientSecret) {
    ctx.io.err(`Note: ${method} needs a client secret; add it with --client-secret-stdin (remove and add the server again).\n`);
  }
  const next = actionText(server);
  if (next) ctx.io.out(`Next: ${next}.\n`);
  ctx.io.out(`Check every hop to it with \`lanyard doctor --server ${server.id}\`.\n`);
  return ExitCode.OK;
}

async function setKey(ctx: CliContext, control: ControlApi, id: string, args: ServersArgs): Promise<number> {
  const headerName = headerArg(args.header);
  if (!args.valueStdin)
    throw new UsageError(
      'set-key reads the key from stdin: pass --value-stdin.',
      `Pipe it in, e.g. \`pass show lanyard/${id} | lanyard servers set-key ${id} --value-stdin\`.`,
    );
  const value = await readKey(ctx, '--value-stdin');
  const server = await control.setServerKey({ id, value, ...(headerName ? { headerName } : {}) });
  if (args.json) printJson(ctx.io, server);
  else {
    ctx.io.out(
      `Stored the key for ${server.id} in the keychain; Lanyard sends it in the ${outside(server.headerName ?? headerName ?? 'configured')} header.\n`,
    );
    const next = actionText(server);
    if (next) ctx.io.out(`Next: ${next}.\n`);
  }
  return ExitCode.OK;
}

/** How long `servers authorize` waits for the user in the browser (the loopback listener's own limit is the same). */
export const AUTHORIZE_WAIT_MS = 5 * 60_000;

/**
 * `lanyard servers authorize <id>`: starts (or joins) the one browser authorization for the server — the broker opens
 * the browser once — prints the link for when no browser can open (SSH, WSL), then waits for the outcome.
 */
export async function authorize(
  ctx: Pick<CliContext, 'io'>,
  control: Pick<ControlApi, 'authorizeServer' | 'listServers'>,
  id: string,
  options: { json: boolean; waitMs?: number; pollMs?: number },
): Promise<number> {
  const { authorizeUrl } = await control.authorizeServer({ id });
  ctx.io.err(
    `Authorizing ${id}: approve it in the browser window Lanyard opened (waiting up to ${Math.round((options.waitMs ?? AUTHORIZE_WAIT_MS) / 60_000)} minutes).\nIf no browser opened, open this link:\n  ${outside(authorizeUrl)}\n`,
  );
  const server = await waitForAuthorization(control, id, options.waitMs ?? AUTHORIZE_WAIT_MS, options.pollMs ?? 500);
  if (options.json) printJson(ctx.io, server);
  if (server.authState === 'ready') {
    if (!options.json) ctx.io.out(`✓ ${server.id} is authorized; Lanyard keeps the grant in the keychain and renews it by itself.\n`);
    return ExitCode.OK;
  }
  if (server.authState === 'authorizing')
    throw new CliError(
      `Authorizing ${id} did not finish in time.`,
      `Run \`lanyard servers authorize ${id}\` again and approve it in the browser.`,
      ExitCode.NEEDS_ACTION,
    );
  if (server.authState === 'blocked')
    throw new CliError(
      `${id} is blocked by your administrator: ${server.lastError?.message ?? 'no reason given'}`,
      server.lastError?.fix ?? 'Ask your IT team for access.',
    );
  throw new CliError(
    `Authorizing ${id} failed${server.lastError ? `: ${server.lastError.message}` : '.'}`,
    server.lastError?.fix ?? `Run \`lanyard servers authorize ${id}\` again; \`lanyard doctor --server ${id}\` shows each hop.`,
    ExitCode.NEEDS_ACTION,
  );
}

/**
 * Polls the server's status until the browser step ends: ready, or a state that is not "authorizing" any more after it
 * was (the user closed the browser, the authorization server refused). A state that never showed "authorizing" counts
 * as ended after a few polls, so a refusal at the start is reported at once instead of after the whole wait.
 */
async function waitForAuthorization(
  control: Pick<ControlApi, 'listServers'>,
  id: string,
  waitMs: number,
  pollMs: number,
): Promise<ServerStatus> {
  const deadline = Date.now() + waitMs;
  let seenAuthorizing = false;
  let polls = 0;
  for (;;) {
    const server = (await control.listServers({})).find((s) => s.id === id);
    if (!server) throw new CliError(`Server ${id} was removed while it was being authorized.`, 'Add it again with `lanyard servers add`.');
    polls++;
    if (server.authState === 'ready' || server.authState === 'blocked') return server;
    if (server.authState === 'authorizing') seenAuthorizing = true;
    else if (seenAuthorizing || polls > 4) return server;
    if (Date.now() >= deadline) return server;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function controlFor(ctx: CliContext): Promise<ControlApi> {
  const broker = await ctx.broker();
  return broker ? broker.client : ((await ctx.local()).control as unknown as ControlApi);
}

/** `secret`: the extra argument may be a key pasted in the wrong place, so it is never echoed. */
function expectArgs(rest: string[], count: number, usage: string, secret = false): void {
  if (rest.length === count) return;
  if (rest.length < count) throw new UsageError('missing argument.', `Usage: ${usage}`);
  throw new UsageError(
    secret
      ? 'unexpected extra argument (not shown: if it was a key, it belongs on stdin with --value-stdin; nothing was stored).'
      : `unexpected argument '${outside(rest[count]!)}'.`,
    `Usage: ${usage}`,
  );
}

function renderServers(servers: ServerStatus[]): string {
  if (servers.length === 0)
    return "No servers configured. Add one with `lanyard servers add <url>`, or move your IDEs' with `lanyard import`.\n";
  return table([['ID', 'NAME', 'URL', 'PATH', 'STATE', 'ACTION'], ...serverRows(servers)], '');
}
