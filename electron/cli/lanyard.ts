/**
 * The `lanyard` command (package.json "bin"), bundled by scripts/build-cli.mjs into out/cli/lanyard.js.
 *
 * It runs under plain Node and must never import 'electron' (lint-enforced). Output: results to stdout, diagnostics and
 * prompts to stderr. Exit codes: 0 ok, 1 the command failed, 2 usage error, 3 sign-in or confirmation needed, 4 the
 * broker is not running (or unreachable) where the command needs it. The commands live in cli.ts and commands/.
 */
import { spawn } from 'node:child_process';
import { version } from '../../package.json';
import { resolveLanyardHome } from '../broker/paths';
import { brokerNodeArgs } from './broker-node-flags';
import { enableCompileCache } from './compile-cache';
import { stdioCommand } from './stdio';

/**
 * Starts the headless broker for `lanyard stdio`, detached so it outlives the IDE session that needed it. The same
 * interpreter and loader flags are reused, so this works from the bundle and under tsx alike; the broker's own V8 flags
 * (broker-node-flags.ts) are added.
 */
function startDetachedBroker(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...brokerNodeArgs(process.execArgv), process.argv[1]!, 'serve'], {
      detached: true,
      stdio: 'ignore',
      env: process.env,
    });
    child.once('error', reject);
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}

const argv = process.argv.slice(2);
if (argv[0] === 'stdio') {
  // Its own dispatch, first: an IDE starts it for every session (cold start matters), and its stdout is the MCP
  // protocol channel, so nothing else may print there.
  let home: string;
  try {
    home = resolveLanyardHome();
  } catch (error) {
    process.stderr.write(`lanyard stdio: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  process.exitCode = await stdioCommand(argv.slice(1), {
    home,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    startBroker: startDetachedBroker,
  });
} else {
  // Before the commands (and the broker) are imported: on a Node with a module compile cache, they load from it.
  enableCompileCache();
  const { runCli } = await import('./cli');
  process.exitCode = await runCli(argv, {
    io: {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
      stdin: process.stdin,
      interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    },
    env: process.env,
    version,
    script: process.argv[1],
    execArgv: process.execArgv,
    startBroker: startDetachedBroker,
  });
}
