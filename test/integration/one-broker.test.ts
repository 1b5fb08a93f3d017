/**
 * At most one broker serves a Lanyard home. Broker A runs as its own process (test/reliability/broker-child.ts) on a
 * fixed port; a second broker on the same home cannot bind that port and must leave everything A relies on alone: the
 * local token in the keychain (what `lanyard connect --http` writes into an IDE's file), the runtime file (what
 * `lanyard stdio` reads), and A itself. Run with
 * `bash scripts/keyring-session.sh npx vitest run test/integration/one-broker.test.ts`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { localEndpoint } from '../../electron/broker/control/ide-control';
import { LOCAL_TOKEN_SECRET_KEY } from '../../electron/broker/gateway/local-auth';
import { readRuntimeFile, type RuntimeInfo } from '../../electron/broker/gateway/runtime-file';
import { startHeadless } from '../../electron/broker/headless';
import { createSecretStore } from '../../electron/broker/secrets';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { readStartupFailure } from '../../electron/broker/startup-failure';
import { silentLogger } from '../../electron/broker/util/log';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerProcess, type BrokerProcess } from '../reliability/broker-process';
import { prepareHome } from '../reliability/harness';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-one-broker-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let sandbox: Sandbox;
let tempRoot: string;
let home: string;
let secrets: SecretStore;
let brokerA: BrokerProcess | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function runtimeInfo(): Promise<RuntimeInfo> {
  const runtime = await readRuntimeFile(home);
  if (runtime.state !== 'running') throw new Error(`runtime file: ${runtime.state}`);
  return runtime.info;
}

/** The local token in the keychain now (a new store: the test's own caches what it read, another process wrote). */
function keychainToken(): Promise<string | undefined> {
  return createSecretStore({ home }).get(LOCAL_TOKEN_SECRET_KEY);
}

/** Whether an IDE holding `token` gets through A's front door (an MCP initialize on /mcp). */
async function ideConnects(url: string, token: string): Promise<boolean> {
  const client = new Client({ name: 'one-broker-ide', version: '1' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  try {
    await client.connect(transport);
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => undefined);
  }
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  sandbox = await startSandbox();
  tempRoot = await mkdtemp(path.join(tmpdir(), 'lanyard-one-broker-'));
  home = path.join(tempRoot, 'home');
  secrets = await prepareHome(sandbox, home);
  brokerA = await startBrokerProcess(sandbox, home, { env: { LANYARD_TEST_PORT: String(await freePort()) } });
}, 60_000);

afterAll(async () => {
  await brokerA?.stop();
  await secrets?.deleteAll().catch(() => undefined);
  await sandbox?.stop();
  if (tempRoot) await rm(tempRoot, { recursive: true, force: true });
  await rm(cliDir, { recursive: true, force: true });
});

describe('a second broker on the same home', () => {
  it('fails with PORT_IN_USE and leaves the running broker its local token, runtime file and IDEs', async () => {
    const a = brokerA!;
    const before = await runtimeInfo();
    expect(before.pid).toBe(a.pid);
    expect(await keychainToken()).toBe(before.token);

    // The broker itself (as the tray app starts it: no early port check), on A's port.
    const second = startHeadless({ version: 'test', home, port: a.port, log: silentLogger, openUrl: () => undefined });
    await expect(second).rejects.toMatchObject({ code: ErrorCodes.PORT_IN_USE });

    expect(a.alive()).toBe(true);
    expect(await runtimeInfo()).toEqual(before);
    // The keychain still holds A's token: what `lanyard connect --http` writes into an IDE's file gets through A.
    expect(await keychainToken()).toBe(before.token);
    const endpoint = await localEndpoint(a.port, createSecretStore({ home }));
    expect(await ideConnects(endpoint.url, endpoint.token)).toBe(true);
    expect(await ideConnects(`${a.url}/mcp`, before.token)).toBe(true);
  }, 60_000);

  it('cannot start on another port either: the home has one broker', async () => {
    const a = brokerA!;
    const before = await runtimeInfo();
    const second = startHeadless({ version: 'test', home, port: 0, log: silentLogger, openUrl: () => undefined });
    await expect(second).rejects.toMatchObject({ code: ErrorCodes.PORT_IN_USE, message: expect.stringContaining(`pid ${a.pid}`) });
    expect(await runtimeInfo()).toEqual(before);
    expect(await keychainToken()).toBe(before.token);
    expect(await ideConnects(`${a.url}/mcp`, before.token)).toBe(true);
  }, 60_000);

  it("`lanyard serve` (on A's port or any other) exits with the port-in-use start-up failure naming this home's broker", async () => {
    const a = brokerA!;
    const before = await runtimeInfo();
    for (const port of [a.port, 0]) {
      const serve = spawnSync(process.execPath, [cli, 'serve', '--port', String(port)], {
        env: { ...process.env, LANYARD_HOME: home },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(serve.status).not.toBe(0);
      expect(serve.stderr).toContain(`Port ${a.port} on 127.0.0.1 is in use by another Lanyard (pid ${a.pid}`);
      const failure = await readStartupFailure(home);
      expect(failure).toMatchObject({ code: ErrorCodes.PORT_IN_USE, heldBy: { kind: 'lanyard', home } });
    }
    expect(await runtimeInfo()).toEqual(before);
    expect(await keychainToken()).toBe(before.token);
    expect(await ideConnects(`${a.url}/mcp`, before.token)).toBe(true);
  }, 60_000);
});
