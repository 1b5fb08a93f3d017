/**
 * The gateway's HTTP front door (docs/architecture.md "Gateway"): routing, body limits, malformed JSON, wrong methods, the guard on
 * every route, the IDE's Authorization header stripped before any handler, and no crash on hostile input.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { postChunked } from '../helpers/chunked-post';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanyardError } from '../../electron/broker/errors';
import { matchRoute, startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import type { Relay, RelayTarget } from '../../electron/broker/gateway/relay';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { ErrorCodes } from '../../shared/errors';

/** A response body as the tests read it: a JSON-RPC error, or any JSON object. */
interface RpcBody {
  jsonrpc?: string;
  id?: unknown;
  error: { code: number; message: string; data: Record<string, unknown> };
  [key: string]: unknown;
}
const rpc = async (r: Response) => (await r.json()) as RpcBody;

interface Seen {
  method: string | undefined;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  parsedBody?: unknown;
  target?: RelayTarget;
}

const MAX = 64 * 1024;
let gateway: GatewayServer;
let auth: LocalAuth;
const aggregatorCalls: Seen[] = [];
const relayCalls: Seen[] = [];
const customCalls: Seen[] = [];

const aggregator = {
  async handleRequest(req: IncomingMessage, res: ServerResponse, parsedBody?: unknown) {
    aggregatorCalls.push({ method: req.method, headers: req.headers, rawHeaders: [...req.rawHeaders], parsedBody });
    if ((parsedBody as { method?: string } | undefined)?.method === 'boom') throw new Error('handler exploded');
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }));
  },
};
const relay: Relay = {
  async handleRequest(req, res, target) {
    req.resume();
    relayCalls.push({ method: req.method, headers: req.headers, rawHeaders: [...req.rawHeaders], target });
    res.writeHead(200).end('relayed');
  },
};

function url(path: string): string {
  return `${gateway.url}${path}`;
}

function authed(extra: Record<string, string> = {}): Record<string, string> {
  return {
    Authorization: `Bearer ${auth.token}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    ...extra,
  };
}

/** Sends raw bytes and resolves with whatever the server answered before closing (or after a pause). */
function raw(bytes: string | Buffer, waitMs = 300): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(gateway.port, '127.0.0.1');
    let out = '';
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('error', () => resolve(out));
    socket.on('close', () => resolve(out));
    socket.write(bytes);
    setTimeout(() => socket.destroy(), waitMs);
  });
}

beforeAll(async () => {
  auth = await LocalAuth.open(new MemorySecretStore());
  gateway = await startGatewayServer({
    port: 0,
    localAuth: auth,
    aggregator,
    relay,
    maxBodyBytes: MAX,
    routes: [
      {
        prefix: '/api',
        auth: 'token',
        handler: (req, res) => {
          customCalls.push({ method: req.method, headers: req.headers, rawHeaders: [...req.rawHeaders] });
          res.writeHead(200).end('api');
        },
      },
      { prefix: '/', auth: 'session-or-token', handler: (_req, res) => void res.writeHead(200).end('dashboard') },
    ],
  });
});

afterAll(async () => {
  await gateway?.close();
});

describe('routing', () => {
  it('splits paths into endpoints', () => {
    expect(matchRoute('/healthz')).toEqual({ kind: 'health' });
    expect(matchRoute('/mcp')).toEqual({ kind: 'aggregate' });
    expect(matchRoute('/mcp/')).toEqual({ kind: 'aggregate' });
    expect(matchRoute('/mcp/todo')).toEqual({ kind: 'relay', serverId: 'todo', subpath: '' });
    expect(matchRoute('/mcp/todo/')).toEqual({ kind: 'relay', serverId: 'todo', subpath: '' });
    expect(matchRoute('/mcp/todo/sse/x')).toEqual({ kind: 'relay', serverId: 'todo', subpath: '/sse/x' });
    expect(matchRoute('/mcp/Bad_Id')).toEqual({ kind: 'not-found' });
    expect(matchRoute('/mcp/%2e%2e')).toEqual({ kind: 'not-found' });
    expect(matchRoute('/nothing')).toEqual({ kind: 'not-found' });
    const routes = [
      { prefix: '/', auth: 'none' as const, handler: () => undefined },
      { prefix: '/api', auth: 'token' as const, handler: () => undefined },
    ];
    expect(matchRoute('/api/x', routes)).toMatchObject({ kind: 'custom', route: { prefix: '/api' } });
    expect(matchRoute('/apix', routes)).toMatchObject({ kind: 'custom', route: { prefix: '/' } });
  });

  it('/healthz answers {ok:true} without a token, and nothing else', async () => {
    const r = await fetch(url('/healthz'));
    expect(r.status).toBe(200);
    expect(await rpc(r)).toEqual({ ok: true });
    expect((await fetch(url('/healthz'), { method: 'POST' })).status).toBe(405);
  });

  it('/mcp goes to the aggregator with the pre-parsed body; /mcp/<id>/… to the relay with subpath and query', async () => {
    const body = { jsonrpc: '2.0', id: 1, method: 'ping' };
    const r = await fetch(url('/mcp'), { method: 'POST', headers: authed(), body: JSON.stringify(body) });
    expect(r.status).toBe(200);
    expect(aggregatorCalls.at(-1)?.parsedBody).toEqual(body);
    await (await fetch(url('/mcp/todo/deep/path?x=1&y=2'), { method: 'POST', headers: authed(), body: '{}' })).text();
    expect(relayCalls.at(-1)?.target).toEqual({ serverId: 'todo', subpath: '/deep/path', search: '?x=1&y=2' });
  });

  it('GET and DELETE reach the aggregator without a body; other methods get 405 with Allow', async () => {
    await (await fetch(url('/mcp'), { headers: authed() })).text();
    expect(aggregatorCalls.at(-1)?.method).toBe('GET');
    expect(aggregatorCalls.at(-1)?.parsedBody).toBeUndefined();
    for (const method of ['PUT', 'PATCH']) {
      const r = await fetch(url('/mcp'), { method, headers: authed(), body: '{}' });
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toBe('GET, POST, DELETE');
      expect((await rpc(r)).error.code).toBe(-32000);
    }
  });

  it('unknown paths are 404 with a JSON-RPC error that says where MCP is', async () => {
    const noRoutes = await startGatewayServer({ port: 0, localAuth: auth, aggregator, relay });
    try {
      const r = await fetch(`${noRoutes.url}/v1/whatever`, { headers: authed() });
      expect(r.status).toBe(404);
      expect((await rpc(r)).error.message).toContain('/mcp/<server-id>');
    } finally {
      await noRoutes.close();
    }
  });

  it('extra routes get their own auth level (token, or session-or-token for the dashboard)', async () => {
    expect((await fetch(url('/api/status'))).status).toBe(401);
    expect(await (await fetch(url('/api/status'), { headers: authed() })).text()).toBe('api');
    expect((await fetch(url('/index.html'))).status).toBe(401);
    expect((await fetch(url('/index.html'), { headers: { Cookie: `lanyard_session=${auth.token}` } })).status).toBe(401);
    expect(await (await fetch(url('/index.html'), { headers: authed() })).text()).toBe('dashboard');
  });
});

describe('the guard on every request', () => {
  it('refuses a missing or wrong token with 401 + WWW-Authenticate and a JSON-RPC error body, before any handler', async () => {
    const before = aggregatorCalls.length + relayCalls.length;
    for (const headers of [{}, { Authorization: 'Bearer nope' }] as Array<Record<string, string>>) {
      for (const path of ['/mcp', '/mcp/todo']) {
        const r = await fetch(url(path), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: '{}' });
        expect(r.status).toBe(401);
        expect(r.headers.get('www-authenticate')).toBe('Bearer realm="lanyard"');
        const body = await rpc(r);
        expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32001, data: { code: ErrorCodes.LOCAL_AUTH_FAILED } } });
        expect(body.error.message).toMatch(/Missing or wrong Lanyard local token/);
      }
    }
    expect(aggregatorCalls.length + relayCalls.length).toBe(before);
  });

  it('refuses a foreign Host (421) and a foreign Origin (403)', async () => {
    const rebinding = await raw(
      `POST /mcp HTTP/1.1\r\nHost: evil.example.com:${gateway.port}\r\nAuthorization: Bearer ${auth.token}\r\nContent-Length: 2\r\n\r\n{}`,
    );
    expect(rebinding).toMatch(/^HTTP\/1\.1 421/);
    const r = await fetch(url('/mcp'), { method: 'POST', headers: authed({ Origin: 'http://evil.example.com' }), body: '{}' });
    expect(r.status).toBe(403);
  });

  it("strips the IDE's Authorization header (parsed and raw) before any handler sees the request", async () => {
    await (await fetch(url('/mcp'), { method: 'POST', headers: authed(), body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })).text();
    await (await fetch(url('/mcp/todo'), { method: 'POST', headers: authed(), body: '{}' })).text();
    await (await fetch(url('/api/x'), { headers: authed() })).text();
    for (const seen of [aggregatorCalls.at(-1)!, relayCalls.at(-1)!, customCalls.at(-1)!]) {
      expect(seen.headers.authorization).toBeUndefined();
      expect(seen.rawHeaders.map((h) => h.toLowerCase())).not.toContain('authorization');
      expect(seen.rawHeaders.join('\n')).not.toContain(auth.token);
    }
  });

  it('answers CORS preflights only for allowed origins, and tags their responses', async () => {
    const allowed = 'https://app.example.com';
    const cors = await LocalAuth.open(new MemorySecretStore(), { allowedOrigins: [allowed] });
    const g = await startGatewayServer({ port: 0, localAuth: cors, aggregator, relay });
    try {
      const pre = await fetch(`${g.url}/mcp`, { method: 'OPTIONS', headers: { Origin: allowed, 'Access-Control-Request-Method': 'POST' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe(allowed);
      expect(pre.headers.get('access-control-allow-headers')).toContain('Mcp-Session-Id');
      const denied = await fetch(`${g.url}/mcp`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://other.example.com', 'Access-Control-Request-Method': 'POST' },
      });
      expect(denied.status).toBe(403);
      const call = await fetch(`${g.url}/mcp`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${cors.token}`, Origin: allowed, 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect(call.headers.get('access-control-allow-origin')).toBe(allowed);
      expect(call.headers.get('access-control-expose-headers')).toContain('Mcp-Session-Id');
    } finally {
      await g.close();
    }
  });
});

describe('bad input', () => {
  it('oversized bodies get 413 with a JSON-RPC error, by Content-Length and while streaming', async () => {
    const big = 'x'.repeat(MAX + 1);
    const r = await fetch(url('/mcp'), { method: 'POST', headers: authed(), body: JSON.stringify({ big }) });
    expect(r.status).toBe(413);
    expect((await rpc(r)).error.code).toBe(-32600);
    // Chunked (no Content-Length): counted while it arrives, and the client gets the 413 itself, not a reset.
    const before = aggregatorCalls.length;
    const chunked = await postChunked(url('/mcp'), authed(), [Buffer.alloc(MAX / 2, 'x'), Buffer.alloc(MAX / 2 + 1, 'x')], { end: false });
    expect(chunked.status).toBe(413);
    expect(chunked.headers.connection).toBe('close');
    expect(JSON.parse(chunked.body)).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/too large/) } });
    expect(aggregatorCalls).toHaveLength(before);
    expect((await fetch(url('/healthz'))).status).toBe(200);
  });

  it('malformed JSON gets HTTP 400 with JSON-RPC parse error -32700', async () => {
    for (const body of ['{', 'not json', '', '{"jsonrpc":"2.0",', '\u0000\u0001']) {
      const r = await fetch(url('/mcp'), { method: 'POST', headers: authed(), body });
      expect(r.status).toBe(400);
      expect(await rpc(r)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    }
  });

  it('a handler that throws costs that request a 500, nothing else', async () => {
    const r = await fetch(url('/mcp'), {
      method: 'POST',
      headers: authed(),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'boom' }),
    });
    expect(r.status).toBe(500);
    expect((await rpc(r)).error.code).toBe(-32603);
    expect((await fetch(url('/healthz'))).status).toBe(200);
  });

  it('malformed HTTP is answered by the clientError handler, not a crash', async () => {
    expect(await raw('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gateway.port}\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431/,
    );
    expect(await raw(Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]))).toMatch(/^HTTP\/1\.1 400|^$/);
    expect((await fetch(url('/healthz'))).status).toBe(200);
  });

  it('survives hundreds of random, truncated and hostile bodies and requests', async () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const valid = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } });
    const bodies: string[] = [];
    for (let i = 0; i < 300; i++) {
      const kind = i % 6;
      if (kind === 0) bodies.push(valid.slice(0, Math.floor(rand() * valid.length)));
      else if (kind === 1)
        bodies.push(Array.from({ length: Math.floor(rand() * 200) }, () => String.fromCharCode(Math.floor(rand() * 0xffff))).join(''));
      else if (kind === 2) bodies.push('['.repeat(Math.floor(rand() * 5000)));
      else if (kind === 3)
        bodies.push(
          JSON.stringify({ jsonrpc: '2.0', id: { nested: [rand()] }, method: 42, params: 'x'.repeat(Math.floor(rand() * 1000)) }),
        );
      else if (kind === 4) bodies.push(JSON.stringify([valid, null, 1, 'x']));
      else bodies.push(Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256))).toString('latin1'));
    }
    const statuses = await Promise.all(
      bodies.map(async (body, i) => {
        const path = ['/mcp', '/mcp/todo', '/mcp/x/y', '/healthz', '/nope'][i % 5]!;
        const r = await fetch(url(path), { method: i % 7 === 0 ? 'PUT' : 'POST', headers: authed(), body }).catch(() => undefined);
        await r?.arrayBuffer().catch(() => undefined);
        return r?.status;
      }),
    );
    expect(statuses.every((s) => s !== undefined && s < 600)).toBe(true);
    expect(statuses.filter((s) => s === 500)).toEqual([]);
    // Raw truncated requests: a request line and half the headers, then silence or a close.
    const truncated = [
      'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n',
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gateway.port}\r\nContent-Length: 100\r\nAuthorization: Bearer ${auth.token}\r\n\r\n{"jsonrpc"`,
      'GET / HTTP/9.9\r\n\r\n',
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gateway.port}\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ${auth.token}\r\n\r\nZZZ\r\n`,
    ];
    await Promise.all(truncated.map((t) => raw(t, 100)));
    expect((await fetch(url('/healthz'))).status).toBe(200);
    const ok = await fetch(url('/mcp'), { method: 'POST', headers: authed(), body: valid });
    expect(ok.status).toBe(200);
  });
});

describe('listening', () => {
  it('binds 127.0.0.1 only and reports its URLs', () => {
    expect(gateway.url).toBe(`http://127.0.0.1:${gateway.port}`);
    expect(gateway.mcpUrl).toBe(`http://127.0.0.1:${gateway.port}/mcp`);
  });

  it('a taken port is PORT_IN_USE with a fix that names gateway.port', async () => {
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const port = (squatter.address() as { port: number }).port;
    try {
      const error = await startGatewayServer({ port, localAuth: auth, aggregator, relay }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LanyardError);
      expect((error as LanyardError).code).toBe(ErrorCodes.PORT_IN_USE);
      expect((error as LanyardError).fix).toMatch(/another Lanyard|gateway\.port/i);
      expect((error as LanyardError).fix).toContain('gateway.port');
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it('close() ends open streams instead of waiting for them', async () => {
    const hanging = await startGatewayServer({
      port: 0,
      localAuth: auth,
      relay,
      aggregator: {
        handleRequest: async (_req, res) => void res.writeHead(200, { 'Content-Type': 'text/event-stream' }).write(': open\n\n'),
      },
    });
    const r = await fetch(`${hanging.url}/mcp`, { headers: authed() });
    expect(r.status).toBe(200);
    const started = Date.now();
    await hanging.close();
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
