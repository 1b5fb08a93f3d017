import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { enableCompileCache } from '../../electron/cli/compile-cache';

let home: string;
const calls: Array<string | undefined> = [];
const enable = (directory?: string) => {
  calls.push(directory);
  return { status: 1, directory };
};

beforeEach(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'lanyard-cc-'));
  await chmod(home, 0o700);
  calls.length = 0;
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe.skipIf(process.platform === 'win32')('module compile cache', () => {
  it('is kept under a private Lanyard home', () => {
    expect(enableCompileCache({ env: { LANYARD_HOME: home }, enable })).toBe(path.join(home, 'compile-cache'));
    expect(calls).toEqual([path.join(home, 'compile-cache')]);
  });

  it('is not used where another user could write, when Node has none, or when Node is told not to', async () => {
    await chmod(home, 0o755);
    expect(enableCompileCache({ env: { LANYARD_HOME: home }, enable })).toBeUndefined();
    await chmod(home, 0o700);
    expect(enableCompileCache({ env: { LANYARD_HOME: home, NODE_DISABLE_COMPILE_CACHE: '1' }, enable })).toBeUndefined();
    expect(enableCompileCache({ env: { LANYARD_HOME: path.join(home, 'missing') }, enable })).toBeUndefined();
    expect(enableCompileCache({ env: { LANYARD_HOME: home }, enable: undefined })).toBeUndefined();
    expect(calls).toEqual([]);
  });
});
