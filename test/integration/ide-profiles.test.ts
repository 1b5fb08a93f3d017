/**
 * IDE profiles and tool budgets end to end: the real front door (local token, Host/Origin checks), the real aggregator
 * and its upstream sessions against the sandbox (alice signed in at the IdP, ID-JAG, MCP servers over HTTP, one of
 * which adds a tool at runtime), the real keychain, and the built `lanyard stdio --ide` bridge. An IDE whose profile
 * has a budget of N sees its favourites plus the two meta-tools, finds a hidden tool by search and calls it; the call
 * reaches the real tool (the sandbox server counts it; the activity names it). Run inside scripts/keyring-session.sh.
 */
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator, type AggregatorActivity } from '../../electron/broker/gateway/aggregate/aggregator';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { publishRuntime } from '../../electron/broker/gateway/runtime-file';
import { CALL_TOOL, SEARCH_TOOLS, type ProfilesConfig } from '../../electron/broker/governance/profiles';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { stdioBridge } from '../helpers/stdio-bridge';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-profiles-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');
const BUDGET = 5;

let sandbox: Sandbox;
let engine: EngineHarness;
let home: string;
let cleanup: () => Promise<void>;
let localAuth: LocalAuth;
let aggregator: Aggregator;
let gateway: GatewayServer;
let runtime: { close(): Promise<void> };
let profiles: ProfilesConfig;
const activity: AggregatorActivity[] = [];
const clients: Client[] = [];

const text = (result: unknown): string =>
  ((result as { content: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 8_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function httpIde(pathname: string, name: string): Promise<{ client: Client; listChanged: () => number }> {
  let changes = 0;
  const client = new Client({ name, version: '1.0.0' });
  client.setNotificationHandler('notifications/tools/list_changed', () => {
    changes++;
  });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${gateway.url}${pathname}`), {
      requestInit: { headers: { Authorization: `Bearer ${localAuth.token}` } },
    }),
  );
  clients.push(client);
  return { client, listChanged: () => changes };
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, extraServers: 2, toolsPerExtraServer: 40 });
  ({ home, cleanup } = await tempHome());
  engine = await createEngine(sandbox, { home });
  await engine.signIn('alice');
  localAuth = await LocalAuth.open(engine.secrets);
  const servers = sandbox.lanyardConfig().servers;
  profiles = { cursor: { budget: BUDGET, favourites: ['todo/echo', 'wiki/echo'], tools: { deny: ['gen-00/tool_001'] } } };
  aggregator = createAggregator({
    tokens: engine.tokens,
    getServers: () => servers,
    profiles: () => profiles,
    isSignedIn: () => engine.identity.state.status === 'signed_in',
    signInHint: () => 'Sign in.',
    onActivity: (e) => activity.push(e),
    connectTimeoutMs: 5_000,
    listBudgetMs: 5_000,
  });
  gateway = await startGatewayServer({
    port: 0,
    localAuth,
    aggregator,
    relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
  });
  runtime = await publishRuntime({ home, port: gateway.port, version: 'test', localAuth });
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await runtime?.close();
  await gateway?.close();
  await aggregator?.close();
  await sandbox?.stop();
  await cleanup?.();
  await rm(cliDir, { recursive: true, force: true });
});

describe('an IDE with a tool budget, through its own endpoint', () => {
  it('sees its favourites plus the two meta-tools — never more than its budget — while plain /mcp sees everything', async () => {
    const { client } = await httpIde('/ide/cursor/mcp', 'Cursor');
    const { tools } = await client.listTools();
    expect(tools.length).toBeLessThanOrEqual(BUDGET);
    expect(tools.map((t) => t.name)).toEqual(['todo__echo', 'wiki__echo', SEARCH_TOOLS, CALL_TOOL]);
    // Every name fits Cursor's limit (51 characters after its "lanyard" prefix).
    for (const t of tools) expect(t.name.length).toBeLessThanOrEqual(51);

    const plain = await httpIde('/mcp', 'plain');
    const all = (await plain.client.listTools()).tools;
    expect(all.length).toBeGreaterThan(80);
    expect(all.map((t) => t.name)).toContain('gen-00__tool_001');
  });

  it('finds a hidden tool by search and calls it through lanyard_call_tool: the real tool runs', async () => {
    const { client } = await httpIde('/ide/cursor/mcp', 'Cursor');
    await client.listTools();
    const found = await client.callTool({ name: SEARCH_TOOLS, arguments: { query: 'tool_017', limit: 5 } });
    const matches = (found.structuredContent as { tools: Array<{ name: string; server: string; inputSchema: unknown }> }).tools;
    const hit = matches.find((m) => m.name === 'gen-01__tool_017');
    expect(hit).toBeDefined();
    expect(hit!.inputSchema).toMatchObject({ type: 'object' });

    const gen01 = sandbox.server('gen-01').mcp;
    const callsBefore = gen01.counters.toolCalls;
    const result = await client.callTool({ name: CALL_TOOL, arguments: { name: 'gen-01__tool_017', arguments: { text: 'hi' } } });
    expect(result.isError).toBeFalsy();
    expect(text(result)).toContain('hi');
    expect(gen01.counters.toolCalls).toBe(callsBefore + 1);
    // Governance and activity see the real tool, not the meta-tool.
    expect(activity.at(-1)).toMatchObject({ kind: 'tool_call', serverId: 'gen-01', outcome: 'ok' });
    expect(activity.at(-1)!.summary).toContain('tool_017');

    // A direct call to a tool hidden by the budget works too (an IDE may call from an older list).
    expect(text(await client.callTool({ name: 'gen-00__tool_002', arguments: { text: 'direct' } }))).toContain('direct');
  });

  it('a tool the profile denies is neither found nor callable, by name or through the meta-tool', async () => {
    const { client } = await httpIde('/ide/cursor/mcp', 'Cursor');
    const found = await client.callTool({ name: SEARCH_TOOLS, arguments: { query: 'tool_001', limit: 50 } });
    expect(JSON.stringify(found.structuredContent)).not.toContain('gen-00__tool_001');
    const viaMeta = await client.callTool({ name: CALL_TOOL, arguments: { name: 'gen-00__tool_001', arguments: { text: 'x' } } });
    expect(viaMeta.isError).toBe(true);
    const direct = await client.callTool({ name: 'gen-00__tool_001', arguments: { text: 'x' } }).catch((e: unknown) => e);
    expect(String(direct)).toMatch(/Unknown tool/);
  });

  it('a server adding a tool at runtime reaches the profile: list_changed, then the new tool is found and called', async () => {
    const ide = await httpIde('/ide/cursor/mcp', 'Cursor');
    await ide.client.listTools();
    sandbox.server('wiki').mcp.addTool('summarize_release_notes');
    await waitFor(() => ide.listChanged() > 0, 'tools/list_changed on the Cursor session');
    await waitFor(async () => {
      const r = await ide.client.callTool({ name: SEARCH_TOOLS, arguments: { query: 'summarize release notes' } });
      return JSON.stringify(r.structuredContent).includes('wiki__summarize_release_notes');
    }, 'the new tool in search results');
    const r = await ide.client.callTool({
      name: CALL_TOOL,
      arguments: { name: 'wiki__summarize_release_notes', arguments: { text: 'v2' } },
    });
    expect(text(r)).toContain('summarize_release_notes: v2');
  });

  it('a profile edited while the IDE is connected: list_changed, and the next list follows the new budget', async () => {
    const ide = await httpIde('/ide/cursor/mcp', 'Cursor');
    expect((await ide.client.listTools()).tools).toHaveLength(4);
    profiles = { cursor: { ...profiles.cursor, budget: 0 } };
    aggregator.notifyServersChanged();
    await waitFor(() => ide.listChanged() > 0, 'tools/list_changed after the profile edit');
    const { tools } = await ide.client.listTools();
    expect(tools.length).toBeGreaterThan(80);
    expect(tools.map((t) => t.name)).not.toContain('gen-00__tool_001');
    profiles = { cursor: { ...profiles.cursor, budget: BUDGET } };
    aggregator.notifyServersChanged();
  });
});

describe('a 2026-07-28 IDE (no session, per-request _meta) on its own endpoint', () => {
  async function modernIde(pathname: string, name: string): Promise<Client> {
    const client = new Client({ name, version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gateway.url}${pathname}`), {
        requestInit: { headers: { Authorization: `Bearer ${localAuth.token}` } },
      }),
    );
    clients.push(client);
    expect(client.getProtocolEra()).toBe('modern');
    return client;
  }

  it('is shaped like a 2025-11-25 session there: budgeted list, search, call through the meta-tool, denied tools refused', async () => {
    const client = await modernIde('/ide/cursor/mcp', 'Cursor 2026');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['todo__echo', 'wiki__echo', SEARCH_TOOLS, CALL_TOOL]);

    const found = await client.callTool({ name: SEARCH_TOOLS, arguments: { query: 'tool_017', limit: 5 } });
    expect(JSON.stringify(found.structuredContent)).toContain('gen-01__tool_017');
    const gen01 = sandbox.server('gen-01').mcp;
    const callsBefore = gen01.counters.toolCalls;
    const result = await client.callTool({ name: CALL_TOOL, arguments: { name: 'gen-01__tool_017', arguments: { text: 'modern' } } });
    expect(result.isError).toBeFalsy();
    expect(text(result)).toContain('modern');
    expect(gen01.counters.toolCalls).toBe(callsBefore + 1);
    expect(activity.at(-1)).toMatchObject({ kind: 'tool_call', serverId: 'gen-01', outcome: 'ok' });

    const viaMeta = await client.callTool({ name: CALL_TOOL, arguments: { name: 'gen-00__tool_001', arguments: { text: 'x' } } });
    expect(viaMeta.isError).toBe(true);
    const direct = await client.callTool({ name: 'gen-00__tool_001', arguments: { text: 'x' } }).catch((e: unknown) => e);
    expect(String(direct)).toMatch(/Unknown tool/);

    // Plain /mcp stays the whole catalog for a 2026 IDE.
    const plain = await modernIde('/mcp', 'plain 2026');
    expect((await plain.listTools()).tools.length).toBeGreaterThan(80);
  });
});

describe('`lanyard stdio --ide cursor`', () => {
  it('bridges to the IDE endpoint: budgeted list, search and call through the meta-tool', async () => {
    const { transport, stderr } = stdioBridge(cli, { home, args: ['--ide', 'cursor'] });
    const client = new Client({ name: 'cursor-stdio', version: '1' });
    await client.connect(transport);
    clients.push(client);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['todo__echo', 'wiki__echo', SEARCH_TOOLS, CALL_TOOL]);
      const found = await client.callTool({ name: SEARCH_TOOLS, arguments: { query: 'tool 33' } });
      expect(JSON.stringify(found.structuredContent)).toContain('tool_033');
      const r = await client.callTool({ name: CALL_TOOL, arguments: { name: 'gen-00__tool_033', arguments: { text: 'stdio' } } });
      expect(text(r)).toContain('stdio');
      expect(aggregator.ideSessions().some((s) => s.clientName === 'cursor-stdio' && s.endpoint === '/ide/cursor/mcp')).toBe(true);
    } catch (e) {
      throw new Error(`${String(e)}\nbridge stderr: ${stderr()}`, { cause: e });
    }
  });

  it('refuses an IDE name that cannot be one, with the fix', async () => {
    const { transport, stderr } = stdioBridge(cli, { home, args: ['--ide', '../etc'] });
    const client = new Client({ name: 'x', version: '1' });
    await expect(client.connect(transport)).rejects.toThrow();
    await waitFor(() => stderr().includes('lanyard connect'), 'the bridge to explain');
  });
});
