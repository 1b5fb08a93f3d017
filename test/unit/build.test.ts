/**
 * The build outputs and the packaging config, checked without the Electron binary:
 *   - out/cli/lanyard.js is an executable Node script that never loads 'electron', and runs;
 *   - out/main, out/preload and out/renderer have the shape Electron needs (sandboxed CJS preload, strict CSP);
 *   - electron-builder.yml passes electron-builder's own schema and declares what the product needs.
 * Missing outputs are built first (`npm run build` normally made them), so nothing here is ever skipped.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire, builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../../bench/lib/build';
import { buildCsp } from '../../electron/main/security';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const require = createRequire(import.meta.url);

const CLI = resolve(root, 'out/cli/lanyard.js');
const MAIN = resolve(root, 'out/main/index.js');
const PRELOAD = resolve(root, 'out/preload/index.cjs');
const RENDERER_HTML = resolve(root, 'out/renderer/index.html');

interface PackageJson {
  version: string;
  main: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
}
let pkg: PackageJson;

beforeAll(async () => {
  pkg = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8')) as PackageJson;
  if (!existsSync(CLI)) await run(process.execPath, ['scripts/build-cli.mjs'], { cwd: root });
  if (![MAIN, PRELOAD, RENDERER_HTML].every((f) => existsSync(f))) {
    const electronVite = join(dirname(require.resolve('electron-vite/package.json')), 'bin/electron-vite.js');
    await run(process.execPath, [electronVite, 'build'], { cwd: root });
  }
}, 120_000);

/** Every module specifier a bundle loads: static and dynamic imports, re-exports and require() calls. */
function loadedModules(bundle: string): string[] {
  // Comment lines load nothing: bundled libraries keep JSDoc types such as `{import('./types/index').Options}`.
  const code = bundle.replace(/^\s*(\*|\/\*|\/\/).*$/gm, '');
  const patterns = [
    /^\s*import\s+(?:[^'"]*?\s+from\s+)?["']([^"']+)["']/gm,
    /^\s*export\s+[^'"]*?\s+from\s+["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    // Not inside a string or template: ajv (bundled with the MCP SDK) keeps `require("ajv/dist/runtime/…")` as text
    // for the code it generates, and never loads it.
    /(?<![`'"])\brequire\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns.flatMap((p) => [...code.matchAll(p)].map((m) => m[1] ?? ''));
}
const isElectron = (specifier: string): boolean => specifier === 'electron' || specifier.startsWith('electron/');
const isBuiltin = (specifier: string): boolean => specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0] ?? '');
const packageName = (specifier: string): string =>
  specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] ?? '');

/** The CLI's code: the entry and the chunks esbuild split off (commands load theirs on demand). */
async function cliCode(): Promise<string> {
  const dir = dirname(CLI);
  const files = [
    CLI,
    ...(await readdir(join(dir, 'chunks')).catch(() => [] as string[])).filter((f) => f.endsWith('.js')).map((f) => join(dir, 'chunks', f)),
  ];
  return (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
}

describe('out/cli/lanyard.js', () => {
  it('is what package.json "bin" points at', () => {
    expect(resolve(root, pkg.bin['lanyard'] ?? '')).toBe(CLI);
  });

  it('starts with the node shebang and is executable', async () => {
    const code = await readFile(CLI, 'utf8');
    expect(code.split('\n')[0]).toBe('#!/usr/bin/env node');
    if (process.platform !== 'win32') expect((await stat(CLI)).mode & 0o111).toBe(0o111);
  });

  it("never loads 'electron' (entry and every split chunk)", async () => {
    const code = await cliCode();
    expect(code).not.toMatch(/require\(\s*["']electron(\/[^"']*)?["']\s*\)/);
    expect(code).not.toMatch(/from\s*["']electron(\/[^"']*)?["']/);
    expect(code).not.toMatch(/import\(\s*["']electron(\/[^"']*)?["']\s*\)/);
    expect(loadedModules(code).filter(isElectron)).toEqual([]);
  });

  it('loads only Node built-ins and production dependencies (the rest is bundled)', async () => {
    const external = loadedModules(await cliCode()).filter((s) => !isBuiltin(s) && !s.startsWith('./') && !s.startsWith('../'));
    for (const specifier of external) expect(Object.keys(pkg.dependencies)).toContain(packageName(specifier));
  });

  it('is ASCII only, comments included (V8 would hold a chunk with one em dash as two bytes per character, for as long as it runs)', async () => {
    expect((await cliCode()).match(/[\u0080-\uffff].{0,40}/g) ?? []).toEqual([]);
  });

  it('prints its usage with --help', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--help']);
    expect(stdout).toMatch(/^Usage: lanyard <command>/);
    for (const command of ['serve', 'stdio', 'login', 'logout', 'status', 'servers', 'connect', 'doctor']) {
      expect(stdout).toMatch(new RegExp(`^\\s+${command}\\s+\\S`, 'm'));
    }
  });

  it('prints the package version with --version', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--version']);
    expect(stdout.trim()).toBe(pkg.version);
  });

  it('exits 2 with the usage on an unknown command', async () => {
    const failure = await run(process.execPath, [CLI, 'frobnicate']).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
  });

  it("fails the build when the CLI's code imports 'electron'", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lanyard-cli-guard-'));
    try {
      await writeFile(join(dir, 'entry.ts'), "import { app } from 'electron/main';\nconsole.log(app);\n");
      const failure = await run(
        process.execPath,
        ['scripts/build-cli.mjs', '--entry', join(dir, 'entry.ts'), '--outfile', join(dir, 'out.js')],
        { cwd: root },
      ).catch((e: unknown) => e);
      expect(failure).toMatchObject({ code: 1, stderr: expect.stringContaining("cannot import 'electron/main'") });
      expect(existsSync(join(dir, 'out.js'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the benchmark's patched builds fail the same way on an 'electron' import", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lanyard-bench-guard-'));
    try {
      const entry = await readFile(resolve(root, 'electron/cli/lanyard.ts'), 'utf8');
      const firstImport = /^import .*$/m.exec(entry)![0];
      const patch = { file: 'electron/cli/lanyard.ts', find: firstImport, replace: `import 'electron/main';\n${firstImport}` };
      await expect(buildCli(root, dir, [patch])).rejects.toThrow("cannot import 'electron/main'");
      expect(existsSync(join(dir, 'lanyard.js'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('electron-vite output', () => {
  it('main is the ESM entry package.json and electron-builder name, loading only electron, built-ins and dependencies', async () => {
    expect(resolve(root, pkg.main)).toBe(MAIN);
    const code = await readFile(MAIN, 'utf8');
    expect(code).toMatch(/^import .* from "electron";$/m);
    // electron-builder ships only production dependencies: a devDependency loaded at run time would crash the app.
    const external = loadedModules(code).filter((s) => !isElectron(s) && !isBuiltin(s));
    for (const specifier of external) expect(Object.keys(pkg.dependencies)).toContain(packageName(specifier));
  });

  it('the preload is a self-contained CommonJS script, as a sandboxed preload must be', async () => {
    const code = await readFile(PRELOAD, 'utf8');
    expect(code).not.toMatch(/^\s*(import|export)\s/m);
    expect(code).toContain('require("electron")');
    // A sandboxed preload can require only 'electron' and a few polyfilled modules, never node_modules.
    expect(loadedModules(code).filter((s) => s !== 'electron')).toEqual([]);
    expect(code).toContain('exposeInMainWorld("lanyard"');
  });

  it('the renderer page carries the CSP from buildCsp() and no inline script', async () => {
    const html = await readFile(RENDERER_HTML, 'utf8');
    const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"/i.exec(html);
    expect(meta?.[1]).toBe(buildCsp({ meta: true, brokerPort: '*' }));
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\.\/assets\/[^"]+\.js"/);
      expect(body?.trim()).toBe('');
    }
  });
});

describe('electron-builder.yml', () => {
  interface Target {
    target: string;
  }
  type Targets = string | Array<string | Target> | undefined;
  interface BuilderConfig {
    appId: string;
    productName: string;
    directories: { output: string };
    files: string[];
    extraMetadata: { main: string };
    protocols: Array<{ name: string; schemes: string[] }>;
    electronFuses: Record<string, boolean>;
    mac: { target: Targets; category: string; hardenedRuntime: boolean; extendInfo: Record<string, unknown> };
    win: { target: Targets };
    nsis: { oneClick: boolean; perMachine: boolean };
    linux: { target: Targets; category: string; mimeTypes: string[]; desktop: { entry: Record<string, string> } };
  }
  const yaml = require('js-yaml') as { load(text: string): unknown };
  const { validateConfiguration } = require('app-builder-lib/out/util/config/config.js') as {
    validateConfiguration(config: unknown, debugLogger: { isEnabled: boolean; add(key: string, value: unknown): void }): Promise<void>;
  };
  const noDebug = { isEnabled: false, add: () => undefined };
  const targets = (t: Targets): string[] => (t === undefined ? [] : [t].flat().map((x) => (typeof x === 'string' ? x : x.target)));

  let config: BuilderConfig;
  beforeAll(async () => {
    config = yaml.load(await readFile(resolve(root, 'electron-builder.yml'), 'utf8')) as BuilderConfig;
  });

  it("passes electron-builder's own configuration schema", async () => {
    await expect(validateConfiguration(config, noDebug)).resolves.toBeUndefined();
  });

  it('(the schema check can fail: a misspelt option is rejected)', async () => {
    await expect(validateConfiguration({ ...config, protocol: config.protocols }, noDebug)).rejects.toThrow(/unknown property 'protocol'/);
    await expect(validateConfiguration({ ...config, linux: { ...config.linux, mimeType: [] } }, noDebug)).rejects.toThrow(
      /configuration\.linux/,
    );
  });

  it('identifies the app and packages the electron-vite output', () => {
    expect(config.appId).toBe('dev.lanyard.app');
    expect(config.productName).toBe('Lanyard');
    expect(config.directories.output).toBe('release');
    expect(config.files).toEqual(expect.arrayContaining(['out/**', 'package.json']));
    expect(resolve(root, config.extraMetadata.main)).toBe(MAIN);
  });

  it('registers the lanyard:// scheme on every platform', () => {
    expect(config.protocols).toContainEqual({ name: 'Lanyard', schemes: ['lanyard'] });
    expect(config.linux.mimeTypes).toContain('x-scheme-handler/lanyard');
  });

  it('builds dmg, nsis, AppImage and deb', () => {
    expect(targets(config.mac.target)).toContain('dmg');
    expect(targets(config.win.target)).toContain('nsis');
    expect(targets(config.linux.target)).toEqual(expect.arrayContaining(['AppImage', 'deb']));
  });

  it('is a tray app on macOS, per-user on Windows, a Development app on Linux', () => {
    expect(config.mac.extendInfo['LSUIElement']).toBe(true);
    expect(config.mac.hardenedRuntime).toBe(true);
    expect(config.mac.category).toBe('public.app-category.developer-tools');
    expect(config.nsis).toMatchObject({ oneClick: false, perMachine: false });
    expect(config.linux.category).toBe('Development');
    expect(config.linux.desktop.entry['Categories']).toBe('Development;');
  });

  it('locks the Electron fuses', () => {
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
    });
  });
});

describe('icons', () => {
  /** Width and height from a PNG's IHDR chunk, after checking the signature. */
  async function pngSize(path: string): Promise<[number, number]> {
    const bytes = await readFile(resolve(root, path));
    expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
    return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  }

  it('has an app icon large enough for every platform (macOS needs 512×512 or more)', async () => {
    expect(await pngSize('build/icon.png')).toEqual([1024, 1024]);
  });

  it.each([
    ['resources/tray/trayTemplate.png', 16],
    ['resources/tray/trayTemplate@2x.png', 32],
    ['resources/tray/tray.png', 32],
  ])('has the tray icon %s at %i px', async (path, size) => {
    expect(await pngSize(path)).toEqual([size, size]);
  });
});
