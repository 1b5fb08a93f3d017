/**
 * The company CA widens trust by exactly one root and loosens nothing else: with `network.caFile` set, a certificate
 * from another private CA, or one of the company CA's certificates for another host name, is still refused on every
 * route (the request/response fetch and the relay's transport). Doctor's second look at a refused certificate (to name
 * its issuer) sends no credential. Real TLS on 127.0.0.1 with certificates made here by openssl.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/security/net-trust.test.ts`
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { nodeHttpFetch, useUpstreamRouter } from '../../electron/broker/gateway/relay-transport';
import { createNetworkStack, type NetworkStack } from '../../electron/broker/net/network-stack';
import { probeHop } from '../../electron/broker/net/probe';

const run = promisify(execFile);
let dir: string;
const servers: Server[] = [];
const seenHeaders: Array<Record<string, unknown>> = [];

async function ca(name: string): Promise<void> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    path.join(dir, `${name}.key`),
    '-out',
    path.join(dir, `${name}.pem`),
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  ]);
}

async function leaf(caName: string, san: string): Promise<{ key: string; cert: string }> {
  const base = path.join(dir, `${caName}-${san.replace(/\W/g, '_')}`);
  await writeFile(`${base}.ext`, `subjectAltName=${san}\n`);
  await run('openssl', [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.csr`,
    '-subj',
    '/CN=leaf',
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    path.join(dir, `${caName}.pem`),
    '-CAkey',
    path.join(dir, `${caName}.key`),
    '-CAcreateserial',
    '-out',
    `${base}.pem`,
    '-days',
    '1',
    '-extfile',
    `${base}.ext`,
  ]);
  return { key: await readFile(`${base}.key`, 'utf8'), cert: await readFile(`${base}.pem`, 'utf8') };
}

async function serve(tls: { key: string; cert: string }): Promise<string> {
  const server = createServer(tls, (req, res) => {
    seenHeaders.push({ ...req.headers });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
}

let stack: NetworkStack;
let good: string;
let otherCa: string;
let wrongName: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-net-trust-'));
  await ca('company');
  await ca('stranger');
  good = await serve(await leaf('company', 'IP:127.0.0.1'));
  otherCa = await serve(await leaf('stranger', 'IP:127.0.0.1'));
  wrongName = await serve(await leaf('company', 'DNS:elsewhere.example'));
  stack = createNetworkStack({ env: {}, settings: () => ({ caFile: path.join(dir, 'company.pem') }) });
}, 30_000);

afterAll(async () => {
  await stack?.close();
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const outcome = (p: Promise<Response>) =>
  p.then(
    (r) => ({ status: r.status }),
    (e: unknown) => ({ code: e instanceof LanyardError ? e.code : 'raw', error: e }),
  );

describe('network.caFile trusts the company CA and nothing more', () => {
  it('request/response hops: the company certificate passes; another CA or another host name is refused', async () => {
    expect(await outcome(stack.fetch(good))).toEqual({ status: 200 });
    expect(await outcome(stack.fetch(otherCa))).toMatchObject({ code: ErrorCodes.TLS_UNTRUSTED });
    expect(await outcome(stack.fetch(wrongName))).toMatchObject({ code: ErrorCodes.TLS_UNTRUSTED });
  });

  it("the relay's transport, on the stack's agent: the same verdicts", async () => {
    const off = useUpstreamRouter((url) => stack.upstream(url));
    try {
      expect(await outcome(nodeHttpFetch(good))).toEqual({ status: 200 });
      const other = await outcome(nodeHttpFetch(otherCa));
      const name = await outcome(nodeHttpFetch(wrongName));
      // The relay's own classifier names these; the point is that no response came back.
      expect(other).not.toHaveProperty('status');
      expect(name).not.toHaveProperty('status');
    } finally {
      off();
    }
    // Without the stack's agent the company CA is not trusted: the trust comes from network.caFile alone.
    expect(await outcome(nodeHttpFetch(good))).not.toHaveProperty('status');
  });

  it("doctor's look at a refused certificate names its issuer and sends no credential", async () => {
    seenHeaders.length = 0;
    const probe = await probeHop(stack, new URL(otherCa));
    expect(probe.issuer).toBe('stranger');
    expect((probe.error as LanyardError).code).toBe(ErrorCodes.TLS_UNTRUSTED);
    expect(seenHeaders.length).toBeGreaterThan(0);
    for (const headers of seenHeaders) {
      expect(headers).not.toHaveProperty('authorization');
      expect(headers).not.toHaveProperty('cookie');
    }
  });
});
