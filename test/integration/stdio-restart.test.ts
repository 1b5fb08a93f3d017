/**
 * An IDE session across a broker restart. Lanyard runs as its own process (test/reliability/broker-child.ts, the
 * sandbox behind it, alice signed in, real keychain); the test stops it and starts a new one on the same home, as a
 * tray-app or `lanyard serve` restart does. Through `lanyard stdio` (the built CLI) the IDE's next call just works;
 * an HTTP client gets the spec's 404 for its old session and works again once it re-initializes. Run with
 * `bash scripts/keyring-session.sh npx vitest run test/integration/stdio-restart.test.ts`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { stdioBridge } from '../helpers/stdio-bridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerProcess, type BrokerProcess } from '../reliability/broker-process';
import { prepareHome } from '../reliability/harness';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-restart-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let sandbox: Sandbox;
let tempRoot: string;
let home: string;
let secrets: SecretStore;
let broker: BrokerProcess | undefined;

const textOf = (result: unknown) => (result as { content: Array<{ text: string }> }).content[0]!.text;

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

/** Stops the running broker and starts a new one on the same home (its sign-in comes back from the keychain). */
async function restartBroker(port: number): Promise<BrokerProcess> {
  await broker?.stop();
  broker = await startBrokerProcess(sandbox, home, { env: { LANYARD_TEST_PORT: String(port) } });
  return broker;
}

async function localToken(): Promise<string> {
  const runtime = await readRuntimeFile(home);
  if (runtime.state !== 'running') throw new Error(`runtime file: ${runtime.state}`);
  return runtime.info.token;
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
  tempRoot = await mkdtemp(path.join(tmpdir(), 'lanyard-restart-'));
  home = path.join(tempRoot, 'home');
  secrets = await prepareHome(sandbox, home);
  await restartBroker(await freePort());
  await broker!.signIn('alice');
}, 60_000);

afterAll(async () => {
  await broker?.stop();
  await secrets?.deleteAll().catch(() => undefined);
  await sandbox?.stop();
  if (tempRoot) await rm(tempRoot, { recursive: true, force: true });
  await rm(cliDir, { recursive: true, force: true });
});

describe('a broker restart', () => {
  it('goes unnoticed by an IDE on `lanyard stdio`: the next call re-initializes the session and succeeds', async () => {
    const client = new Client({ name: 'restart-ide', version: '1' }, { capabilities: { roots: {} } });
    const ROOTS = [{ uri: 'file:///work/project', name: 'project' }];
    client.setRequestHandler('roots/list', () => ({ roots: ROOTS }));
    const { transport, stderr: bridgeErr } = stdioBridge(cli, { home });
    await client.connect(transport);
    try {
      const echo = async (text: string) => textOf(await client.callTool({ name: 'todo__echo', arguments: { text } }));
      // A server→client request that works only in a session whose initialize declared `roots`.
      const listRoots = async () => textOf(await client.callTool({ name: 'todo__list_roots', arguments: {} }));
      expect(await echo('before')).toBe('echo: before');
      expect(await listRoots()).toBe(JSON.stringify(ROOTS));

      // Same port: the new broker answers the old session id with 404.
      await restartBroker(broker!.port);
      expect(await echo('after a restart')).toBe('echo: after a restart');
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('todo__whoami');
      // The bridge replayed the IDE's initialize with its capabilities, so the new session still reaches the IDE's roots.
      expect(await listRoots()).toBe(JSON.stringify(ROOTS));

      // Another port: the old one refuses the connection; the runtime file says where the broker went.
      await restartBroker(await freePort());
      expect(await echo('after a move')).toBe('echo: after a move');
      expect(await listRoots()).toBe(JSON.stringify(ROOTS));
      expect(bridgeErr()).toMatch(/restarted; reconnected/);
    } finally {
      await client.close();
    }
  }, 90_000);

  it('gives an HTTP client the spec 404 for its old session; a new initialize works', async () => {
    const connect = async () => {
      const client = new Client({ name: 'http-ide', version: '1' }, { capabilities: {} });
      const token = await localToken();
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${broker!.url}/mcp`), {
          requestInit: { headers: { Authorization: `Bearer ${token}` } },
        }),
      );
      return client;
    };
    const before = await connect();
    expect(textOf(await before.callTool({ name: 'todo__echo', arguments: { text: 'x' } }))).toBe('echo: x');
    await restartBroker(broker!.port);

    // The old session id, with the current local token (so the answer is about the session, not the credential).
    const stale = await fetch(`${broker!.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await localToken()}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': (before.transport as StreamableHTTPClientTransport).sessionId!,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    expect(stale.status).toBe(404);
    expect(await stale.text()).toMatch(/Session not found/);
    await before.close().catch(() => undefined);

    const after = await connect();
    try {
      expect(textOf(await after.callTool({ name: 'todo__echo', arguments: { text: 'y' } }))).toBe('echo: y');
    } finally {
      await after.close();
    }
  }, 90_000);
});
