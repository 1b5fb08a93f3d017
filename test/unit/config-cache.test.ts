import type * as fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigStore, createConfBackend } from '../../electron/broker/config/store';

// Counts the store's own stat calls (conf, an npm package, keeps its own fs and is counted through the backend).
const calls = vi.hoisted(() => ({ stat: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof fs>();
  const statSync = ((...args: Parameters<typeof actual.statSync>) => {
    calls.stat++;
    return actual.statSync(...args);
  }) as typeof actual.statSync;
  return { ...actual, default: { ...actual, statSync }, statSync };
});

let root: string;
let store: ConfigStore | undefined;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'lanyard-config-cache-'));
});
afterEach(async () => {
  store?.close();
  await rm(root, { recursive: true, force: true });
});

function countingStore(): { store: ConfigStore; reads: () => number } {
  const backend = createConfBackend(root);
  let reads = 0;
  const counted = { ...backend, read: () => (reads++, backend.read()) };
  if (backend.watch) counted.watch = backend.watch.bind(backend);
  return { store: new ConfigStore(counted), reads: () => reads };
}

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('the broker reads its config without touching the disk per call', () => {
  it('a watched config is served from memory (no read, no stat per load), and an outside edit is still seen', async () => {
    const { store: s, reads } = countingStore();
    store = s;
    s.update((d) => {
      d.gateway.port = 48100;
    });
    const off = s.onChange(() => undefined); // what the broker does at start: watch the file
    s.load();
    const before = { reads: reads(), stat: calls.stat };
    for (let i = 0; i < 1_000; i++) expect(s.load().gateway.port).toBe(48100); // 1,000 tools/calls' worth of config lookups
    expect(reads() - before.reads).toBe(0);
    expect(calls.stat - before.stat).toBe(0);

    // Someone else (the tray app, an editor, `lanyard` in another terminal) rewrites the file: the watch makes the
    // next load look again.
    await writeFile(s.path, (await readFile(s.path, 'utf8')).replace('48100', '48101'));
    await waitFor(() => s.load().gateway.port === 48101);
    off();
  });

  it('an unwatched store (a one-shot CLI command) checks the file on every load', async () => {
    const { store: s } = countingStore();
    store = s;
    s.update((d) => {
      d.gateway.port = 48200;
    });
    s.load();
    await writeFile(s.path, (await readFile(s.path, 'utf8')).replace('48200', '48201'));
    expect(s.load().gateway.port).toBe(48201);
  });
});
