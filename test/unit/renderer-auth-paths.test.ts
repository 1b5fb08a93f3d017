/**
 * The dashboard's auth paths (renderer/src/model/servers.ts, add-server.ts): what each server card says about its path
 * and state, the one action it offers, the Set-key form that forgets the key once sent, and the Add-server form that
 * lists every path the probe tried and builds the addServer input for the chosen one.
 */
import { describe, expect, it } from 'vitest';
import { AUTH_PATH_LABELS, AUTH_PATHS, AUTH_STATES, type AuthState } from '../../shared/auth-paths';
import { AddServerInputSchema, type ProbeResult } from '../../shared/contract';
import {
  buildAddServerInput,
  emptyAddServerForm,
  pathChoices,
  probeVerdict,
  selectedPath,
  type AddServerForm,
} from '../../renderer/src/model/add-server';
import { authModel, authPathLabel, keyFormFor, serverRowModel, serversSummary, submitKeyForm } from '../../renderer/src/model/servers';
import { NOW, server } from './renderer-fixtures';

const KEY = 'sk-live-0123456789abcdef';

describe('server card: path, state and the one action', () => {
  it('names every path with the labels the tray and the CLI use', () => {
    for (const path of AUTH_PATHS) expect(authPathLabel(path)).toBe(AUTH_PATH_LABELS[path]);
    expect(authPathLabel('unknown')).toBe('Not discovered yet');
    expect(serverRowModel(server({ authPath: 'oauth' }), NOW).auth.path).toBe('OAuth (browser authorization)');
  });

  const expected: Record<AuthState, { state: string; action?: string }> = {
    ready: { state: 'Ready' },
    sign_in_required: { state: 'Sign-in needed', action: 'Sign in' },
    authorization_required: { state: 'Authorization needed', action: 'Authorize' },
    authorizing: { state: 'Authorizing', action: 'Authorize' },
    key_required: { state: 'Key needed', action: 'Set key' },
    blocked: { state: 'Blocked by your administrator' },
    error: { state: 'Error' },
    unknown: { state: 'Not checked yet' },
  };
  it.each(AUTH_STATES.map((s) => [s]))('%s: its words and at most one action', (authState) => {
    const auth = authModel(server({ authState }));
    expect(auth.state).toBe(expected[authState].state);
    expect(auth.action?.label).toBe(expected[authState].action);
  });

  it('a blocked server offers nothing to click, and says the IdP’s reason with the fix', () => {
    const blocked = server({
      authState: 'blocked',
      action: 'authorize',
      health: 'error',
      lastError: {
        code: 'policy_blocked',
        message: 'Your IdP refused Cross-App Access to Wiki (access_denied: not assigned to this app).',
        fix: 'Ask your administrator to assign Wiki to you; Lanyard will not fall back to another sign-in.',
      },
    });
    const row = serverRowModel(blocked, NOW);
    expect(row.auth).toMatchObject({
      blocked: true,
      tone: 'error',
      state: 'Blocked by your administrator',
      detail: 'Your IdP refused Cross-App Access to Wiki (access_denied: not assigned to this app).',
      fix: 'Ask your administrator to assign Wiki to you; Lanyard will not fall back to another sign-in.',
    });
    expect(row.auth.action).toBeUndefined();
    expect(row).toMatchObject({ healthLabel: 'Blocked', tone: 'error' });
    // Said once, in the strip, not again as a separate "Last error".
    expect(row.error).toBeUndefined();
  });

  it('a denied authorization is said next to Authorize, not as a separate error', () => {
    const denied = serverRowModel(
      server({
        authPath: 'oauth',
        authState: 'authorization_required',
        lastError: { code: 'authorization_failed', message: 'You denied Lanyard access to Calendar.', fix: 'Press Authorize again.' },
      }),
      NOW,
    );
    expect(denied.auth).toMatchObject({ detail: 'You denied Lanyard access to Calendar.', fix: 'Press Authorize again.' });
    expect(denied.auth.action?.label).toBe('Authorize');
    expect(denied.error).toBeUndefined();
  });

  it('the state’s own error becomes its detail; any other error stays the card’s last error', () => {
    const rejected = serverRowModel(
      server({
        authPath: 'header',
        authState: 'key_required',
        headerName: 'X-API-Key',
        lastError: { code: 'key_required', message: 'Notes rejected the stored key (401).', fix: 'Set a new key.' },
      }),
      NOW,
    );
    expect(rejected.auth).toMatchObject({ detail: 'Notes rejected the stored key (401).', fix: 'Set a new key.' });
    expect(rejected.error).toBeUndefined();
    const unreachable = serverRowModel(
      server({ authState: 'error', lastError: { code: 'server_unreachable', message: 'ECONNREFUSED', fix: 'Check the URL.' } }),
      NOW,
    );
    expect(unreachable.error).toMatchObject({ message: 'ECONNREFUSED' });
  });

  it('authorizing: the waiting line and the link as a fallback, gone once authorized', () => {
    const link = 'https://as.example.com/authorize?client_id=lanyard&state=abc&code_challenge=xyz';
    const waiting = authModel(server({ authPath: 'oauth', authState: 'authorizing', authorizeUrl: link }));
    expect(waiting).toMatchObject({ waiting: 'Waiting for you to authorize in the browser…', authorizeUrl: link });
    // The link authorizeServer returned, when the status does not carry it.
    expect(authModel(server({ authPath: 'oauth', authState: 'authorizing' }), link).authorizeUrl).toBe(link);
    // Once the browser step ended (denied, cancelled, timed out) its link is spent.
    expect(authModel(server({ authPath: 'oauth', authState: 'authorization_required' }), link).authorizeUrl).toBeUndefined();
    expect(authModel(server({ authPath: 'oauth', authState: 'ready' }), link)).not.toHaveProperty('authorizeUrl');
    expect(authModel(server({ authPath: 'oauth', authState: 'ready' }), link)).not.toHaveProperty('waiting');
  });

  it('a path the administrator pinned says so', () => {
    expect(authModel(server({ authPathPinned: true })).pinned).toBe('Pinned by your administrator');
    expect(authModel(server()).pinned).toBeUndefined();
  });

  it('shows the IdP quota warning, and the quota only where ID-JAGs are spent', () => {
    const warned = serverRowModel(
      server({
        idJagsThisMonth: 210,
        idJagQuotaWarning: { message: '210 of 250 ID-JAGs used this month.', fix: 'Ask your administrator to raise the limit.' },
      }),
      NOW,
    );
    expect(warned.quotaWarning).toEqual({
      message: '210 of 250 ID-JAGs used this month.',
      fix: 'Ask your administrator to raise the limit.',
    });
    expect(warned.showQuota).toBe(true);
    expect(serverRowModel(server(), NOW).quotaWarning).toBeUndefined();
    expect(serverRowModel(server({ authPath: 'oauth', idJagsThisMonth: 0 }), NOW).showQuota).toBe(false);
  });

  it('an API-key server shows its header and whether a key is stored, never the key', () => {
    const facts = (authState: AuthState) =>
      serverRowModel(server({ authPath: 'header', authState, headerName: 'X-API-Key', asIssuer: undefined, scopes: [] }), NOW).facts;
    expect(facts('ready')).toEqual([
      { label: 'Header', value: 'X-API-Key' },
      { label: 'Tools', value: '3 tools' },
      { label: 'API key', value: 'In the keychain' },
      { label: 'Scopes', value: '—' },
    ]);
    expect(facts('key_required')[2]).toEqual({ label: 'API key', value: 'Not set' });
  });
});

describe('Set key', () => {
  const notes = server({ id: 'notes', authPath: 'header', authState: 'key_required', headerName: 'X-API-Key' });

  it('sends the key once and keeps nothing of it', () => {
    const form = { ...keyFormFor(notes), value: `  ${KEY}\n` };
    expect(form.headerName).toBe('X-API-Key');
    const sent = submitKeyForm(notes, form);
    expect(sent.input).toEqual({ id: 'notes', value: KEY });
    expect(sent.form.value).toBe('');
    expect(JSON.stringify(sent.form)).not.toContain(KEY);
  });

  it('sends the header name only when the user changed it', () => {
    expect(submitKeyForm(notes, { value: KEY, headerName: 'Authorization' }).input).toEqual({
      id: 'notes',
      value: KEY,
      headerName: 'Authorization',
    });
    expect(keyFormFor(server({ headerName: undefined })).headerName).toBe('Authorization');
  });

  it('takes an emptied header field as the default header, as the add-server form says', () => {
    const sent = submitKeyForm(server({ id: 'notes', headerName: 'X-API-Key' }), { value: KEY, headerName: '   ' });
    expect(sent.errors).toEqual({});
    expect(sent.input).toEqual({ id: 'notes', value: KEY, headerName: 'Authorization' });
  });

  it('refuses an empty key or a header the transport owns, keeping what was typed', () => {
    expect(submitKeyForm(notes, { value: '  ', headerName: 'X-API-Key' })).toMatchObject({ errors: { value: expect.any(String) } });
    const bad = submitKeyForm(notes, { value: KEY, headerName: 'Content-Type' });
    expect(bad.input).toBeUndefined();
    expect(bad.errors.headerName).toMatch(/set by the MCP transport/);
    expect(bad.form.value).toBe(KEY);
  });
});

const probe = (overrides: Partial<ProbeResult> = {}): ProbeResult => ({
  url: 'https://mcp.notes.example.com/mcp',
  reachable: true,
  authRequired: true,
  resource: 'https://mcp.notes.example.com/mcp',
  asIssuer: 'https://auth.notes.example.com',
  scopes: ['notes:read'],
  xaa: 'unsupported',
  needsClientId: false,
  suggestedId: 'notes',
  suggestedName: 'Notes',
  path: 'oauth',
  paths: [
    { path: 'xaa', applies: false, reason: 'Its authorization server does not accept ID-JAGs (no jwt-bearer grant).' },
    { path: 'oauth', applies: true, reason: 'It names an OAuth 2.1 authorization server with PKCE (S256).' },
    { path: 'header', applies: true, reason: 'You can give an API key instead.' },
    { path: 'none', applies: false, reason: 'It answers 401 without credentials.' },
  ],
  ...overrides,
});
const form = (overrides: Partial<AddServerForm> = {}): AddServerForm => ({
  ...emptyAddServerForm(),
  url: 'https://mcp.notes.example.com/mcp',
  ...overrides,
});

describe('Add server: every path the probe tried', () => {
  it('lists the paths in order, with why, the probe’s pick recommended and preselected', () => {
    const shuffled = probe();
    shuffled.paths = [...shuffled.paths].reverse();
    const choices = pathChoices(shuffled);
    expect(choices.map((c) => [c.path, c.applies, c.recommended])).toEqual([
      ['xaa', false, false],
      ['oauth', true, true],
      ['header', true, false],
      ['none', false, false],
    ]);
    expect(choices[0]?.reason).toMatch(/does not accept ID-JAGs/);
    expect(selectedPath(form(), probe())).toBe('oauth');
  });

  it('lets the user choose another path that applies, never one that does not', () => {
    expect(selectedPath(form({ authPath: 'header' }), probe())).toBe('header');
    expect(selectedPath(form({ authPath: 'xaa' }), probe())).toBe('oauth');
    expect(selectedPath(form({ authPath: 'none' }), probe())).toBe('oauth');
  });

  it('says what the probe found for each path, and what to do when none applies', () => {
    expect(probeVerdict(probe())).toMatchObject({ tone: 'ok', title: 'OAuth: authorize once in your browser', canAdd: true });
    expect(probeVerdict(probe({ path: 'header' }))).toMatchObject({ title: 'This server takes an API key', canAdd: true });
    expect(probeVerdict(probe({ path: 'none' }))).toMatchObject({ title: 'No sign-in needed', canAdd: true });
    const blocked = probeVerdict(
      probe({
        path: undefined,
        paths: probe().paths.map((p) => ({ ...p, applies: false, reason: p.path === 'xaa' ? 'Policy: Cross-App Access only.' : p.reason })),
        error: { code: 'policy_blocked', message: 'Your administrator allows only Cross-App Access for this server.', fix: 'Ask them.' },
      }),
    );
    expect(blocked).toMatchObject({
      tone: 'error',
      canAdd: false,
      title: 'Blocked by your administrator',
      detail: 'Your administrator allows only Cross-App Access for this server.',
      fix: 'Ask them.',
    });
  });

  it('OAuth: the pre-registered client id is optional; the Cross-App Access client id is not sent', () => {
    const plain = buildAddServerInput(form({ clientId: 'stale-xaa-client' }), probe());
    expect(plain.input).toEqual({ url: 'https://mcp.notes.example.com/mcp', name: 'Notes', id: 'notes', authPath: 'oauth' });
    expect(buildAddServerInput(form({ oauthClientId: ' lanyard-notes ' }), probe()).input).toMatchObject({
      oauthClientId: 'lanyard-notes',
    });
  });

  it('API key: header name (Authorization by default) and value go in the input, and the form forgets the key', () => {
    const built = buildAddServerInput(form({ authPath: 'header', headerName: 'X-API-Key', headerValue: KEY }), probe());
    expect(built.input).toEqual({
      url: 'https://mcp.notes.example.com/mcp',
      name: 'Notes',
      id: 'notes',
      authPath: 'header',
      header: { name: 'X-API-Key', value: KEY },
    });
    expect(AddServerInputSchema.safeParse(built.input).success).toBe(true);
    expect(built.form.headerValue).toBe('');
    expect(JSON.stringify(built.form)).not.toContain(KEY);
    // The default header is Authorization.
    expect(buildAddServerInput(form({ headerValue: `Bearer ${KEY}` }), probe({ path: 'header' })).input).toEqual({
      url: 'https://mcp.notes.example.com/mcp',
      name: 'Notes',
      id: 'notes',
      authPath: 'header',
      header: { name: 'Authorization', value: `Bearer ${KEY}` },
    });
  });

  it('API key: a missing key or a reserved header stops the form with a field error', () => {
    const empty = buildAddServerInput(form({ authPath: 'header' }), probe());
    expect(empty.input).toBeUndefined();
    expect(empty.errors.headerValue).toBeDefined();
    const reserved = buildAddServerInput(form({ authPath: 'header', headerName: 'Host', headerValue: KEY }), probe());
    expect(reserved.errors.headerName).toMatch(/set by the MCP transport/);
    // Nothing was sent: what the user typed stays so they can fix the header name.
    expect(reserved.form.headerValue).toBe(KEY);
  });

  it('Cross-App Access: the client id as before; the client secret is not kept after submit', () => {
    const xaa = probe({ path: 'xaa', xaa: 'supported', needsClientId: true });
    expect(buildAddServerInput(form(), xaa).errors.clientId).toBeDefined();
    const built = buildAddServerInput(
      form({ clientId: 'lanyard-at-notes', clientAuthMethod: 'client_secret_basic', clientSecret: 's3' }),
      xaa,
    );
    expect(built.input).toMatchObject({ clientId: 'lanyard-at-notes', clientAuthMethod: 'client_secret_basic', clientSecret: 's3' });
    expect(built.input).toMatchObject({ authPath: 'xaa' });
    expect(built.form.clientSecret).toBe('');
  });
});

describe('the list’s summary line', () => {
  it('counts servers waiting for the user apart from the working ones', () => {
    const summary = serversSummary({
      servers: [
        server(),
        server({ id: 'docs', authPath: 'oauth', authState: 'authorization_required', health: 'idle' }),
        server({ id: 'notes', authPath: 'header', authState: 'key_required', health: 'idle' }),
      ],
    });
    expect(summary).toMatchObject({ ready: 1, waiting: 2, failing: 0 });
    expect(summary.text).toBe('1 of 3 enabled servers working · 2 waiting for you');
  });
});

describe('path reasons', () => {
  it('read as sentences under each path', () => {
    const p = probe({
      paths: [{ path: 'xaa', applies: true, reason: 'advertises the ID-JAG grant at its authorization server' }],
      path: 'xaa',
    });
    expect(pathChoices(p)[0]?.reason).toBe('Advertises the ID-JAG grant at its authorization server.');
    expect(pathChoices(probe())[0]?.reason).toBe('Its authorization server does not accept ID-JAGs (no jwt-bearer grant).');
  });
});
