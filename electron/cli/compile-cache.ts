import { statSync } from 'node:fs';
import * as nodeModule from 'node:module';
import path from 'node:path';
import { resolveLanyardHome } from '../broker/paths';

type EnableCompileCache = (directory?: string) => { status: number; directory?: string | undefined };

/**
 * Node ≥ 22.1 (and the Node inside current Electron) can keep V8's compiled code of the modules it loads on disk
 * (`module.enableCompileCache`, https://nodejs.org/api/module.html#module-compile-cache): a later start then skips
 * compiling the CLI bundle's chunks, a large share of `lanyard serve`'s start-up CPU. Node 20 has no such cache (the
 * function is absent and this does nothing). Only modules loaded after the call benefit, so the CLI calls it before
 * importing its commands.
 *
 * The cache lives in `<home>/compile-cache`, and only when the Lanyard home exists, is a directory, and is private to
 * this user (no group or other permission bits, owned by us): code cache read back from a place another local user
 * could write would run as ours. NODE_DISABLE_COMPILE_CACHE (Node's own switch) turns it off. Returns the directory in
 * use, or undefined.
 */
export function enableCompileCache(
  options: { env?: NodeJS.ProcessEnv; enable?: EnableCompileCache | undefined; platform?: NodeJS.Platform } = {},
): string | undefined {
  const env = options.env ?? process.env;
  const enable = 'enable' in options ? options.enable : (nodeModule as { enableCompileCache?: EnableCompileCache }).enableCompileCache;
  if (typeof enable !== 'function' || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  try {
    const home = resolveLanyardHome(env);
    const info = statSync(home);
    const posix = (options.platform ?? process.platform) !== 'win32';
    if (!info.isDirectory() || (posix && ((info.mode & 0o077) !== 0 || info.uid !== process.getuid?.()))) return undefined;
    const directory = path.join(home, 'compile-cache');
    return enable(directory).directory;
  } catch {
    // No home yet (a first `lanyard setup`), or the cache could not be set up: start without it.
    return undefined;
  }
}
