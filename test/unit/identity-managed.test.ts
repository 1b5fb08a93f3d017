/**
 * Identity profiles from the managed configuration (identities/managed-identity.ts, identity-profiles.ts): a profile
 * the administrator defines exists without any file of the user's, gets its own IdP and servers with their locks, and
 * keeps the company-wide settings; the default profile is unaffected; a bad profile name makes the file invalid.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManagedPolicy } from '../../electron/broker/config/managed';
import { LanyardConfigSchema } from '../../electron/broker/config/schema';
import { identityProfileNames } from '../../electron/broker/identities/identity-profiles';
import { identityManagedPolicy } from '../../electron/broker/identities/managed-identity';
import { checkIdentityProfileName, splitIdentityPath } from '../../electron/broker/identities/names';
import { takeProfileOption } from '../../electron/cli/identity-option';

let dir: string;
let managedFile: string;
const user = LanyardConfigSchema.parse({ version: 1, servers: [{ id: 'own', name: 'Own', url: 'https://own.example/mcp' }] });

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'lanyard-identity-managed-'));
  managedFile = path.join(dir, 'managed.json');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const managed = {
  version: 1,
  idp: { issuer: 'https://acme.okta.com', clientId: 'lanyard-acme', clientAuth: { method: 'none' } },
  servers: [{ id: 'wiki', name: 'Wiki', url: 'https://wiki.acme.example/mcp' }],
  network: { noProxy: ['.acme.example'] },
  lock: ['idp', 'secretScan'],
  identities: {
    contractor: {
      idp: { issuer: 'https://contractor.okta.com', clientId: 'lanyard-c', clientAuth: { method: 'none' } },
      servers: [{ id: 'tickets', name: 'Tickets', url: 'https://mcp.tickets.example/mcp' }],
      lock: ['servers'],
    },
  },
};

describe('managed identity profiles', () => {
  it('gives a managed profile its own IdP, servers and locks, and the company-wide settings', async () => {
    await writeFile(managedFile, JSON.stringify(managed));
    const root = createManagedPolicy({ path: managedFile, ttlMs: 0 });
    const contractor = identityManagedPolicy(root, 'contractor');
    const merged = contractor.overlay(user);
    expect(merged.idp?.issuer).toBe('https://contractor.okta.com');
    // `servers` locked for the profile: only the managed ones remain.
    expect(merged.servers.map((s) => s.id)).toEqual(['tickets']);
    expect(merged.network?.noProxy).toEqual(['.acme.example']);
    // The default profile's IdP lock is its own; the company-wide secret-scan lock holds everywhere.
    expect(contractor.locked().sort()).toEqual(['secretScan', 'servers']);
    expect(contractor.managedServerIds()).toEqual(['tickets']);
    // The default profile is as before.
    expect(root.overlay(user).idp?.issuer).toBe('https://acme.okta.com');
    expect(root.overlay(user).servers.map((s) => s.id)).toEqual(['wiki', 'own']);
    // It exists without any directory of the user's; a created one is listed with it.
    expect(identityProfileNames(dir, root)).toEqual(['contractor']);
    await mkdir(path.join(dir, 'identities', 'lab'), { recursive: true });
    await writeFile(path.join(dir, 'identities', 'lab', 'config.json'), '{"version":1}');
    await mkdir(path.join(dir, 'identities', 'stray'), { recursive: true });
    expect(identityProfileNames(dir, root)).toEqual(['contractor', 'lab']);
  });

  it('a profile the file does not define gets only the company-wide settings', async () => {
    await writeFile(managedFile, JSON.stringify(managed));
    const lab = identityManagedPolicy(createManagedPolicy({ path: managedFile, ttlMs: 0 }), 'lab');
    const merged = lab.overlay(user);
    expect(merged.idp).toBeUndefined();
    expect(merged.servers.map((s) => s.id)).toEqual(['own']);
    expect(lab.locked()).toEqual(['secretScan']);
  });

  it('refuses a managed file whose profile name could leave the identities directory', async () => {
    await writeFile(managedFile, JSON.stringify({ ...managed, identities: { '../x': {} } }));
    const root = createManagedPolicy({ path: managedFile, ttlMs: 0 });
    expect(root.state().state).toBe('invalid');
    // Invalid locks everything, in every profile.
    expect(identityManagedPolicy(root, 'lab').locked()).toContain('idp');
  });
});

describe('identity profile names', () => {
  it('allows lower-case names and refuses anything that is a path or could be mistaken for one', () => {
    for (const ok of ['work', 'contractor-2', 'a_b', '0']) expect(checkIdentityProfileName(ok)).toBe(ok);
    for (const bad of ['', '..', '../x', 'a/b', 'Work', 'a.b', '-x', 'x'.repeat(33), 'a b', 'a%2fb'])
      expect(() => checkIdentityProfileName(bad), bad).toThrow(/not a valid identity profile name/);
  });

  it('splits /p/<name>/<rest> and leaves other paths alone', () => {
    expect(splitIdentityPath('/p/work/mcp/todo')).toEqual({ name: 'work', rest: '/mcp/todo' });
    expect(splitIdentityPath('/p/work')).toEqual({ name: 'work', rest: '/' });
    expect(splitIdentityPath('/p/..%2Fx/mcp')).toEqual({ name: '../x', rest: '/mcp' });
    expect(splitIdentityPath('/mcp')).toBeUndefined();
    expect(splitIdentityPath('/profile')).toBeUndefined();
  });

  it('takes the global --profile from anywhere before --', () => {
    expect(takeProfileOption(['status', '--profile', 'work', '--json'])).toEqual({ profile: 'work', rest: ['status', '--json'] });
    expect(takeProfileOption(['--profile=work', 'login'])).toEqual({ profile: 'work', rest: ['login'] });
    expect(takeProfileOption(['stdio', '--', '--profile', 'x'])).toEqual({ profile: undefined, rest: ['stdio', '--', '--profile', 'x'] });
    expect(() => takeProfileOption(['status', '--profile'])).toThrow(/not a valid identity profile name/);
  });
});
