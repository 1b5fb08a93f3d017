/**
 * `lanyard stdio` (the built CLI) and `/mcp`'s resumable streams: when a server closes its stream mid-call (SEP-1699
 * polling: the sandbox conformance server's `test_reconnection`), `/mcp` ends the request's stream after its priming
 * event and keeps the result for a GET with Last-Event-ID; the bridge resumes and the IDE on the pipe still gets its
 * answer. Ordinary SSE answers pass through as before. See docs/protocol.md, "Resumable streams on /mcp".
 */
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator } from '../../electron/broker/gateway/aggregate/aggregator';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { publishRuntime } from '../../electron/broker/gateway/runtime-file';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startConformanceServer, type SandboxConformanceServer } from '../fixtures/sandbox/conformance-server';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { stdioBridge } from '../helpers/stdio-bridge';

const root = path.resolve(import.meta.dirname, '../..');
// Built next to the real bundle (its npm imports resolve from the project's node_modules), never over it.
const cliDir = path.join(root, 'out', `cli-stdio-sse-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

const text = (result: unknown): string =>
  ((result as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

describe('lanyard stdio over resumable /mcp streams', () => {
  let sandbox: Sandbox;
  let conformance: SandboxConformanceServer;
  let engine: EngineHarness;
  let home: string;
  let cleanup: () => Promise<void>;
  let aggregator: Aggregator;
  let gateway: GatewayServer;
  let runtime: { close(): Promise<void> };
  const clients: Client[] = [];

  beforeAll(async () => {
    const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
      cwd: root,
      encoding: 'utf8',
    });
    if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
    conformance = await startConformanceServer();
    ({ home, cleanup } = await tempHome());
    engine = await createEngine(sandbox, { home });
    await engine.signIn('alice');
    const localAuth = await LocalAuth.open(engine.secrets);
    const servers = [...sandbox.lanyardConfig().servers, { id: 'conformance', name: 'Conformance', url: conformance.url, enabled: true }];
    aggregator = createAggregator({
      // The conformance server is unprotected (no token to add); the sandbox's servers get alice's XAA tokens.
      tokens: { authorizedFetch: (id, base) => (id === 'conformance' ? (base ?? fetch) : engine.tokens.authorizedFetch(id, base)) },
      getServers: () => servers,
      isSignedIn: () => engine.identity.state.status === 'signed_in',
      signInHint: () => 'Run `lanyard login`.',
    });
    gateway = await startGatewayServer({
      port: 0,
      localAuth,
      aggregator,
      relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
    });
    runtime = await publishRuntime({ home, port: gateway.port, version: 'test', localAuth });
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await runtime?.close();
    await gateway?.close();
    await aggregator?.close();
    await engine?.secrets.deleteAll();
    await conformance?.stop();
    await sandbox?.stop();
    await cleanup?.();
    await rm(cliDir, { recursive: true, force: true });
  });

  it('gets the answer of a call whose stream the server closed mid-call, and ordinary answers as before', async () => {
    const client = new Client({ name: 'stdio-sse', version: '1' }, { capabilities: {} });
    const bridge = stdioBridge(cli, { home });
    await client.connect(bridge.transport);
    clients.push(client);
    await client.listTools();
    expect(text(await client.callTool({ name: 'todo__echo', arguments: { text: 'hi' } }))).toBe('echo: hi');
    const progress: number[] = [];
    const counted = await client.callTool(
      { name: 'todo__slow_count', arguments: { steps: 2, delayMs: 50 } },
      {
        onprogress: (p) => progress.push(p.progress),
      },
    );
    expect(text(counted)).toBe('counted to 2');
    // (The last progress can race the result inside the SDK client, with or without Lanyard: not asserted.)
    expect(progress[0]).toBe(1);
    // The server ends its stream after the priming event; the bridge resumes with Last-Event-ID.
    expect(text(await client.callTool({ name: 'conformance__test_reconnection', arguments: {} }))).toContain(
      'Reconnection test completed successfully',
    );
    expect(bridge.stderr()).not.toMatch(/error|cut off/i);
  });
});
