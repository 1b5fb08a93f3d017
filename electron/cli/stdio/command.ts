import type { Readable, Writable } from 'node:stream';
import { runStdioBridge } from './bridge';

/** `lanyard stdio` command line: `[--server <id> | --ide <ide>]`. Returns the exit code. */
export async function stdioCommand(
  argv: readonly string[],
  io: { home: string; stdin: Readable; stdout: Writable; stderr: Writable; startBroker: () => Promise<void> },
): Promise<number> {
  const { parseArgs } = await import('node:util');
  let server: string | undefined;
  let ide: string | undefined;
  let profile: string | undefined;
  let remote: string | undefined;
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        server: { type: 'string', short: 's' },
        ide: { type: 'string' },
        profile: { type: 'string' },
        remote: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.stdout.write(
        "Usage: lanyard stdio [--server <id> | --ide <ide>] [--profile <name>] [--remote <laptop endpoint>]\n\nBridges a stdio-only MCP client to the running broker (all servers at /mcp, or one with --server; --ide applies the tool profile of that IDE; --profile reaches the endpoints of that identity profile, /p/<name>/; --remote reaches the laptop's broker with the token `lanyard remote pair` stored).\n",
      );
      return 0;
    }
    server = values.server;
    ide = values.ide;
    profile = values.profile;
    remote = values.remote;
  } catch (e) {
    io.stderr.write(
      `lanyard stdio: ${e instanceof Error ? e.message : String(e)}\nUsage: lanyard stdio [--server <id> | --ide <ide>] [--profile <name>] [--remote <laptop endpoint>]\n`,
    );
    return 2;
  }
  return runStdioBridge({
    ...io,
    ...(server !== undefined ? { server } : {}),
    ...(ide !== undefined ? { ide } : {}),
    ...(profile !== undefined ? { profile } : {}),
    ...(remote !== undefined ? { remote } : {}),
  });
}
