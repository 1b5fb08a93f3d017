/**
 * The esbuild options of the `lanyard` CLI bundle, shared by scripts/build-cli.mjs (`npm run build:cli`) and the
 * benchmark's builds (bench/lib/build.ts), so what the benchmark measures is built exactly like what ships.
 *
 * ESM for Node 20 with our own code (broker, shared) bundled and every npm package left external (`packages:
 * 'external'`), resolved from node_modules at run time. Code splitting keeps each command's imports out of the entry
 * chunk, so `lanyard stdio` (whose cold start is budgeted at 150 ms) does not load zod, conf or openid-client for
 * `serve` or `doctor` (about 245 ms without splitting, under 100 ms with it). 'electron' must never be reachable from
 * the CLI: every build fails if it is.
 */
import { basename, dirname, extname, resolve } from 'node:path';

/** Fails the build on any import of 'electron' (directly or through our own modules). */
export const forbidElectron = {
  name: 'lanyard:forbid-electron',
  setup(b) {
    b.onResolve({ filter: /^electron(\/.*)?$/ }, ({ path, importer }) => ({
      errors: [{ text: `The CLI runs under plain Node and cannot import '${path}' (imported by ${importer}).` }],
    }));
  },
};

/**
 * The options for bundling `entry` into `outfile` (both relative to `root`, or absolute); `plugins` run after the
 * electron guard, which is always present.
 */
export function cliBuildOptions({ root, entry = 'electron/cli/lanyard.ts', outfile = 'out/cli/lanyard.js', plugins = [] }) {
  const out = resolve(root, outfile);
  return {
    absWorkingDir: root,
    entryPoints: { [basename(out, extname(out))]: resolve(root, entry) },
    outdir: dirname(out),
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    banner: { js: '#!/usr/bin/env node' },
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
    plugins: [forbidElectron, ...plugins],
  };
}
