import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { cliBuildOptions } from '../../scripts/cli-build-options.mjs';
import type { SourcePatch } from './experiments';

/**
 * The CLI bundle for the benchmark, in `dir`: exactly `npm run build:cli` (scripts/build-cli.mjs with --outfile) when
 * there are no patches; with patches (experiments), the same esbuild options (scripts/cli-build-options.mjs, electron
 * guard included) with the patched sources substituted at load time — the working tree is never written.
 */
export async function buildCli(root: string, dir: string, patches: SourcePatch[] = []): Promise<string> {
  const outfile = path.join(dir, 'lanyard.js');
  if (!patches.length) {
    const run = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, outfile)], {
      cwd: root,
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`building the CLI failed:\n${run.stdout}${run.stderr}`);
    return outfile;
  }
  const byFile = new Map<string, SourcePatch[]>();
  for (const p of patches) byFile.set(path.join(root, p.file), [...(byFile.get(path.join(root, p.file)) ?? []), p]);
  const patcher: Plugin = {
    name: 'bench:patch',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const list = byFile.get(args.path);
        if (!list) return undefined;
        let source = await readFile(args.path, 'utf8');
        for (const p of list) {
          const count = source.split(p.find).length - 1;
          if (count !== 1)
            throw new Error(`experiment patch for ${p.file}: expected the text once, found it ${count} times: ${p.find.slice(0, 80)}`);
          source = source.replace(p.find, () => p.replace);
        }
        return { contents: source, loader: 'ts' };
      });
    },
  };
  // The same options as scripts/build-cli.mjs, electron guard included, with the patcher added.
  await build(cliBuildOptions({ root, outfile, plugins: [patcher] }));
  return outfile;
}
