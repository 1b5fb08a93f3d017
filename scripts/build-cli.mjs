#!/usr/bin/env node
/**
 * Bundles the `lanyard` CLI: electron/cli/lanyard.ts → out/cli/lanyard.js (package.json "bin").
 *
 * ESM for Node 20 with our own code (broker, shared) bundled and every npm package left external (`packages:
 * 'external'`), resolved from node_modules at run time. Code splitting keeps each command's imports out of the entry
 * chunk, so `lanyard stdio` (whose cold start is budgeted at 150 ms) does not load zod, conf or openid-client for
 * `serve` or `doctor` (about 245 ms without splitting, under 100 ms with it). 'electron' must never be reachable from
 * the CLI: the build fails if it is.
 */
import { chmod } from 'node:fs/promises';
import { basename, dirname, extname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// --entry / --outfile exist for test/unit/build.test.ts, which proves the electron guard on a throwaway entry.
const { values: args } = parseArgs({
  options: {
    entry: { type: 'string', default: 'electron/cli/lanyard.ts' },
    outfile: { type: 'string', default: 'out/cli/lanyard.js' },
  },
});
const outfile = resolve(root, args.outfile);

/** Fails the build on any import of 'electron' (directly or through our own modules). */
const forbidElectron = {
  name: 'lanyard:forbid-electron',
  setup(b) {
    b.onResolve({ filter: /^electron(\/.*)?$/ }, ({ path, importer }) => ({
      errors: [{ text: `The CLI runs under plain Node and cannot import '${path}' (imported by ${importer}).` }],
    }));
  },
};

const started = performance.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: { [basename(outfile, extname(outfile))]: resolve(root, args.entry) },
  outdir: dirname(outfile),
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
  plugins: [forbidElectron],
}).catch(() => {
  // esbuild has already printed the errors (logLevel 'warning').
  process.exit(1);
});
await chmod(outfile, 0o755);

const bytes = Object.entries(result.metafile.outputs).find(([path]) => resolve(root, path) === outfile)?.[1].bytes ?? 0;
console.log(`${relative(root, outfile)}  ${(bytes / 1024).toFixed(1)} kB  (${Math.round(performance.now() - started)} ms)`);
