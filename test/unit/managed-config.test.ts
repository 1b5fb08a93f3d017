/**
 * Managed configuration (an administrator's file that sets and locks the IdP and the server list) and
 * `lanyard://configure` links: applied over the user's config, never written into it, locked through the control
 * service (MANAGED_LOCKED), fail-closed when the file is broken.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActivityLog } from '../../electron/broker/activity/activity-log';
import {
  applyConfigProposal,
  createManagedPolicy,
  encodeConfigLink,
  managedConfigPath,
  ManagedConfigSchema,
  mergeManagedConfig,
  parseConfigLink,
  readManagedConfig,
  type ManagedPolicy,
} from '../../electron/broker/config/managed';
import { ConfigStore, createConfBackend } from '../../electron/broker/config/store';
import { ControlService } from '../../electron/broker/control/control-service';
import { LanyardError } from '../../electron/broker/errors';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { ErrorCodes } from '../../shared/errors';

const acme = { issuer: 'https://acme.okta.com', clientId: '0oaLANYARD' };
const linear = {
  id: 'linear',
  name: 'Linear',
  url: 'https://mcp.linear.app/mcp',
  asClient: { clientId: 'lanyard-at-linear', method: 'none' },
};
const wiki = { id: 'wiki', name: 'Wiki', url: 'https://wiki.acme.dev/mcp' };

let root: string;
let home: string;
let managedFile: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-managed-'));
  home = path.join(root, 'home');
  managedFile = path.join(root, 'managed.json');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeManaged(value: unknown): Promise<void> {
  await writeFile(managedFile, typeof value === 'string' ? value : JSON.stringify(value));
}

function compose(policy: ManagedPolicy) {
  const config = new ConfigStore(createConfBackend(home), { overlay: (c) => policy.overlay(c) });
  const control = new ControlService({
    version: 'test',
    config,
    secrets: new MemorySecretStore(),
    activity: new ActivityLog(),
    engine: () => undefined,
    gateway: () => undefined,
    locked: () => policy.locked(),
    managedServerIds: () => policy.managedServerIds(),
    reconfigure: async () => {},
  });
  return { config, control };
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e instanceof LanyardError ? e.code : String(e);
  }
}

describe('where the managed file is', () => {
  it('has a documented system location per OS, and LANYARD_MANAGED_CONFIG wins', () => {
    expect(managedConfigPath({}, 'darwin')).toBe('/Library/Application Support/Lanyard/managed.json');
    expect(managedConfigPath({}, 'linux')).toBe('/etc/lanyard/managed.json');
    expect(managedConfigPath({ ProgramData: 'D:\\PD' }, 'win32')).toBe('D:\\PD\\Lanyard\\managed.json');
    expect(managedConfigPath({}, 'win32')).toBe('C:\\ProgramData\\Lanyard\\managed.json');
    expect(managedConfigPath({ LANYARD_MANAGED_CONFIG: '/tmp/m.json' }, 'linux')).toBe('/tmp/m.json');
  });
});

describe('reading it', () => {
  it('absent is a normal state', () => {
    expect(readManagedConfig(managedFile)).toEqual({ state: 'absent', path: managedFile });
  });

  it('validates with the same schemas and messages as config.json', async () => {
    await writeManaged({
      idp: { issuer: 'http://acme.okta.com', clientId: 'x' },
      servers: [{ id: 'Bad Id', name: 'x', url: 'https://x' }],
      lock: ['everything'],
    });
    const state = readManagedConfig(managedFile);
    expect(state.state).toBe('invalid');
    if (state.state !== 'invalid') return;
    expect(state.error.message).toContain('idp.issuer: must be an https URL');
    expect(state.error.message).toContain('servers[0].id');
    expect(state.error.message).toContain('lock[0]');
    expect(state.error.fix).toMatch(/IT team/);
  });

  it('refuses a secret in the file (secrets belong in the keychain)', async () => {
    await writeManaged({ idp: { ...acme, clientSecret: 'hunter2' } });
    const state = readManagedConfig(managedFile);
    expect(state.state).toBe('invalid');
    if (state.state === 'invalid') {
      expect(state.error.message).toMatch(/secrets do not belong/);
      expect(state.error.message).not.toContain('hunter2');
    }
  });
});

describe('merging', () => {
  const user = {
    version: 1 as const,
    idp: { issuer: 'https://me.okta.com', clientId: 'mine', clientAuth: { method: 'none' as const }, scopes: ['openid'] },
    servers: [
      { id: 'mine', name: 'Mine', url: 'https://mine.dev/mcp', enabled: true },
      { id: 'linear', name: 'My Linear', url: 'https://x.dev/mcp', enabled: true },
    ],
    gateway: { port: 47821, toolNameSeparator: '__', allowedOrigins: [] },
  };
  const managed = ManagedConfigSchema.parse({ idp: acme, servers: [linear] });

  it('managed IdP and servers win; the user keeps their own servers unless servers are locked', () => {
    const merged = mergeManagedConfig(user, managed);
    expect(merged.idp?.issuer).toBe('https://acme.okta.com');
    expect(merged.servers.map((s) => s.id)).toEqual(['linear', 'mine']);
    expect(merged.servers[0]!.name).toBe('Linear');
    const locked = mergeManagedConfig(user, { ...managed, lock: ['servers'] });
    expect(locked.servers.map((s) => s.id)).toEqual(['linear']);
  });

  it('a locked IdP with none set means none', () => {
    expect(mergeManagedConfig(user, { lock: ['idp'] }).idp).toBeUndefined();
    expect(mergeManagedConfig(user, { lock: [] }).idp?.issuer).toBe('https://me.okta.com');
  });
});

describe('applied through the config store and the control service', () => {
  it('shows managed values, never writes them into config.json, and locks what the admin locked', async () => {
    await writeManaged({ idp: acme, servers: [linear], lock: ['idp', 'servers'] });
    const policy = createManagedPolicy({ path: managedFile, ttlMs: 0 });
    const { config, control } = compose(policy);

    const status = await control.status();
    expect(status.idp).toMatchObject({ issuer: acme.issuer, managed: true });
    expect(status.servers).toEqual([expect.objectContaining({ id: 'linear', managed: true })]);
    expect((await control.getSettings()).locked).toEqual(['idp', 'servers']);

    expect(await codeOf(control.updateSettings({ idp: { issuer: 'https://evil.example.com', clientId: 'x' } }))).toBe(
      ErrorCodes.MANAGED_LOCKED,
    );
    expect(await codeOf(control.addServer({ url: 'https://other.dev/mcp' }))).toBe(ErrorCodes.MANAGED_LOCKED);
    expect(await codeOf(control.removeServer({ id: 'linear' }))).toBe(ErrorCodes.MANAGED_LOCKED);
    expect(await codeOf(control.setServerEnabled({ id: 'linear', enabled: false }))).toBe(ErrorCodes.MANAGED_LOCKED);

    // Unlocked settings still change, and the user's file gets only the user's values.
    await control.updateSettings({ gatewayPort: 47999 });
    const file = JSON.parse(await readFile(config.path, 'utf8')) as Record<string, unknown>;
    expect(file.gateway).toMatchObject({ port: 47999 });
    expect(file.idp).toBeUndefined();
    expect(file.servers).toEqual([]);
    expect(config.load().servers.map((s) => s.id)).toEqual(['linear']);
  });

  it('without locks, the user may add their own servers but not touch managed ones', async () => {
    await writeManaged({ servers: [linear] });
    const { control } = compose(createManagedPolicy({ path: managedFile, ttlMs: 0 }));
    await control.addServer({ url: wiki.url, id: 'wiki' });
    expect((await control.listServers()).map((s) => [s.id, s.managed])).toEqual([
      ['linear', true],
      ['wiki', false],
    ]);
    expect(await codeOf(control.addServer({ url: linear.url }))).toBe(ErrorCodes.CONFIG_INVALID);
    expect(await codeOf(control.removeServer({ id: 'linear' }))).toBe(ErrorCodes.MANAGED_LOCKED);
    await control.removeServer({ id: 'wiki' });
  });

  it('a broken managed file locks everything (fail closed) and says why', async () => {
    await writeManaged('{ not json');
    const policy = createManagedPolicy({ path: managedFile, ttlMs: 0 });
    const { control } = compose(policy);
    expect(policy.summary()).toMatchObject({
      state: 'invalid',
      locked: ['idp', 'servers', 'authPaths', 'secretScan', 'toolPins', 'profiles', 'network'],
    });
    expect(policy.summary().error?.message).toMatch(/is not valid JSON/);
    expect(await codeOf(control.addServer({ url: wiki.url }))).toBe(ErrorCodes.MANAGED_LOCKED);
  });

  it('an admin’s change applies without a restart', async () => {
    const policy = createManagedPolicy({ path: managedFile, ttlMs: 0 });
    const { control } = compose(policy);
    expect((await control.listServers()).map((s) => s.id)).toEqual([]);
    await writeManaged({ servers: [linear] });
    expect((await control.listServers()).map((s) => s.id)).toEqual(['linear']);
  });
});

describe('lanyard://configure links', () => {
  it('round-trips a proposal and summarizes it for a person', () => {
    const link = encodeConfigLink({ idp: acme, servers: [{ url: linear.url, name: 'Linear', clientId: 'lanyard-at-linear' }] });
    expect(link.startsWith('lanyard://configure?config=')).toBe(true);
    const { proposal, summary } = parseConfigLink(link);
    expect(proposal.idp).toEqual(acme);
    expect(summary.join('\n')).toContain('identity provider https://acme.okta.com (client id 0oaLANYARD)');
    expect(summary.join('\n')).toContain('Linear — https://mcp.linear.app/mcp (client id lanyard-at-linear)');
    expect(summary.join('\n')).toMatch(/replaces the identity provider/);
  });

  it.each([
    ['another scheme', 'https://configure?config=e30'],
    ['another action', 'lanyard://open/servers'],
    ['no payload', 'lanyard://configure'],
    ['not base64url', 'lanyard://configure?config=%%%'],
    ['not JSON', `lanyard://configure?config=${Buffer.from('nope').toString('base64url')}`],
    ['empty proposal', encodeConfigLink({} as never)],
    [
      'a secret',
      `lanyard://configure?config=${Buffer.from(JSON.stringify({ idp: { ...acme, clientSecret: 's3cret' } })).toString('base64url')}`,
    ],
    ['plain http to a remote host', encodeConfigLink({ servers: [{ url: 'http://mcp.evil.example/mcp' }] })],
  ])('refuses %s, saying what is wrong and never echoing the payload', (_what, link) => {
    let error: unknown;
    try {
      parseConfigLink(link);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LanyardError);
    expect((error as LanyardError).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect((error as LanyardError).message).not.toContain('s3cret');
  });

  it('applies through the control service, so managed locks hold', async () => {
    const { control } = compose(createManagedPolicy({ path: managedFile, ttlMs: 0 }));
    const { proposal } = parseConfigLink(encodeConfigLink({ idp: acme, servers: [{ url: wiki.url, id: 'wiki' }] }));
    const result = await applyConfigProposal(control, proposal);
    expect(result).toEqual({ idpChanged: true, added: ['wiki'], skipped: [] });
    expect((await control.getSettings()).idp).toMatchObject({ issuer: acme.issuer, clientId: acme.clientId });
    expect(await applyConfigProposal(control, proposal)).toMatchObject({
      added: [],
      skipped: [{ url: wiki.url, reason: 'already configured' }],
    });

    await writeManaged({ idp: acme, lock: ['idp'] });
    expect(await codeOf(applyConfigProposal(control, proposal))).toBe(ErrorCodes.MANAGED_LOCKED);
  });
});
