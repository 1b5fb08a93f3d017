/**
 * The front-door guard with paired remote devices (docs/architecture.md "Remote development"): a remote token opens the
 * MCP endpoints only, after the same Host and Origin checks; revoked and unknown ones are told how to pair again.
 */
import { describe, expect, it } from 'vitest';
import { generateLocalToken, guardRequest, LocalAuth, tokensEqual, type RouteAuth } from '../../electron/broker/gateway/local-auth';
import { remoteCallerOf } from '../../electron/broker/remote/caller';
import type { RemoteTokenVerdict } from '../../electron/broker/remote/devices';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';

const PORT = 47821;
const LOCAL = generateLocalToken();
const GOOD = `lnr_${'G'.repeat(43)}`;
const REVOKED = `lnr_${'R'.repeat(43)}`;
const device = { id: 'rd_1', label: 'buildbox (SSH)', createdAt: '2026-01-01T00:00:00Z' };
const remote = (t: string): RemoteTokenVerdict =>
  t === GOOD ? { kind: 'ok', device } : t === REVOKED ? { kind: 'revoked', device: { ...device, revokedAt: 'x' } } : { kind: 'unknown' };

function guard(
  token: string | undefined,
  options: { auth?: RouteAuth; mcp?: boolean; host?: string; origin?: string; withRemote?: boolean } = {},
) {
  return guardRequest(
    {
      host: options.host ?? `127.0.0.1:${PORT}`,
      ...(options.origin ? { origin: options.origin } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    {
      port: PORT,
      auth: options.auth ?? 'token',
      mcp: options.mcp ?? true,
      allowedOrigins: [],
      matches: (t) => t !== undefined && tokensEqual(t, LOCAL),
      ...(options.withRemote === false ? {} : { remote }),
    },
  );
}

describe('a remote token at the front door', () => {
  it('opens the MCP endpoints', () => {
    expect(guard(GOOD)).toBeNull();
  });

  it('opens nothing else: 403 with the reason on token and session-or-token routes alike', () => {
    for (const auth of ['token', 'session-or-token'] as const) {
      const r = guard(GOOD, { auth, mcp: false });
      expect(r).toMatchObject({ status: 403, reason: 'remote-scope' });
      expect(r?.message).toContain('may only call');
      expect(r?.message).not.toContain(GOOD);
    }
  });

  it('meets the Host and Origin checks first (DNS rebinding, foreign pages)', () => {
    expect(guard(GOOD, { host: `evil.example:${PORT}` })).toMatchObject({ status: 421, reason: 'host' });
    expect(guard(GOOD, { host: `127.0.0.1:9999` })).toMatchObject({ status: 421 });
    expect(guard(GOOD, { origin: 'https://evil.example' })).toMatchObject({ status: 403, reason: 'origin' });
  });

  it('revoked or unknown: 401 saying how to pair again; without pairing wired, the plain local-token answer', () => {
    expect(guard(REVOKED)).toMatchObject({
      status: 401,
      reason: 'remote-revoked',
      message: expect.stringContaining('lanyard remote pair'),
    });
    expect(guard(`lnr_${'U'.repeat(43)}`)).toMatchObject({ status: 401, reason: 'remote-unknown' });
    expect(guard(GOOD, { withRemote: false })).toMatchObject({ status: 401, reason: 'token' });
  });

  it('the local token still opens everything it did; a non-remote token is never looked up as one', () => {
    expect(guard(LOCAL, { mcp: false })).toBeNull();
    expect(guard(LOCAL)).toBeNull();
    expect(guard('lnr_short')).toMatchObject({ status: 401, reason: 'token' });
  });
});

describe('LocalAuth with remote tokens', () => {
  it('marks the request as the device’s only when it was let in on an MCP endpoint', async () => {
    const auth = await LocalAuth.open(new MemorySecretStore(), { fresh: true });
    auth.useRemoteTokens(remote);
    const headers = { host: `127.0.0.1:${PORT}`, authorization: `Bearer ${GOOD}` };
    const onMcp = { headers };
    expect(auth.check(onMcp, { port: PORT, auth: 'token', mcp: true })).toBeNull();
    expect(remoteCallerOf(onMcp)).toEqual({ deviceId: 'rd_1', label: 'buildbox (SSH)' });
    const onApi = { headers: { ...headers } };
    expect(auth.check(onApi, { port: PORT, auth: 'session-or-token', mcp: false })).toMatchObject({ status: 403 });
    expect(remoteCallerOf(onApi)).toBeUndefined();
  });
});

describe('attribution on a kept-alive connection', () => {
  it('a remote request’s device never carries over to the next request on the same socket', async () => {
    const { Agent, request } = await import('node:http');
    const { startGatewayServer } = await import('../../electron/broker/gateway/http-server');
    const { currentRemoteCaller } = await import('../../electron/broker/remote/caller');
    const auth = await LocalAuth.open(new MemorySecretStore(), { fresh: true });
    auth.useRemoteTokens(remote);
    const seen: Array<string | undefined> = [];
    const server = await startGatewayServer({
      port: 0,
      localAuth: auth,
      aggregator: {
        async handleRequest(_req, res) {
          await Promise.resolve();
          seen.push(currentRemoteCaller()?.label);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        },
      },
      relay: { handleRequest: async () => undefined } as never,
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const send = (token: string) =>
      new Promise<void>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: server.port,
            path: '/mcp',
            method: 'POST',
            agent,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('socket', (s) => sockets.add(s));
        req.on('error', reject);
        req.end('{"jsonrpc":"2.0","id":1,"method":"ping"}');
      });
    try {
      await send(GOOD);
      await send(auth.token);
      await send(GOOD);
      await send(auth.token);
    } finally {
      agent.destroy();
      await server.close();
    }
    expect(sockets.size).toBe(1);
    expect(seen).toEqual(['buildbox (SSH)', undefined, 'buildbox (SSH)', undefined]);
  });
});
