import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { classifyKeychainFailure, toKeychainError } from '../../electron/broker/secrets/keychain-errors';
import { KeychainSecretStore, describeKeychain, type KeyringBinding } from '../../electron/broker/secrets/keychain-store';

/**
 * The errors @napi-rs/keyring 2.1.2 actually throws on Linux (observed on Debian 12 / gnome-keyring; the integration
 * test reproduces each against real daemons). keyring-rs puts the platform's words in `cause` as well as `message`;
 * the JS error's `code` is always "GenericFailure", so only the text tells them apart.
 */
function napiError(message: string, cause: string): Error {
  return Object.assign(new Error(message, { cause: new Error(cause) }), { code: 'GenericFailure' });
}
const REAL = {
  noBusSocket: napiError(
    'Platform failure: DBus error: Failed to connect to socket /nonexistent: No such file or directory',
    'DBus error: Failed to connect to socket /nonexistent: No such file or directory',
  ),
  noBusUnset: napiError(
    'Platform failure: DBus error: Using X11 for dbus-daemon autolaunch was disabled at compile time, set your DBUS_SESSION_BUS_ADDRESS instead',
    'DBus error: Using X11 for dbus-daemon autolaunch was disabled at compile time, set your DBUS_SESSION_BUS_ADDRESS instead',
  ),
  noBusFind: napiError(
    'zbus error: Failed to connect to address `unix:path=/nonexistent`: No such file or directory (os error 2)',
    'Failed to connect to address `unix:path=/nonexistent`: No such file or directory (os error 2)',
  ),
  noProvider: napiError(
    'Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files',
    'DBus error: The name org.freedesktop.secrets was not provided by any .service files',
  ),
  noCollection: napiError("Couldn't access platform storage: Secret Service: no result found", 'Secret Service: no result found'),
  locked: napiError(
    "Couldn't access platform storage: Secret Service: unlock prompt was dismissed",
    'Secret Service: unlock prompt was dismissed',
  ),
  lockedFind: napiError(
    'zbus error: org.freedesktop.Secret.Error.IsLocked: Cannot get secret of a locked object',
    'org.freedesktop.Secret.Error.IsLocked: Cannot get secret of a locked object',
  ),
  accessDenied: napiError("Couldn't access platform storage: AccessDenied", 'AccessDenied'),
  macLocked: napiError("Couldn't access platform storage: User interaction is not allowed.", 'User interaction is not allowed.'),
  winDenied: napiError('Platform failure: Access is denied. (os error 5)', 'Access is denied. (os error 5)'),
  tooLong: napiError(
    "Attribute 'password' is longer than platform limit of 2560 chars",
    "Attribute 'password' is longer than platform limit of 2560 chars",
  ),
};

/** An in-memory keychain with per-call latency and scripted failures, recording every native call. */
class FakeKeyring implements KeyringBinding {
  readonly items = new Map<string, string>();
  readonly calls: string[] = [];
  failNext: Partial<Record<'get' | 'set' | 'delete' | 'find', Error>> = {};
  /** Milliseconds per call kind; sets slower than gets, so an unordered store would reorder them. */
  delay = { get: 1, set: 8, delete: 4, find: 2 };
  hang = false;
  /** Mimics the kernel-keyring fallback: accepts writes, returns nothing. */
  blackHole = false;

  private async step(kind: 'get' | 'set' | 'delete' | 'find', label: string) {
    this.calls.push(label);
    if (this.hang) await new Promise(() => undefined);
    await new Promise((r) => setTimeout(r, this.delay[kind]));
    const failure = this.failNext[kind];
    if (failure) {
      delete this.failNext[kind];
      throw failure;
    }
  }
  async getPassword(service: string, account: string) {
    await this.step('get', `get ${account}`);
    return this.blackHole ? null : (this.items.get(`${service}/${account}`) ?? null);
  }
  async setPassword(service: string, account: string, password: string) {
    await this.step('set', `set ${account}=${password}`);
    this.items.set(`${service}/${account}`, password);
  }
  async deletePassword(service: string, account: string) {
    await this.step('delete', `delete ${account}`);
    return this.items.delete(`${service}/${account}`);
  }
  async findCredentials(service: string) {
    await this.step('find', 'find');
    return [...this.items]
      .filter(([k]) => k.startsWith(`${service}/`))
      .map(([k, password]) => ({ account: k.slice(service.length + 1), password: this.blackHole ? '' : password }));
  }
}

const make = (binding = new FakeKeyring(), options: { platform?: NodeJS.Platform; timeoutMs?: number } = {}) => ({
  binding,
  store: new KeychainSecretStore({
    service: 'lanyard:test',
    binding,
    platform: options.platform ?? 'linux',
    timeoutMs: options.timeoutMs ?? 5000,
  }),
});

async function rejection(p: Promise<unknown>): Promise<LanyardError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LanyardError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

const VAULT = 'lanyard:test/__lanyard:vault';
/** What the one keychain item holds, decoded. */
function vaultOf(binding: FakeKeyring): Record<string, string> | undefined {
  const raw = binding.items.get(VAULT);
  return raw === undefined ? undefined : (JSON.parse(raw) as { v: 1; secrets: Record<string, string> }).secrets;
}

describe('KeychainSecretStore basics', () => {
  it('missing → undefined; set, get, delete; deleting a missing key is fine; everything lives in one item', async () => {
    const { store, binding } = make();
    expect(store.kind).toBe('os-keychain');
    expect(store.description).toBe('Secret Service (D-Bus)');
    expect(await store.get('idp:session')).toBeUndefined();
    await store.set('idp:session', 'v1');
    await store.set('token:a', 'T');
    expect(await store.get('idp:session')).toBe('v1');
    expect([...binding.items.keys()]).toEqual([VAULT]);
    expect(vaultOf(binding)).toEqual({ 'idp:session': 'v1', 'token:a': 'T' });
    await store.delete('idp:session');
    expect(await store.get('idp:session')).toBeUndefined();
    await store.delete('idp:session');
    await store.delete('token:a');
    // Nothing left: the item itself goes.
    expect(binding.items.size).toBe(0);
  });

  it('reads everything once at start (one call), answers later gets from memory, and writes through the one entry', async () => {
    const { store, binding } = make();
    binding.items.set(VAULT, JSON.stringify({ v: 1, secrets: { 'token:a': 'T' } }));
    const reads = await Promise.all([store.get('token:a'), store.get('token:b'), store.get('token:a')]);
    expect(reads).toEqual(['T', undefined, 'T']);
    expect(await store.get('token:b')).toBeUndefined();
    await store.set('token:c', 'C');
    expect(await store.get('token:c')).toBe('C');
    // The write re-reads the item first, so what another process stored meanwhile is kept.
    expect(binding.calls).toEqual(['find', 'get __lanyard:vault', `set __lanyard:vault=${binding.items.get(VAULT)}`]);
  });

  it('an item the enumeration skipped (macOS: access denied) is asked for directly, and its error is not taken for "empty"', async () => {
    const binding = new FakeKeyring();
    binding.items.set(VAULT, JSON.stringify({ v: 1, secrets: { k: 'v' } }));
    const hidden = Object.assign(binding, { findCredentials: async () => (binding.calls.push('find'), []) });
    expect(await make(hidden).store.get('k')).toBe('v');
    binding.failNext.get = REAL.accessDenied;
    const { store } = make(hidden);
    expect((await rejection(store.get('k'))).message).toMatch(/denied/);
    // The next write reads again and keeps what is there.
    await store.set('other', 'x');
    expect(vaultOf(binding)).toEqual({ k: 'v', other: 'x' });
  });

  it('a write keeps what another process wrote since the start', async () => {
    const { store, binding } = make();
    await store.set('mine', '1');
    binding.items.set(VAULT, JSON.stringify({ v: 1, secrets: { mine: '1', theirs: '2' } }));
    await store.set('mine', '3');
    expect(vaultOf(binding)).toEqual({ mine: '3', theirs: '2' });
  });

  it('writes issued together go out as one', async () => {
    const { store, binding } = make();
    await store.get('x');
    binding.calls.length = 0;
    await Promise.all([store.set('a', '1'), store.set('b', '2'), store.delete('x'), store.set('c', '3')]);
    expect(binding.calls.filter((c) => c.startsWith('set '))).toHaveLength(1);
    expect(vaultOf(binding)).toEqual({ a: '1', b: '2', c: '3' });
  });

  it('invalidate() makes the next get read the keychain (another process wrote it)', async () => {
    const { store, binding } = make();
    expect(await store.get('k')).toBeUndefined();
    binding.items.set(VAULT, JSON.stringify({ v: 1, secrets: { k: 'from-elsewhere' } }));
    expect(await store.get('k')).toBeUndefined();
    store.invalidate('k');
    expect(await store.get('k')).toBe('from-elsewhere');
  });

  it('a failed set leaves the stored value, and the next get asks the keychain', async () => {
    const { store, binding } = make();
    await store.set('k', 'old');
    binding.failNext.set = REAL.locked;
    await rejection(store.set('k', 'new'));
    expect(await store.get('k')).toBe('old');
    expect(binding.calls.at(-1)).toBe('get __lanyard:vault');
  });

  it('a damaged item is a keychain error that names what to delete, never its content', async () => {
    const { store, binding } = make();
    binding.items.set(VAULT, 'rt_SECRET_not_json');
    const error = await rejection(store.get('k'));
    expect(error.code).toBe(ErrorCodes.KEYCHAIN_UNAVAILABLE);
    expect(error.message).toMatch(/damaged/);
    expect(error.fix).toContain('lanyard:test');
    expect(JSON.stringify(error.toInfo())).not.toContain('rt_SECRET');
  });

  it('rejects invalid keys before touching the keychain', async () => {
    const { store, binding } = make();
    expect(() => store.get('')).toThrow(LanyardError);
    expect(() => store.set('a\nb', 'x')).toThrow(LanyardError);
    expect(() => store.delete('x'.repeat(201))).toThrow(LanyardError);
    expect(binding.calls).toEqual([]);
  });

  it('names each platform backend', () => {
    expect(describeKeychain('linux')).toBe('Secret Service (D-Bus)');
    expect(describeKeychain('darwin')).toBe('macOS Keychain');
    expect(describeKeychain('win32')).toBe('Windows Credential Manager');
  });
});

describe('KeychainSecretStore moves per-key items of an older Lanyard into the one item', () => {
  it('reads them at start, writes them into the vault and deletes them; the vault wins over a stale copy', async () => {
    const { store, binding } = make();
    binding.items.set('lanyard:test/idp:session', 'old-session');
    binding.items.set('lanyard:test/token:a', 'stale');
    binding.items.set('lanyard:test/__lanyard:probe:abc', 'left by an interrupted probe');
    binding.items.set(VAULT, JSON.stringify({ v: 1, secrets: { 'token:a': 'current' } }));
    binding.items.set('lanyard:other/idp:session', 'another home');
    expect(await store.get('idp:session')).toBe('old-session');
    expect(await store.get('token:a')).toBe('current');
    expect([...binding.items.keys()].sort()).toEqual(['lanyard:other/idp:session', VAULT]);
    expect(vaultOf(binding)).toEqual({ 'idp:session': 'old-session', 'token:a': 'current' });
    expect(await make(binding).store.get('idp:session')).toBe('old-session');
  });

  it('keeps reading them while the move fails (a locked keyring), and moves them at a later start', async () => {
    const binding = new FakeKeyring();
    binding.items.set('lanyard:test/idp:session', 'old-session');
    binding.failNext.set = REAL.locked;
    expect(await make(binding).store.get('idp:session')).toBe('old-session');
    expect(binding.items.has('lanyard:test/idp:session')).toBe(true);
    expect(await make(binding).store.get('idp:session')).toBe('old-session');
    expect([...binding.items.keys()]).toEqual([VAULT]);
  });

  it('a deleted key does not come back from an old item that could not be moved', async () => {
    const binding = new FakeKeyring();
    binding.items.set('lanyard:test/token:a', 'T');
    binding.failNext.set = REAL.locked;
    const { store } = make(binding);
    expect(await store.get('token:a')).toBe('T');
    await store.deleteAll('token:');
    expect(await make(binding).store.get('token:a')).toBeUndefined();
  });
});

describe('KeychainSecretStore on Windows (2,560-byte items)', () => {
  it('spreads a large document over chunk items written before the header, and reads it back', async () => {
    const binding = new FakeKeyring();
    const { store } = make(binding, { platform: 'win32' });
    const big = 'x'.repeat(2_500);
    await store.set('token:a', big);
    await store.set('idp:session', 'é✓');
    for (const [, value] of binding.items) expect(value.length).toBeLessThanOrEqual(1_000);
    const order = binding.calls.filter((c) => c.startsWith('set ')).map((c) => c.slice(4, c.indexOf('=')));
    expect(order.at(-1)).toBe('__lanyard:vault');
    const fresh = make(binding, { platform: 'win32' }).store;
    expect(await fresh.get('token:a')).toBe(big);
    expect(await fresh.get('idp:session')).toBe('é✓');
    // The previous generation's chunks are gone.
    const chunkGens = new Set([...binding.items.keys()].filter((k) => k.startsWith(`${VAULT}:`)).map((k) => k.split(':').at(-2)));
    expect(chunkGens.size).toBe(1);
    await fresh.deleteAll();
    expect(binding.items.size).toBe(0);
  });
});

describe('KeychainSecretStore ordering', () => {
  it('operations on one key complete in call order even when the keychain answers out of order', async () => {
    const { store } = make();
    const results = await Promise.all([
      store.set('k', '1'),
      store.get('k'),
      store.set('k', '2'),
      store.get('k'),
      store.delete('k'),
      store.get('k'),
      store.set('k', '3'),
    ]);
    expect(results).toEqual([undefined, '1', undefined, '2', undefined, undefined, undefined]);
    expect(await store.get('k')).toBe('3');
  });

  it('a key with nothing pending is answered at once while another key is being written', async () => {
    const { store, binding } = make();
    await store.get('warm');
    binding.delay.set = 50;
    let slowDone = false;
    const slow = store.set('slow', 'x').then(() => {
      slowDone = true;
    });
    expect(await store.get('fast')).toBeUndefined();
    expect(slowDone).toBe(false);
    await slow;
  });

  it('a failure does not break the queue for the next operation', async () => {
    const { store, binding } = make();
    await store.get('warm');
    binding.failNext.set = REAL.noCollection;
    const first = store.set('k', 'a');
    await rejection(first);
    await store.set('k', 'b');
    expect(await store.get('k')).toBe('b');
  });

  it('100 concurrent sets and gets on one key: the last set wins and each get sees the set before it', async () => {
    const { store, binding } = make();
    binding.delay = { get: 0, set: 0, delete: 0, find: 0 };
    const ops: Array<Promise<unknown>> = [];
    for (let i = 0; i < 50; i++) {
      ops.push(store.set('k', String(i)));
      ops.push(store.get('k'));
    }
    const results = await Promise.all(ops);
    for (let i = 0; i < 50; i++) expect(results[2 * i + 1]).toBe(String(i));
    expect(vaultOf(binding)).toEqual({ k: '49' });
  });
});

describe('KeychainSecretStore.deleteAll', () => {
  it('deletes every key of the namespace, leaving other namespaces alone', async () => {
    const { store, binding } = make();
    binding.items.set('lanyard:other/idp:session', 'keep');
    binding.items.set('lanyard:test/written-by-previous-run', 'x');
    await store.set('idp:session', 's');
    await store.set('token:1', 't');
    await store.deleteAll();
    expect([...binding.items.keys()]).toEqual(['lanyard:other/idp:session']);
    expect(await store.get('idp:session')).toBeUndefined();
    expect(await store.get('written-by-previous-run')).toBeUndefined();
  });

  it('with a prefix deletes only matching keys', async () => {
    const { store, binding } = make();
    await store.set('server:linear:client_secret', 'a');
    await store.set('server:linear:private_key', 'b');
    await store.set('server:asana:client_secret', 'c');
    await store.deleteAll('server:linear:');
    expect(vaultOf(binding)).toEqual({ 'server:asana:client_secret': 'c' });
    expect(await store.get('server:asana:client_secret')).toBe('c');
  });

  it('is ordered against other operations: earlier sets are deleted, later ones survive, a later get sees the deletion', async () => {
    const { store, binding } = make();
    await store.set('cached', 'c');
    const before = store.set('a', 'before');
    const all = store.deleteAll();
    const afterGet = store.get('cached');
    const after = store.set('b', 'after');
    await Promise.all([before, all, after]);
    expect(await afterGet).toBeUndefined();
    expect(vaultOf(binding)).toEqual({ b: 'after' });
  });

  it('maps a listing failure (locked keyring, as findCredentials reports it)', async () => {
    const { store, binding } = make();
    binding.failNext.find = REAL.lockedFind;
    const error = await rejection(store.deleteAll());
    expect(error.message).toBe('The keyring is locked.');
    // The store keeps working afterwards.
    await store.set('k', 'v');
    expect(await store.get('k')).toBe('v');
  });
});

describe('keychain failures become specific, secret-free errors', () => {
  const HEADLESS_FIX =
    "Run Lanyard inside a desktop session, or start one with dbus-run-session and gnome-keyring-daemon; see README 'Headless Linux'";
  const cases: Array<[string, Error, string, string]> = [
    ['no bus (bad socket)', REAL.noBusSocket, 'No D-Bus session: the Secret Service cannot be reached.', HEADLESS_FIX],
    ['no bus (address unset)', REAL.noBusUnset, 'No D-Bus session: the Secret Service cannot be reached.', HEADLESS_FIX],
    ['no bus (findCredentials)', REAL.noBusFind, 'No D-Bus session: the Secret Service cannot be reached.', HEADLESS_FIX],
    ['no Secret Service provider', REAL.noProvider, 'No Secret Service is running on the D-Bus session', 'Install and start gnome-keyring'],
    ['no default collection', REAL.noCollection, 'The keyring has no default collection', 'non-empty password'],
    ['locked', REAL.locked, 'The keyring is locked.', 'Unlock your login keyring (log in to the desktop) and retry'],
    ['locked (listing)', REAL.lockedFind, 'The keyring is locked.', 'Unlock your login keyring'],
    ['access denied', REAL.accessDenied, 'Access to the Secret Service (D-Bus) was denied while saving a secret.', 'Allow Lanyard'],
    ['too long', REAL.tooLong, 'longer than the platform allows', 'LANYARD_SECRET_STORE=file'],
  ];

  it.each(cases)('%s', async (_name, raw, message, fix) => {
    const { store, binding } = make();
    const secret = 'rt_SECRET_refresh_token_value_0123456789';
    binding.failNext.set = raw;
    const error = await rejection(store.set('idp:session', secret));
    expect(error.code).toBe(ErrorCodes.KEYCHAIN_UNAVAILABLE);
    expect(error.message).toContain(message);
    expect(error.fix).toContain(fix);
    expect(error.cause).toBe(raw);
    expect(JSON.stringify(error.toInfo())).not.toContain(secret);
  });

  it('a locked keyring on get is an error, not "absent" (at start, and when reading again)', async () => {
    const { store, binding } = make();
    binding.failNext.find = REAL.lockedFind;
    const error = await rejection(store.get('idp:session'));
    expect(error.message).toBe('The keyring is locked.');
    expect(error.transient).toBe(true);
    expect(await store.get('idp:session')).toBeUndefined();
    store.invalidate();
    binding.failNext.get = REAL.locked;
    expect((await rejection(store.get('idp:session'))).message).toBe('The keyring is locked.');
  });

  it('macOS and Windows texts', () => {
    expect(toKeychainError(REAL.macLocked, { backend: 'macOS Keychain', operation: 'read', platform: 'darwin' }).message).toBe(
      'The keychain is locked.',
    );
    expect(toKeychainError(REAL.winDenied, { backend: 'Windows Credential Manager', operation: 'delete', platform: 'win32' }).message).toBe(
      'Access to the Windows Credential Manager was denied while deleting a secret.',
    );
  });

  it('an unknown failure names the backend and quotes the platform text, minus the secret and anything token-shaped', async () => {
    const { store, binding } = make();
    const secret = 'hunter2-but-longer';
    binding.failNext.set = napiError(`weird failure storing ${secret} near eyJhbGciOi.eyJzdWIiOiIx.c2ln`, 'x');
    const error = await rejection(store.set('k', secret));
    expect(error.message).toMatch(
      /^The Secret Service \(D-Bus\) failed while saving a secret: weird failure storing \[redacted\] near \[redacted-jwt\]/,
    );
    expect(error.message).not.toContain(secret);
    expect(error.fix).toContain('lanyard doctor');
  });

  it('a keychain that never answers times out with its own message', async () => {
    const { store, binding } = make(new FakeKeyring(), { timeoutMs: 30 });
    binding.hang = true;
    const error = await rejection(store.get('k'));
    expect(error.code).toBe(ErrorCodes.KEYCHAIN_UNAVAILABLE);
    expect(error.message).toBe('The Secret Service (D-Bus) did not answer while reading a secret; it may be waiting for an unlock prompt.');
  });

  it('classifies by the text of the error and its causes', () => {
    expect(classifyKeychainFailure(new Error('outer', { cause: new Error('Secret Service: no result found') }))).toBe(
      'no-default-collection',
    );
    expect(classifyKeychainFailure('Entry is matched by 2 credentials: [locked]')).toBe('ambiguous');
    expect(classifyKeychainFailure(new Error('something new'))).toBe('unknown');
  });
});

describe('KeychainSecretStore.probe', () => {
  it('ok with a working keychain, leaving nothing behind', async () => {
    const { store, binding } = make();
    expect(await store.probe()).toEqual({ ok: true, backend: 'Secret Service (D-Bus)' });
    expect(binding.items.size).toBe(0);
  });

  it('reports the mapped error', async () => {
    const { store, binding } = make();
    binding.failNext.set = REAL.noBusSocket;
    const result = await store.probe();
    expect(result).toMatchObject({
      ok: false,
      backend: 'Secret Service (D-Bus)',
      error: { code: ErrorCodes.KEYCHAIN_UNAVAILABLE, message: 'No D-Bus session: the Secret Service cannot be reached.' },
    });
  });

  it('catches a keychain that accepts writes but does not keep them (reads back past the cache)', async () => {
    const binding = new FakeKeyring();
    binding.blackHole = true;
    const { store } = make(binding);
    const result = await store.probe();
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: ErrorCodes.KEYCHAIN_UNAVAILABLE,
        message: 'Secret Service (D-Bus) accepted a secret but returned nothing when it was read back.',
      },
    });
  });
});
