/**
 * `/mcp`'s fast path (aggregate/fast-path.ts) against a hand-written upstream that answers with bytes the test
 * chooses (spacing, key order, SSE framing), so what reaches the IDE can be compared byte for byte: a forwarded answer
 * is the server's own bytes with only the id replaced; what needs Lanyard (its own tools, errors, a lost session)
 * still gets the SDK path's answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator, type AggregatorActivity } from '../../electron/broker/gateway/aggregate/aggregator';
import type { AggregatorCore } from '../../electron/broker/gateway/aggregate/core';
import type { GuardedCall } from '../../electron/broker/governance/call-guard';
import { CALL_TOOL } from '../../electron/broker/governance/profiles';

interface Seen {
  method: string;
  id?: unknown;
  params?: Record<string, unknown>;
  sessionId?: string | undefined;
}

/** The answer bytes of the `big` tool, with `ID` where the request id goes: odd spacing no serializer would produce. */
const BIG_TEXT = 'x'.repeat(3 * 1024 * 1024);
const bigAnswer = (id: string): string =>
  `{ "result" : { "content" : [ { "type":"text", "text":"${BIG_TEXT}" } ], "structuredContent": {"n": 1} } ,  "jsonrpc":"2.0", "id" : ${id} }`;

/** A tool whose exposed name (`raw__…`) is longer than the profile's name limit below, so the profile renames it. */
const LONG_NAME = 'plain_with_a_rather_long_name';

/** A Streamable HTTP MCP server written out by hand. */
class RawUpstream {
  readonly seen: Seen[] = [];
  /** The next tools/call on an existing session gets 404 (the server restarted and forgot it). */
  forgetSession = false;
  private session = 0;
  private readonly sessions = new Set<string>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/mcp`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  calls(name: string): Seen[] {
    return this.seen.filter((s) => s.method === 'tools/call' && s.params?.name === name);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET') {
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown; method?: string; params?: Record<string, unknown> };
    const sessionId = req.headers['mcp-session-id'] as string | undefined;
    if (this.forgetSession && msg.method === 'tools/call') {
      this.forgetSession = false;
      this.sessions.clear();
    }
    if (msg.method !== 'initialize' && sessionId !== undefined && !this.sessions.has(sessionId)) {
      req.resume();
      res
        .writeHead(404, { 'Content-Type': 'application/json' })
        .end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
      return;
    }
    if (msg.method) this.seen.push({ method: msg.method, id: msg.id, ...(msg.params ? { params: msg.params } : {}), sessionId });
    const id = JSON.stringify(msg.id);
    if (msg.method === 'initialize') {
      const sid = `raw-${++this.session}`;
      this.sessions.add(sid);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': sid });
      res.end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: msg.id,
          result: {
            protocolVersion: msg.params?.protocolVersion,
            capabilities: { tools: {}, prompts: {}, logging: {} },
            serverInfo: { name: 'raw', version: '1.0.0' },
          },
        }),
      );
      return;
    }
    if (msg.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    const json = (body: string) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    const sse = (...events: string[]) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(events.map((e) => `event: message\ndata: ${e}\n\n`).join(''));
    };
    switch (msg.method) {
      case 'tools/list':
        json(
          JSON.stringify({
            jsonrpc: '2.0',
            id: msg.id,
            result: {
              tools: ['big', 'fail', 'progress', 'pretty', 'plain', LONG_NAME].map((name) => ({ name, inputSchema: { type: 'object' } })),
            },
          }),
        );
        return;
      case 'prompts/list':
        json(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { prompts: [{ name: 'greet' }] } }));
        return;
      case 'prompts/get':
        sse(`{"jsonrpc":"2.0","id":${id},"error":{"code":-32602,"message":"Invalid arguments for prompt greet"}}`);
        return;
      case 'tools/call':
        break;
      default:
        json(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {} }));
        return;
    }
    const token = JSON.stringify((msg.params?._meta as { progressToken?: unknown } | undefined)?.progressToken ?? null);
    switch (msg.params?.name) {
      case 'big':
        json(bigAnswer(id));
        return;
      case 'fail':
        sse(`{"jsonrpc":"2.0","id":${id},"error":{"code":-32602,"message":"Input validation error: text is required"}}`);
        return;
      case 'progress':
        sse(
          `{"method":"notifications/progress","params":{"progressToken":${token},"progress":1,"total":2},"jsonrpc":"2.0"}`,
          `{"method":"notifications/message","params":{"level":"info","logger":"worker","data":"halfway"},"jsonrpc":"2.0"}`,
          `{"method":"notifications/progress","params":{"progressToken":${token},"progress":2,"total":2},"jsonrpc":"2.0"}`,
          `{"result":{"content":[{"type":"text","text":"done"}]},"jsonrpc":"2.0","id":${id}}`,
        );
        return;
      case 'pretty':
        // Pretty-printed JSON over SSE: one data: line per line of JSON.
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.end(
          `event: message\n${JSON.stringify(
            { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'pretty\nprinted' }], isError: true } },
            null,
            2,
          )
            .split('\n')
            .map((l) => `data: ${l}`)
            .join('\r\n')}\r\n\r\n`,
        );
        return;
      default:
        json(`{"result":{"content":[{"type":"text","text":"plain"}]},"jsonrpc":"2.0","id":${id}}`);
    }
  }
}

/** An IDE speaking raw HTTP to /mcp, to see the answer's exact bytes and headers. */
class RawIde {
  private sessionId = '';
  private next = 0;
  constructor(private readonly url: string) {}

  async init(): Promise<void> {
    const res = await this.post({
      jsonrpc: '2.0',
      id: 'init',
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-ide', version: '1' } },
    });
    this.sessionId = res.headers.get('mcp-session-id') ?? '';
    await res.text();
    await (await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' })).text();
  }

  post(message: unknown): Promise<Response> {
    return fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25',
        ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
      },
      body: JSON.stringify(message),
    });
  }

  async call(name: string, id: string | number = ++this.next, args: Record<string, unknown> = {}): Promise<{ type: string; body: string }> {
    const res = await this.post({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    return { type: res.headers.get('content-type') ?? '', body: await res.text() };
  }
}

/**
 * The data of the answer's last SSE event. The fast path answers as a resumable stream (docs/protocol.md, "Resumable
 * streams on /mcp"): a priming event (an id, retry, empty data) first, then the message as one event with an id.
 */
function sseData(answer: { type: string; body: string }): string {
  expect(answer.type).toBe('text/event-stream');
  const events = answer.body.split('\n\n').filter(Boolean);
  expect(events[0]).toMatch(/^id: \S+\nretry: \d+\ndata: $/);
  expect(events.at(-1)).toMatch(/^event: message\nid: \S+\ndata: /);
  return events
    .at(-1)!
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => l.slice(6))
    .join('\n');
}

async function answerOf(res: Response): Promise<{ type: string; body: string }> {
  return { type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The JSON-RPC messages of an answer, whichever form it came in. */
function messages(answer: { type: string; body: string }): Array<Record<string, unknown>> {
  if (answer.type.startsWith('application/json')) return [JSON.parse(answer.body) as Record<string, unknown>];
  return answer.body
    .split(/\n\n/)
    .map((e) =>
      e
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n'),
    )
    .filter(Boolean)
    .map((d) => JSON.parse(d) as Record<string, unknown>);
}

describe('/mcp fast path', () => {
  const upstream = new RawUpstream();
  let aggregator: Aggregator;
  let http: Server;
  let url = '';
  const activity: AggregatorActivity[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    await upstream.start();
    aggregator = createAggregator({
      tokens: { authorizedFetch: (_id, base) => base ?? fetch },
      getServers: () => [{ id: 'raw', name: 'Raw', url: upstream.url, enabled: true }],
      isSignedIn: () => true,
      signInHint: () => 'sign in',
      onActivity: (e) => activity.push(e),
      connectTimeoutMs: 5_000,
    });
    http = createServer((req, res) => void aggregator.handleRequest(req, res));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  });

  afterEach(() => {
    upstream.forgetSession = false;
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await aggregator.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await upstream.stop();
  });

  /** An IDE whose bound session to the server is connected (listed, then called once). */
  async function warmIde(): Promise<RawIde> {
    const ide = new RawIde(url);
    await ide.init();
    await (await ide.post({ jsonrpc: '2.0', id: 'list', method: 'tools/list' })).text();
    expect(messages(await ide.call('raw__plain'))[0]).toMatchObject({ result: { content: [{ text: 'plain' }] } });
    return ide;
  }

  it("forwards a huge result as the server's own bytes, only the id replaced, with the IDE's id", async () => {
    const ide = await warmIde();
    const answer = await ide.call('raw__big', 'req-7');
    // Not re-serialized: the server's spacing and key order survive, and the id is the IDE's.
    const data = sseData(answer);
    expect(data.length).toBe(bigAnswer('"req-7"').length);
    expect(data === bigAnswer('"req-7"')).toBe(true);
    const seen = upstream.calls('big').at(-1)!;
    // Upstream the call carried Lanyard's own id (never the IDE's) on the IDE session's bound upstream session.
    expect(seen.id).not.toBe('req-7');
    expect(typeof seen.id).toBe('string');
    expect(seen.sessionId).toMatch(/^raw-/);
    expect(activity.at(-1)).toMatchObject({ kind: 'tool_call', serverId: 'raw', outcome: 'ok' });
  });

  it("Lanyard's own tools still go through the SDK server (intercepted), forwarded calls do not", async () => {
    const ide = await warmIde();
    const own = await ide.call('lanyard_status', 5);
    expect(own.type).toBe('text/event-stream');
    expect(messages(own).at(-1)).toMatchObject({ id: 5, result: { content: [expect.objectContaining({ type: 'text' })] } });
    const forwarded = await ide.call('raw__plain', 6);
    expect(sseData(forwarded)).toBe('{"result":{"content":[{"type":"text","text":"plain"}]},"jsonrpc":"2.0","id":6}');
  });

  it('tools/list is answered from the merged list serialized once, with the IDE id', async () => {
    const ide = await warmIde();
    const first = await ide.post({ jsonrpc: '2.0', id: 'l1', method: 'tools/list', params: {} });
    const second = await ide.post({ jsonrpc: '2.0', id: 'l2', method: 'tools/list' });
    const [a, b] = [sseData(await answerOf(first)), sseData(await answerOf(second))];
    expect(JSON.parse(a)).toMatchObject({
      jsonrpc: '2.0',
      id: 'l1',
      result: { tools: expect.arrayContaining([expect.objectContaining({ name: 'raw__big' })]) },
    });
    expect(b).toBe(a.replace('"id":"l1"', '"id":"l2"'));
    // Serialized once: while the catalog is unchanged every list reuses the same bytes, not a fresh JSON.stringify.
    const core = aggregator as unknown as AggregatorCore;
    expect(await core.listToolsJson()).toBe(await core.listToolsJson());
  });

  it('an upstream JSON-RPC error comes back with the IDE id, as the tool result with isError the SDK path gives', async () => {
    const ide = await warmIde();
    const [answer] = messages(await ide.call('raw__fail', 'f-1'));
    expect(answer).toEqual({
      jsonrpc: '2.0',
      id: 'f-1',
      result: {
        content: [
          { type: 'text', text: 'Server "raw" rejected the call: Input validation error: text is required (JSON-RPC error -32602).' },
        ],
        isError: true,
      },
    });
    expect(activity.at(-1)).toMatchObject({ kind: 'tool_call', outcome: 'error', error: expect.objectContaining({ serverId: 'raw' }) });
    // prompts/get: a JSON-RPC error with the IDE's id.
    await (await ide.post({ jsonrpc: '2.0', id: 'p', method: 'prompts/list' })).text();
    await (await ide.post({ jsonrpc: '2.0', id: 'p0', method: 'prompts/get', params: { name: 'raw__greet' } })).text();
    const res = await ide.post({ jsonrpc: '2.0', id: 'p1', method: 'prompts/get', params: { name: 'raw__greet' } });
    expect(messages({ type: res.headers.get('content-type') ?? '', body: await res.text() })).toEqual([
      { jsonrpc: '2.0', id: 'p1', error: { code: -32602, message: 'Invalid arguments for prompt greet' } },
    ]);
  });

  it("maps progress to the IDE's own token (never sent upstream), with log messages, before the result", async () => {
    const client = new Client({ name: 'sdk-ide', version: '1' }, { capabilities: {} });
    clients.push(client);
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    await client.setLoggingLevel('info');
    const logs: unknown[] = [];
    client.setNotificationHandler('notifications/message', (n) => {
      logs.push(n.params);
    });
    await client.listTools();
    await client.callTool({ name: 'raw__plain', arguments: {} });
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'raw__progress', arguments: {}, _meta: { 'example.com/trace': 't1' } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(result).toMatchObject({ content: [{ type: 'text', text: 'done' }] });
    // The SDK client routes progress only by the token it sent: arriving proves the token was mapped back.
    expect(progress).toEqual([1, 2]);
    expect(logs).toEqual([{ level: 'info', logger: 'raw/worker', data: 'halfway' }]);
    const seen = upstream.calls('progress').at(-1)!;
    const token = (seen.params?._meta as { progressToken?: unknown }).progressToken;
    expect(typeof token).toBe('string');
    expect(token).toBe(seen.id);
    // The IDE's own _meta fields travel on; only the progress token is ours.
    expect(seen.params?._meta).toEqual({ 'example.com/trace': 't1', progressToken: token });
  });

  it('pretty-printed multi-line SSE data is forwarded as valid SSE (isError seen for the activity view)', async () => {
    const ide = await warmIde();
    const answer = await ide.call('raw__pretty', 9);
    expect(messages(answer)).toEqual([
      { jsonrpc: '2.0', id: 9, result: { content: [{ type: 'text', text: 'pretty\nprinted' }], isError: true } },
    ]);
    expect(activity.at(-1)).toMatchObject({ kind: 'tool_call', outcome: 'error' });
  });

  it('a server that forgot the session (404) is re-initialized by the SDK path and the call answered once', async () => {
    const ide = await warmIde();
    const inits = upstream.seen.filter((s) => s.method === 'initialize').length;
    upstream.forgetSession = true;
    const before = upstream.calls('plain').length;
    expect(messages(await ide.call('raw__plain', 11))).toEqual([
      { jsonrpc: '2.0', id: 11, result: { content: [{ type: 'text', text: 'plain' }] } },
    ]);
    expect(upstream.seen.filter((s) => s.method === 'initialize').length).toBe(inits + 1);
    // Refused attempts never reach the tool: it ran once, on the new session.
    expect(upstream.calls('plain').length).toBe(before + 1);
    expect(upstream.calls('plain').at(-1)!.sessionId).toBe(`raw-${inits + 1}`);
  });
});

/**
 * The per-IDE endpoints `lanyard connect` writes (`/ide/<ide>/mcp`) keep the fast path: a profile session's tools/call is
 * resolved by its profile (its namer, its deny list, `lanyard_call_tool`) and then forwarded as bytes, and its
 * tools/list is served from the shaped list's cached bytes. The SDK path answers with an SSE stream (the transport's
 * default), the fast path with one JSON body: the content type tells which path answered.
 */
describe('IDE profile endpoints on the fast path', () => {
  const upstream = new RawUpstream();
  let aggregator: Aggregator;
  let http: Server;
  let base = '';
  const activity: AggregatorActivity[] = [];
  const guarded: GuardedCall[] = [];

  beforeAll(async () => {
    await upstream.start();
    aggregator = createAggregator({
      tokens: { authorizedFetch: (_id, b) => b ?? fetch },
      getServers: () => [{ id: 'raw', name: 'Raw', url: upstream.url, enabled: true }],
      isSignedIn: () => true,
      signInHint: () => 'sign in',
      onActivity: (e) => activity.push(e),
      connectTimeoutMs: 5_000,
      // Within cursor's budget; names cut at 20 characters; one tool denied.
      profiles: () => ({ cursor: { maxNameLength: 20, favourites: ['raw/plain'], tools: { deny: ['raw/fail'] } } }),
      guard: {
        admit: (call) => {
          guarded.push(call);
          return { call, started: performance.now() };
        },
        settle: () => undefined,
      },
    });
    http = createServer(
      (req, res) => void aggregator.handleRequest(req, res, undefined, req.url === '/ide/cursor/mcp' ? 'cursor' : undefined),
    );
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await aggregator.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await upstream.stop();
  });

  /** A cursor session whose bound session to the server is connected, and the names its profile gave it. */
  async function cursorIde(): Promise<{ ide: RawIde; names: string[] }> {
    const ide = new RawIde(`${base}/ide/cursor/mcp`);
    await ide.init();
    const list = await ide.post({ jsonrpc: '2.0', id: 'list', method: 'tools/list' });
    const names = (
      messages({ type: list.headers.get('content-type') ?? '', body: await list.text() })[0] as {
        result: { tools: Array<{ name: string }> };
      }
    ).result.tools.map((t) => t.name);
    // The first call connects the bound session (SDK path); later ones find it warm.
    expect(messages(await ide.call('raw__plain'))[0]).toMatchObject({ result: { content: [{ text: 'plain' }] } });
    return { ide, names };
  }

  it("tools/list is the profile's shaped list, from bytes serialized once per list and settings", async () => {
    const { ide, names } = await cursorIde();
    // Shaped: the favourite first, the denied tool gone, the long name cut to the profile's limit.
    expect(names[0]).toBe('raw__plain');
    expect(names).not.toContain('raw__fail');
    expect(names).not.toContain(`raw__${LONG_NAME}`);
    expect(names.every((n) => n.length <= 20)).toBe(true);
    const first = await ide.post({ jsonrpc: '2.0', id: 'l1', method: 'tools/list', params: {} });
    const second = await ide.post({ jsonrpc: '2.0', id: 'l2', method: 'tools/list' });
    const [a, b] = [sseData(await answerOf(first)), sseData(await answerOf(second))];
    expect((JSON.parse(a) as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name)).toEqual(names);
    expect(b).toBe(a.replace('"id":"l1"', '"id":"l2"'));
    // The same bytes every time while nothing changed, distinct from plain /mcp's.
    const view = (aggregator as unknown as AggregatorCore).profileView('cursor');
    expect(await view.listJson()).toBe(await view.listJson());
    expect(await view.listJson()).not.toBe(await (aggregator as unknown as AggregatorCore).listToolsJson());
  });

  it("tools/call by the profile's name is forwarded as the server's bytes; governance sees the real tool and the profile", async () => {
    const { ide, names } = await cursorIde();
    const answer = await ide.call('raw__big', 'req-9');
    expect(sseData(answer) === bigAnswer('"req-9"')).toBe(true);
    // A renamed tool: the profile's short name reaches the server's own tool, on the fast path.
    const short = names.find((n) => n !== `raw__${LONG_NAME}` && n.startsWith('raw__plain_'))!;
    expect(short).toBeDefined();
    const before = upstream.calls(LONG_NAME).length;
    const renamed = await ide.call(short, 'req-10');
    expect(sseData(renamed)).toBe('{"result":{"content":[{"type":"text","text":"plain"}]},"jsonrpc":"2.0","id":"req-10"}');
    expect(upstream.calls(LONG_NAME).length).toBe(before + 1);
    expect(guarded.at(-1)).toMatchObject({
      endpoint: '/ide/cursor/mcp',
      profileId: 'cursor',
      serverId: 'raw',
      method: 'tools/call',
      name: LONG_NAME,
    });
    expect(activity.at(-1)).toMatchObject({ kind: 'tool_call', serverId: 'raw', summary: `raw-ide called raw › ${LONG_NAME}` });
  });

  it('lanyard_call_tool is unwrapped and forwarded; a denied tool is refused as the SDK path refuses it', async () => {
    const { ide } = await cursorIde();
    const wrapped = await ide.call(CALL_TOOL, 'w-1', { name: 'raw__big', arguments: { n: 1 } });
    expect(sseData(wrapped) === bigAnswer('"w-1"')).toBe(true);
    expect(upstream.calls('big').at(-1)!.params?.arguments).toEqual({ n: 1 });
    const calls = upstream.calls('fail').length;
    const denied = await ide.call('raw__fail', 'd-1');
    expect(messages(denied)).toEqual([
      { jsonrpc: '2.0', id: 'd-1', error: { code: -32602, message: expect.stringMatching(/^Unknown tool: raw__fail\./) as unknown } },
    ]);
    expect(upstream.calls('fail').length).toBe(calls);
  });

  it('plain /mcp beside it keeps the merged list and names', async () => {
    const ide = new RawIde(`${base}/mcp`);
    await ide.init();
    const res = await ide.post({ jsonrpc: '2.0', id: 'l', method: 'tools/list' });
    const names = (JSON.parse(sseData(await answerOf(res))) as { result: { tools: Array<{ name: string }> } }).result.tools.map(
      (t) => t.name,
    );
    expect(names).toContain('raw__fail');
    expect(names).toContain(`raw__${LONG_NAME}`);
  });
});
