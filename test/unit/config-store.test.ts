import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { lanyardPaths, resolveLanyardHome } from '../../electron/broker/paths';
import type { LanyardConfig } from '../../electron/broker/config/schema';
import { ConfigStore, createConfBackend, openConfigStore, type ConfigBackend } from '../../electron/broker/config/store';

const linear = { id: 'linear', name: 'Linear', url: 'https://mcp.linear.app/mcp', enabled: true };

function catchError(fn: () => unknown): LanyardError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LanyardError) return e;
    throw e;
  }
  throw new Error('expected a LanyardError');
}

let root: string;
let home: string;
const stores: ConfigStore[] = [];
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'lanyard-config-'));
  home = path.join(root, 'home');
});
afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  await rm(root, { recursive: true, force: true });
});
const open = (h = home) => {
  const s = openConfigStore(h);
  stores.push(s);
  return s;
};
/** A store whose file was written by someone else (a text editor, an older Lanyard). */
const openWithFile = async (text: string) => {
  await mkdir(home, { recursive: true });
  const s = open();
  await writeFile(s.path, text);
  return s;
};

describe('ConfigStore over conf', () => {
  it('a fresh home loads the defaults without creating the file', () => {
    const store = open();
    expect(store.path).toBe(path.join(home, 'config.json'));
    expect(store.load()).toMatchObject({ version: 1, servers: [], gateway: { port: 47821 } });
    expect(existsSync(store.path)).toBe(false);
  });

  it('update writes a validated, defaulted document with mode 0600 in a 0700 home', async () => {
    const store = open();
    const written = store.update((draft) => {
      draft.idp = {
        issuer: 'https://acme.okta.com',
        clientId: '0oa1',
        clientAuth: { method: 'none' },
        scopes: ['openid', 'offline_access'],
      };
      draft.servers.push(linear);
    });
    expect(written.servers).toEqual([linear]);
    const onDisk = JSON.parse(await readFile(store.path, 'utf8')) as LanyardConfig;
    expect(onDisk).toEqual(written);
    expect(open().load()).toEqual(written);
    if (process.platform !== 'win32') {
      expect((await stat(store.path)).mode & 0o777).toBe(0o600);
      expect((await stat(home)).mode & 0o777).toBe(0o700);
    }
  });

  it('reuses the parsed file while it is unchanged, and sees every change: its own update and an outside edit', async () => {
    const store = open();
    store.update((draft) => {
      draft.servers.push(linear);
    });
    const first = store.load();
    expect(store.load().servers).toBe(first.servers); // unchanged file: no re-read
    store.update((draft) => {
      draft.gateway.port = 48000;
    });
    expect(store.load().gateway.port).toBe(48000);
    // Another process (the CLI, an editor) rewrites the file: same size even, different content.
    const text = (await readFile(store.path, 'utf8')).replace('48000', '48001');
    await writeFile(store.path, text);
    expect(store.load().gateway.port).toBe(48001);
  });

  it('a mutator may return a new object instead of mutating', () => {
    const store = open();
    const written = store.update((c) => ({ ...c, servers: [{ id: 'x', name: 'X', url: 'https://x.example.com/mcp' }] }));
    expect(written.servers[0]).toEqual({ id: 'x', name: 'X', url: 'https://x.example.com/mcp', enabled: true });
  });

  it('an invalid update throws CONFIG_INVALID naming the field and leaves the file byte-identical', async () => {
    const store = open();
    store.update((d) => {
      d.servers.push(linear);
    });
    const before = await readFile(store.path);
    const beforeStat = await stat(store.path);
    const error = catchError(() =>
      store.update((d) => {
        d.servers.push({ id: 'evil', name: 'Evil', url: 'http://evil.example.com/mcp', enabled: true });
      }),
    );
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toBe(
      'The change was not saved: servers[1].url: must be an https URL (http is allowed only for 127.0.0.1/localhost)',
    );
    expect(error.fix).toBe('Correct servers[1].url and try again; config.json was not changed.');
    expect(await readFile(store.path)).toEqual(before);
    expect((await stat(store.path)).mtimeMs).toBe(beforeStat.mtimeMs);
  });

  it('a mutator that throws writes nothing', async () => {
    const store = open();
    store.update((d) => {
      d.servers.push(linear);
    });
    const before = await readFile(store.path);
    expect(() =>
      store.update((d) => {
        d.servers = [];
        throw new Error('changed my mind');
      }),
    ).toThrow('changed my mind');
    expect(await readFile(store.path)).toEqual(before);
  });

  it('an invalid file: load names each field and the file to edit; update refuses and keeps it', async () => {
    const text = JSON.stringify({
      version: 1,
      servers: [linear, { ...linear, id: 'b', url: 'http://b.example.com' }],
      gateway: { port: 22 },
    });
    const store = await openWithFile(text);
    const error = catchError(() => store.load());
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toBe(
      `${store.path} is invalid: servers[1].url: must be an https URL (http is allowed only for 127.0.0.1/localhost); gateway.port: must be 0 (any free port, tests only) or between 1024 and 65535`,
    );
    expect(error.fix).toBe(`Edit ${store.path} and change servers[1].url and gateway.port as described, then retry.`);
    expect(() => store.update((d) => d)).toThrow(LanyardError);
    expect(await readFile(store.path, 'utf8')).toBe(text);
  });

  it('broken JSON: says where, never quotes the text', async () => {
    const store = await openWithFile('{\n  "version": 1,\n  "token": sk_live_abcdef123456\n}');
    const error = catchError(() => store.load());
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toBe(`${store.path} is not valid JSON (syntax error at line 3, column 12).`);
    expect(error.fix).toContain(store.path);
    expect(`${error.message} ${error.fix}`).not.toContain('sk_live');
  });

  it('an empty file or {} is a fresh install', async () => {
    const store = await openWithFile('');
    expect(store.load().version).toBe(1);
    await writeFile(store.path, '{}');
    expect(store.load().servers).toEqual([]);
  });

  it("ignores conf/electron-store's __internal__ bookkeeping", async () => {
    const store = await openWithFile(JSON.stringify({ version: 1, __internal__: { migrations: { version: '0.1.0' } } }));
    expect(store.load().version).toBe(1);
  });

  it('a file from a newer Lanyard says so', async () => {
    const store = await openWithFile(JSON.stringify({ version: 2, servers: [] }));
    expect(catchError(() => store.load()).message).toContain('version: is 2: this file was written by a newer Lanyard');
  });

  it('onChange fires for our own update and for an edit by another process; an invalid edit goes to onError', async () => {
    const store = open();
    store.update((d) => {
      d.servers.push(linear);
    });
    const seen: LanyardConfig[] = [];
    const errors: LanyardError[] = [];
    const off = store.onChange(
      (c) => seen.push(c),
      (e) => errors.push(e),
    );
    store.update((d) => {
      d.gateway.port = 50000;
    });
    expect(seen.map((c) => c.gateway.port)).toEqual([50000]);

    // Another process (the tray app via electron-store, or an editor) rewrites the file.
    const other = open();
    other.update((d) => {
      d.servers = [];
    });
    await waitFor(() => seen.length === 2);
    expect(seen[1]?.servers).toEqual([]);

    await writeFile(store.path, '{"version": 1, "servers": [{"id": "BAD"}]}');
    await waitFor(() => errors.length === 1);
    expect(errors[0]?.message).toContain('servers[0].id');

    off();
    await writeFile(store.path, JSON.stringify({ version: 1, gateway: { port: 50001 } }));
    await new Promise((r) => setTimeout(r, 150));
    expect(seen).toHaveLength(2);
  });
});

describe('ConfigStore over an injected backend (how electron/main plugs in electron-store)', () => {
  it('reads and writes through the backend only', () => {
    let doc: unknown = { version: 1, servers: [linear] };
    const writes: unknown[] = [];
    const backend: ConfigBackend = {
      path: '/virtual/config.json',
      read: () => doc,
      write: (v) => {
        writes.push(v);
        doc = v;
      },
    };
    const store = new ConfigStore(backend);
    expect(store.path).toBe('/virtual/config.json');
    expect(store.load().servers).toEqual([linear]);
    store.update((d) => {
      d.servers[0]!.enabled = false;
    });
    expect(writes).toHaveLength(1);
    expect((doc as LanyardConfig).servers[0]?.enabled).toBe(false);
    expect(() => store.update((d) => ({ ...d, version: 3 as 1 }))).toThrow(/version/);
    expect(writes).toHaveLength(1);
  });

  it('maps a backend read failure to CONFIG_INVALID naming the file', () => {
    const backend: ConfigBackend = {
      path: '/virtual/config.json',
      read: () => {
        throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      },
      write: () => undefined,
    };
    const error = catchError(() => new ConfigStore(backend).load());
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toBe('Could not read /virtual/config.json (EACCES).');
  });
});

describe('LANYARD_HOME relocation', () => {
  it('two homes are two independent configs', () => {
    const homeA = resolveLanyardHome({ LANYARD_HOME: path.join(root, 'a') });
    const homeB = resolveLanyardHome({ LANYARD_HOME: path.join(root, 'b') });
    const a = new ConfigStore(createConfBackend(homeA));
    const b = new ConfigStore(createConfBackend(homeB));
    a.update((d) => {
      d.servers.push(linear);
    });
    expect(a.path).toBe(lanyardPaths(homeA).configFile);
    expect(b.load().servers).toEqual([]);
    expect(new ConfigStore(createConfBackend(homeA)).load().servers).toEqual([linear]);
  });
});

async function waitFor(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}
