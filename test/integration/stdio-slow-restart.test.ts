/**
 * A broker restart that takes longer than the stdio bridge's grace (3 s): the bridge starts a broker of its own
 * (`lanyard serve`, detached) while the restarted one comes up on the same home and port. Whichever gets there first
 * serves; the other stops with the port-in-use start-up failure without touching the winner's local token; the IDE's
 * call goes through to the winner. Run with
 * `bash scripts/keyring-session.sh npx vitest run test/integration/stdio-slow-restart.test.ts`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { stdioBridge } from '../helpers/stdio-bridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { openConfigStore } from '../../electron/broker/config/store';
import { LOCAL_TOKEN_SECRET_KEY } from '../../electron/broker/gateway/local-auth';
import { isProcessAlive, readRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { createSecretStore } from '../../electron/broker/secrets';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { readStartupFailure } from '../../electron/broker/startup-failure';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerProcess, type BrokerProcess } from '../reliability/broker-process';
import { prepareHome, waitFor } from '../reliability/harness';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-slow-restart-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let sandbox: Sandbox;
let tempRoot: string;
let home: string;
let secrets: SecretStore;
let port: number;
const brokers: BrokerProcess[] = [];
/** The `lanyard serve` the bridge started, when it won: stopped by pid at the end. */
let bridgeBroker: number | undefined;

const textOf = (result: unknown) => (result as { content: Array<{ text: string }> }).content[0]!.text;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: p } = server.address() as { port: number };
      server.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
  tempRoot = await mkdtemp(path.join(tmpdir(), 'lanyard-slow-restart-'));
  home = path.join(tempRoot, 'home');
  secrets = await prepareHome(sandbox, home);
  // A fixed gateway.port, as in real use: the broker the bridge starts goes for the same port as the restarted one.
  port = await freePort();
  const config = openConfigStore(home);
  config.update((draft) => {
    draft.gateway.port = port;
  });
  config.close();
  const first = await startBrokerProcess(sandbox, home, { env: { LANYARD_TEST_PORT: String(port) } });
  brokers.push(first);
  await first.signIn('alice');
}, 60_000);

afterAll(async () => {
  for (const b of brokers) if (b.alive()) await b.stop();
  // The broker the bridge started is not this test's child: stop it and wait until it has exited, because while it
  // shuts down it still writes in the home (runtime file, lock, activity), and removing the home under it fails.
  const detached = bridgeBroker;
  if (detached !== undefined && isProcessAlive(detached)) {
    process.kill(detached, 'SIGTERM');
    await waitFor(() => !isProcessAlive(detached), 10_000, 'the broker the bridge started to exit');
  }
  await secrets?.deleteAll().catch(() => undefined);
  await sandbox?.stop();
  if (tempRoot) await rm(tempRoot, { recursive: true, force: true });
  await rm(cliDir, { recursive: true, force: true });
});

describe('a broker restart slower than the bridge waits', () => {
  it('ends with one broker serving the home; the IDE reaches it', async () => {
    const client = new Client({ name: 'slow-restart-ide', version: '1' }, { capabilities: {} });
    const { transport, stderr: bridgeErr } = stdioBridge(cli, { home });
    await client.connect(transport);
    try {
      const echo = async (text: string) => textOf(await client.callTool({ name: 'todo__echo', arguments: { text } }));
      expect(await echo('before')).toBe('echo: before');

      await brokers[0]!.stop();
      const call = echo('after a slow restart');
      // The restart comes back after the bridge's grace: the bridge has started `lanyard serve` by then.
      await new Promise((r) => setTimeout(r, 3_300));
      const restarted = await startBrokerProcess(sandbox, home, { env: { LANYARD_TEST_PORT: String(port) } }).then(
        (b) => (brokers.push(b), b),
        (e: unknown) => e as Error,
      );
      expect(await call, bridgeErr()).toBe('echo: after a slow restart');

      const runtime = await readRuntimeFile(home);
      if (runtime.state !== 'running') throw new Error(`runtime file: ${runtime.state}`);
      if (!brokers.some((b) => b.pid === runtime.info.pid)) bridgeBroker = runtime.info.pid;
      expect(runtime.info.port).toBe(port);
      // The broker that serves holds the keychain's local token: the loser changed nothing.
      expect(await createSecretStore({ home }).get(LOCAL_TOKEN_SECRET_KEY)).toBe(runtime.info.token);
      if (restarted instanceof Error) {
        // The bridge's broker won; the restarted one stopped at once, saying why.
        expect(runtime.info.pid).toBe(bridgeBroker);
        expect(restarted.message).toMatch(/in use by another Lanyard/);
      } else {
        // The restarted broker won; the bridge's stopped with the port-in-use failure and the bridge used the winner.
        expect(runtime.info.pid).toBe(restarted.pid);
        expect(await readStartupFailure(home)).toMatchObject({ code: ErrorCodes.PORT_IN_USE, heldBy: { kind: 'lanyard', home } });
      }
      expect(await echo('once more')).toBe('echo: once more');
    } finally {
      await client.close();
    }
  }, 90_000);
});
