// @ts-check
/**
 * Lint config. The architecture boundaries (docs/architecture.md, "Layout" and "Boundaries") are enforced here, not by
 * memory:
 *   - only electron/main and electron/preload may import 'electron';
 *   - renderer/ imports only shared/ and its own files (plus browser packages such as react);
 *   - shared/ imports nothing platform-specific: no Node built-ins, no DOM globals, no Electron;
 *   - electron/broker never reaches into main/, preload/ or renderer/;
 *   - no import cycles, type-only ones included.
 * test/unit/lint-boundaries.test.ts proves each rule fires on a violating file.
 */
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { builtinModules, createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const nodeBuiltins = [...builtinModules.filter((m) => !m.startsWith('_')), 'node:*'];

const electronImport = {
  name: 'electron',
  message:
    "Only electron/main and electron/preload may import 'electron' (docs/architecture.md: the broker runs headless under plain Node).",
};

/** Electron's subpath entry points ('electron/main', 'electron/renderer', 'electron/common') load it just the same. */
const electronSubpaths = { regex: '^electron/', message: electronImport.message };

const namedExportsOnly = { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' };
/** no-restricted-imports only sees static imports; `import('electron')` and `require('electron')` are caught here. */
const dynamicElectron = [
  { selector: 'ImportExpression[source.value=/^electron(\\u002F.*)?$/]', message: electronImport.message },
  { selector: "CallExpression[callee.name='require'][arguments.0.value=/^electron(\\u002F.*)?$/]", message: electronImport.message },
];

/** Names of DOM globals shared/ must not touch; shared/ runs in the renderer, the broker and the CLI. */
const domGlobals = ['window', 'document', 'navigator', 'localStorage', 'sessionStorage', 'HTMLElement', 'Element', 'location', 'alert'].map(
  (name) => ({ name, message: 'shared/ is platform-neutral: no DOM globals.' }),
);
const nodeGlobals = ['process', 'Buffer', '__dirname', '__filename', 'require', 'global'].map((name) => ({
  name,
  message: 'shared/ is platform-neutral: no Node globals.',
}));

/**
 * import-x/no-cycle, counting type-only imports too. The upstream rule skips `import type` edges, but a type-only cycle
 * still ties two modules together (neither can be read, moved or tested without the other), and with
 * consistent-type-imports every type edge IS an `import type`. So the linted file's own imports reach the rule as value
 * imports (copies: the real AST, which other rules read, is untouched), and the modules it depends on are parsed by
 * scripts/eslint/value-imports-parser.cjs, which does the same.
 */
const valueImportsParserPath = fileURLToPath(new URL('./scripts/eslint/value-imports-parser.cjs', import.meta.url));
const { EDGES: importEdges } = createRequire(import.meta.url)(valueImportsParserPath);
const upstreamNoCycle = importX.rules['no-cycle'];

/** A shallow copy of an import/export statement with every kind set to 'value'. */
function asValueEdgeCopy(node) {
  const copy = { ...node };
  if ('importKind' in node) copy.importKind = 'value';
  if ('exportKind' in node) copy.exportKind = 'value';
  if (Array.isArray(node.specifiers)) {
    copy.specifiers = node.specifiers.map((s) => ({
      ...s,
      ...('importKind' in s ? { importKind: 'value' } : {}),
      ...('exportKind' in s ? { exportKind: 'value' } : {}),
    }));
  }
  return copy;
}

const noCycleCountingTypes = {
  meta: { ...upstreamNoCycle.meta, docs: { ...upstreamNoCycle.meta.docs, description: 'import-x/no-cycle, type-only imports included' } },
  defaultOptions: upstreamNoCycle.defaultOptions,
  create(context) {
    const visitors = upstreamNoCycle.create(context);
    return Object.fromEntries(
      Object.entries(visitors).map(([selector, visit]) => [
        selector,
        importEdges.has(selector) ? (node) => visit(asValueEdgeCopy(node)) : visit,
      ]),
    );
  },
};

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'release/**', 'node_modules/**', 'coverage/**', 'test/fixtures/lint/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': ['error', { paths: [electronImport], patterns: [electronSubpaths] }],
      'no-restricted-syntax': ['error', namedExportsOnly, ...dynamicElectron],
    },
  },
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.mts', '**/*.cts'],
    plugins: { lanyard: { rules: { 'no-cycle': noCycleCountingTypes } } },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: ['tsconfig.node.json', 'tsconfig.web.json'], noWarnOnMultipleProjects: true }),
      ],
      'import-x/parsers': { [valueImportsParserPath]: ['.ts', '.tsx', '.mts', '.cts'] },
      'import-x/extensions': ['.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.cjs'],
    },
    rules: { 'lanyard/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    files: ['electron/main/**', 'electron/preload/**'],
    rules: { 'no-restricted-imports': 'off', 'no-restricted-syntax': ['error', namedExportsOnly] },
  },
  {
    files: ['electron/broker/**', 'electron/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [electronImport],
          patterns: [
            electronSubpaths,
            {
              group: ['**/renderer/**', '**/electron/main/**', '**/electron/preload/**'],
              message: 'The broker is plain Node: it never reaches into the Electron shell or the renderer.',
            },
            // Relative paths up into electron/main or electron/preload from any depth (../main, ../../main, ...).
            {
              regex: '^(\\.\\./)+(main|preload)(/|$)',
              message: 'The broker is plain Node: it never reaches into the Electron shell or the renderer.',
            },
          ],
        },
      ],
      'no-console': 'error',
    },
  },
  {
    files: ['electron/cli/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            electronImport,
            ...nodeBuiltins
              .filter((m) => m !== 'node:*')
              .map((name) => ({ name, message: 'renderer/ runs in a sandboxed browser: no Node built-ins.' })),
          ],
          patterns: [
            { group: ['node:*'], message: 'renderer/ runs in a sandboxed browser: no Node built-ins.' },
            {
              group: ['**/electron/**', '**/test/**', '**/bench/**', '**/scripts/**'],
              message: 'renderer/ imports only shared/ and its own files.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/**'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            electronImport,
            ...nodeBuiltins
              .filter((m) => m !== 'node:*')
              .map((name) => ({ name, message: 'shared/ is platform-neutral: no Node built-ins.' })),
          ],
          patterns: [
            { group: ['node:*'], message: 'shared/ is platform-neutral: no Node built-ins.' },
            { group: ['**/electron/**', '**/renderer/**', '**/test/**'], message: 'shared/ imports nothing outside shared/.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', ...domGlobals, ...nodeGlobals],
    },
  },
  {
    // Tool configs must default-export.
    files: ['*.config.ts', '*.config.js', '*.config.mjs', 'renderer/vite.config.ts', 'electron.vite.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
