/**
 * The administrator's policy over auth paths (electron/broker/auth/policy.ts) and the control methods that respect it:
 * a managed authPath pins, fallback:false allows only Cross-App Access or none, lock authPaths refuses user changes,
 * managed oauth settings override the user's, and keys go to the keychain only.
 */
import { describe, expect, it } from 'vitest';
import { serverAuthPolicy, idpPolicyBlock } from '../../electron/broker/auth/policy';
import { AuthRouter, headerSecretKey } from '../../electron/broker/auth/router';
import { ActivityLog } from '../../electron/broker/activity/activity-log';
import { mergeManagedConfig, type ManagedConfig } from '../../electron/broker/config/managed';
import { ConfigStore, type ConfigBackend } from '../../electron/broker/config/store';
import { ControlService } from '../../electron/broker/control/control-service';
import { LanyardError } from '../../electron/broker/errors';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import type { LanyardConfig } from '../../electron/broker/config/schema';
import { ErrorCodes } from '../../shared/errors';

const server = { id: 's', authPath: undefined, fallback: undefined };

describe('serverAuthPolicy', () => {
  it('no managed configuration: every path, nothing pinned', () => {
    expect(serverAuthPolicy({ server, locked: [] })).toMatchObject({
      allowed: ['xaa', 'oauth', 'header', 'none'],
      restricted: false,
      locked: false,
    });
  });

  it('a managed server with authPath is pinned to it', () => {
    const managed = {
      servers: [{ id: 's', name: 'S', url: 'https://s.example/mcp', enabled: true, authPath: 'header' as const }],
      lock: [],
    };
    const policy = serverAuthPolicy({ server, managed: managed as ManagedConfig, locked: [] });
    expect(policy).toMatchObject({ allowed: ['header'], pinned: 'header', restricted: true });
    expect(policy.rule).toMatch(/your administrator pins server "s" to API key/);
  });

  it('fallback:false at the managed top level or on the server allows only xaa or none', () => {
    expect(serverAuthPolicy({ server, managed: { fallback: false, lock: [] }, locked: [] })).toMatchObject({
      allowed: ['xaa', 'none'],
      restricted: true,
    });
    expect(serverAuthPolicy({ server: { ...server, fallback: false }, locked: [] }).allowed).toEqual(['xaa', 'none']);
  });

  it('lock authPaths', () => {
    expect(serverAuthPolicy({ server, locked: ['authPaths'] }).locked).toBe(true);
  });

  it('only the IdP’s policy refusals become POLICY_BLOCKED', () => {
    const denied = (error: string) => new LanyardError(ErrorCodes.EXCHANGE_DENIED, 'x', 'y', { oauth: { error } });
    for (const error of ['access_denied', 'invalid_target', 'unauthorized_client'])
      expect(idpPolicyBlock('s', denied(error))?.code).toBe(ErrorCodes.POLICY_BLOCKED);
    expect(idpPolicyBlock('s', denied('invalid_grant'))).toBeUndefined();
    expect(idpPolicyBlock('s', new LanyardError(ErrorCodes.IDP_UNREACHABLE, 'x', 'y'))).toBeUndefined();
  });
});

describe('managed oauth settings', () => {
  it('the managed clientMetadataUrl overrides the user’s', () => {
    const user = { version: 1, servers: [], oauth: { clientMetadataUrl: 'https://me.example/cimd.json' } } as unknown as LanyardConfig;
    const merged = mergeManagedConfig(user, { oauth: { clientMetadataUrl: 'https://acme.example/lanyard.json' }, lock: [] });
    expect(merged.oauth?.clientMetadataUrl).toBe('https://acme.example/lanyard.json');
    expect(mergeManagedConfig(user, { lock: [] }).oauth?.clientMetadataUrl).toBe('https://me.example/cimd.json');
  });
});

function compose(options: { managed?: ManagedConfig; locked?: string[] } = {}) {
  let doc: unknown;
  const backend: ConfigBackend = { path: '/nonexistent/config.json', read: () => doc, write: (v) => void (doc = structuredClone(v)) };
  const config = new ConfigStore(backend, options.managed ? { overlay: (c) => mergeManagedConfig(c, options.managed!) } : {});
  const secrets = new MemorySecretStore();
  const activity = new ActivityLog();
  const locked = () => options.locked ?? options.managed?.lock ?? [];
  const auth = new AuthRouter({ config: () => config.load(), managed: () => options.managed, locked, engine: () => undefined, secrets });
  const control = new ControlService({
    version: 'test',
    config,
    secrets,
    activity,
    engine: () => undefined,
    gateway: () => undefined,
    reconfigure: async () => undefined,
    locked,
    managedServerIds: () => (options.managed?.servers ?? []).map((s) => s.id),
    auth,
  });
  return { control, config, secrets, activity, raw: () => JSON.stringify(doc) };
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e instanceof LanyardError ? e.code : 'not-a-lanyard-error';
  }
}

const KEY = 'sk-live-0123456789abcdefABCDEF';

describe('control methods on the header path', () => {
  it('addServer with a header: the path and header name in the config, the value in the keychain only', async () => {
    const { control, secrets, raw, activity } = compose();
    const status = await control.addServer({ url: 'http://127.0.0.1:9/api/mcp', id: 'api', header: { name: 'X-Api-Key', value: KEY } });
    expect(status).toMatchObject({ authPath: 'header', authState: 'ready', headerName: 'X-Api-Key', authPathPinned: false });
    expect(await secrets.get(headerSecretKey('api'))).toBe(KEY);
    expect(raw()).toContain('"authPath":"header"');
    expect(raw()).not.toContain(KEY);
    expect(JSON.stringify(await control.status())).not.toContain(KEY);
    expect(JSON.stringify(activity.recent(50))).not.toContain(KEY);
  });

  it('setServerKey replaces the key; refused for a bad header name or value; removeServer deletes the key', async () => {
    const { control, secrets } = compose();
    await control.addServer({
      url: 'http://127.0.0.1:9/api/mcp',
      id: 'api',
      authPath: 'header',
      header: { name: 'X-Api-Key', value: KEY },
    });
    await control.setServerKey({ id: 'api', value: 'sk-second-key-value' });
    expect(await secrets.get(headerSecretKey('api'))).toBe('sk-second-key-value');
    expect(await codeOf(control.setServerKey({ id: 'api', value: 'two\nlines' }))).toBe(ErrorCodes.CONFIG_INVALID);
    expect(await codeOf(control.setServerKey({ id: 'api', value: 'k', headerName: 'Content-Type' }))).toBe(ErrorCodes.CONFIG_INVALID);
    await control.removeServer({ id: 'api' });
    expect(await secrets.get(headerSecretKey('api'))).toBeUndefined();
  });

  it('setServerKey moves a server to the header path only where policy allows it', async () => {
    const open = compose();
    await open.control.addServer({ url: 'http://127.0.0.1:9/a/mcp', id: 'a', authPath: 'oauth' });
    expect((await open.control.setServerKey({ id: 'a', value: KEY, headerName: 'X-Api-Key' })).authPath).toBe('header');

    const noFallback = compose({ managed: { fallback: false, lock: [] } });
    await noFallback.control.addServer({ url: 'http://127.0.0.1:9/a/mcp', id: 'a' });
    expect(await codeOf(noFallback.control.setServerKey({ id: 'a', value: KEY, headerName: 'X-Api-Key' }))).toBe(ErrorCodes.POLICY_BLOCKED);
    expect(await noFallback.secrets.get(headerSecretKey('a'))).toBeUndefined();
    expect(await codeOf(noFallback.control.addServer({ url: 'http://127.0.0.1:9/b/mcp', id: 'b', authPath: 'oauth' }))).toBe(
      ErrorCodes.POLICY_BLOCKED,
    );

    const locked = compose({ locked: ['authPaths'] });
    await locked.control.addServer({ url: 'http://127.0.0.1:9/a/mcp', id: 'a' });
    expect(await codeOf(locked.control.setServerKey({ id: 'a', value: KEY, headerName: 'X-Api-Key' }))).toBe(ErrorCodes.MANAGED_LOCKED);
    expect(
      await codeOf(
        locked.control.addServer({ url: 'http://127.0.0.1:9/b/mcp', id: 'b', authPath: 'header', header: { name: 'X-K', value: KEY } }),
      ),
    ).toBe(ErrorCodes.MANAGED_LOCKED);
  });

  it('a pinned managed server shows authPathPinned, and authorizeServer refuses a server not on the OAuth path', async () => {
    const managed: ManagedConfig = {
      servers: [{ id: 'm', name: 'M', url: 'http://127.0.0.1:9/m/mcp', enabled: true, authPath: 'none' }],
      lock: [],
    };
    const { control } = compose({ managed });
    expect((await control.listServers())[0]).toMatchObject({ id: 'm', authPath: 'none', authPathPinned: true, authState: 'ready' });
    expect(await codeOf(control.authorizeServer({ id: 'm' }))).toBe(ErrorCodes.CONFIG_INVALID);
    expect(await codeOf(control.setServerKey({ id: 'm', value: KEY, headerName: 'X-Api-Key' }))).toBe(ErrorCodes.POLICY_BLOCKED);
  });
});
