/**
 * The stdio bridge's HTTP side against a scripted broker (a plain node:http server with a real runtime file): what a
 * real broker rarely does on cue — answer out of order, push on the standalone stream, pretty-print, fail with a text
 * body, cut an answer off. The bridge runs in-process on PassThrough streams. Run with
 * `bash scripts/keyring-session.sh npx vitest run test/integration/stdio-pipe.test.ts`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { runStdioBridge } from '../../electron/cli/stdio';
import { SseReader } from '../../electron/cli/stdio/sse';
import { tempHome } from '../helpers/engine';

const TOKEN = 'L'.repeat(43);
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

type Handler = (req: IncomingMessage, res: ServerResponse, message: Record<string, unknown> | undefined) => void;

let home: string;
let cleanup: () => Promise<void>;
let server: Server;
let handler: Handler;
let onGet: Handler | undefined;
let seen: Array<{ method: string; headers: IncomingMessage['headers']; message?: Record<string, unknown> }>;
/** The session the scripted broker hands out to the next initialize (a restarted broker hands out another). */
let session: string;

beforeEach(async () => {
  ({ home, cleanup } = await tempHome());
  seen = [];
  session = 'session-1';
  handler = () => undefined;
  onGet = undefined;
  server = createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const message = body ? (JSON.parse(body) as Record<string, unknown>) : undefined;
      seen.push({ method: req.method!, headers: req.headers, ...(message ? { message } : {}) });
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
      if (message?.method === 'initialize') {
        // As the SDK's transport: a session is initialized once.
        if (req.headers['mcp-session-id'] !== undefined)
          return void res
            .writeHead(400, { 'content-type': 'application/json' })
            .end(
              JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: Server already initialized' } }),
            );
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': session });
        return void res.end(
          JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-06-18', capabilities: {} } }),
        );
      }
      if (req.method === 'POST' && message?.id === undefined) return void res.writeHead(202).end();
      if (req.method === 'DELETE') return void res.end();
      if (req.method === 'GET' && !onGet) return void res.writeHead(405).end();
      (req.method === 'GET' ? onGet! : handler)(req, res, message);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await writeRuntimeFile(home, {
    pid: process.pid,
    port,
    url: `http://127.0.0.1:${port}`,
    startedAt: new Date().toISOString(),
    version: 'test',
    token: TOKEN,
  });
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await cleanup();
});

/** The bridge on in-memory stdio; `lines` are the parsed messages it wrote to stdout. */
function bridge() {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  let buffer = '';
  stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      raw.push(buffer.slice(0, i));
      lines.push(JSON.parse(buffer.slice(0, i)) as Record<string, unknown>);
      buffer = buffer.slice(i + 1);
    }
  });
  let err = '';
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = runStdioBridge({ home, stdin, stdout, stderr, startBroker: async () => undefined });
  const send = (m: unknown) => stdin.write(`${JSON.stringify(m)}\n`);
  const answer = async (id: unknown) => {
    await expect.poll(() => lines.find((l) => l.id === id), { timeout: 5_000 }).toBeTruthy();
    return lines.find((l) => l.id === id)!;
  };
  return { send, write: (text: string) => stdin.write(text), lines, raw, answer, stderr: () => err, end: () => (stdin.end(), exit) };
}

async function initialized(b: ReturnType<typeof bridge>) {
  b.send(INIT);
  await b.answer(1);
  b.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
}

describe('the stdio bridge as a byte pipe', () => {
  it('keeps requests in flight concurrently: a slow call does not hold up a fast one, and each carries the session', async () => {
    handler = (_req, res, m) => {
      const reply = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: m!.id, result: { name: (m!.params as { name: string }).name } }));
      };
      if ((m!.params as { name: string }).name === 'slow') setTimeout(reply, 400);
      else reply();
    };
    const b = bridge();
    await initialized(b);
    b.send({ jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: { name: 'slow' } });
    b.send({ jsonrpc: '2.0', id: 'fast', method: 'tools/call', params: { name: 'fast' } });
    await b.answer('slow');
    const order = b.lines.filter((l) => l.id === 'slow' || l.id === 'fast').map((l) => l.id);
    expect(order).toEqual(['fast', 'slow']);
    const calls = seen.filter((s) => s.message?.method === 'tools/call');
    // The negotiated version (not the one the IDE asked for) and the session go on every later request.
    for (const c of calls) expect(c.headers).toMatchObject({ 'mcp-session-id': 'session-1', 'mcp-protocol-version': '2025-06-18' });
    expect(await b.end()).toBe(0);
    // The session is ended on the way out.
    expect(seen.at(-1)).toMatchObject({ method: 'DELETE', headers: { 'mcp-session-id': 'session-1' } });
  });

  it('streams an SSE answer message by message, and forwards what the broker pushes on the standalone stream', async () => {
    let push: ((line: string) => void) | undefined;
    onGet = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': keep-alive\n\n');
      push = (line) => res.write(`id: 7\r\ndata: ${line}\r\n\r\n`);
    };
    handler = (_req, res, m) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`,
      );
      // A response split across writes, and data over two lines (one message: the bridge writes it as one line).
      const result = JSON.stringify({ id: m!.id, result: { content: [{ type: 'text', text: 'é✓ done' }] } });
      res.write('data: {"jsonrpc":');
      setTimeout(() => res.end(`"2.0",\ndata: ${result.slice(1)}\n\n`), 20);
    };
    const b = bridge();
    await initialized(b);
    await expect.poll(() => push, { timeout: 5_000 }).toBeDefined();
    push!(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }));
    await expect.poll(() => b.lines.some((l) => l.method === 'notifications/tools/list_changed'), { timeout: 5_000 }).toBe(true);
    b.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 1 } } });
    expect(await b.answer(2)).toMatchObject({ result: { content: [{ text: 'é✓ done' }] } });
    expect(b.lines.map((l) => l.method ?? l.id)).toEqual([1, 'notifications/tools/list_changed', 'notifications/progress', 2]);
    expect(await b.end()).toBe(0);
  });

  it('writes one line per message however the broker formats them (pretty JSON, a batch)', async () => {
    handler = (_req, res, m) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (m!.id === 2) res.end(JSON.stringify({ jsonrpc: '2.0', id: 2, result: { a: [1, 2] } }, null, 2));
      else
        res.end(
          JSON.stringify([
            { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } },
            { jsonrpc: '2.0', id: 3, result: {} },
          ]),
        );
    };
    const b = bridge();
    await initialized(b);
    b.send({ jsonrpc: '2.0', id: 2, method: 'ping' });
    expect(await b.answer(2)).toEqual({ jsonrpc: '2.0', id: 2, result: { a: [1, 2] } });
    b.send({ jsonrpc: '2.0', id: 3, method: 'ping' });
    await b.answer(3);
    expect(b.raw.slice(-2)).toEqual([
      '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}',
      '{"jsonrpc":"2.0","id":3,"result":{}}',
    ]);
    expect(await b.end()).toBe(0);
  });

  it('answers a request the broker could not answer: its JSON-RPC error, the status line, or a cut-off stream', async () => {
    handler = (_req, res, m) => {
      if (m!.id === 2)
        return void res
          .writeHead(403, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Origin not allowed' } }));
      if (m!.id === 3) return void res.writeHead(502, 'Bad Gateway', { 'content-type': 'text/plain' }).end('upstream down');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`,
      );
      setTimeout(() => res.destroy(), 20);
    };
    const b = bridge();
    await initialized(b);
    b.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    b.send({ jsonrpc: '2.0', id: 3, method: 'tools/list' });
    b.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'x' } });
    expect(await b.answer(2)).toEqual({ jsonrpc: '2.0', id: 2, error: { code: -32001, message: 'Origin not allowed' } });
    expect(await b.answer(3)).toEqual({
      jsonrpc: '2.0',
      id: 3,
      error: { code: -32000, message: 'Lanyard broker answered HTTP 502 Bad Gateway' },
    });
    expect(await b.answer(4)).toMatchObject({ id: 4, error: { message: 'Lanyard broker: the answer was cut off.' } });
    expect(await b.end()).toBe(0);
  });
});

/** JSON text nested `depth` objects deep: deeper than JSON.stringify can go (it recurses per level), so built as text. */
const deep = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

describe('the stdio bridge with deeply nested messages', () => {
  it('passes on a pretty-printed answer nested deeper than the stack, on one line, and stays up', async () => {
    handler = (_req, res, m) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{\n  "jsonrpc": "2.0",\n  "id": ${JSON.stringify(m!.id)},\n  "result": {\n    "deep": ${deep(50_000)}\n  }\n}\n`);
    };
    const b = bridge();
    await initialized(b);
    b.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x' } });
    const answer = (await b.answer(2)) as { result: { deep: { a: unknown } } };
    expect(typeof answer.result.deep.a).toBe('object');
    // Still up: the next request is answered too.
    b.send({ jsonrpc: '2.0', id: 3, method: 'ping' });
    await b.answer(3);
    expect(b.stderr()).not.toContain('Maximum call stack size exceeded');
    expect(await b.end()).toBe(0);
  });

  it('after a broker restart, replays the initialize the broker accepted, not a later (deeply nested) one it refused', async () => {
    handler = (req, res, m) => {
      // A restarted broker forgot the old session.
      if (req.headers['mcp-session-id'] !== session) return void res.writeHead(404, { 'content-type': 'application/json' }).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: m!.id, result: { tools: [] } }));
    };
    const b = bridge();
    await initialized(b);
    // An IDE (or anything on its stdin) initializes again, absurdly: the broker refuses it, the session stays.
    const again = `{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":${deep(50_000)},"clientInfo":{"name":"t","version":"1"}}}`;
    expect(b.write(`${again}\n`)).toBe(true);
    expect(await b.answer(2)).toMatchObject({ error: { message: 'Invalid Request: Server already initialized' } });
    session = 'session-2';
    b.send({ jsonrpc: '2.0', id: 3, method: 'tools/list' });
    expect(await b.answer(3)).toEqual({ jsonrpc: '2.0', id: 3, result: { tools: [] } });
    // The replay was the first initialize, under the bridge's own id, and the call went on the new session.
    const replays = seen.filter((s) => s.message?.method === 'initialize').slice(2);
    expect(replays.map((r) => r.message)).toEqual([{ ...INIT, id: 'lanyard-bridge-reinitialize-1' }]);
    expect(seen.filter((s) => s.message?.id === 3).map((s) => s.headers['mcp-session-id'])).toEqual(['session-1', 'session-2']);
    expect(b.stderr()).not.toContain('Maximum call stack size exceeded');
    expect(await b.end()).toBe(0);
  });
});

describe('SseReader', () => {
  it('joins data lines, skips comments and data-less events, keeps the last id, across any chunking and line ending', () => {
    const stream = ': hi\r\nid: 1\r\n\r\ndata: {"a":1}\r\n\r\nevent: message\ndata: {"b":\ndata: 2}\nid: 9\n\ndata:{"c":"é"}\n\n';
    for (const size of [1, 2, 3, 7, stream.length]) {
      const events: string[] = [];
      const reader = new SseReader((d) => events.push(d));
      for (let i = 0; i < stream.length; i += size) reader.push(stream.slice(i, i + size));
      expect(events).toEqual(['{"a":1}', '{"b":\n2}', '{"c":"é"}']);
      expect(reader.lastEventId).toBe('9');
    }
  });
});
