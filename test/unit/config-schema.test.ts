import { describe, expect, it } from 'vitest';
import { DEFAULT_GATEWAY_PORT, DEFAULT_IDP_SCOPES, LanyardConfigSchema, urlProblem } from '../../electron/broker/config/schema';
import { formatIssuePath, formatZodIssue, parseLanyardConfig } from '../../electron/broker/config/validate';

const server = (over: Record<string, unknown> = {}) => ({ id: 'linear', name: 'Linear', url: 'https://mcp.linear.app/mcp', ...over });
const idp = (over: Record<string, unknown> = {}) => ({ issuer: 'https://acme.okta.com', clientId: '0oa123', ...over });

function issuesOf(input: unknown): string[] {
  const result = parseLanyardConfig(input);
  if (result.ok) throw new Error(`expected invalid, got ${JSON.stringify(result.config)}`);
  return result.issues;
}

describe('LanyardConfig defaults', () => {
  it('a minimal file gets every default', () => {
    const result = parseLanyardConfig({ version: 1 });
    expect(result).toEqual({
      ok: true,
      config: { version: 1, servers: [], gateway: { port: DEFAULT_GATEWAY_PORT, toolNameSeparator: '__', allowedOrigins: [] } },
    });
  });

  it('fills idp and server defaults', () => {
    const result = parseLanyardConfig({ version: 1, idp: idp(), servers: [server()] });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.idp).toEqual({
      issuer: 'https://acme.okta.com',
      clientId: '0oa123',
      clientAuth: { method: 'none' },
      scopes: [...DEFAULT_IDP_SCOPES],
    });
    expect(result.config.servers[0]).toEqual({ ...server(), enabled: true });
  });

  it('defaults are fresh objects, not shared between parses', () => {
    const a = parseLanyardConfig({ version: 1, idp: idp() });
    const b = parseLanyardConfig({ version: 1, idp: idp() });
    if (!a.ok || !b.ok) throw new Error('unexpected');
    a.config.idp?.scopes.push('x');
    a.config.servers.push(server() as never);
    expect(b.config.idp?.scopes).toEqual([...DEFAULT_IDP_SCOPES]);
    expect(b.config.servers).toEqual([]);
  });

  it('accepts every client auth shape and loopback http for the sandbox', () => {
    for (const clientAuth of [
      { method: 'none' },
      { method: 'client_secret_basic' },
      { method: 'client_secret_post' },
      { method: 'private_key_jwt' },
      { method: 'private_key_jwt', keyId: 'k1' },
    ]) {
      expect(parseLanyardConfig({ version: 1, idp: idp({ clientAuth }) }).ok).toBe(true);
    }
    const full = parseLanyardConfig({
      version: 1,
      idp: idp({ issuer: 'http://127.0.0.1:4000/oauth2/default', redirectPort: 0, tokenExchangeEndpoint: 'http://localhost:4000/token' }),
      servers: [
        server({
          url: 'http://[::1]:9000/mcp',
          asClient: { clientId: 'c', method: 'private_key_jwt', keyId: 'k' },
          scopes: ['read:issues'],
          expectedAsIssuer: 'https://as.example.com',
        }),
        server({ id: 'a-2', enabled: false }),
      ],
      gateway: {
        port: 0,
        toolNameSeparator: '.',
        allowedOrigins: ['https://app.example.com', 'http://localhost:5173', 'vscode-webview://abc123'],
      },
      ui: { startAtLogin: true },
    });
    expect(full.ok).toBe(true);
  });
});

describe('each invalid field is named, with what to change', () => {
  const cases: Array<[string, unknown, string]> = [
    ['version missing', {}, 'version: is required (add "version": 1)'],
    ['version from the future', { version: 2 }, 'version: is 2: this file was written by a newer Lanyard'],
    ['version wrong', { version: 'one' }, 'version: must be 1'],
    [
      'issuer http',
      { version: 1, idp: idp({ issuer: 'http://acme.okta.com' }) },
      'idp.issuer: must be an https URL (http is allowed only for 127.0.0.1/localhost)',
    ],
    ['issuer with query', { version: 1, idp: idp({ issuer: 'https://acme.okta.com?x=1' }) }, 'idp.issuer: must not contain a ?query'],
    ['issuer not a url', { version: 1, idp: idp({ issuer: 'acme.okta.com' }) }, 'idp.issuer: must be an absolute URL such as https://'],
    ['clientId empty', { version: 1, idp: idp({ clientId: ' ' }) }, 'idp.clientId: must not be empty'],
    ['clientId missing', { version: 1, idp: { issuer: 'https://acme.okta.com' } }, 'idp.clientId: is required'],
    [
      'clientAuth method',
      { version: 1, idp: idp({ clientAuth: { method: 'basic' } }) },
      'idp.clientAuth.method: must be one of "none", "client_secret_basic", "client_secret_post", "private_key_jwt"',
    ],
    [
      'secret in clientAuth',
      { version: 1, idp: idp({ clientAuth: { method: 'client_secret_post', secret: 'x' } }) },
      'idp.clientAuth.secret: secrets do not belong in config.json',
    ],
    [
      'secret in idp',
      { version: 1, idp: idp({ clientSecret: 'x' }) },
      'idp.clientSecret: secrets do not belong in config.json; remove it (Lanyard keeps secrets in the OS keychain)',
    ],
    ['scopes without openid', { version: 1, idp: idp({ scopes: ['profile'] }) }, "idp.scopes: must include 'openid'"],
    [
      'scope with a space',
      { version: 1, idp: idp({ scopes: ['openid', 'a b'] }) },
      'idp.scopes[1]: must be one scope name (no spaces, quotes or backslashes)',
    ],
    [
      'redirect port privileged',
      { version: 1, idp: idp({ redirectPort: 80 }) },
      'idp.redirectPort: must be 0 (any free port) or between 1024 and 65535',
    ],
    ['redirect port fractional', { version: 1, idp: idp({ redirectPort: 8080.5 }) }, 'idp.redirectPort: must be a whole number'],
    [
      'exchange endpoint http',
      { version: 1, idp: idp({ tokenExchangeEndpoint: 'http://idp.example.com/token' }) },
      'idp.tokenExchangeEndpoint: must be an https URL',
    ],
    [
      'server id',
      { version: 1, servers: [server({ id: 'Linear!' })] },
      "servers[0].id: must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit",
    ],
    ['server id too long', { version: 1, servers: [server({ id: 'a'.repeat(33) })] }, 'servers[0].id: must be 1-32 characters'],
    ['server name empty', { version: 1, servers: [server({ name: '' })] }, 'servers[0].name: must not be empty'],
    [
      'server url http',
      { version: 1, servers: [server(), server({ id: 'b', url: 'http://mcp.example.com/mcp' })] },
      'servers[1].url: must be an https URL (http is allowed only for 127.0.0.1/localhost)',
    ],
    [
      'server url credentials',
      { version: 1, servers: [server({ url: 'https://user:pw@mcp.example.com/mcp' })] },
      'servers[0].url: must not contain a username or password',
    ],
    [
      'server url fragment',
      { version: 1, servers: [server({ url: 'https://mcp.example.com/mcp#x' })] },
      'servers[0].url: must not contain a #fragment',
    ],
    [
      'server url empty fragment',
      { version: 1, servers: [server({ url: 'https://mcp.example.com/mcp#' })] },
      'servers[0].url: must not contain a #fragment',
    ],
    ['server url scheme', { version: 1, servers: [server({ url: 'ftp://mcp.example.com' })] }, 'servers[0].url: must be an https URL'],
    ['server enabled type', { version: 1, servers: [server({ enabled: 'yes' })] }, 'servers[0].enabled: must be a boolean (got a string)'],
    [
      'server typo',
      { version: 1, servers: [server({ enable: true })] },
      'servers[0].enable: unknown setting (check the spelling or remove it)',
    ],
    [
      'asClient method',
      { version: 1, servers: [server({ asClient: { clientId: 'c', method: 'mtls' } })] },
      'servers[0].asClient.method: must be one of "none", "client_secret_basic", "client_secret_post", "private_key_jwt"',
    ],
    [
      'asClient secret',
      { version: 1, servers: [server({ asClient: { clientId: 'c', clientSecret: 's' } })] },
      'servers[0].asClient.clientSecret: secrets do not belong in config.json',
    ],
    [
      'expectedAsIssuer',
      { version: 1, servers: [server({ expectedAsIssuer: 'http://as.example.com' })] },
      'servers[0].expectedAsIssuer: must be an https URL',
    ],
    ['servers not a list', { version: 1, servers: {} }, 'servers: must be a list (got an object)'],
    [
      'gateway port',
      { version: 1, gateway: { port: 80 } },
      'gateway.port: must be 0 (any free port, tests only) or between 1024 and 65535',
    ],
    ['gateway port type', { version: 1, gateway: { port: '47821' } }, 'gateway.port: must be a number (got a string)'],
    [
      'separator',
      { version: 1, gateway: { toolNameSeparator: '-' } },
      "gateway.toolNameSeparator: must be 1-4 of the characters '_', '.', '-' and contain '_' or '.'",
    ],
    [
      'origin with path',
      { version: 1, gateway: { allowedOrigins: ['https://app.example.com/'] } },
      'gateway.allowedOrigins[0]: must be an origin such as https://app.example.com',
    ],
    ['ui', { version: 1, ui: { startAtLogin: 1 } }, 'ui.startAtLogin: must be a boolean (got a number)'],
    ['top-level typo', { version: 1, server: [] }, 'server: unknown setting'],
    ['not an object', [], 'top level: must be an object (got a list)'],
  ];

  it.each(cases)('%s', (_name, input, expected) => {
    const issues = issuesOf(input);
    expect(
      issues.some((i) => i.startsWith(expected)),
      `issues were:\n${issues.join('\n')}`,
    ).toBe(true);
  });

  it('reports duplicate server ids at the duplicate, naming the first', () => {
    const issues = issuesOf({ version: 1, servers: [server({ id: 'a' }), server({ id: 'b' }), server({ id: 'a' })] });
    expect(issues).toEqual(['servers[2].id: duplicate server id "a" (also used by servers[0]); ids must be unique']);
  });

  it('reports a duplicate even when another entry is invalid too', () => {
    const issues = issuesOf({ version: 1, servers: [server({ id: 'a' }), server({ id: 'a', url: 'http://x.example.com' })] });
    expect(issues).toContain('servers[1].id: duplicate server id "a" (also used by servers[0]); ids must be unique');
    expect(issues).toContain('servers[1].url: must be an https URL (http is allowed only for 127.0.0.1/localhost)');
  });

  it('never quotes the offending value (it might be a pasted secret)', () => {
    const secret = 'sk_live_0123456789abcdef';
    const issues = issuesOf({
      version: 1,
      idp: idp({ clientId: 123, issuer: `https://x:${secret}@idp.example.com`, clientSecret: secret, scopes: ['openid', `${secret} x`] }),
      servers: [server({ url: `https://mcp.example.com/#${secret}`, name: 5 })],
      gateway: { port: secret },
    });
    expect(issues.length).toBeGreaterThanOrEqual(6);
    for (const issue of issues) expect(issue).not.toContain(secret);
  });

  it('lists several unknown keys at their parent', () => {
    const issues = issuesOf({ version: 1, gateway: { a: 1, token: 2 } });
    expect(issues).toEqual([
      'gateway: unknown settings "a", "token" (secrets do not belong in config.json; check the spelling or remove them)',
    ]);
  });
});

describe('formatZodIssue', () => {
  it('formats paths like a reader writes them', () => {
    expect(formatIssuePath(['servers', 1, 'url'])).toBe('servers[1].url');
    expect(formatIssuePath(['idp', 'clientAuth', 'method'])).toBe('idp.clientAuth.method');
    expect(formatIssuePath(['gateway', 'odd key'])).toBe('gateway["odd key"]');
    expect(formatIssuePath([])).toBe('');
  });

  it('works on issues from a plain zod parse too', () => {
    const result = LanyardConfigSchema.safeParse({ version: 1, servers: [server({ url: 'http://evil.example.com' })] });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.error.issues.map(formatZodIssue)).toEqual([
      'servers[0].url: must be an https URL (http is allowed only for 127.0.0.1/localhost)',
    ]);
  });
});

describe('urlProblem', () => {
  it('allows https anywhere and http on loopback only', () => {
    expect(urlProblem('https://mcp.example.com/mcp?x=1')).toBeUndefined();
    expect(urlProblem('http://127.0.0.1:3000/mcp')).toBeUndefined();
    expect(urlProblem('http://127.1.2.3/mcp')).toBeUndefined();
    expect(urlProblem('http://localhost/mcp')).toBeUndefined();
    expect(urlProblem('http://[::1]/mcp')).toBeUndefined();
    expect(urlProblem('http://localhost.evil.com/mcp')).toMatch(/https/);
    expect(urlProblem('http://127.0.0.1.nip.io/mcp')).toMatch(/https/);
    expect(urlProblem(' https://x.example.com')).toBe('must not contain spaces');
  });
});
