/**
 * The corporate network of the net-*.test.ts integration tests: a private CA with a leaf for the sandbox's host name
 * (openssl; keys in a temp dir for the run only), the company's name resolution (only the proxy knows where the
 * sandbox's host is), and a real forward proxy (proxy-chain) that records every target it is asked for.
 */
import { execFile } from 'node:child_process';
import type { LookupAddress } from 'node:dns';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Server as ProxyServer } from 'proxy-chain';

const run = promisify(execFile);
export const HOST = 'sandbox.corp.test';

export interface Pki {
  dir: string;
  caFile: string;
  leaf: { key: string; cert: string };
  /** A leaf from the same CA whose validity already ended (the certificate that expires mid-session). */
  expired: { key: string; cert: string };
}

export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-net-pki-'));
  const f = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/O=Example Corp/CN=Example Corp TLS Inspection CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await writeFile(f('leaf.ext'), `subjectAltName=DNS:${HOST}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  const leaf = async (name: string, days: string) => {
    await run('openssl', ['req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${HOST}`]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      days,
      '-extfile',
      f('leaf.ext'),
    ]);
    return { key: await readFile(f(`${name}.key`), 'utf8'), cert: await readFile(f(`${name}.pem`), 'utf8') };
  };
  // -days 0: not-after equals not-before, so the certificate is expired a second after it is made.
  return { dir, caFile: f('ca.pem'), leaf: await leaf('leaf', '2'), expired: await leaf('expired', '0') };
}

/** The name resolution of the company network: only the proxy (and the sandbox's own parties) know where HOST is. */
export function lookupHost(hostname: string, options: unknown, callback?: unknown): void {
  const cb = (typeof options === 'function' ? options : callback) as (e: Error | null, a: string | LookupAddress[], f?: number) => void;
  const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
  if (hostname !== HOST) {
    cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), all ? [] : '');
    return;
  }
  if (all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}

export interface TestProxy {
  url: string;
  /** Every CONNECT / request target the proxy was asked for, as host:port. */
  targets: string[];
  /** Credentials it demands (407 without them). */
  auth: { username: string; password: string } | undefined;
  close(): Promise<void>;
}

export async function startProxy(): Promise<TestProxy> {
  const proxy: TestProxy = { url: '', targets: [], auth: undefined, close: async () => undefined };
  const server = new ProxyServer({
    port: 0,
    host: '127.0.0.1',
    verbose: false,
    prepareRequestFunction: ({ hostname, port, username, password }) => {
      proxy.targets.push(`${hostname}:${port}`);
      if (proxy.auth && (username !== proxy.auth.username || password !== proxy.auth.password)) return { requestAuthentication: true };
      return { dnsLookup: lookupHost as never };
    },
  });
  await server.listen();
  proxy.url = `http://127.0.0.1:${server.port}`;
  proxy.close = () => server.close(true);
  return proxy;
}
