/** renderer/src/model/servers.ts: what each server row says, and the quota against the IdP's monthly ID-JAG cap. */
import { describe, expect, it } from 'vitest';
import { authPathLabel, quotaModel, serverRowModel, serversSummary } from '../../renderer/src/model/servers';
import { NOW, server } from './renderer-fixtures';

describe('serverRowModel', () => {
  it('a healthy XAA server: auth path, AS, tools, token expiry, quota', () => {
    const row = serverRowModel(server(), NOW);
    expect(row).toMatchObject({
      id: 'wiki',
      name: 'Wiki',
      host: 'mcp.wiki.example.com',
      tone: 'ok',
      healthLabel: 'Ready',
      authPath: 'Cross-App Access',
      asIssuer: 'auth.wiki.example.com/tenant-acme',
      toolCount: '3 tools',
      token: 'Expires in 9 min',
      scopes: 'wiki:read',
      quota: { used: 12, quota: 250, percent: 5, tone: 'ok', label: '12 / 250 ID-JAGs' },
    });
    expect(row.error).toBeUndefined();
    expect(row.lockedReason).toBeUndefined();
  });

  it('carries the last error with its fix line', () => {
    const row = serverRowModel(
      server({
        health: 'error',
        lastError: {
          code: 'exchange_denied',
          message: 'The IdP refused the exchange (invalid_target).',
          fix: 'Ask your admin to allow Lanyard for this server.',
        },
      }),
      NOW,
    );
    expect(row.tone).toBe('error');
    expect(row.error).toEqual({
      code: 'exchange_denied',
      message: 'The IdP refused the exchange (invalid_target).',
      fix: 'Ask your admin to allow Lanyard for this server.',
    });
  });

  it('unknown counts and undiscovered servers show a dash, not a zero', () => {
    const row = serverRowModel(
      server({ authPath: 'unknown', asIssuer: undefined, toolCount: undefined, tokenExpiresAt: undefined, scopes: [] }),
      NOW,
    );
    expect(row).toMatchObject({ authPath: 'Not discovered yet', asIssuer: '—', toolCount: '—', token: 'No token yet', scopes: '—' });
  });

  it('a server that needs no auth says so instead of showing token data', () => {
    const row = serverRowModel(server({ authPath: 'none', asIssuer: undefined, tokenExpiresAt: undefined }), NOW);
    expect(row).toMatchObject({ authPath: 'No authentication', asIssuer: 'None', token: 'Not needed' });
  });

  it('disabled and managed servers', () => {
    expect(serverRowModel(server({ enabled: false, health: 'disabled' }), NOW)).toMatchObject({
      tone: 'off',
      healthLabel: 'Disabled',
      enabled: false,
    });
    expect(serverRowModel(server({ managed: true }), NOW).lockedReason).toBe('Managed by your administrator');
  });

  it('labels every auth path', () => {
    expect(authPathLabel('xaa')).toBe('Cross-App Access');
    expect(authPathLabel('none')).toBe('No authentication');
    expect(authPathLabel('unknown')).toBe('Not discovered yet');
  });
});

describe('quotaModel', () => {
  it.each([
    [0, 250, 0, 'ok'],
    [1, 250, 1, 'ok'],
    [199, 250, 80, 'warn'],
    [200, 250, 80, 'warn'],
    [249, 250, 100, 'warn'],
    [250, 250, 100, 'error'],
    [300, 250, 100, 'error'],
  ])('%i of %i → %i%% (%s)', (used, quota, percent, tone) => {
    expect(quotaModel(used, quota)).toMatchObject({ percent, tone });
  });

  it('never divides by zero', () => {
    expect(quotaModel(0, 0)).toMatchObject({ percent: 0, tone: 'ok' });
  });
});

describe('serversSummary', () => {
  it('counts working, failing and disabled servers', () => {
    expect(serversSummary({ servers: [] }).text).toBe('No servers yet.');
    expect(serversSummary({ servers: [server(), server({ id: 'b', health: 'idle' })] }).text).toBe('2 of 2 enabled servers working');
    expect(serversSummary({ servers: [server(), server({ id: 'b', enabled: false, health: 'disabled' })] }).text).toBe(
      '1 of 1 enabled server working · 1 disabled',
    );
    const failing = serversSummary({ servers: [server(), server({ id: 'b', health: 'error' })] });
    expect(failing).toMatchObject({ failing: 1, ready: 1, enabled: 2 });
    expect(failing.text).toBe('1 server needs attention · 1 of 2 working');
  });
});

describe('serverRowModel with what the page learned itself', () => {
  it('falls back to a tool count the page knows when status has none yet', () => {
    expect(serverRowModel(server({ toolCount: undefined }), NOW, { toolCount: 8 }).toolCount).toBe('8 tools');
    expect(serverRowModel(server({ toolCount: 3 }), NOW, { toolCount: 8 }).toolCount).toBe('3 tools');
    expect(serverRowModel(server({ toolCount: undefined }), NOW, {}).toolCount).toBe('—');
  });
});
