/**
 * The esbuild options of the `lanyard` CLI bundle, shared by scripts/build-cli.mjs (`npm run build:cli`) and the
 * benchmark's builds (bench/lib/build.ts), so what the benchmark measures is built exactly like what ships.
 *
 * ESM for Node 20 with our own code (broker, shared) and the npm packages it imports bundled together. Left to
 * node_modules at run time (EXTERNAL): the native keychain binding, and the governance packages that load on demand
 * only. Bundling the rest saves Node resolving, reading and compiling several hundred small files (zod alone is about
 * a hundred, jose fifty) on every start: about 75 ms of CPU until `lanyard serve` listens (430 → 355 ms measured on
 * the reference machine), which every CLI command and start → first list pays. Code splitting keeps each command's
 * imports out of the entry chunk, so `lanyard stdio` (cold start budgeted at 80 ms) loads none of it. 'electron' must
 * never be reachable from the CLI: every build fails if it is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';

/**
 * npm packages loaded from node_modules instead of bundled: a native addon (it finds its binary next to itself), and
 * packages only some commands load on demand (bundling them would not make any start faster). The PAC evaluator
 * (pac-resolver, quickjs-wasi) loads only when network.pac is set, and finds its quickjs.wasm next to itself.
 */
const EXTERNAL = ['@napi-rs/keyring', '@opentelemetry/*', '@secretlint/*', 'pac-resolver', 'quickjs-wasi'];

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
 * Escapes the non-ASCII characters esbuild leaves in the output's comments (its default `charset: 'ascii'` already
 * escapes them in strings, template literals, regular expressions and identifiers). V8 keeps each module's source text
 * in memory for as long as the module lives (lazy compilation, Function.prototype.toString), and a source with a single
 * character above U+00FF, such as one em dash in a comment, is held as a two-byte string: the broker's chunks took
 * 5.4 MB of heap instead of 2.7 MB. Escaped, a comment reads `\u2014` and nothing else changes; the line's columns move
 * only after the comment, where there is no code, so the source maps stay right.
 */
export const asciiOutput = {
  name: 'lanyard:ascii-output',
  setup(b) {
    b.onEnd((result) => {
      if (result.errors.length || !result.metafile) return;
      for (const file of Object.keys(result.metafile.outputs)) {
        if (!file.endsWith('.js')) continue;
        const path = resolve(b.initialOptions.absWorkingDir ?? process.cwd(), file);
        const text = readFileSync(path, 'utf8');
        if (!/[\u0080-\uffff]/.test(text)) continue;
        // A code point above U+FFFF is two UTF-16 units, each escaped.
        writeFileSync(
          path,
          text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
        );
      }
    });
  },
};

/**
 * The options for bundling `entry` into `outfile` (both relative to `root`, or absolute); `plugins` run after the
 * electron guard and before the ASCII escaping, which are always present.
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
    external: EXTERNAL,
    // Bundled CommonJS packages require Node built-ins: ESM output has no `require` unless one is made.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __lanyardRequire } from 'node:module';\nconst require = __lanyardRequire(import.meta.url);",
    },
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
    plugins: [forbidElectron, ...plugins, asciiOutput],
  };
}
