import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { saveRemoteCredential } from '../../electron/cli/remote/credentials';
import { parseRemoteEndpoint } from '../../electron/cli/remote/endpoint';
import { remoteBridgeSetup } from '../../electron/cli/stdio/remote-link';

let home: string;
let server: Server;
let probes: Array<string | undefined>;
let healthy: boolean;
let origin: string;

beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'lanyard-remote-link-'));
  probes = [];
  healthy = false;
  server = createServer((req, res) => {
    probes.push(req.headers.host);
    res.writeHead(healthy ? 200 : 503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await saveRemoteCredential(home, origin, { token: `lnr_${'A'.repeat(43)}`, deviceId: 'rd_1', label: 'box', pairedAt: '' });
});
afterEach(async () => {
  await new Promise((r) => server.close(r));
  await rm(home, { recursive: true, force: true });
});

describe('the remote bridge when the laptop does not answer', () => {
  it('probes at most once per back-off step (1 s, doubling to 30 s), however many requests fail meanwhile', async () => {
    let clock = 0;
    const setup = await remoteBridgeSetup(home, origin, () => clock);
    for (let i = 0; i < 20; i++) await expect(setup.findAgain()).rejects.toThrow(/cannot be reached/);
    expect(probes).toHaveLength(1);
    clock += 1_000;
    await expect(setup.findAgain()).rejects.toThrow(/tries again in 2 s/);
    expect(probes).toHaveLength(2);
    for (let step = 0; step < 10; step++) {
      clock += 60_000;
      await expect(setup.findAgain()).rejects.toThrow();
    }
    expect(probes).toHaveLength(12);
    clock += 29_000;
    await expect(setup.findAgain()).rejects.toThrow(/still unreachable/);
    expect(probes).toHaveLength(12);
    // Back: the next probe finds it, with the stored token, and the back-off starts over.
    healthy = true;
    clock += 1_000;
    await expect(setup.findAgain()).resolves.toMatchObject({ token: `lnr_${'A'.repeat(43)}` });
    // Every request names the laptop's loopback Host, whatever the remote side dials.
    expect(new Set(probes)).toEqual(new Set([`127.0.0.1:${new URL(origin).port}`]));
  });
});

describe('laptop endpoints', () => {
  it('accept a URL, host:port or a port; localhost is dialled as 127.0.0.1 (WSL and Node may resolve it to ::1)', () => {
    expect(parseRemoteEndpoint('47821')).toMatchObject({ origin: 'http://127.0.0.1:47821', host: '127.0.0.1', port: 47821 });
    expect(parseRemoteEndpoint('http://localhost:5000')).toMatchObject({ host: '127.0.0.1', hostHeader: '127.0.0.1:5000' });
    expect(parseRemoteEndpoint('host.docker.internal:47821')).toMatchObject({
      host: 'host.docker.internal',
      hostHeader: '127.0.0.1:47821',
    });
    expect(() => parseRemoteEndpoint('https://laptop:47821')).toThrow(/http:\/\//);
    expect(parseRemoteEndpoint('http://127.0.0.1:47821/mcp').origin).toBe('http://127.0.0.1:47821');
    expect(() => parseRemoteEndpoint('http://127.0.0.1:47821/api')).toThrow(/host and a port only/);
  });
});
