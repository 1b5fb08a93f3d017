/** renderer/src/model/settings.ts and add-server.ts: locked fields, validation mirroring the config schema, updates. */
import { describe, expect, it } from 'vitest';
import type { ProbeResult, Settings } from '../../shared/contract';
import { buildAddServerInput, emptyAddServerForm, probeVerdict, serverIdFor } from '../../renderer/src/model/add-server';
import { isLocked, settingsForm, urlProblem, validateSettings } from '../../renderer/src/model/settings';

const settings = (overrides: Partial<Settings> = {}): Settings => ({
  idp: { issuer: 'https://acme.okta.com', clientId: 'lanyard-desktop', clientAuthMethod: 'none' },
  gatewayPort: 47821,
  toolNameSeparator: '__',
  allowedOrigins: [],
  startAtLogin: false,
  locked: [],
  ...overrides,
});

describe('settings form', () => {
  it('locks a field when the managed config names it or a parent', () => {
    expect(isLocked(['idp'], 'idp')).toBe(true);
    expect(isLocked(['gateway'], 'gateway.port')).toBe(true);
    expect(isLocked(['gateway.port'], 'gateway.port')).toBe(true);
    expect(isLocked(['gateway.port'], 'gateway.toolNameSeparator')).toBe(false);
    expect(isLocked([], 'idp')).toBe(false);
  });

  it('nothing changed → nothing to save', () => {
    const s = settings();
    expect(validateSettings(settingsForm(s), s)).toEqual({ errors: {}, update: {}, changed: false, portChanged: false });
  });

  it('sends only what changed', () => {
    const s = settings();
    const v = validateSettings({ ...settingsForm(s), gatewayPort: '48000', startAtLogin: true }, s);
    expect(v).toMatchObject({ errors: {}, update: { gatewayPort: 48000, startAtLogin: true }, changed: true, portChanged: true });
    expect(v.update.idp).toBeUndefined();
  });

  it('an IdP change sends issuer and client id together', () => {
    const s = settings();
    const v = validateSettings({ ...settingsForm(s), issuer: 'https://other.okta.com/oauth2/default' }, s);
    expect(v.update.idp).toEqual({
      issuer: 'https://other.okta.com/oauth2/default',
      clientId: 'lanyard-desktop',
      clientAuthMethod: 'none',
    });
  });

  it('refuses what the broker would refuse', () => {
    const s = settings();
    const v = validateSettings(
      {
        ...settingsForm(s),
        issuer: 'http://acme.okta.com',
        clientId: ' ',
        gatewayPort: '80',
        toolNameSeparator: '--',
        allowedOrigins: 'https://ok.example.com\nhttps://x.example.com/path',
      },
      s,
    );
    expect(Object.keys(v.errors).sort()).toEqual(['allowedOrigins', 'clientId', 'gatewayPort', 'issuer', 'toolNameSeparator']);
  });

  it('a new secret-based method needs the secret once', () => {
    const s = settings();
    expect(validateSettings({ ...settingsForm(s), clientAuthMethod: 'client_secret_basic' }, s).errors.clientSecret).toBeDefined();
    const ok = validateSettings({ ...settingsForm(s), clientAuthMethod: 'client_secret_basic', clientSecret: 's3cret' }, s);
    expect(ok.update.idp).toMatchObject({ clientAuthMethod: 'client_secret_basic', clientSecret: 's3cret' });
  });

  it('a new issuer or client id with a secret-based method needs its own secret (the stored one is bound to the old)', () => {
    const s = settings({ idp: { issuer: 'https://acme.okta.com', clientId: 'lanyard-desktop', clientAuthMethod: 'client_secret_post' } });
    // Unchanged party and method: the stored secret still applies.
    expect(validateSettings({ ...settingsForm(s), startAtLogin: true }, s).errors.clientSecret).toBeUndefined();
    for (const edit of [{ issuer: 'https://other.okta.com' }, { clientId: 'another-client' }]) {
      const v = validateSettings({ ...settingsForm(s), ...edit }, s);
      expect(v.errors.clientSecret).toMatch(/previous one/);
      expect(validateSettings({ ...settingsForm(s), ...edit, clientSecret: 'new' }, s).errors.clientSecret).toBeUndefined();
    }
  });

  it('never sends a locked field, even when the form was edited', () => {
    const s = settings({ locked: ['idp', 'gateway'] });
    const v = validateSettings({ ...settingsForm(s), issuer: 'https://evil.example.com', gatewayPort: '50000', toolNameSeparator: '.' }, s);
    expect(v.update).toEqual({});
  });

  it('urlProblem mirrors the config rule: https, or http on loopback', () => {
    expect(urlProblem('https://acme.okta.com')).toBeUndefined();
    expect(urlProblem('http://127.0.0.1:4000')).toBeUndefined();
    expect(urlProblem('http://localhost:4000/x')).toBeUndefined();
    expect(urlProblem('http://acme.okta.com')).toMatch(/https/);
    expect(urlProblem('https://u:p@acme.okta.com')).toMatch(/password/);
    expect(urlProblem('https://acme.okta.com/#x')).toMatch(/fragment/);
    expect(urlProblem('https://acme.okta.com?x=1', { allowQuery: false })).toMatch(/query/);
    expect(urlProblem('')).toBeDefined();
  });
});

const probe = (overrides: Partial<ProbeResult> = {}): ProbeResult => ({
  url: 'https://mcp.wiki.example.com/mcp',
  reachable: true,
  paths: [],
  authRequired: true,
  resource: 'https://mcp.wiki.example.com/mcp',
  asIssuer: 'https://auth.wiki.example.com/tenant-acme',
  scopes: ['wiki:read'],
  xaa: 'supported',
  needsClientId: true,
  suggestedId: 'wiki',
  suggestedName: 'Wiki.example.com',
  ...overrides,
});

describe('add server', () => {
  it('explains each probe outcome', () => {
    expect(probeVerdict(probe())).toMatchObject({
      tone: 'ok',
      title: 'Cross-App Access supported',
      canAdd: true,
      asIssuer: 'auth.wiki.example.com/tenant-acme',
      scopes: 'wiki:read',
    });
    expect(probeVerdict(probe({ xaa: 'not_needed', needsClientId: false }))).toMatchObject({ tone: 'ok', canAdd: true });
    expect(probeVerdict(probe({ xaa: 'not_advertised' }))).toMatchObject({ tone: 'warn', canAdd: true });
    const unsupported = probeVerdict(
      probe({ xaa: 'unsupported', error: { code: 'server_not_xaa_capable', message: 'No jwt-bearer.', fix: 'Ask the vendor.' } }),
    );
    expect(unsupported).toMatchObject({ tone: 'error', canAdd: false, detail: 'No jwt-bearer.', fix: 'Ask the vendor.' });
    expect(
      probeVerdict(probe({ reachable: false, error: { code: 'server_unreachable', message: 'ECONNREFUSED', fix: 'Check the URL.' } })),
    ).toMatchObject({ tone: 'error', canAdd: false, title: 'Could not reach mcp.wiki.example.com' });
  });

  it('asks for a client id only when the probe says it is needed', () => {
    const form = { ...emptyAddServerForm(), url: 'https://mcp.wiki.example.com/mcp' };
    expect(buildAddServerInput(form, probe()).errors.clientId).toBeDefined();
    expect(buildAddServerInput(form, probe({ xaa: 'not_needed', needsClientId: false })).input).toEqual({
      url: form.url,
      name: 'Wiki.example.com',
      id: 'wiki',
    });
  });

  it('builds the addServer input, with the secret only for secret methods', () => {
    const form = {
      ...emptyAddServerForm(),
      url: ' https://mcp.wiki.example.com/mcp ',
      name: 'Wiki',
      clientId: 'lanyard-at-wiki',
      clientAuthMethod: 'client_secret_post' as const,
      clientSecret: 's',
    };
    expect(buildAddServerInput(form, probe()).input).toEqual({
      url: 'https://mcp.wiki.example.com/mcp',
      name: 'Wiki',
      id: 'wiki',
      clientId: 'lanyard-at-wiki',
      clientAuthMethod: 'client_secret_post',
      clientSecret: 's',
    });
    expect(buildAddServerInput({ ...form, clientSecret: '' }, probe()).errors.clientSecret).toBeDefined();
    expect(buildAddServerInput({ ...form, clientAuthMethod: 'none' }, probe()).input).not.toHaveProperty('clientSecret');
  });
});

describe('serverIdFor', () => {
  it('derives the id from the typed name, else the suggestion, always unique', () => {
    expect(serverIdFor('Acme Wiki', 'local', [])).toBe('acme-wiki');
    expect(serverIdFor('Wiki', 'local', ['wiki'])).toBe('wiki-2');
    expect(serverIdFor('Wiki', 'local', ['wiki', 'wiki-2'])).toBe('wiki-3');
    expect(serverIdFor('', 'local', [])).toBe('local');
    expect(serverIdFor('  ', 'local', ['local'])).toBe('local-2');
    expect(serverIdFor('Jira — Café ✓', undefined, [])).toBe('jira-cafe');
    expect(serverIdFor('✓✓', undefined, [])).toBeUndefined();
    expect(serverIdFor('A'.repeat(60), undefined, [])).toBe('a'.repeat(28));
  });

  it('the addServer input carries it', () => {
    const form = { ...emptyAddServerForm(), url: 'http://127.0.0.1:4100/mcp', name: 'Wiki', clientId: 'c' };
    expect(buildAddServerInput(form, probe({ suggestedId: 'local' }), ['todo']).input?.id).toBe('wiki');
  });
});
