/**
 * Proves that every architecture boundary in eslint.config.js fires (DESIGN.md "Layout"): violating code is linted
 * with the project's real config, as if it lived at a path inside the folder under test, and each expected error is
 * matched by rule id and by the message that explains the boundary. Allowed imports must produce no message at all.
 *
 * The files are virtual (`lintText` with a `filePath`): ESLint picks the config by path without reading the disk.
 * A path that no config matches, or one that is ignored, comes back as a "File ignored" warning; `lint()` throws on
 * it, so a broken mechanism cannot pass as "no errors".
 */
import { ESLint, type Linter } from 'eslint';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: root });
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
