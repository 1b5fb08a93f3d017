/** Contract-valid Status / ServerStatus values for the renderer's and the shell's unit tests. */
import { StatusSchema, type ServerStatus, type Status } from '../../shared/contract';

export const NOW = Date.UTC(2025, 2, 12, 10, 0, 0);

export function server(overrides: Partial<ServerStatus> = {}): ServerStatus {
  return {
    id: 'wiki',
    name: 'Wiki',
    url: 'https://mcp.wiki.example.com/mcp',
    enabled: true,
    managed: false,
    health: 'ready',
    authPath: 'xaa',
    authState: 'ready',
    authPathPinned: false,
    asIssuer: 'https://auth.wiki.example.com/tenant-acme',
    clientId: 'lanyard-at-wiki',
    toolCount: 3,
    scopes: ['wiki:read'],
    tokenExpiresAt: NOW + 9 * 60_000,
    idJagsThisMonth: 12,
    idJagMonthlyQuota: 250,
    ...overrides,
  };
}

const alice = { issuer: 'https://acme.okta.com', sub: '00u-alice', email: 'alice@example.com', name: 'Alice Example' };

export function status(overrides: Partial<Status> = {}): Status {
  const value: Status = {
    version: '0.1.0',
    session: { status: 'signed_in', user: alice, idTokenExpiresAt: NOW + 3_600_000 },
    idp: { issuer: 'https://acme.okta.com', clientId: 'lanyard-desktop', managed: false },
    servers: [server()],
    gateway: { url: 'http://127.0.0.1:47821/mcp', port: 47821, running: true },
    secretStore: { kind: 'os-keychain', description: 'OS keychain (Secret Service)' },
    ideSessions: [],
    ...overrides,
  };
  // Fixtures must be what the broker can really send.
  return StatusSchema.parse(value);
}

export const signedOut = (): Status => status({ session: { status: 'signed_out' } });
export const expired = (): Status =>
  status({
    session: {
      status: 'expired',
      user: alice,
      error: { code: 'session_expired', message: 'Your sign-in expired.', fix: 'Sign in again.' },
    },
  });
