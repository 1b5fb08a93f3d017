/**
 * Corporate networks against real parts: a real forward proxy (proxy-chain, the only party that resolves the sandbox's
 * host name, so nothing can reach the sandbox except through it) and the sandbox's IdP, authorization servers and MCP
 * servers served over https with a certificate from a private CA generated here (openssl; keys live in a temp dir for
 * the run only). Lanyard runs headless with HTTPS_PROXY set, as it would behind a company proxy.
 *
 * Run: `LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/net-proxy.test.ts`
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { openConfigStore } from '../../electron/broker/config/store';
import { runDoctor, type DoctorReport } from '../../electron/broker/doctor/doctor';
import { LanyardError } from '../../electron/broker/errors';
import { startHeadless, type HeadlessBroker } from '../../electron/broker/headless';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { silentLogger } from '../../electron/broker/util/log';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startMcpServer, type SandboxMcpServer } from '../fixtures/sandbox/mcp-servers';
import type { SandboxTls } from '../fixtures/sandbox/net';
import { tempHome } from '../helpers/engine';
import { prepareHome, textOf } from '../reliability/harness';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { HOST, lookupHost, makePki, startProxy, type Pki, type TestProxy } from './net-fixtures';

let pki: Pki;
let proxy: TestProxy;
let sandbox: Sandbox;
let tls: SandboxTls;
let weather: SandboxMcpServer;
const inside = { agent: undefined as Agent | undefined };

beforeAll(async () => {
  pki = await makePki();
  proxy = await startProxy();
  // How the sandbox's parties reach each other, and how the test's "browser" reaches the IdP: inside the company network.
  inside.agent = new Agent({ connect: { ca: await readFile(pki.caFile, 'utf8'), lookup: lookupHost as never } });
  const insideFetch = ((input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, dispatcher: inside.agent } as unknown as RequestInit)) as typeof fetch;
  tls = { hostname: HOST, key: pki.leaf.key, cert: pki.leaf.cert, fetch: insideFetch };
  sandbox = await startSandbox({ tls });
  // A server on this machine (plain http on loopback): it must never be sent to the proxy.
  weather = await startMcpServer({ id: 'weather', name: 'Weather (loopback)', baseScopes: [] });
}, 60_000);

afterAll(async () => {
  await weather?.stop();
  await sandbox?.stop();
  await proxy?.close();
  await inside.agent?.close();
  if (pki) await rm(pki.dir, { recursive: true, force: true });
});

interface Running {
  headless: HeadlessBroker;
  home: string;
  secrets: SecretStore;
  ide(): Promise<Client>;
  dispose(): Promise<void>;
}
const running: Running[] = [];
afterEach(async () => {
  tls.cert = pki.leaf.cert;
  tls.key = pki.leaf.key;
  proxy.auth = undefined;
  for (const r of running.splice(0)) await r.dispose();
});

/** Lanyard headless behind the proxy: HTTPS_PROXY set, NO_PROXY empty, the company CA in `network.caFile` when asked. */
async function startLanyard(options: { caFile?: string; proxyUrl?: string; noProxy?: string } = {}): Promise<Running> {
  const temp = await tempHome();
  const secrets = await prepareHome(sandbox, temp.home);
  const store = openConfigStore(temp.home);
  store.update((draft) => ({
    ...draft,
    servers: [...draft.servers, { id: 'weather', name: 'Weather (loopback)', url: weather.url, enabled: true, authPath: 'none' as const }],
    ...(options.caFile ? { network: { caFile: options.caFile } } : {}),
  }));
  store.close();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json',
    HTTPS_PROXY: options.proxyUrl ?? proxy.url,
  };
  for (const name of ['https_proxy', 'http_proxy', 'no_proxy', 'NO_PROXY', 'NODE_EXTRA_CA_CERTS']) delete env[name];
  // Plain http goes to the proxy too: only the loopback rule keeps the loopback server (and Lanyard's endpoint) direct.
  env.HTTP_PROXY = env.HTTPS_PROXY;
  if (options.noProxy) env.NO_PROXY = options.noProxy;
  const headless = await startHeadless({
    version: 'test',
    home: temp.home,
    port: 0,
    env,
    log: silentLogger,
    openUrl: async (url) => {
      const callback = await sandbox.idp.completeLogin(url, 'alice');
      await fetch(callback); // the loopback callback: this machine, no proxy
    },
  });
  const clients: Client[] = [];
  const r: Running = {
    headless,
    home: temp.home,
    secrets,
    async ide() {
      const client = new Client({ name: 'net-test-ide', version: '1.0.0' }, { capabilities: {} });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(headless.mcpUrl), {
          requestInit: { headers: { Authorization: `Bearer ${headless.gateway.localAuth.token}` } },
        }),
      );
      clients.push(client);
      return client;
    },
    async dispose() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await headless.stop();
      await secrets.deleteAll().catch(() => undefined);
      await temp.cleanup();
    },
  };
  running.push(r);
  return r;
}

function signIn(r: Running): Promise<unknown> {
  return r.headless.broker.loadEngine().then((engine) => engine!.identity.signIn({ timeoutMs: 15_000 }));
}

const sandboxPorts = () => [sandbox.idp.issuer, ...sandbox.servers.flatMap((s) => [s.mcp.url, s.as.issuer])].map((u) => new URL(u).port);

describe('behind a forward proxy, with a TLS-inspecting company CA', () => {
  it('with network.caFile, sign-in, token exchange and a tool call through /mcp all go through the proxy; loopback never does', async () => {
    const r = await startLanyard({ caFile: pki.caFile });
    proxy.targets.length = 0;
    await signIn(r);
    const ide = await r.ide();
    expect(textOf(await ide.callTool({ name: 'todo__add', arguments: { a: 2, b: 3 } }))).toBe('5');
    expect(textOf(await ide.callTool({ name: 'weather__add', arguments: { a: 1, b: 1 } }))).toBe('2');

    // The IdP (sign-in, exchange), the todo AS (grant) and the todo MCP server were each reached through the proxy.
    const seen = new Set(proxy.targets);
    const port = (u: string) => new URL(u).port;
    expect(seen).toContain(`${HOST}:${port(sandbox.idp.issuer)}`);
    expect(seen).toContain(`${HOST}:${port(sandbox.server('todo').as.issuer)}`);
    expect(seen).toContain(`${HOST}:${port(sandbox.server('todo').mcp.url)}`);
    // Nothing on this machine went to the proxy: not the loopback MCP server, not Lanyard's own endpoint.
    expect(proxy.targets.filter((t) => !t.startsWith(`${HOST}:`))).toEqual([]);
    expect(sandboxPorts()).toContain(port(sandbox.server('todo').mcp.url));
  });

  it('without the company CA, sign-in fails with TLS_UNTRUSTED and says how to add the CA', async () => {
    const r = await startLanyard();
    const error = (await signIn(r).then(
      () => undefined,
      (e: unknown) => e,
    )) as LanyardError;
    expect(error).toBeInstanceOf(LanyardError);
    expect(error.code).toBe(ErrorCodes.TLS_UNTRUSTED);
    expect(error.message).toContain(HOST);
    expect(error.fix).toMatch(/network\.caFile/);
    expect(error.fix).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(error.fix).toMatch(/OS store/);
  });

  it('a proxy that answers 407 gives PROXY_AUTH_REQUIRED; its credentials in HTTPS_PROXY get through', async () => {
    proxy.auth = { username: 'dev', password: 'proxy-pass' };
    const r = await startLanyard({ caFile: pki.caFile });
    const error = (await signIn(r).then(
      () => undefined,
      (e: unknown) => e,
    )) as LanyardError;
    expect(error).toBeInstanceOf(LanyardError);
    expect(error.code).toBe(ErrorCodes.PROXY_AUTH_REQUIRED);
    expect(error.message).not.toContain('proxy-pass');

    const withCredentials = new URL(proxy.url);
    withCredentials.username = 'dev';
    withCredentials.password = 'proxy-pass';
    const ok = await startLanyard({ caFile: pki.caFile, proxyUrl: withCredentials.href });
    await signIn(ok);
    expect(ok.headless.broker.getEngine()!.identity.state.status).toBe('signed_in');
    // The proxy's password is used, never shown: not in doctor's report (which names the proxy), not in the config.
    const report = JSON.stringify(await doctor(ok));
    expect(report).toContain(`via proxy ${proxy.url}`);
    expect(report).not.toContain('proxy-pass');
    expect(await readFile(path.join(ok.home, 'config.json'), 'utf8')).not.toContain('proxy-pass');
  });

  it('a certificate that expires mid-session turns the next call into the certificate error, not a hang or a retry storm', async () => {
    const r = await startLanyard({ caFile: pki.caFile });
    await signIn(r);
    const ide = await r.ide();
    expect(textOf(await ide.callTool({ name: 'todo__add', arguments: { a: 2, b: 3 } }))).toBe('5');

    // The server's certificate is renewed with one that has expired, and its open connections end (as at a restart).
    tls.cert = pki.expired.cert;
    tls.key = pki.expired.key;
    const todo = sandbox.server('todo').mcp;
    await todo.setFault('down');
    await todo.setFault(null);
    proxy.targets.length = 0;

    const result = await ide.callTool({ name: 'todo__add', arguments: { a: 1, b: 1 } }).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    const text = 'value' in result ? textOf(result.value) : String((result.error as Error).message);
    expect(text).toMatch(/expired/);
    expect(text).toContain(HOST);
    // Bounded attempts, not a storm: a handful of tunnels at most for one call.
    expect(proxy.targets.length).toBeLessThanOrEqual(4);
  });
});

function doctor(r: Running): Promise<DoctorReport> {
  const broker = r.headless.broker;
  return runDoctor({
    home: r.home,
    config: broker.config,
    secrets: broker.secrets,
    managed: broker.managed,
    engine: () => broker.loadEngine(),
    auth: broker.auth,
    network: broker.network,
  });
}

const idpLine = (report: DoctorReport) => {
  const line = report.checks.find((c) => c.id === `network.${new URL(sandbox.idp.issuer).host}`);
  if (!line) throw new Error(`no network line for the IdP in ${report.checks.map((c) => c.id).join(', ')}`);
  return line;
};

describe('lanyard doctor: the way to each hop and its certificate', () => {
  it('names the proxy and the certificate issuer for the IdP, the authorization server and the MCP server', async () => {
    const r = await startLanyard({ caFile: pki.caFile });
    await signIn(r);
    const report = await doctor(r);
    const line = idpLine(report);
    expect(line.ok).toBe(true);
    expect(line.detail).toContain(`via proxy ${proxy.url} (HTTPS_PROXY)`);
    expect(line.detail).toContain('certificate issued by "Example Corp TLS Inspection CA"');
    expect(line.detail).toContain(`extra roots: network.caFile ${pki.caFile} (1 certificate)`);
    const hosts = report.checks.filter((c) => c.id.startsWith('network.')).map((c) => c.id);
    for (const u of [sandbox.server('todo').mcp.url, sandbox.server('todo').as.issuer])
      expect(hosts).toContain(`network.${new URL(u).host}`);
    // The loopback server is never proxied and has no certificate: no line for it.
    expect(hosts).not.toContain(`network.${new URL(weather.url).host}`);
    expect(report.checks.filter((c) => c.id.startsWith('network.')).every((c) => c.ok)).toBe(true);
  });

  it('without the CA: TLS_UNTRUSTED, the untrusted issuer named, and the fix', async () => {
    const r = await startLanyard();
    const line = idpLine(await doctor(r));
    expect(line.ok).toBe(false);
    expect(line.error?.code).toBe(ErrorCodes.TLS_UNTRUSTED);
    expect(line.detail).toContain('Example Corp TLS Inspection CA');
    expect(line.error?.fix).toMatch(/network\.caFile/);
  });

  it('a proxy that wants credentials: PROXY_AUTH_REQUIRED; a proxy that is down: PROXY_UNREACHABLE', async () => {
    proxy.auth = { username: 'dev', password: 'proxy-pass' };
    const needsAuth = idpLine(await doctor(await startLanyard({ caFile: pki.caFile })));
    expect(needsAuth.error?.code).toBe(ErrorCodes.PROXY_AUTH_REQUIRED);
    expect(needsAuth.error?.fix).toMatch(/HTTPS_PROXY/);

    const down = await startLanyard({ caFile: pki.caFile, proxyUrl: 'http://127.0.0.1:9' });
    const line = idpLine(await doctor(down));
    expect(line.error?.code).toBe(ErrorCodes.PROXY_UNREACHABLE);
    expect(line.detail).toContain('http://127.0.0.1:9');
  });

  it('NO_PROXY sends a matching host direct, and doctor says so', async () => {
    const r = await startLanyard({ caFile: pki.caFile, noProxy: 'localhost,.corp.test' });
    proxy.targets.length = 0;
    const line = idpLine(await doctor(r));
    expect(line.detail).toContain('direct (NO_PROXY entry ".corp.test")');
    // Direct, the host name does not resolve outside the company network: the proxy was never asked.
    expect(line.ok).toBe(false);
    expect(proxy.targets).toEqual([]);
  });
});
