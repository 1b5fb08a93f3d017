/**
 * The scope of a remote device's token (SECURITY.md, "Remote devices"): it opens the MCP endpoints and nothing else —
 * not the control API (sign-in and sign-out, settings, secrets, pairing approval, token rotation), not past the Host
 * and Origin checks, and never as far as an upstream server. A revoked one is refused at once. A real broker over a
 * local open MCP server (memory secret store: no keychain needed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, type RunningGateway } from '../../electron/broker/broker';
import { unmanaged } from '../../electron/broker/config/managed';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { silentLogger } from '../../electron/broker/util/log';
import { controlMethodNames } from '../../shared/contract';
import { startOtherServers } from '../helpers/auth-servers';

let others: Awaited<ReturnType<typeof startOtherServers>>;
let home: string;
let broker: Broker;
let gateway: RunningGateway;
let token: string;
let deviceId: string;

const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'remote', version: '1' } },
});

function post(pathname: string, headers: Record<string, string>, body = INIT): Promise<Response> {
  return fetch(`${gateway.server.url}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
}

beforeAll(async () => {
  others = await startOtherServers();
  home = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-remote-scope-'));
  broker = await Broker.create({
    version: 'test',
    home,
    secrets: new MemorySecretStore(),
    managed: unmanaged,
    log: silentLogger,
    openUrl: () => undefined,
  });
  await broker.control.addServer({ url: `${others.origin}/open/mcp`, id: 'open' });
  gateway = await broker.startGateway({ port: 0, dashboard: { rendererDir: path.join(home, 'none') } });
  const pairing = await broker.remoteAccess();
  const asked = pairing.request('scope test');
  deviceId = (await broker.control.approvePairing({ code: asked.code })).id;
  const claim = pairing.claim(asked.pairing);
  if (claim.state !== 'approved') throw new Error('not approved');
  token = claim.token;
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await broker?.close();
  await others?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('a remote token', () => {
  it('opens every MCP endpoint: /mcp, /ide/<ide>/mcp, /mcp/only/<id>, the relay /mcp/<id>', async () => {
    for (const p of ['/mcp', '/ide/cursor/mcp', '/mcp/only/open', '/mcp/open']) {
      const res = await post(p, { authorization: `Bearer ${token}` });
      expect(res.status, p).toBe(200);
      await res.body?.cancel();
    }
  });

  it('never reaches an upstream server: the relay forwards no Authorization of the IDE', async () => {
    for (const r of others.received.filter((x) => x.path === '/open/mcp')) expect(JSON.stringify(r.headers)).not.toContain(token);
    expect(others.received.some((x) => x.path === '/open/mcp')).toBe(true);
  });

  it('opens no method of the control API (403 with the reason), and leaves the broker unchanged', async () => {
    for (const method of controlMethodNames) {
      const res = await post(`/api/${method}`, { authorization: `Bearer ${token}` }, '{}');
      expect(res.status, method).toBe(403);
      const text = await res.text();
      expect(text).toContain('remote_token_refused');
      expect(text).not.toContain(token);
    }
    const events = await fetch(`${gateway.server.url}/api/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(events.status).toBe(403);
    await events.body?.cancel();
    expect((await broker.control.listRemoteDevices()).devices.find((d) => d.id === deviceId)?.revokedAt).toBeUndefined();
  });

  it('passes no Host or Origin check a web page fails (DNS rebinding, a foreign origin)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: gateway.server.port,
          path: '/mcp',
          method: 'POST',
          headers: { host: `rebind.example:${gateway.server.port}`, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(INIT);
    });
    expect(status).toBe(421);
    expect((await post('/mcp', { authorization: `Bearer ${token}`, origin: 'https://evil.example' })).status).toBe(403);
  });

  it('is not the local token, and the local token is not a remote one: rotating one leaves the other', async () => {
    expect(gateway.localAuth.matches(token)).toBe(false);
    await broker.control.rotateLocalToken();
    const res = await post('/mcp', { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });

  it('is refused at once when revoked, with how to pair again (and never echoed)', async () => {
    await broker.control.revokeRemoteDevice({ id: deviceId });
    const res = await post('/mcp', { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { message: string; data: { code: string; reason: string } } };
    expect(body.error.data).toMatchObject({ code: 'remote_token_refused', reason: 'remote-revoked' });
    expect(body.error.message).toContain('lanyard remote pair');
    expect(JSON.stringify(body)).not.toContain(token);
  });
});
