/**
 * The `lanyard` command (package.json "bin"), bundled by scripts/build-cli.mjs into out/cli/lanyard.js.
 *
 * Placeholder: it parses the command line and knows the command set, but the commands themselves (serve, stdio,
 * login, ...) arrive with the broker. It runs under plain Node and must never import 'electron' (lint-enforced).
 * Output: results to stdout, diagnostics to stderr. Exit codes: 0 ok, 1 the command failed, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { version } from '../../package.json';

interface CommandInfo {
  name: string;
  summary: string;
}

const COMMANDS: readonly CommandInfo[] = [
  { name: 'serve', summary: 'Run the broker headless, with the dashboard on http://127.0.0.1 (WSL, SSH, servers)' },
  { name: 'stdio', summary: 'Bridge a stdio-only MCP client to the broker' },
  { name: 'login', summary: "Sign in with your company's identity provider" },
  { name: 'logout', summary: 'Sign out and forget the stored session' },
  { name: 'status', summary: 'Show who is signed in and whether the broker is running' },
  { name: 'servers', summary: 'List the configured MCP servers and their state' },
  { name: 'connect', summary: 'Point an IDE at Lanyard (cursor, vscode, claude-code, windsurf)' },
  { name: 'doctor', summary: 'Check every hop from keychain to each server and say what is wrong' },
];

function usage(): string {
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
    '  -h, --help     Show this help',
    '  -v, --version  Show the version',
    '',
  ].join('\n');
}

interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** Runs the CLI and returns its exit code; never calls process.exit itself. */
function run(argv: readonly string[], io: CliIo): number {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(`lanyard: ${error instanceof Error ? error.message : String(error)}\n\n${usage()}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    io.out(`${version}\n`);
    return 0;
  }
  const [command] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.out(usage());
    return 0;
  }
  if (!COMMANDS.some((c) => c.name === command)) {
    io.err(`lanyard: unknown command '${command}'.\n\n${usage()}`);
    return 2;
  }
  io.err(`lanyard ${command}: not available in this build yet.\n`);
  return 1;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}

process.exitCode = run(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
