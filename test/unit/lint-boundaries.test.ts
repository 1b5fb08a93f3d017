/**
 * Proves that every rule `npm run lint` enforces fires (docs/architecture.md "Boundaries", docs/contributing.md
 * "Lint and formatting"): violating code is linted with the project's real config, as if it lived at a path inside
 * the folder under test, and each expected error is matched by rule id and by the message that explains the boundary.
 * Allowed imports must produce no message at all.
 *
 * The boundary samples are virtual (`lintText` with a `filePath`): ESLint picks the config by path without reading
 * the disk. A path that no config matches, or one that is ignored, comes back as a "File ignored" warning; `lint()`
 * throws on it, so a broken mechanism cannot pass as "no errors". The cycle rule and the formatter need real files
 * (the cycle rule reads the modules a file imports; Prettier resolves its config from the file's path), so those
 * samples are written to a temporary folder inside the repository and removed afterwards.
 */
import { ESLint, type Linter } from 'eslint';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
let eslint: ESLint;
/**
 * A scratch folder inside the repository, so the real ESLint and Prettier configs apply to what is written there. It
 * must not be git-ignored: Prettier skips what .gitignore lists, and an ignored sample would "pass" the format check.
 */
let scratch: string;

beforeAll(async () => {
  eslint = new ESLint({ cwd: root });
  scratch = await mkdtemp(join(root, 'test', '.tmp-lint-'));
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function lint(filePath: string, code: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(root, filePath), warnIgnored: true });
  if (result === undefined) throw new Error(`ESLint returned no result for ${filePath}`);
  const ignored = result.messages.find((m) => m.ruleId === null && /ignored/i.test(m.message));
  if (ignored) throw new Error(`ESLint did not lint ${filePath}: ${ignored.message}`);
  const fatal = result.messages.find((m) => m.fatal);
  if (fatal) throw new Error(`ESLint could not parse the sample for ${filePath}: ${fatal.message}`);
  return result.messages;
}

/** Asserts exactly these [ruleId, message fragment] errors, in source order. */
async function expectErrors(filePath: string, code: string, expected: Array<[string, string]>): Promise<void> {
  const messages = await lint(filePath, code);
  expect(messages.map((m) => ({ ruleId: m.ruleId, severity: m.severity, message: m.message }))).toEqual(
    expected.map(([ruleId, fragment]) => ({ ruleId, severity: 2, message: expect.stringContaining(fragment) })),
  );
}

const ELECTRON = "Only electron/main and electron/preload may import 'electron'";
const BROKER = 'The broker is plain Node: it never reaches into the Electron shell or the renderer.';
const RENDERER_NODE = 'renderer/ runs in a sandboxed browser: no Node built-ins.';
const RENDERER_SCOPE = 'renderer/ imports only shared/ and its own files.';
const SHARED_NODE = 'shared/ is platform-neutral: no Node built-ins.';
const SHARED_SCOPE = 'shared/ imports nothing outside shared/.';

describe('the lint mechanism itself', () => {
  it('refuses to report "no errors" for a path no config covers', async () => {
    await expect(lint('notes/x.unknown-ext', 'export const a = 1;\n')).rejects.toThrow(/did not lint/);
  });

  it('refuses to report "no errors" for an ignored path', async () => {
    await expect(lint('out/main/x.ts', "import { app } from 'electron';\nexport const a = app;\n")).rejects.toThrow(/did not lint/);
  });
});

describe("(a) only electron/main and electron/preload import 'electron'", () => {
  const sample = "import { app } from 'electron';\nexport const a = app;\n";

  it.each([
    'electron/broker/x.ts',
    'electron/broker/identity/x.ts',
    'electron/cli/x.ts',
    'renderer/x.ts',
    'renderer/src/x.tsx',
    'shared/x.ts',
  ])('errors in %s', async (filePath) => {
    await expectErrors(filePath, sample, [['no-restricted-imports', ELECTRON]]);
  });

  it.each(['electron/main/x.ts', 'electron/main/windows/x.ts', 'electron/preload/x.ts'])('is allowed in %s', async (filePath) => {
    expect(await lint(filePath, sample)).toEqual([]);
  });

  it('also catches subpaths, type-only imports and dynamic import()/require()', async () => {
    await expectErrors('electron/broker/x.ts', "import type { App } from 'electron/main';\nexport type A = App;\n", [
      ['no-restricted-imports', ELECTRON],
    ]);
    await expectErrors('renderer/x.ts', "import { ipcRenderer } from 'electron/renderer';\nexport const i = ipcRenderer;\n", [
      ['no-restricted-imports', RENDERER_SCOPE],
    ]);
    await expectErrors('electron/broker/x.ts', "export const e = await import('electron');\n", [['no-restricted-syntax', ELECTRON]]);
    await expectErrors('shared/x.ts', "export const e = await import('electron/renderer');\n", [['no-restricted-syntax', ELECTRON]]);
    await expectErrors(
      'electron/cli/x.ts',
      "// eslint-disable-next-line @typescript-eslint/no-require-imports\nexport const e = require('electron');\n",
      [['no-restricted-syntax', ELECTRON]],
    );
  });

  it('does not confuse packages whose names start with "electron"', async () => {
    expect(await lint('electron/broker/x.ts', "import Store from 'electron-store';\nexport const s = Store;\n")).toEqual([]);
    expect(await lint('electron/broker/x.ts', "export const s = await import('electron-store');\n")).toEqual([]);
  });
});

describe('(b) renderer/ imports only shared/, its own files and browser packages', () => {
  it('errors on the broker, the Electron shell and Node built-ins', async () => {
    await expectErrors(
      'renderer/x.ts',
      [
        "import { LanyardError } from '../electron/broker/errors';",
        "import { readFile } from 'node:fs';",
        "import { readFileSync } from 'fs';",
        "import { buildCsp } from '../electron/main/security';",
        'export const all = [LanyardError, readFile, readFileSync, buildCsp];',
        '',
      ].join('\n'),
      [
        ['no-restricted-imports', RENDERER_SCOPE],
        ['no-restricted-imports', RENDERER_NODE],
        ['no-restricted-imports', RENDERER_NODE],
        ['no-restricted-imports', RENDERER_SCOPE],
      ],
    );
  });

  it('errors from deeper folders too', async () => {
    await expectErrors(
      'renderer/src/pages/x.tsx',
      "import { redactText } from '../../../electron/broker/errors';\nexport const r = redactText;\n",
      [['no-restricted-imports', RENDERER_SCOPE]],
    );
  });

  it('allows shared/, its own modules and react', async () => {
    const code = [
      "import { ErrorCodes } from '../shared/errors';",
      "import { App } from './App';",
      "import { useState } from 'react';",
      'export const all = [ErrorCodes, App, useState];',
      '',
    ].join('\n');
    expect(await lint('renderer/x.ts', code)).toEqual([]);
    expect(await lint('renderer/src/x.tsx', code.replace('../shared/errors', '../../shared/errors'))).toEqual([]);
  });
});

describe('(c) shared/ is platform-neutral', () => {
  it('errors on Node built-ins, Electron and the other layers', async () => {
    await expectErrors(
      'shared/x.ts',
      [
        "import { randomUUID } from 'node:crypto';",
        "import { join } from 'path';",
        "import { app } from 'electron';",
        "import { thing } from '../renderer/x';",
        "import { other } from '../electron/broker/errors';",
        'export const all = [randomUUID, join, app, thing, other];',
        '',
      ].join('\n'),
      [
        ['no-restricted-imports', SHARED_NODE],
        ['no-restricted-imports', SHARED_NODE],
        ['no-restricted-imports', ELECTRON],
        ['no-restricted-imports', SHARED_SCOPE],
        ['no-restricted-imports', SHARED_SCOPE],
      ],
    );
  });

  it('errors on DOM and Node globals', async () => {
    await expectErrors('shared/x.ts', 'export const all = [window, document, process, Buffer];\n', [
      ['no-restricted-globals', 'shared/ is platform-neutral: no DOM globals.'],
      ['no-restricted-globals', 'shared/ is platform-neutral: no DOM globals.'],
      ['no-restricted-globals', 'shared/ is platform-neutral: no Node globals.'],
      ['no-restricted-globals', 'shared/ is platform-neutral: no Node globals.'],
    ]);
  });

  it('allows plain TypeScript', async () => {
    expect(await lint('shared/x.ts', "import { ErrorCodes } from './errors';\nexport const codes = Object.values(ErrorCodes);\n")).toEqual(
      [],
    );
  });
});

describe('(d) the broker never reaches into the Electron shell or the renderer', () => {
  it.each([
    ['electron/broker/x.ts', '../../renderer/x'],
    ['electron/broker/x.ts', '../main/x'],
    ['electron/broker/x.ts', '../preload/index'],
    ['electron/broker/identity/x.ts', '../../main/x'],
    ['electron/broker/identity/x.ts', '../../../renderer/src/App'],
    ['electron/cli/x.ts', '../main/security'],
  ])('%s importing %s errors', async (filePath, target) => {
    await expectErrors(filePath, `import { a } from '${target}';\nexport const b = a;\n`, [['no-restricted-imports', BROKER]]);
  });

  it('allows the broker its own modules and shared/', async () => {
    const code =
      "import { LanyardError } from '../errors';\nimport { ErrorCodes } from '../../../shared/errors';\nexport const all = [LanyardError, ErrorCodes];\n";
    expect(await lint('electron/broker/identity/x.ts', code)).toEqual([]);
  });
});

describe('(e) no import cycles, type-only ones included', () => {
  let seq = 0;

  /** Writes the files under a fresh folder and lints each one from disk, returning the messages by file name. */
  async function lintTree(files: Record<string, string>): Promise<Record<string, Linter.LintMessage[]>> {
    const dir = join(scratch, `cycle-${++seq}`);
    for (const [name, code] of Object.entries(files)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), code);
    }
    const out: Record<string, Linter.LintMessage[]> = {};
    for (const name of Object.keys(files)) out[name] = await lint(relative(root, join(dir, name)), files[name]!);
    return out;
  }

  const CYCLE: [string, string] = ['lanyard/no-cycle', 'Dependency cycle'];

  it('fires on a two-file cycle of value imports', async () => {
    const result = await lintTree({
      'a.ts': "import { b } from './b';\nexport const a = (): number => b() + 1;\n",
      'b.ts': "import { a } from './a';\nexport const b = (): number => a() - 1;\n",
    });
    expect(result['a.ts']!.map((m) => [m.ruleId, m.message])).toEqual([[CYCLE[0], expect.stringContaining(CYCLE[1])]]);
    expect(result['b.ts']!.map((m) => [m.ruleId, m.message])).toEqual([[CYCLE[0], expect.stringContaining(CYCLE[1])]]);
  });

  it('fires on a cycle made only of `import type` (which import-x/no-cycle alone skips)', async () => {
    const result = await lintTree({
      'a.ts': "import type { B } from './b';\nexport interface A {\n  b?: B;\n}\n",
      'b.ts': "import type { A } from './a';\nexport interface B {\n  a?: A;\n}\n",
    });
    expect(result['a.ts']!.map((m) => m.ruleId)).toEqual([CYCLE[0]]);
    expect(result['b.ts']!.map((m) => m.ruleId)).toEqual([CYCLE[0]]);
  });

  it('fires on a shell whose views import a type back from it, through a folder and .tsx', async () => {
    const result = await lintTree({
      'App.tsx': "import { View } from './views/View';\nexport interface Ctx {\n  n: number;\n}\nexport const App = View;\n",
      'views/View.tsx': "import type { Ctx } from '../App';\nexport const View = (ctx: Ctx): number => ctx.n;\n",
    });
    expect(result['App.tsx']!.map((m) => m.ruleId)).toEqual([CYCLE[0]]);
    expect(result['views/View.tsx']!.map((m) => m.ruleId)).toEqual([CYCLE[0]]);
  });

  it('stays quiet when the same modules form a chain, not a loop', async () => {
    const result = await lintTree({
      'a.ts': "import type { B } from './b';\nimport { b } from './b';\nexport const a = (x: B): number => b(x) + 1;\n",
      'b.ts': "import type { C } from './c';\nexport type B = C;\nexport const b = (x: B): number => x.n;\n",
      'c.ts': 'export interface C {\n  n: number;\n}\n',
    });
    expect(result).toEqual({ 'a.ts': [], 'b.ts': [], 'c.ts': [] });
  });
});

describe('(f) formatting: `npm run lint` fails on unformatted code', () => {
  const run = promisify(execFile);

  /** Runs the Prettier command of the `lint` script on one file, from the repository root, as `npm run lint` does. */
  async function prettierCheck(file: string): Promise<{ code: number; output: string }> {
    const script = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { scripts: { lint: string } };
    const command = /prettier (--check[^&]*?) \.$/.exec(script.scripts.lint);
    if (!command) throw new Error(`the lint script no longer runs "prettier --check ... .": ${script.scripts.lint}`);
    const args = command[1]!.trim().split(/\s+/);
    try {
      const r = await run(process.execPath, [join(root, 'node_modules/prettier/bin/prettier.cjs'), ...args, relative(root, file)], {
        cwd: root,
      });
      return { code: 0, output: r.stdout + r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }

  it('reports a badly formatted file and passes the same code once formatted', async () => {
    const bad = join(scratch, 'unformatted.ts');
    await writeFile(bad, 'export const  a = {b:1,c:"two"}\n');
    const failed = await prettierCheck(bad);
    expect(failed.code).not.toBe(0);
    expect(failed.output).toContain('unformatted.ts');

    const good = join(scratch, 'formatted.ts');
    await writeFile(good, "export const a = { b: 1, c: 'two' };\n");
    expect(await prettierCheck(good)).toEqual({ code: 0, output: '' });
  });

  it('wraps at a print width of 140, not at 80', async () => {
    /** One `export const list = [...]` line of about `width` characters, valid and otherwise formatted. */
    const line = (width: number): string => {
      const items: string[] = [];
      while (`export const list = [${items.join(', ')}];`.length < width - 6) items.push(`'${items.length % 10}'`);
      return `export const list = [${items.join(', ')}];\n`;
    };
    const fits = join(scratch, 'fits.ts');
    await writeFile(fits, line(130));
    expect(await prettierCheck(fits)).toEqual({ code: 0, output: '' });

    const tooLong = join(scratch, 'too-long.ts');
    await writeFile(tooLong, line(160));
    const wide = await prettierCheck(tooLong);
    expect(wide.code).not.toBe(0);
    expect(wide.output).toContain('too-long.ts');
  });
});
