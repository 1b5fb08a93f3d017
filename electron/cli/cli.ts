import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CLIENT_AUTH_METHODS } from '../../shared/auth-methods';
import { AUTH_PATHS } from '../../shared/auth-paths';
import { resolveLanyardHome } from '../broker/paths';
import { CliContext, describeFailure, ExitCode, UsageError, type CliDeps } from './context';
import { takeProfileOption } from './identity-option';
import { printError } from './output';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Shown by `lanyard <command> --help` under the usage line. */
  description: string;
  options: Options;
  /** Option lines for the help text. */
  optionHelp: Array<[string, string]>;
  run(ctx: CliContext, values: Values, positionals: string[]): Promise<number>;
}

const json: Options = { json: { type: 'boolean' } };
const jsonHelp: [string, string] = ['--json', 'Machine-readable output on stdout'];

/**
 * Every `lanyard` command. Each command module is loaded only when it runs, so `lanyard stdio` and `lanyard --help`
 * do not initialise what they do not use.
 */
const COMMANDS: readonly Command[] = [
  {
    name: 'serve',
    summary: 'Run the broker headless, with the dashboard on http://127.0.0.1 (WSL, SSH, servers)',
    usage: 'lanyard serve [--port <n>]',
    description:
      'Runs Lanyard (local MCP endpoint and dashboard) in this terminal until Ctrl-C. It prints the dashboard link and the IDE snippet.',
    options: { port: { type: 'string' } },
    optionHelp: [['--port <n>', 'Listen on this port instead of gateway.port (0 = any free port)']],
    run: async (ctx, v) => (await import('./commands/serve')).serve(ctx, { port: v.port as string | undefined }),
  },
  {
    name: 'stdio',
    summary: 'Bridge a stdio-only MCP client to the broker (what IDE entries run)',
    usage: 'lanyard stdio [--server <id> | --ide <ide>] [--profile <name>] [--remote <laptop endpoint>]',
    description:
      "Speaks MCP over stdin/stdout and forwards to the running broker (all servers, or one with --server), starting it when needed. With --remote, forwards to the laptop's broker with the remote token `lanyard remote pair` stored.",
    options: { server: { type: 'string', short: 's' }, ide: { type: 'string' }, remote: { type: 'string' } },
    optionHelp: [
      ['--server <id>', 'Only this server (/mcp/<id>) instead of all of them'],
      ['--ide <ide>', "Apply that IDE's tool profile (what `lanyard connect` writes)"],
      ['--remote <endpoint>', "The laptop's broker, e.g. http://127.0.0.1:47821 (WSL, SSH host, dev container)"],
    ],
    run: async (ctx, _v, positionals) => {
      const { stdioCommand } = await import('./stdio');
      const argv = [
        ...(ctx.identityProfile !== undefined ? ['--profile', ctx.identityProfile] : []),
        ...(typeof _v.server === 'string' ? ['--server', _v.server] : []),
        ...(typeof _v.ide === 'string' ? ['--ide', _v.ide] : []),
        ...(typeof _v.remote === 'string' ? ['--remote', _v.remote] : []),
        ...positionals,
      ];
      return stdioCommand(argv, {
        home: ctx.rootHome,
        stdin: ctx.io.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        startBroker: ctx.deps.startBroker ?? (async () => undefined),
      });
    },
  },
  {
    name: 'login',
    summary: "Sign in with your company's identity provider",
    usage:
      'lanyard login [--issuer <url> --client-id <id> [--client-auth <method>] [--client-secret-stdin] [--redirect-port <n>]] [--no-browser | --device] [--force]',
    description:
      'Opens the sign-in page in your browser (the address is printed too, for SSH and WSL) and keeps the session in the OS keychain. Where no browser can open (SSH, a container), or with --no-browser, open the printed link on any machine and paste back the address it ends on; --device signs in with a code instead. With --issuer and --client-id it first sets the identity provider (your IT team has both).',
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-auth': { type: 'string' },
      'redirect-port': { type: 'string' },
      force: { type: 'boolean' },
      'no-browser': { type: 'boolean' },
      device: { type: 'boolean' },
      'client-secret-stdin': { type: 'boolean' },
    },
    optionHelp: [
      ['--issuer <url>', 'The IdP issuer, e.g. https://acme.okta.com (the org authorization server)'],
      ['--client-id <id>', "Lanyard's client id at the IdP"],
      ['--client-auth <method>', `one of ${CLIENT_AUTH_METHODS.join(', ')} (default: none; client_secret_basic with a secret)`],
      ['--client-secret-stdin', "A confidential client's secret, as the first line of stdin (kept in the keychain, never printed)"],
      ['--redirect-port <n>', 'A fixed loopback port, when the IdP needs an exact redirect URI'],
      ['--force', 'Sign in again even when already signed in'],
      ['--no-browser', 'Print the link for a browser on another machine; paste back the address it ends on'],
      ['--device', 'Sign in with a code entered on any device (where the IdP offers device authorization)'],
    ],
    run: async (ctx, v) =>
      (await import('./commands/session')).loginCommand(ctx, {
        issuer: v.issuer as string | undefined,
        clientId: v['client-id'] as string | undefined,
        clientAuth: v['client-auth'] as string | undefined,
        redirectPort: v['redirect-port'] as string | undefined,
        force: v.force === true,
        noBrowser: v['no-browser'] === true,
        device: v.device === true,
        clientSecretStdin: v['client-secret-stdin'] === true,
      }),
  },
  {
    name: 'logout',
    summary: 'Sign out and forget the stored session',
    usage: 'lanyard logout',
    description: 'Revokes the refresh token at the IdP when it can, and removes the session and every access token from the keychain.',
    options: {},
    optionHelp: [],
    run: async (ctx) => (await import('./commands/session')).logoutCommand(ctx),
  },
  {
    name: 'status',
    summary: 'Show who is signed in, the servers, the IDEs, and whether the broker runs',
    usage: 'lanyard status [--json]',
    description:
      'Works with or without a running broker (then it reads the config and the keychain). Exit code 0 when nothing needs doing, 3 when a sign-in is needed or a server needs authorizing or its key.',
    options: json,
    optionHelp: [jsonHelp],
    run: async (ctx, v) => (await import('./commands/session')).statusCommand(ctx, { json: v.json === true }),
  },
  {
    name: 'servers',
    summary: 'List, add, remove, enable or disable MCP servers; authorize one or set its key',
    usage:
      'lanyard servers list | add <url> [options] | remove <id> | enable <id> | disable <id> | authorize <id> | set-key <id> [--header <name>] --value-stdin',
    description:
      "Talks to the running broker when there is one; otherwise edits config.json (and the keychain for a key or client secret) directly. `add` probes the server first and prints every auth path in order (Cross-App Access → OAuth → API key → none), whether it applies and why, and the one it chose. `authorize` opens the browser once for a server on the OAuth path and waits for the outcome. `set-key` stores a server's API key in the keychain. Keys and secrets are read from stdin only and never printed.",
    options: {
      ...json,
      id: { type: 'string' },
      name: { type: 'string' },
      'client-id': { type: 'string' },
      'client-auth': { type: 'string' },
      'client-secret-stdin': { type: 'boolean' },
      scope: { type: 'string', multiple: true },
      auth: { type: 'string' },
      header: { type: 'string' },
      'value-stdin': { type: 'boolean' },
      // Accepted only to refuse it with the reason: a key on the command line lands in shell history and `ps`.
      value: { type: 'string' },
      'oauth-client-id': { type: 'string' },
      'no-probe': { type: 'boolean' },
    },
    optionHelp: [
      ['--auth <path>', `add: use this path instead of the probe's choice: ${AUTH_PATHS.join(', ')}`],
      ['--header <name>', 'add, set-key: the header the API key goes in (e.g. X-API-Key, Authorization)'],
      ['--value-stdin', 'add, set-key: read the key from stdin (stored in the keychain only, never printed)'],
      ['--oauth-client-id <id>', "add: Lanyard's pre-registered client id at the server's own authorization server (OAuth path)"],
      ['--id <id>', 'add: the server id (default: from the URL)'],
      ['--name <name>', 'add: a display name'],
      ['--client-id <id>', "add: Lanyard's client id at the server's authorization server for Cross-App Access (from your IdP admin)"],
      ['--client-auth <method>', `add: one of ${CLIENT_AUTH_METHODS.join(', ')}`],
      ['--client-secret-stdin', 'add: read the client secret from stdin (stored in the keychain, never in a file)'],
      ['--scope <scope>', 'add: an extra scope to request (repeatable)'],
      ['--no-probe', 'add: do not probe the server (the path is chosen when it is first used)'],
      jsonHelp,
    ],
    run: async (ctx, v, positionals) =>
      (await import('./commands/servers')).serversCommand(ctx, {
        positionals,
        json: v.json === true,
        id: v.id as string | undefined,
        name: v.name as string | undefined,
        clientId: v['client-id'] as string | undefined,
        clientAuth: v['client-auth'] as string | undefined,
        clientSecretStdin: v['client-secret-stdin'] === true,
        scope: v.scope as string[] | undefined,
        auth: v.auth as string | undefined,
        header: v.header as string | undefined,
        valueStdin: v['value-stdin'] === true,
        value: v.value as string | undefined,
        oauthClientId: v['oauth-client-id'] as string | undefined,
        probe: v['no-probe'] !== true,
      }),
  },
  {
    name: 'connect',
    summary: 'Point an IDE at Lanyard (cursor, vscode, claude-code, claude-desktop, windsurf)',
    usage: 'lanyard connect <ide> [--http] [--link] [--remote <laptop endpoint>] [--json]',
    description:
      'Writes the IDE\'s user-level MCP config: one entry named "lanyard" that runs `lanyard stdio` by absolute path (no token in the file; it starts Lanyard on demand), or with --http the local endpoint with the local token. Your other entries and formatting are kept, a backup is taken first, and running it twice changes nothing. The IDE is never restarted.',
    options: { ...json, http: { type: 'boolean' }, stdio: { type: 'boolean' }, link: { type: 'boolean' }, remote: { type: 'string' } },
    optionHelp: [
      ['--remote <endpoint>', "On a remote side (WSL, SSH host, dev container): reach the laptop's broker (pair first)"],
      ['--http', 'Point the IDE at the HTTP endpoint with the local token instead (rewritten whenever the token changes)'],
      ['--stdio', 'Run `lanyard stdio` (the default)'],
      ['--link', "Open the IDE's own install link instead of writing the file (Cursor, VS Code; stdio, no token)"],
      jsonHelp,
    ],
    run: async (ctx, v, positionals) =>
      (await import('./commands/ide')).connectCommand(ctx, {
        positionals,
        stdio: v.http !== true,
        link: v.link === true,
        json: v.json === true,
        remote: v.remote as string | undefined,
      }),
  },
  {
    name: 'disconnect',
    summary: "Take Lanyard out of an IDE's config, restoring what was there",
    usage: 'lanyard disconnect <ide> [--json]',
    description:
      'Restores the file byte for byte when nobody changed it since `lanyard connect` (or deletes it if Lanyard created it); otherwise removes only the "lanyard" entry.',
    options: json,
    optionHelp: [jsonHelp],
    run: async (ctx, v, positionals) => (await import('./commands/ide')).disconnectCommand(ctx, { positionals, json: v.json === true }),
  },
  {
    name: 'import',
    summary: "Move the remote MCP servers already in your IDEs' configs behind Lanyard",
    usage: 'lanyard import [--dry-run | --yes] [--ide <ide>]… [--http] [--no-probe] [--json]',
    description:
      'Finds remote servers (URL entries and `npx mcp-remote <url>`) in the IDEs\' files, adds them to Lanyard on the auth path the probe finds and replaces them with the one "lanyard" entry, with backups. An entry with an API-key header moves onto the API-key path: its key goes to the keychain (and out of the file and its backup); `lanyard disconnect <ide>` puts the file back byte for byte. Local stdio servers, keys only the IDE can resolve and servers no path applies to stay, and the plan says why.',
    options: {
      ...json,
      'dry-run': { type: 'boolean' },
      yes: { type: 'boolean', short: 'y' },
      ide: { type: 'string', multiple: true },
      http: { type: 'boolean' },
      stdio: { type: 'boolean' },
      'no-probe': { type: 'boolean' },
    },
    optionHelp: [
      ['--dry-run', 'Show the plan only'],
      ['--yes, -y', 'Apply without asking'],
      ['--ide <ide>', 'Only this IDE (repeatable)'],
      ['--http', 'Point the IDEs at the HTTP endpoint with the local token instead of `lanyard stdio`'],
      ['--stdio', 'Point the IDEs at `lanyard stdio` (the default)'],
      ['--no-probe', 'Do not ask each server whether cross-app access works before moving it'],
      jsonHelp,
    ],
    run: async (ctx, v) =>
      (await import('./commands/ide')).importCommand(ctx, {
        dryRun: v['dry-run'] === true,
        yes: v.yes === true,
        stdio: v.http !== true,
        probe: v['no-probe'] !== true,
        ide: v.ide as string[] | undefined,
        json: v.json === true,
      }),
  },
  {
    name: 'doctor',
    summary: 'Check every hop from keychain to each server, on its auth path, and say what is wrong',
    usage: 'lanyard doctor [--server <id>] [--json]',
    description:
      "One pass/fail line per hop — keychain, configuration, IdP discovery, sign-in, then each server's auth path and its hops (xaa: metadata, IdP session, ID-JAG, AS grant, MCP; oauth: metadata, client identity, grant, refresh, MCP; header: key in keychain, MCP; none: MCP), the local endpoint — and the fix for each failure. No tool is called and no secret is shown. Exit code 0 when all pass.",
    options: { ...json, server: { type: 'string', short: 's' } },
    optionHelp: [['--server <id>', 'Check only this server'], jsonHelp],
    run: async (ctx, v) =>
      (await import('./commands/doctor')).doctorCommand(ctx, { server: v.server as string | undefined, json: v.json === true }),
  },
  {
    name: 'accept-link',
    summary: 'Review and accept a lanyard://configure link from your IT team',
    usage: 'lanyard accept-link <lanyard://configure?config=…> [--yes] [--json]',
    description:
      'Shows what the link would set (identity provider, servers) and applies it only after you agree. Links never carry secrets.',
    options: { ...json, yes: { type: 'boolean', short: 'y' } },
    optionHelp: [['--yes, -y', 'Accept without asking'], jsonHelp],
    run: async (ctx, v, positionals) =>
      (await import('./commands/accept-link')).acceptLinkCommand(ctx, { positionals, yes: v.yes === true, json: v.json === true }),
  },
  {
    name: 'token',
    summary: 'Rotate the local token IDEs use over HTTP',
    usage: 'lanyard token rotate [--json]',
    description:
      'Makes a new local token at once (the old one stops working) and rewrites the HTTP-mode IDE configs `lanyard connect --http` wrote. Lanyard also makes a new one at every start. IDEs using `lanyard stdio` need nothing.',
    options: json,
    optionHelp: [jsonHelp],
    run: async (ctx, v, positionals) => (await import('./commands/token')).tokenCommand(ctx, { positionals, json: v.json === true }),
  },
  {
    name: 'audit',
    summary: 'Show, verify or export the audit ledger (who called which tool, through which IDE, under which grant)',
    usage: 'lanyard audit [--since <when>] [--server <id>] [--ide <name>] [--json] | audit verify | audit export --format jsonl|csv',
    description:
      'Reads the hash-chained audit ledger in LANYARD_HOME/audit (no broker needed). `verify` checks the whole chain and names the first record that was edited, removed or reordered (exit 1). `export` writes every matching record as JSONL (verifiable) or CSV. Records never hold tokens, arguments or results.',
    options: {
      ...json,
      since: { type: 'string' },
      server: { type: 'string' },
      ide: { type: 'string' },
      format: { type: 'string' },
      limit: { type: 'string' },
    },
    optionHelp: [
      ['--since <when>', 'Records since a duration ago (30m, 2h, 7d) or a date'],
      ['--server <id>', 'Only this server'],
      ['--ide <name>', 'Only calls from this IDE (its client name, any part)'],
      ['--limit <n>', 'The newest n records (default 50; export writes all)'],
      ['--format jsonl|csv', 'export: the format (default jsonl)'],
      jsonHelp,
    ],
    run: async (ctx, v, positionals) =>
      (await import('./commands/audit')).auditCommand(ctx, {
        positionals,
        json: v.json === true,
        since: v.since as string | undefined,
        server: v.server as string | undefined,
        ide: v.ide as string | undefined,
        format: v.format as string | undefined,
        limit: v.limit as string | undefined,
      }),
  },
  {
    name: 'tools',
    summary: 'Review tool changes Lanyard holds back (changed, added or suspicious tools)',
    usage: 'lanyard tools review [--json] | lanyard tools approve|reject <server> (<tool>... | --all)',
    description:
      'Lanyard pins every tool definition it shows to an IDE. A tool a server changes or adds later, or whose description hides instructions for the model, is hidden and refused until you review it: `review` shows what changed (a diff), `approve` shows it again, `reject` keeps that version hidden.',
    options: { ...json, all: { type: 'boolean' } },
    optionHelp: [['--all', 'Every tool of the server waiting for review'], jsonHelp],
    run: async (ctx, v, positionals) =>
      (await import('./commands/tools')).toolsCommand(ctx, { positionals, all: v.all === true, json: v.json === true }),
  },
  {
    name: 'remote',
    summary: "Use the laptop's Lanyard from WSL, an SSH host or a dev container (pairing)",
    usage: 'lanyard remote pair <laptop endpoint> [--label <name>] | status | approve <code> | list | revoke <id> [--json]',
    description:
      "On the remote side, `pair` asks the laptop's Lanyard (through a forwarded port, e.g. http://127.0.0.1:47821) for a pairing and shows a code; approve it on the laptop with `approve <code>` or in the dashboard's Remote view. The remote side then holds a token (0600 file) that opens the laptop's MCP endpoints only — never the sign-in, the settings or the keychain. `status` (remote side) checks each pairing still works; `list` and `revoke` run on the laptop.",
    options: { ...json, label: { type: 'string' } },
    optionHelp: [['--label <name>', 'pair: how the laptop lists this device (default: host name and kind)'], jsonHelp],
    run: async (ctx, v, positionals) =>
      (await import('./commands/remote')).remoteCommand(ctx, { positionals, json: v.json === true, label: v.label as string | undefined }),
  },
  {
    name: 'profiles',
    summary: "Show or change each IDE's tool profile (which tools it sees, its tool budget)",
    usage: 'lanyard profiles [show [<ide>]] | set <ide> [options] | reset <ide>',
    description:
      'Each connected IDE sees the tools its profile allows. Past its budget (Cursor 40, Windsurf 100, VS Code 96 by default) it sees its favourites plus lanyard_search_tools and lanyard_call_tool, which reach every other tool. Tools are named <server-id>/<tool name>; <ide> is cursor, vscode, claude-code, claude-desktop, windsurf or default (plain /mcp).',
    options: {
      ...json,
      budget: { type: 'string' },
      favourite: { type: 'string', multiple: true },
      'allow-server': { type: 'string', multiple: true },
      'deny-server': { type: 'string', multiple: true },
      'allow-tool': { type: 'string', multiple: true },
      'deny-tool': { type: 'string', multiple: true },
      'max-name-length': { type: 'string' },
    },
    optionHelp: [
      ['--budget <n>', 'The most tools the IDE is shown (0 = no budget)'],
      ['--favourite <ref>', 'A tool listed first and kept past the budget (repeatable; replaces the list)'],
      ['--allow-server <id>', 'Only these servers (repeatable)'],
      ['--deny-server <id>', 'Never these servers (repeatable)'],
      ['--allow-tool <ref>', 'Only these tools (repeatable)'],
      ['--deny-tool <ref>', 'Never these tools (repeatable)'],
      ['--max-name-length <n>', "Longest tool name handed to the IDE (default: the IDE's limit)"],
      jsonHelp,
    ],
    run: async (ctx, v, positionals) => (await import('./commands/profiles')).profilesCommand(ctx, { positionals, values: v }),
  },
];

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: lanyard <command> [options]',
    '',
    'Sign in once; every IDE reaches every MCP server your company allows, through one local endpoint.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     Show this help (`lanyard <command> --help` for a command)',
    '  --profile <p>  Run the command for identity profile <p> (another IdP account; its endpoint is /p/<p>/mcp)',
    '  -v, --version  Show the version',
    '',
    'Exit codes: 0 ok, 1 failed, 2 usage error, 3 sign-in or confirmation needed, 4 Lanyard not running or unreachable.',
    'Environment: LANYARD_HOME relocates everything Lanyard writes; LANYARD_MANAGED_CONFIG names a managed config file;',
    'LANYARD_NO_BROWSER=1 prints links instead of opening them.',
    '',
  ].join('\n');
}

function commandHelp(command: Command): string {
  const width = Math.max('-h, --help'.length, ...command.optionHelp.map(([flag]) => flag.length));
  return [
    `Usage: ${command.usage}`,
    '',
    command.description,
    '',
    ...(command.optionHelp.length
      ? [
          'Options:',
          ...command.optionHelp.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`),
          `  ${'-h, --help'.padEnd(width)}  Show this help`,
          '',
        ]
      : []),
  ].join('\n');
}

/** Runs the CLI and returns its exit code; never calls process.exit itself. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const { io } = deps;
  // `--profile <name>` is global: before or after the command, it selects the identity profile for the whole run.
  let profile: string | undefined;
  let args: string[];
  try {
    ({ profile, rest: args } = takeProfileOption(argv));
  } catch (e) {
    printError(io, 'lanyard', describeFailure(e).info);
    return ExitCode.USAGE;
  }
  const [first, ...rest] = args;
  if (first === undefined || first === '-h' || first === '--help') {
    io.out(usage());
    return ExitCode.OK;
  }
  if (first === '-v' || first === '--version') {
    io.out(`${deps.version}\n`);
    return ExitCode.OK;
  }
  if (first === 'help') {
    const target = COMMANDS.find((c) => c.name === rest[0]);
    io.out(target ? commandHelp(target) : usage());
    return ExitCode.OK;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) {
    io.err(`lanyard: unknown ${first.startsWith('-') ? 'option' : 'command'} '${first}'.\n\n${usage()}`);
    return ExitCode.USAGE;
  }
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (e) {
    io.err(`lanyard ${command.name}: ${e instanceof Error ? e.message : String(e)}\n\n${commandHelp(command)}`);
    return ExitCode.USAGE;
  }
  if (parsed.values.help) {
    io.out(commandHelp(command));
    return ExitCode.OK;
  }
  let ctx: CliContext | undefined;
  try {
    ctx = new CliContext(deps, resolveLanyardHome(deps.env, deps.platform), profile);
    return await command.run(ctx, parsed.values, parsed.positionals);
  } catch (e) {
    const { info, exitCode } = describeFailure(e);
    printError(io, command.name, info);
    if (e instanceof UsageError) io.err(`\n${commandHelp(command)}`);
    return exitCode;
  } finally {
    await ctx?.close().catch(() => undefined);
  }
}
