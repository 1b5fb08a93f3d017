/**
 * Reliability of the token engine under faults (IdP errors and stalls, an authorization server down, a clock jump),
 * against the real sandbox and keychain. Every loop here is bounded in count and time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';

const codeOf = (e: unknown) => (e instanceof LanyardError ? e.code : String(e));

describe('engine under faults', () => {
  let sandbox: Sandbox;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, accessTokenTtlSeconds: 300 });
  });
  afterEach(async () => {
    await sandbox.idp.setFault(null);
    for (const s of sandbox.servers) await s.as.setFault(null);
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await sandbox?.stop();
  });

  async function engine(options: { secrets?: SecretStore; fetch?: typeof fetch } = {}): Promise<EngineHarness> {
    const { home, cleanup } = await tempHome();
    const e = await createEngine(sandbox, { home, ...options });
    cleanups.push(async () => {
      await e.secrets.deleteAll().catch(() => {});
      await cleanup();
    });
    await e.signIn('alice');
    return e;
  }

  it('the IdP answering 5xx, then 200: a transient error with backoff, then recovery without the user doing anything', async () => {
    const e = await engine();
    await sandbox.idp.setFault('5xx');
    e.clock.advance(1100);
    const first = await e.identity.getIdToken().catch((x: unknown) => x);
    expect(codeOf(first)).toBe(ErrorCodes.IDP_UNREACHABLE);
    expect(e.identity.state.status).toBe('signed_in'); // a 5xx never ends the session
    await sandbox.idp.setFault(null);
    // Inside the backoff window the broker does not hammer the IdP; after it, the refresh goes through.
    const refreshes = sandbox.idp.counters.refreshes;
    await expect(e.identity.getIdToken()).rejects.toMatchObject({ code: ErrorCodes.IDP_UNREACHABLE });
    expect(sandbox.idp.counters.refreshes).toBe(refreshes);
    e.clock.advance(2);
    await expect(e.identity.getIdToken()).resolves.toEqual(expect.any(String));
    expect(sandbox.idp.counters.refreshes).toBe(refreshes + 1);
  });

  it('a stalled IdP: bounded timeouts, a clear error, no hang', async () => {
    const { home, cleanup } = await tempHome();
    cleanups.push(cleanup);
    // A short request deadline for this engine (the product default is 15 s).
    const e = await createEngine(sandbox, { home, requestTimeoutSeconds: 1 });
    cleanups.push(() => e.secrets.deleteAll());
    await e.signIn('alice');
    const started = Date.now();
    await sandbox.idp.setFault('stall');
    e.clock.advance(1100);
    const error = await e.identity.getIdToken().catch((x: unknown) => x);
    expect(codeOf(error)).toBe(ErrorCodes.IDP_UNREACHABLE);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('an authorization server down: cached token served until it expires, then as_unreachable; recovers', async () => {
    const e = await engine();
    const todo = sandbox.server('todo');
    const token = await e.tokens.getToken('todo');
    await todo.as.setFault('down');
    await expect(e.tokens.getToken('todo')).resolves.toMatchObject({ accessToken: token!.accessToken });
    e.clock.advance(400);
    const error = await e.tokens.getToken('todo').catch((x: unknown) => x);
    expect(codeOf(error)).toBe(ErrorCodes.AS_UNREACHABLE);
    expect((error as LanyardError).transient).toBe(true);
    await todo.as.setFault(null);
    await expect(e.tokens.getToken('todo')).resolves.toMatchObject({ accessToken: expect.any(String) });
  });

  it('a clock jump as after sleep: every expiry is re-checked and tokens are renewed, not served dead', async () => {
    const e = await engine();
    const before = await e.tokens.getToken('wiki');
    const exchanges = sandbox.idp.counters.exchanges;
    e.clock.advance(8 * 3600); // the laptop slept all night
    const after = await e.tokens.getToken('wiki');
    expect(after!.accessToken).not.toBe(before!.accessToken);
    expect(after!.expiresAt).toBeGreaterThan(e.clock.now());
    expect(sandbox.idp.counters.exchanges).toBe(exchanges + 1);
  });

  it('refresh-token rotation race with 50 concurrent callers: one refresh, no lost session', async () => {
    const e = await engine();
    e.clock.advance(1100);
    const refreshes = sandbox.idp.counters.refreshes;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => e.identity.getIdToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(sandbox.idp.counters.refreshes).toBe(refreshes + 1);
    // The rotated refresh token was kept: a second round of refreshes works (a reused old one would kill the chain).
    e.clock.advance(1100);
    await expect(e.identity.getIdToken()).resolves.toEqual(expect.any(String));
    expect(sandbox.idp.counters.refreshes).toBe(refreshes + 2);
    expect(e.identity.state.status).toBe('signed_in');
  });

  it('the keychain becoming unavailable while running: tokens in memory keep working; new writes fail with a clear error', async () => {
    const backing = new MemorySecretStore();
    let broken = false;
    const flaky: SecretStore = {
      kind: 'os-keychain',
      description: 'flaky test keychain',
      get: (k) => (broken ? Promise.reject(keychainDown()) : backing.get(k)),
      set: (k, v) => (broken ? Promise.reject(keychainDown()) : backing.set(k, v)),
      delete: (k) => (broken ? Promise.reject(keychainDown()) : backing.delete(k)),
      deleteAll: (p) => (broken ? Promise.reject(keychainDown()) : backing.deleteAll(p)),
    };
    const e = await engine({ secrets: flaky });
    const token = await e.tokens.getToken('todo');
    broken = true;
    await expect(e.tokens.getToken('todo')).resolves.toMatchObject({ accessToken: token!.accessToken });
    // A refresh needs to store the rotated refresh token first; with the keychain gone it fails loudly, and the
    // session is not silently half-updated.
    e.clock.advance(1100);
    const error = await e.identity.getIdToken().catch((x: unknown) => x);
    expect(codeOf(error)).toBe(ErrorCodes.KEYCHAIN_UNAVAILABLE);
    broken = false;
  });
});

function keychainDown(): LanyardError {
  return new LanyardError(ErrorCodes.KEYCHAIN_UNAVAILABLE, 'The keyring is locked.', 'Unlock your login keyring and retry.');
}
