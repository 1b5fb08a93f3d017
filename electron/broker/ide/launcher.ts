import { realpathSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { defaultLanyardHome } from '../paths';
import type { StdioLauncher } from './targets';

type Env = Record<string, string | undefined>;

export interface LauncherOptions {
  /** Lanyard's home: passed on as LANYARD_HOME when it is not the default, so the IDE's bridge finds this instance. */
  home: string;
  env?: Env;
  platform?: NodeJS.Platform;
  /** The interpreter (`process.execPath`). */
  execPath?: string;
  /** The running script (`process.argv[1]`): the `lanyard` CLI when the CLI is what runs. */
  script?: string | undefined;
  /** Loader flags of a development run (`node --import tsx lanyard.ts`), needed again to start a `.ts` entry. */
  execArgv?: string[];
}

/**
 * How an IDE starts `lanyard stdio`: this interpreter and the CLI script, both as absolute real paths.
 *
 * Never `npx lanyard` or a bare `lanyard`: GUI apps get a minimal PATH (no Homebrew, no nvm; see
 * tomaspavlin/rohlik-mcp#6 and cline/cline#1948, `spawn npx ENOENT` on Windows), and npx adds seconds of start-up and a network lookup. The
 * script path is resolved through symlinks (npm's global `bin/lanyard` is one) so the entry keeps working whatever PATH
 * the IDE has. `LANYARD_CLI_PATH` overrides the script (the Electron app sets it to the bundled CLI).
 */
export function resolveStdioLauncher(options: LauncherOptions): StdioLauncher {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const p = platform === 'win32' ? path.win32 : path.posix;
  const execPath = options.execPath ?? process.execPath;
  const candidate = env.LANYARD_CLI_PATH || (options.script !== undefined ? options.script : process.argv[1]);
  if (!candidate || !/^lanyard(\.(c|m)?[jt]s)?$/i.test(p.basename(candidate))) {
    throw new LanyardError(
      ErrorCodes.INTERNAL,
      'Lanyard cannot tell where its command-line program is installed, so it cannot write a `lanyard stdio` entry.',
      'Run `lanyard connect <ide>` from a terminal (it writes the stdio entry by default), or set LANYARD_CLI_PATH to the absolute path of out/cli/lanyard.js.',
    );
  }
  const script = realOrSelf(p.resolve(candidate));
  const args = [...(/\.ts$/i.test(script) ? (options.execArgv ?? process.execArgv) : []), script, 'stdio'];
  const launcher: StdioLauncher = { command: realOrSelf(execPath), args };
  const normalize = (dir: string) => p.resolve(dir);
  if (normalize(options.home) !== normalize(defaultLanyardHome(env, platform))) launcher.env = { LANYARD_HOME: options.home };
  return launcher;
}

function realOrSelf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
