/**
 * A proxy auto-configuration (PAC) file against real parts: the PAC file served by a local http server, a real forward
 * proxy (proxy-chain, the only party that resolves the sandbox's host name), and the sandbox served over https with a
 * private CA (net-fixtures.ts). Lanyard runs headless with `network.pac` and no proxy variable at all: only the PAC
 * file can send it through the proxy.
 *
 * Run: `LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/net-pac.test.ts`
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { openConfigStore } from '../../electron/broker/config/store';
import { runDoctor, type DoctorReport } from '../../electron/broker/doctor/doctor';
import { LanyardError } from '../../electron/broker/errors';
import { startHeadless, type HeadlessBroker } from '../../electron/broker/headless';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { silentLogger } from '../../electron/broker/util/log';
import { presentTray } from '../../electron/main/tray-presenter';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startMcpServer, type SandboxMcpServer } from '../fixtures/sandbox/mcp-servers';
import type { SandboxTls } from '../fixtures/sandbox/net';
import { buildCli } from '../../bench/lib/build';
import { tempHome } from '../helpers/engine';
import { prepareHome, textOf } from '../reliability/harness';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { HOST, lookupHost, makePki, startProxy, type Pki, type TestProxy } from './net-fixtures';

/** The company's PAC server: what it serves can change per test; it counts what it was asked. */
interface PacServer {
  url: string;
  status: number;
  body: string;
  hits: number;
  close(): Promise<void>;
}

async function startPacServer(): Promise<PacServer> {
  const pac: PacServer = { url: '', status: 200, body: '', hits: 0, close: async () => undefined };
  const server: Server = createServer((_req, res) => {
    pac.hits++;
    res.writeHead(pac.status, { 'content-type': 'application/x-ns-proxy-autoconfig' });
    res.end(pac.status === 200 ? pac.body : 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  pac.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/proxy.pac`;
  pac.close = () => new Promise((resolve) => server.close(() => resolve()));
  return pac;
}

let pki: Pki;
let proxy: TestProxy;
let sandbox: Sandbox;
let pacServer: PacServer;
let weather: SandboxMcpServer;
const inside = { agent: undefined as Agent | undefined };

const port = (u: string) => new URL(u).port;

/**
 * The company's PAC file: the sandbox's host through a proxy that is down (port 9) first, then the real proxy, then
 * DIRECT; `extra` adds rules before that (by port, to single out one party).
 */
const pacFile = (extra = '') => `function FindProxyForURL(url, host) {
  ${extra}
  if (dnsDomainIs(host, ".corp.test")) return "PROXY 127.0.0.1:9; PROXY ${new URL(proxy.url).host}; DIRECT";
  return "DIRECT";
}`;

beforeAll(async () => {
  pki = await makePki();
  proxy = await startProxy();
  pacServer = await startPacServer();
  inside.agent = new Agent({ connect: { ca: await readFile(pki.caFile, 'utf8'), lookup: lookupHost as never } });
  const insideFetch = ((input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, dispatcher: inside.agent } as unknown as RequestInit)) as typeof fetch;
  const tls: SandboxTls = { hostname: HOST, key: pki.leaf.key, cert: pki.leaf.cert, fetch: insideFetch };
  sandbox = await startSandbox({ tls });
  weather = await startMcpServer({ id: 'weather', name: 'Weather (loopback)', baseScopes: [] });
}, 60_000);

afterAll(async () => {
  await weather?.stop();
  await sandbox?.stop();
  await proxy?.close();
  await pacServer?.close();
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
  pacServer.status = 200;
  pacServer.hits = 0;
  proxy.targets.length = 0;
  proxy.auth = undefined;
  for (const r of running.splice(0)) await r.dispose();
});

/** Lanyard headless with `network.pac` and the company CA, and no proxy environment variable. */
async function startLanyard(pac: string, extraEnv: Record<string, string> = {}): Promise<Running> {
  const temp = await tempHome();
  const secrets = await prepareHome(sandbox, temp.home);
  const store = openConfigStore(temp.home);
  store.update((draft) => ({
    ...draft,
    servers: [...draft.servers, { id: 'weather', name: 'Weather (loopback)', url: weather.url, enabled: true, authPath: 'none' as const }],
    network: { caFile: pki.caFile, pac },
  }));
  store.close();
  const env: NodeJS.ProcessEnv = { ...process.env, LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json' };
  for (const name of ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY', 'NODE_EXTRA_CA_CERTS'])
    delete env[name];
  Object.assign(env, extraEnv);
  const headless = await startHeadless({
    version: 'test',
    home: temp.home,
    port: 0,
    env,
    log: silentLogger,
    openUrl: async (url) => {
      const callback = await sandbox.idp.completeLogin(url, 'alice');
      await fetch(callback);
    },
  });
  const clients: Client[] = [];
  const r: Running = {
    headless,
    home: temp.home,
    secrets,
    async ide() {
      const client = new Client({ name: 'net-pac-test-ide', version: '1.0.0' }, { capabilities: {} });
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

const line = (report: DoctorReport, id: string) => {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no ${id} line in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
};

describe('network.pac: the company PAC file decides the way, headless', () => {
  it('"PROXY down; PROXY proxy; DIRECT": sign-in, exchange and a tool call go through the second proxy; loopback never asks', async () => {
    pacServer.body = pacFile();
    const r = await startLanyard(pacServer.url);
    proxy.targets.length = 0;
    await signIn(r);
    const ide = await r.ide();
    expect(textOf(await ide.callTool({ name: 'todo__add', arguments: { a: 2, b: 3 } }))).toBe('5');
    expect(textOf(await ide.callTool({ name: 'weather__add', arguments: { a: 1, b: 1 } }))).toBe('2');

    const seen = new Set(proxy.targets);
    expect(seen).toContain(`${HOST}:${port(sandbox.idp.issuer)}`);
    expect(seen).toContain(`${HOST}:${port(sandbox.server('todo').as.issuer)}`);
    expect(seen).toContain(`${HOST}:${port(sandbox.server('todo').mcp.url)}`);
    expect(proxy.targets.filter((t) => !t.startsWith(`${HOST}:`))).toEqual([]);
    // The file was fetched once for all those hops.
    expect(pacServer.hits).toBe(1);

    const report = await doctor(r);
    const pac = line(report, 'network.pac');
    expect(pac.ok).toBe(true);
    expect(pac.detail).toContain(`network.pac ${pacServer.url}`);
    const idp = line(report, `network.${new URL(sandbox.idp.issuer).host}`);
    expect(idp.ok).toBe(true);
    // The proxy that was down is remembered and tried last.
    expect(idp.detail).toContain(`via proxy ${proxy.url} (PAC ${pacServer.url}, then direct, then http://127.0.0.1:9)`);
    expect(idp.detail).toContain('certificate issued by "Example Corp TLS Inspection CA"');
  });

  it('a proxy the PAC file names asks for credentials (407): PROXY_AUTH_REQUIRED; those in HTTPS_PROXY for that proxy get through', async () => {
    pacServer.body = pacFile();
    proxy.auth = { username: 'dev', password: 'proxy-pass' };
    const r = await startLanyard(pacServer.url);
    const error = (await signIn(r).then(
      () => undefined,
      (e: unknown) => e,
    )) as LanyardError;
    expect(error).toBeInstanceOf(LanyardError);
    expect(error.code).toBe(ErrorCodes.PROXY_AUTH_REQUIRED);
    expect(error.fix).toContain(`http://user:password@${new URL(proxy.url).host}`);

    const withCredentials = new URL(proxy.url);
    withCredentials.username = 'dev';
    withCredentials.password = 'proxy-pass';
    // HTTPS_PROXY gives the credentials only; the PAC file still decides the way.
    const ok = await startLanyard(pacServer.url, { HTTPS_PROXY: withCredentials.href });
    await signIn(ok);
    expect(ok.headless.broker.getEngine()!.identity.state.status).toBe('signed_in');
    const report = JSON.stringify(await doctor(ok));
    expect(report).toContain(`via proxy ${proxy.url} (PAC ${pacServer.url}`);
    expect(report).not.toContain('proxy-pass');
  });

  it('a PAC file that is not there (404): sign-in fails with PAC_FAILED and its fix, the file is not fetched again at once, doctor says so', async () => {
    pacServer.status = 404;
    const r = await startLanyard(pacServer.url);
    const error = (await signIn(r).then(
      () => undefined,
      (e: unknown) => e,
    )) as LanyardError;
    expect(error).toBeInstanceOf(LanyardError);
    expect(error.code).toBe(ErrorCodes.PAC_FAILED);
    expect(error.message).toContain(`${pacServer.url} could not be read (HTTP 404)`);
    expect(error.fix).toMatch(/network\.pac/);
    expect(error.fix).toMatch(/network\.proxy/);
    // Sign-in, then doctor's several hops: the back-off holds the file's server to one request.
    const report = await doctor(r);
    expect(pacServer.hits).toBe(1);
    const pac = line(report, 'network.pac');
    expect(pac.ok).toBe(false);
    expect(pac.error?.code).toBe(ErrorCodes.PAC_FAILED);
    expect(pac.detail).toMatch(/No copy was ever loaded/);
    expect(pac.detail).toMatch(/Lanyard tries again at/);
    const idp = line(report, `network.${new URL(sandbox.idp.issuer).host}`);
    expect(idp.ok).toBe(false);
    expect(idp.error?.code).toBe(ErrorCodes.PAC_FAILED);
    expect(proxy.targets.filter((t) => t.startsWith(`${HOST}:${port(sandbox.idp.issuer)}`))).toEqual([]);
  });

  it('a PAC file that throws for one server and loops for another: those servers are Unreachable with PAC_FAILED; the rest work', async () => {
    const wiki = port(sandbox.server('wiki').mcp.url);
    const todoAs = port(sandbox.server('todo').as.issuer);
    pacServer.body = pacFile(
      `if (url.indexOf(":${wiki}/") >= 0) throw new Error("no rule for the wiki");
  if (url.indexOf(":${todoAs}/") >= 0) { while (true) {} }`,
    );
    const r = await startLanyard(pacServer.url);
    await signIn(r);
    const ide = await r.ide();
    expect(textOf(await ide.callTool({ name: 'weather__add', arguments: { a: 1, b: 1 } }))).toBe('2');
    const todo = await ide.callTool({ name: 'todo__add', arguments: { a: 2, b: 3 } }).then(
      (value) => textOf(value),
      (e: unknown) => String((e as Error).message),
    );
    expect(todo).toMatch(/ran longer than 1000 ms and was stopped/);

    const status = await r.headless.broker.control.status();
    const byId = (id: string) => status.servers.find((s) => s.id === id)!;
    expect(byId('wiki').lastError?.code).toBe(ErrorCodes.PAC_FAILED);
    expect(byId('wiki').lastError?.message).toContain('no rule for the wiki');
    expect(byId('todo').lastError?.code).toBe(ErrorCodes.PAC_FAILED);
    const tray = presentTray(status).items.flatMap((i) => (i.type === 'item' ? [i.label] : []));
    expect(tray).toContain('Wiki (sandbox) — Unreachable');
    expect(tray.some((l) => /^Todo.* — Unreachable$/.test(l))).toBe(true);
  });
});

describe('the built CLI (the bundle that ships)', () => {
  it('lanyard doctor loads the PAC evaluator at run time (its WebAssembly file included) and reaches the IdP through the proxy it names', async () => {
    const root = path.resolve(import.meta.dirname, '../..');
    // Its own build: other tests run out/cli/lanyard.js, and rewriting it under them would make them flaky.
    const cli = await buildCli(root, path.join(root, 'out/cli-net-pac'));
    const temp = await tempHome();
    try {
      const file = path.join(temp.home, 'proxy.pac');
      await writeFile(file, pacFile());
      const store = openConfigStore(temp.home);
      store.update(() => ({ version: 1, idp: sandbox.lanyardConfig().idp, servers: [], network: { caFile: pki.caFile, pac: file } }));
      store.close();
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        LANYARD_HOME: temp.home,
        LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json',
      };
      for (const name of ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY']) delete env[name];
      const { stdout } = await promisify(execFile)(process.execPath, [cli, 'doctor', '--json'], { env, timeout: 60_000 }).catch(
        (e: { stdout: string }) => e,
      );
      const report = JSON.parse(stdout) as DoctorReport;
      expect(line(report, 'network.pac')).toMatchObject({ ok: true, detail: expect.stringContaining(`network.pac ${file}`) as unknown });
      const idp = line(report, `network.${new URL(sandbox.idp.issuer).host}`);
      expect(idp.detail).toContain(`via proxy ${proxy.url} (PAC ${file}`);
      expect(idp.ok).toBe(true);
      expect(proxy.targets).toContain(`${HOST}:${port(sandbox.idp.issuer)}`);
    } finally {
      await temp.cleanup();
    }
  }, 120_000);
});
