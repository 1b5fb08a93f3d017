#!/usr/bin/env node
/**
 * Bundles the `lanyard` CLI: electron/cli/lanyard.ts → out/cli/lanyard.js (package.json "bin"), with the options in
 * scripts/cli-build-options.mjs (which explains them, and fails the build on any import of 'electron').
 */
import { chmod } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { cliBuildOptions } from './cli-build-options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// --entry / --outfile exist for test/unit/build.test.ts, which proves the electron guard on a throwaway entry.
const { values: args } = parseArgs({
  options: {
    entry: { type: 'string', default: 'electron/cli/lanyard.ts' },
    outfile: { type: 'string', default: 'out/cli/lanyard.js' },
  },
});
const outfile = resolve(root, args.outfile);

const started = performance.now();
const result = await build(cliBuildOptions({ root, entry: args.entry, outfile })).catch(() => {
  // esbuild has already printed the errors (logLevel 'warning').
  process.exit(1);
});
await chmod(outfile, 0o755);

const bytes = Object.entries(result.metafile.outputs).find(([path]) => resolve(root, path) === outfile)?.[1].bytes ?? 0;
console.log(`${relative(root, outfile)}  ${(bytes / 1024).toFixed(1)} kB  (${Math.round(performance.now() - started)} ms)`);
