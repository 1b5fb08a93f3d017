/**
 * `lanyard stdio` (the built CLI) carrying MCP 2026-07-28 to the real aggregated `/mcp`, next to a 2025-11-25 client:
 * the bridge adds the HTTP headers a 2026 request needs (MCP-Protocol-Version, Mcp-Method, Mcp-Name, and Mcp-Param-*
 * learnt from tools/list), and `input_required` rounds pass through it. See docs/protocol.md, "Two protocol eras on
 * /mcp".
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
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { stdioBridge } from '../helpers/stdio-bridge';

const root = path.resolve(import.meta.dirname, '../..');
// Built next to the real bundle (its npm imports resolve from the project's node_modules), never over it.
const cliDir = path.join(root, 'out', `cli-stdio-eras-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

const text = (result: unknown): string =>
  ((result as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

describe('lanyard stdio carries both protocol eras to /mcp', () => {
  let sandbox: Sandbox;
  let engine: EngineHarness;
  let home: string;
  let cleanup: () => Promise<void>;
  let aggregator: Aggregator;
  let gateway: GatewayServer;
  let runtime: { close(): Promise<void> };
  const clients: Client[] = [];

  async function connect(name: string, era: '2025' | '2026'): Promise<{ client: Client; stderr: () => string }> {
    const client = new Client(
      { name, version: '1' },
      {
        capabilities: { elicitation: {} },
        ...(era === '2026' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}),
      },
    );
    client.setRequestHandler('elicitation/create', () => ({ action: 'accept', content: { confirm: true } }));
    const bridge = stdioBridge(cli, { home });
    await client.connect(bridge.transport);
    clients.push(client);
    return { client, stderr: bridge.stderr };
  }

  beforeAll(async () => {
    const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
      cwd: root,
      encoding: 'utf8',
    });
    if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, modernServers: true });
    ({ home, cleanup } = await tempHome());
    engine = await createEngine(sandbox, { home });
    await engine.signIn('alice');
    const localAuth = await LocalAuth.open(engine.secrets);
    const servers = sandbox.lanyardConfig().servers;
    aggregator = createAggregator({
      tokens: engine.tokens,
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
    await sandbox?.stop();
    await cleanup?.();
    await rm(cliDir, { recursive: true, force: true });
  });

  it('a 2026-07-28 client and a 2025-11-25 client, both over stdio, list and call through /mcp', async () => {
    const [modern, legacy] = await Promise.all([connect('stdio 2026', '2026'), connect('stdio 2025', '2025')]);
    expect(modern.client.getProtocolEra()).toBe('modern');
    expect(legacy.client.getProtocolEra()).toBe('legacy');
    const [m, l] = await Promise.all([modern.client.listTools(), legacy.client.listTools()]);
    expect(m.tools.map((t) => t.name).sort()).toEqual(l.tools.map((t) => t.name).sort());
    expect(JSON.parse(text(await modern.client.callTool({ name: 'todo__whoami', arguments: {} })))).toMatchObject({ server: 'todo' });
    expect(JSON.parse(text(await legacy.client.callTool({ name: 'todo__whoami', arguments: {} })))).toMatchObject({ server: 'todo' });
    // A multi-round-trip tool: the IDE's answer travels back over the same pipe.
    expect(text(await modern.client.callTool({ name: 'wiki__confirm_action', arguments: { action: 'ship' } }))).toBe('wiki: ship done');
    // A custom-header tool: the bridge mirrors `region` into Mcp-Param-Region (else /mcp refuses the call, -32020).
    expect(text(await modern.client.callTool({ name: 'wiki__forecast', arguments: { region: 'Zürich', days: 3 } }))).toBe(
      'wiki: Zürich sunny for 3 day(s)',
    );
    expect(modern.stderr()).not.toMatch(/error/i);
  });
});
