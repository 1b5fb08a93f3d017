/**
 * electron-vite build of the three Electron targets (the CLI is built separately by scripts/build-cli.mjs):
 *
 *   electron/main/index.ts     → out/main/index.js      ESM (package.json "type": "module"); npm dependencies stay
 *                                                        external and are loaded from the app's node_modules
 *   electron/preload/index.ts  → out/preload/index.cjs  CommonJS, fully bundled: a sandboxed preload cannot be an ES
 *                                                        module and can require nothing but 'electron' and a few
 *                                                        built-ins (https://www.electronjs.org/docs/latest/tutorial/sandbox#preload-scripts)
 *   renderer/index.html        → out/renderer/          React via @vitejs/plugin-react
 *
 * Building needs no Electron binary; `electron-vite dev` and `preview` do.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'electron-vite';
import type { Plugin } from 'vite';
import { buildCsp } from './electron/main/security';

const root = import.meta.dirname;

export default defineConfig(({ command }) => {
  // The dev server injects React Fast Refresh's preamble as an inline script; the CSP allows exactly that script by
  // hash (the renderer's dev base is '/'). Production builds allow no inline script at all.
  const devScriptHashes = command === 'serve' ? [cspHash(react.preambleCode.replace('__BASE__', '/'))] : [];

  return {
    main: {
      define: { __LANYARD_DEV_SCRIPT_HASHES__: JSON.stringify(devScriptHashes) },
      build: {
        outDir: resolve(root, 'out/main'),
        rolldownOptions: { input: { index: resolve(root, 'electron/main/index.ts') } },
      },
    },
    preload: {
      build: {
        outDir: resolve(root, 'out/preload'),
        // Bundle everything: a sandboxed preload cannot load packages from node_modules.
        externalizeDeps: false,
        rolldownOptions: {
          input: { index: resolve(root, 'electron/preload/index.ts') },
          output: { format: 'cjs', entryFileNames: '[name].cjs' },
        },
      },
    },
    renderer: {
      root: resolve(root, 'renderer'),
      plugins: [react(), rendererCsp(devScriptHashes)],
      build: {
        outDir: resolve(root, 'out/renderer'),
        rolldownOptions: { input: resolve(root, 'renderer/index.html') },
      },
    },
  };
});

/** The CSP source for an inline script: 'sha256-<base64 of the SHA-256 of its exact text>'. */
function cspHash(scriptText: string): string {
  return `sha256-${createHash('sha256').update(scriptText, 'utf8').digest('base64')}`;
}

const CSP_META = /(<meta\s+http-equiv="Content-Security-Policy"\s+content=")([^"]*)("\s*\/?>)/i;

/**
 * Keeps renderer/index.html's CSP `<meta>` equal to buildCsp() (the build fails on drift, so the header main sends
 * and the meta tag cannot disagree), and rewrites it for the dev server, which needs its inline preamble and
 * injected `<style>` elements.
 */
function rendererCsp(devScriptHashes: readonly string[]): Plugin {
  const expected = buildCsp({ meta: true, brokerPort: '*' });
  return {
    name: 'lanyard:renderer-csp',
    transformIndexHtml(html, ctx) {
      const match = CSP_META.exec(html);
      if (match === null) throw new Error('renderer/index.html must carry a Content-Security-Policy <meta> tag.');
      if (match[2] !== expected) {
        throw new Error(
          `renderer/index.html's CSP <meta> differs from buildCsp() in electron/main/security.ts.\n  meta:     ${match[2]}\n  expected: ${expected}`,
        );
      }
      if (ctx.server === undefined) return html;
      const dev = buildCsp({ meta: true, brokerPort: '*', dev: { scriptHashes: devScriptHashes } });
      return html.replace(CSP_META, (_m, open: string, _content: string, close: string) => `${open}${dev}${close}`);
    },
  };
}
