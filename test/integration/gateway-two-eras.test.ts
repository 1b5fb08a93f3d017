/**
 * `/mcp` serving both protocol eras at once: a 2025-11-25 IDE (initialize + session) and a 2026-07-28 IDE (stateless,
 * `_meta` envelope, `input_required` rounds) side by side, against the sandbox's servers through the real front door
 * (local token, Host/Origin checks). See docs/protocol.md, "Two protocol eras on /mcp".
 */
import { Client, StreamableHTTPClientTransport, type ClientCapabilities } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator } from '../../electron/broker/gateway/aggregate/aggregator';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { envelope as envelopeOf, headers2026, messageText, post2026, type Wire } from '../helpers/mcp2026';

const text = (result: unknown): string =>
  ((result as { content?: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

describe('/mcp speaks 2025-11-25 and 2026-07-28 at the same time', () => {
  let sandbox: Sandbox;
  let engine: EngineHarness;
  let cleanupHome: () => Promise<void>;
  let aggregator: Aggregator;
  let gateway: GatewayServer;
  let localAuth: LocalAuth;
  const clients: Client[] = [];

  const headers = () => ({ Authorization: `Bearer ${localAuth.token}` });

  async function ide(
    name: string,
    era: '2025' | '2026',
    path = '/mcp',
    capabilities: ClientCapabilities = { elicitation: {}, sampling: {}, roots: {} },
  ): Promise<{ client: Client; asked: string[] }> {
    const asked: string[] = [];
    const client = new Client(
      { name, version: '1.0.0' },
      { capabilities, ...(era === '2026' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}) },
    );
    if (capabilities.elicitation)
      client.setRequestHandler('elicitation/create', (request) => {
        asked.push(request.params.message);
        return { action: 'accept', content: { answer: `${name} answers`, confirm: true } };
      });
    if (capabilities.sampling)
      client.setRequestHandler('sampling/createMessage', () => ({
        model: 'test',
        role: 'assistant',
        content: { type: 'text', text: `summary by ${name}` },
      }));
    if (capabilities.roots) client.setRequestHandler('roots/list', () => ({ roots: [{ uri: 'file:///work/p', name: 'p' }] }));
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.url}${path}`), { requestInit: { headers: headers() } }));
    clients.push(client);
    return { client, asked };
  }

  /** A raw 2026-07-28 POST to the gateway (for what the SDK client would never send). */
  async function post(body: unknown, extra: Record<string, string> = {}, path = '/mcp'): Promise<{ status: number; json: Wire }> {
    const answer = await post2026(`${gateway.url}${path}`, localAuth.token, body, { headers: extra });
    return { status: answer.status, json: JSON.parse(messageText(answer.text)) as Wire };
  }

  const envelope = (name = 'raw-2026', capabilities: ClientCapabilities = { elicitation: {} }) => envelopeOf(name, capabilities);

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, modernServers: true });
    const { home, cleanup } = await tempHome();
    cleanupHome = cleanup;
    engine = await createEngine(sandbox, { home });
    await engine.signIn('alice');
    const servers = sandbox.lanyardConfig().servers;
    localAuth = await LocalAuth.open(engine.secrets);
    aggregator = createAggregator({
      tokens: engine.tokens,
      getServers: () => servers,
      isSignedIn: () => engine.identity.state.status === 'signed_in',
      signInHint: () => 'Run `lanyard login`.',
      version: '0.1.0-test',
    });
    gateway = await startGatewayServer({
      port: 0,
      localAuth,
      aggregator,
      relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
    });
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gateway?.close();
    await aggregator?.close();
    await engine?.secrets.deleteAll().catch(() => undefined);
    await sandbox?.stop();
    await cleanupHome?.();
  });

  it('a 2026-07-28 IDE discovers, lists and calls while a 2025-11-25 IDE does the same', async () => {
    const [modern, legacy] = await Promise.all([ide('Modern IDE', '2026'), ide('Legacy IDE', '2025')]);
    expect(modern.client.getProtocolEra()).toBe('modern');
    expect(legacy.client.getProtocolEra()).toBe('legacy');
    const [modernTools, legacyTools] = await Promise.all([modern.client.listTools(), legacy.client.listTools()]);
    expect(modernTools.tools.map((t) => t.name).sort()).toEqual(legacyTools.tools.map((t) => t.name).sort());
    expect(modernTools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['todo__whoami', 'wiki__summarize']));
    const [a, b] = await Promise.all([
      modern.client.callTool({ name: 'todo__whoami', arguments: {} }),
      legacy.client.callTool({ name: 'wiki__whoami', arguments: {} }),
    ]);
    expect(JSON.parse(text(a))).toMatchObject({ server: 'todo', sub: '00u-alice' });
    expect(JSON.parse(text(b))).toMatchObject({ server: 'wiki', sub: '00u-alice' });
    // The 2026 IDE has no session: Lanyard lists only the 2025 one among connected IDEs.
    expect(aggregator.ideSessions().map((s) => s.clientName)).toEqual(['Legacy IDE']);
  });

  it("a 2025 server's elicitation reaches a 2026 IDE as an input_required round, and the answer goes back to it", async () => {
    const modern = await ide('Asking IDE', '2026');
    const result = await modern.client.callTool({ name: 'todo__ask_user', arguments: { question: 'Ship it?' } });
    expect(modern.asked).toEqual(['Ship it?']);
    expect(JSON.parse(text(result))).toEqual({ action: 'accept', answer: 'Asking IDE answers' });
  });

  it('sampling and roots rounds too, and progress arrives on the 2026 request', async () => {
    const modern = await ide('Sampling IDE', '2026');
    // todo speaks 2025-11-25 only: its sampling request mid-call is what becomes a round. (wiki speaks both eras, so a
    // 2026 IDE reaches it on 2026-07-28, where a tool cannot push a server→client request at all.)
    expect(text(await modern.client.callTool({ name: 'todo__summarize', arguments: { text: 'long text' } }))).toBe(
      'summary by Sampling IDE',
    );
    expect(JSON.parse(text(await modern.client.callTool({ name: 'todo__list_roots', arguments: {} })))).toEqual([
      { uri: 'file:///work/p', name: 'p' },
    ]);
    const progress: number[] = [];
    const counted = await modern.client.callTool(
      { name: 'todo__slow_count', arguments: { steps: 3, delayMs: 10 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(text(counted)).toBe('counted to 3');
    expect(progress).toEqual([1, 2, 3]);
  });

  it('server/discover answers with Lanyard and the merged capabilities; lists carry merged caching hints', async () => {
    const discover = await post({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: envelope() } });
    expect(discover.status).toBe(200);
    expect(discover.json.result.supportedVersions).toContain('2026-07-28');
    expect(discover.json.result.capabilities.tools).toBeDefined();
    const list = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: envelope() } });
    // Both sandbox servers speak 2025-11-25 (no hints): the merged list is not cacheable beyond this client.
    expect(list.json.result).toMatchObject({ ttlMs: 0, cacheScope: 'private' });
  });

  it('refuses mismatched headers, unknown versions, forged and foreign requestState with the spec errors', async () => {
    const mismatch = await post(
      { jsonrpc: '2.0', id: 3, method: 'tools/list', params: { _meta: envelope() } },
      { 'Mcp-Method': 'tools/call' },
    );
    expect(mismatch.json.error?.code).toBe(-32020);
    const unknown = await post(
      {
        jsonrpc: '2.0',
        id: 4,
        method: 'tools/list',
        params: { _meta: { ...envelope(), 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
      },
      { 'MCP-Protocol-Version': '2099-01-01' },
    );
    expect(unknown.json.error?.code).toBe(-32022);

    // A tool's `x-mcp-header` argument (SEP-2243): Lanyard checks Mcp-Param-* against the server's own schema.
    const forecast = { name: 'wiki__forecast', arguments: { region: 'eu-west' }, _meta: envelope() };
    await post({ jsonrpc: '2.0', id: 39, method: 'tools/list', params: { _meta: envelope() } }); // names handed out
    const wrongParam = await post({ jsonrpc: '2.0', id: 40, method: 'tools/call', params: forecast }, { 'Mcp-Param-Region': 'us-east' });
    expect(wrongParam.status).toBe(400);
    expect(wrongParam.json.error?.code).toBe(-32020);
    const missingParam = await post({ jsonrpc: '2.0', id: 41, method: 'tools/call', params: forecast });
    expect(missingParam.json.error?.code).toBe(-32020);
    const rightParam = await post({ jsonrpc: '2.0', id: 42, method: 'tools/call', params: forecast }, { 'Mcp-Param-Region': 'eu-west' });
    expect(rightParam.json.result?.content?.[0]?.text).toBe('wiki: eu-west sunny for 1 day(s)');

    // A real round: the state Lanyard minted for one IDE.
    const ask = { name: 'todo__ask_user', arguments: { question: 'Really?' } };
    const first = await post({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { ...ask, _meta: envelope('IDE A') } });
    expect(first.json.result.resultType).toBe('input_required');
    const [key] = Object.keys(first.json.result.inputRequests);
    const state = first.json.result.requestState as string;
    expect(state).not.toContain('todo');

    const forged = `${state.slice(0, -4)}AAAA`;
    const tampered = await post({
      jsonrpc: '2.0',
      id: 6,
      method: 'tools/call',
      params: {
        ...ask,
        requestState: forged,
        inputResponses: { [key!]: { action: 'accept', content: { answer: 'x' } } },
        _meta: envelope('IDE A'),
      },
    });
    expect(tampered.json.error).toMatchObject({ code: -32602, message: 'Invalid or expired requestState' });

    const foreign = await post({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: {
        ...ask,
        requestState: state,
        inputResponses: { [key!]: { action: 'accept', content: { answer: 'x' } } },
        _meta: envelope('IDE B'),
      },
    });
    expect(foreign.json.error).toMatchObject({ code: -32602, message: 'Invalid or expired requestState' });

    // The rightful IDE still completes its call after both refusals.
    const done = await post({
      jsonrpc: '2.0',
      id: 8,
      method: 'tools/call',
      params: {
        ...ask,
        requestState: state,
        inputResponses: { [key!]: { action: 'accept', content: { answer: 'yes' } } },
        _meta: envelope('IDE A'),
      },
    });
    expect(JSON.parse(text(done.json.result))).toEqual({ action: 'accept', answer: 'yes' });
    // Single use: replaying the state finds nothing.
    const replay = await post({
      jsonrpc: '2.0',
      id: 9,
      method: 'tools/call',
      params: {
        ...ask,
        requestState: state,
        inputResponses: { [key!]: { action: 'accept', content: { answer: 'again' } } },
        _meta: envelope('IDE A'),
      },
    });
    expect(replay.json.error).toMatchObject({ code: -32602 });
  });

  it('a retry without the answer asks again; an IDE that never answers is stopped after the round cap', async () => {
    const ask = { name: 'todo__ask_user', arguments: { question: 'Loop?' } };
    let result = (await post({ jsonrpc: '2.0', id: 10, method: 'tools/call', params: { ...ask, _meta: envelope('Looper') } })).json.result;
    let rounds = 1;
    while (result?.resultType === 'input_required' && rounds < 20) {
      result = (
        await post({
          jsonrpc: '2.0',
          id: 10 + rounds,
          method: 'tools/call',
          params: { ...ask, requestState: result.requestState, inputResponses: {}, _meta: envelope('Looper') },
        })
      ).json.result;
      rounds++;
    }
    expect(rounds).toBeLessThan(20);
    expect(result).toMatchObject({ isError: true });
    expect(text(result)).toMatch(/kept asking for input/);
  });

  it('subscriptions/listen streams get the merged list changes of every server', async () => {
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/mcp`, {
      method: 'POST',
      signal: controller.signal,
      headers: { ...headers(), ...headers2026('subscriptions/listen') },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'listen-1',
        method: 'subscriptions/listen',
        params: { notifications: { toolsListChanged: true }, _meta: envelope('Listener') },
      }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let events = '';
    const readUntil = async (needle: string) => {
      const deadline = Date.now() + 8_000;
      while (!events.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`no ${needle} on the listen stream: ${events.slice(0, 500)}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`listen stream ended: ${events}`);
        events += value;
      }
    };
    await readUntil('notifications/subscriptions/acknowledged');
    // A 2025-11-25 server (todo) changes its tools: the merged list changed for every 2026 listener.
    await aggregator.listTools('todo');
    sandbox.server('todo').mcp.addTool('brand_new_tool');
    await readUntil('notifications/tools/list_changed');
    controller.abort();
  });

  it('a server that speaks both eras: its multi-round-trip tool and custom-header tool through /mcp, for both IDEs', async () => {
    const [modern, legacy] = await Promise.all([ide('Both 2026', '2026'), ide('Both 2025', '2025')]);
    for (const client of [modern, legacy]) {
      const confirmed = await client.client.callTool({ name: 'wiki__confirm_action', arguments: { action: 'publish' } });
      expect(text(confirmed)).toBe('wiki: publish done');
      expect(client.asked).toEqual(['Really publish?']);
    }
    const forecast = await modern.client.callTool({ name: 'wiki__forecast', arguments: { region: 'eu-west', days: 2 } });
    expect(text(forecast)).toBe('wiki: eu-west sunny for 2 day(s)');
  });

  it("a server that speaks both eras: a 2025 IDE gets the server's own elicitation request mid-call, and its log level applies", async () => {
    const { client, asked } = await ide('Push 2025', '2025');
    const answered = await client.callTool({ name: 'wiki__ask_user', arguments: { question: 'Which branch?' } });
    expect(JSON.parse(text(answered))).toEqual({ action: 'accept', answer: 'Push 2025 answers' });
    expect(asked).toEqual(['Which branch?']);

    const levels: string[] = [];
    client.setNotificationHandler('notifications/message', (n) => {
      if (n.params.logger?.startsWith('wiki/')) levels.push(n.params.level);
    });
    await client.setLoggingLevel('warning');
    expect(text(await client.callTool({ name: 'wiki__log_demo', arguments: {} }))).toBe('sent 5 log messages');
    expect(levels).toEqual(['warning', 'error']);
  });

  it("a 2026 IDE that did not declare what a server's tool needs gets the spec's -32021 (HTTP 400), not a failed tool result", async () => {
    const call = (capabilities: ClientCapabilities) =>
      post(
        {
          jsonrpc: '2.0',
          id: 7,
          method: 'tools/call',
          params: { name: 'wiki__confirm_action', arguments: { action: 'publish' }, _meta: envelope('no-elicitation', capabilities) },
        },
        {},
      );
    const refused = await call({});
    expect(refused.status).toBe(400);
    expect(refused.json.error?.code).toBe(-32021);
    // With the capability declared the same call asks its question (an input_required round).
    const asked = await call({ elicitation: {} });
    expect(asked.json.result?.resultType).toBe('input_required');
  });

  it('a server that speaks only 2026-07-28 is reached by a 2026 IDE through the relay, rounds and all', async () => {
    const modern = await ide('Relay 2026', '2026', '/mcp/notes');
    const { tools } = await modern.client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['confirm_action', 'forecast', 'whoami']));
    expect(JSON.parse(text(await modern.client.callTool({ name: 'whoami', arguments: {} })))).toMatchObject({
      server: 'notes',
      sub: '00u-alice',
    });
    expect(text(await modern.client.callTool({ name: 'confirm_action', arguments: { action: 'archive' } }))).toBe('notes: archive done');
    expect(modern.asked).toEqual(['Really archive?']);
    // A 2025 IDE gets the server's own refusal of initialize.
    await expect(ide('Relay 2025', '2025', '/mcp/notes')).rejects.toThrow();
  });

  it('/mcp/only/<id> carries one server with its own names, for both eras', async () => {
    const [modern, legacy] = await Promise.all([ide('Only 2026', '2026', '/mcp/only/todo'), ide('Only 2025', '2025', '/mcp/only/todo')]);
    const [m, l] = await Promise.all([modern.client.listTools(), legacy.client.listTools()]);
    const names = m.tools.map((t) => t.name);
    expect(names).toContain('whoami');
    expect(names.some((n) => n.includes('__'))).toBe(false);
    expect(l.tools.map((t) => t.name).sort()).toEqual([...names].sort());
    expect(JSON.parse(text(await modern.client.callTool({ name: 'whoami', arguments: {} })))).toMatchObject({ server: 'todo' });
    expect(JSON.parse(text(await legacy.client.callTool({ name: 'whoami', arguments: {} })))).toMatchObject({ server: 'todo' });
    const unknownServer = await fetch(`${gateway.url}/mcp/only/nope`, {
      method: 'POST',
      headers: { ...headers(), 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    expect(unknownServer.status).toBe(404);
    const noToken = await fetch(`${gateway.url}/mcp/only/todo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    expect(noToken.status).toBe(401);
  });
});
