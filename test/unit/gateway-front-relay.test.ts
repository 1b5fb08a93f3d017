/**
 * The transparent relay (`/mcp/<id>`, docs/architecture.md "Gateway") against a scripted upstream: what is forwarded and what never is,
 * streaming both ways, disconnects, body replay on the token service's 401 retry, and error mapping.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { postChunked } from '../helpers/chunked-post';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LanyardError } from '../../electron/broker/errors';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay, upstreamUrl, type RelayServer, type RelayTokenSource } from '../../electron/broker/gateway/relay';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import type { FetchLike } from '../../electron/broker/util/http';
import { ErrorCodes } from '../../shared/errors';

/** A response body as the tests read it: a JSON-RPC error, or any JSON object. */
interface RpcBody {
  jsonrpc?: string;
  id?: unknown;
  error: { code: number; message: string; data: Record<string, unknown> };
  [key: string]: unknown;
}
const rpc = async (r: Response) => (await r.json()) as RpcBody;

interface UpstreamRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: () => Promise<string>) => void | Promise<void>;

const MAX = 32 * 1024;
let upstream: Server;
let upstreamOrigin = '';
let handler: Handler;
const seen: UpstreamRequest[] = [];
const closedResponses: string[] = [];
const gateways: Partial<Record<'node' | 'fetch', GatewayServer>> = {};
let auth: LocalAuth;
let tokenBehaviour: (base: FetchLike) => FetchLike;
const servers: RelayServer[] = [];

const UPSTREAM_TOKEN = 'upstream-access-token-for-alice';

/** Like TokenService.authorizedFetch: drops any Authorization and adds the server's token. */
const injectToken =
  (base: FetchLike): FetchLike =>
  (input, init) => {
    const headers = new Headers(init?.headers);
    headers.delete('authorization');
    headers.set('authorization', `Bearer ${UPSTREAM_TOKEN}`);
    return base(input, { ...init, headers });
  };

const tokens: RelayTokenSource = { authorizedFetch: (_id, base) => tokenBehaviour(base ?? fetch) };

function authed(extra: Record<string, string> = {}): Record<string, string> {
  return {
    Authorization: `Bearer ${auth.token}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    ...extra,
  };
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let cached: Promise<string> | undefined;
    const body = () =>
      (cached ??= new Promise<string>((resolve) => {
        let text = '';
        req.on('data', (d: Buffer) => (text += d.toString()));
        req.on('end', () => resolve(text));
      }));
    res.on('close', () => {
      if (!res.writableFinished) closedResponses.push(req.url ?? '');
    });
    void Promise.resolve(handler(req, res, body)).then(async () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: await body() });
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamOrigin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  // A port that was just free: nothing listens there (connection refused).
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const closedPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  servers.push(
    { id: 'todo', url: `${upstreamOrigin}/mcp` },
    { id: 'off', url: `${upstreamOrigin}/mcp`, enabled: false },
    { id: 'gone', url: `http://127.0.0.1:${closedPort}/mcp` },
  );
  auth = await LocalAuth.open(new MemorySecretStore());
  // The default upstream client (node:http) and an injected fetch (web streams) must behave the same.
  for (const mode of ['node', 'fetch'] as const) {
    gateways[mode] = await startGatewayServer({
      port: 0,
      localAuth: auth,
      aggregator: { handleRequest: async (_q, r) => void r.writeHead(501).end() },
      relay: createRelay({
        getServer: (id) => servers.find((s) => s.id === id),
        tokens,
        maxBodyBytes: MAX,
        ...(mode === 'fetch' ? { fetch } : {}),
      }),
      maxBodyBytes: MAX,
    });
  }
});

afterEach(() => {
  seen.length = 0;
  closedResponses.length = 0;
  tokenBehaviour = injectToken;
  handler = async (_req, res, body) => {
    await body();
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
  };
});

afterAll(async () => {
  for (const g of Object.values(gateways)) await g.close();
  await new Promise((r) => {
    upstream.close(r);
    upstream.closeAllConnections();
  });
});

tokenBehaviour = injectToken;
handler = async (_req, res, body) => {
  await body();
  res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
};

describe.each(['node', 'fetch'] as const)('relay with the %s upstream client', (mode) => {
  const gateway = () => gateways[mode]!;

  describe('what goes upstream', () => {
    it("forwards method, body, subpath, query and MCP headers; injects the server's token; never the IDE's credentials", async () => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const r = await fetch(`${gateway().url}/mcp/todo/sub/path?a=1&b=two`, {
        method: 'POST',
        headers: authed({
          'Mcp-Session-Id': 'session-abc',
          'MCP-Protocol-Version': '2025-11-25',
          'Mcp-Method': 'tools/list',
          'Last-Event-ID': 'ev-1',
          Cookie: 'ide=secret',
          Origin: `http://127.0.0.1:${gateway().port}`,
          'X-Custom': 'not-forwarded',
        }),
        body,
      });
      expect(r.status).toBe(200);
      const got = seen.at(-1)!;
      expect(got.method).toBe('POST');
      expect(got.url).toBe('/mcp/sub/path?a=1&b=two');
      expect(got.body).toBe(body);
      expect(got.headers).toMatchObject({
        authorization: `Bearer ${UPSTREAM_TOKEN}`,
        'mcp-session-id': 'session-abc',
        'mcp-protocol-version': '2025-11-25',
        'mcp-method': 'tools/list',
        'last-event-id': 'ev-1',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      });
      expect(got.headers.cookie).toBeUndefined();
      expect(got.headers.origin).toBeUndefined();
      expect(got.headers['x-custom']).toBeUndefined();
      expect(got.headers.host).toBe(new URL(upstreamOrigin).host);
      expect(JSON.stringify(got.headers)).not.toContain(auth.token);
    });

    it('GET and DELETE pass through; other methods are 405', async () => {
      await (await fetch(`${gateway().url}/mcp/todo`, { headers: authed({ 'Mcp-Session-Id': 's1' }) })).text();
      await (await fetch(`${gateway().url}/mcp/todo`, { method: 'DELETE', headers: authed({ 'Mcp-Session-Id': 's1' }) })).text();
      expect(seen.map((s) => s.method)).toEqual(['GET', 'DELETE']);
      const put = await fetch(`${gateway().url}/mcp/todo`, { method: 'PUT', headers: authed(), body: '{}' });
      expect(put.status).toBe(405);
      expect(put.headers.get('allow')).toBe('GET, POST, DELETE');
    });

    it('builds upstream URLs by appending the subpath and merging queries', () => {
      expect(upstreamUrl('https://x.example.com/mcp', { subpath: '', search: '' })).toBe('https://x.example.com/mcp');
      expect(upstreamUrl('https://x.example.com/mcp/', { subpath: '/a', search: '?q=1' })).toBe('https://x.example.com/mcp/a?q=1');
      expect(upstreamUrl('https://x.example.com/mcp?tenant=t', { subpath: '', search: '?q=1' })).toBe(
        'https://x.example.com/mcp?tenant=t&q=1',
      );
    });
  });

  describe('what comes back', () => {
    it('passes status and MCP headers through; drops cookies, browser state, WWW-Authenticate, hop-by-hop and CORS headers', async () => {
      handler = async (_req, res, body) => {
        await body();
        res.writeHead(202, {
          'Mcp-Session-Id': 'upstream-session-1',
          'Mcp-Protocol-Version': '2025-11-25',
          'X-Request-Id': 'req-7',
          'Retry-After': '3',
          'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/'],
          'Set-Cookie2': 'c=3',
          'Clear-Site-Data': '"cookies", "storage"',
          'Strict-Transport-Security': 'max-age=31536000',
          'Alt-Svc': 'h3=":443"',
          Refresh: '0; url=https://evil.example/',
          Location: 'https://evil.example/',
          Link: '<https://evil.example/x.js>; rel=preload; as=script',
          NEL: '{"report_to":"e","max_age":86400}',
          'Report-To': '{"group":"e","max_age":86400,"endpoints":[{"url":"https://evil.example/r"}]}',
          'Service-Worker-Allowed': '/',
          'WWW-Authenticate': 'Bearer resource_metadata="https://evil/prm"',
          'Access-Control-Allow-Origin': '*',
          'Keep-Alive': 'timeout=99',
          'X-Upstream': 'yes',
        });
        res.end();
      };
      const r = await fetch(`${gateway().url}/mcp/todo`, {
        method: 'POST',
        headers: authed(),
        body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      });
      expect(r.status).toBe(202);
      expect(r.headers.get('mcp-session-id')).toBe('upstream-session-1');
      expect(r.headers.get('mcp-protocol-version')).toBe('2025-11-25');
      expect(r.headers.get('x-request-id')).toBe('req-7');
      expect(r.headers.get('retry-after')).toBe('3');
      expect(r.headers.getSetCookie()).toEqual([]);
      for (const name of [
        'set-cookie2',
        'clear-site-data',
        'strict-transport-security',
        'alt-svc',
        'refresh',
        'location',
        'link',
        'nel',
        'report-to',
        'service-worker-allowed',
        'www-authenticate',
        'access-control-allow-origin',
        'x-upstream',
      ]) {
        expect(r.headers.get(name), name).toBeNull();
      }
      expect(r.headers.get('keep-alive')).not.toBe('timeout=99');
    });

    it('compressed responses arrive intact', async () => {
      handler = async (_req, res, body) => {
        await body();
        const zipped = gzipSync(Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"zipped":true}}'));
        res
          .writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': String(zipped.length) })
          .end(zipped);
      };
      const r = await fetch(`${gateway().url}/mcp/todo`, { method: 'POST', headers: authed(), body: '{}' });
      expect(await rpc(r)).toMatchObject({ result: { zipped: true } });
    });

    it('streams SSE chunk by chunk: the first event arrives while the upstream is still working', async () => {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      handler = async (_req, res, body) => {
        await body();
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('id: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n');
        await released;
        res.end('id: 2\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
      };
      const r = await fetch(`${gateway().url}/mcp/todo`, {
        method: 'POST',
        headers: authed(),
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}',
      });
      expect(r.headers.get('content-type')).toBe('text/event-stream');
      const reader = r.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain('notifications/progress');
      release();
      let rest = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(rest).toContain('"result"');
    });

    it('an IDE that goes away aborts the upstream request', async () => {
      handler = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(': open\n\n');
      };
      const controller = new AbortController();
      const r = await fetch(`${gateway().url}/mcp/todo`, { headers: authed({ 'Mcp-Session-Id': 's' }), signal: controller.signal });
      await r.body!.getReader().read();
      controller.abort();
      await expect.poll(() => closedResponses.length, { timeout: 2_000 }).toBe(1);
    });

    it('an IDE that leaves before the server answered aborts the upstream request at once', async () => {
      const arrived: string[] = [];
      handler = (req) => void arrived.push(req.url ?? ''); // accepts the call and never answers
      const controller = new AbortController();
      const pending = fetch(`${gateway().url}/mcp/todo`, {
        method: 'POST',
        headers: authed(),
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow' } }),
        signal: controller.signal,
      }).catch(() => undefined);
      await expect.poll(() => arrived.length, { timeout: 2_000 }).toBe(1);
      controller.abort();
      await pending;
      await expect.poll(() => closedResponses.length, { timeout: 2_000 }).toBe(1);
    });

    it('an upstream that dies mid-stream breaks the IDE stream (so it can resume), not a clean end', async () => {
      handler = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('id: 1\ndata: {}\n\n');
        setTimeout(() => res.destroy(), 50);
      };
      const r = await fetch(`${gateway().url}/mcp/todo`, { headers: authed({ 'Mcp-Session-Id': 's' }) });
      const text = await r.text().then(
        () => 'clean',
        () => 'broken',
      );
      expect(text).toBe('broken');
    });

    it('an upstream 404 (session forgotten) passes through unchanged so the IDE re-initializes', async () => {
      handler = async (_req, res, body) => {
        await body();
        res
          .writeHead(404, { 'Content-Type': 'application/json' })
          .end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
      };
      const r = await fetch(`${gateway().url}/mcp/todo`, { method: 'POST', headers: authed({ 'Mcp-Session-Id': 'old' }), body: '{}' });
      expect(r.status).toBe(404);
      expect((await rpc(r)).error.message).toBe('Session not found');
    });
  });

  describe('retries and errors', () => {
    it('replays the request body when the token service retries after a 401, even a body still streaming in', async () => {
      let attempts = 0;
      handler = async (_req, res, body) => {
        attempts++;
        if (attempts === 1) {
          // Answer before reading anything, as a server that checks the token first does.
          res.writeHead(401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' }).end();
          return;
        }
        const text = await body();
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ echoed: text }));
      };
      tokenBehaviour = (base) => async (input, init) => {
        const first = await injectToken(base)(input, init);
        if (first.status !== 401) return first;
        await first.body?.cancel();
        return injectToken(base)(input, init);
      };
      const parts = ['{"jsonrpc":"2.0",', '"id":9,', '"method":"tools/call"}'];
      const stream = new ReadableStream<Uint8Array>({
        async start(c) {
          for (const p of parts) {
            c.enqueue(new TextEncoder().encode(p));
            await new Promise((r) => setTimeout(r, 30));
          }
          c.close();
        },
      });
      const r = await fetch(`${gateway().url}/mcp/todo`, {
        method: 'POST',
        headers: authed(),
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expect(r.status).toBe(200);
      expect((await rpc(r)).echoed).toBe(parts.join(''));
      expect(attempts).toBe(2);
    });

    it('a 401 that survives the re-mint becomes a JSON-RPC error from Lanyard, without the upstream challenge', async () => {
      handler = (_req, res) =>
        void res.writeHead(401, { 'WWW-Authenticate': 'Bearer resource_metadata="https://x/prm"' }).end('{"error":"invalid_token"}');
      const r = await fetch(`${gateway().url}/mcp/todo`, { method: 'POST', headers: authed(), body: '{}' });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBeNull();
      const body = await rpc(r);
      expect(body.error.message).toMatch(/refused the access token Lanyard obtained/);
      expect(body.error.data).toEqual({ code: ErrorCodes.AS_GRANT_REJECTED, serverId: 'todo' });
    });

    it('token errors with no request to answer are 401 JSON-RPC errors carrying the message and the fix; transient ones are 503', async () => {
      tokenBehaviour = () => async () => {
        throw new LanyardError(
          ErrorCodes.NOT_SIGNED_IN,
          'You are not signed in to your identity provider.',
          'Click "Sign in" in the Lanyard tray.',
        );
      };
      const r = await fetch(`${gateway().url}/mcp/todo`, { method: 'POST', headers: authed(), body: '{}' });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBeNull();
      const body = await rpc(r);
      expect(body).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32001, data: { code: ErrorCodes.NOT_SIGNED_IN, serverId: 'todo' } },
      });
      expect(body.error.message).toBe('You are not signed in to your identity provider. Fix: Click "Sign in" in the Lanyard tray.');

      tokenBehaviour = () => async () => {
        throw new LanyardError(ErrorCodes.IDP_UNREACHABLE, 'The identity provider could not be reached.', 'Check your network.', {
          transient: true,
        });
      };
      const t = await fetch(`${gateway().url}/mcp/todo`, { method: 'POST', headers: authed(), body: '{}' });
      expect(t.status).toBe(503);
      expect(t.headers.get('retry-after')).toBe('5');

      // The network on the way (here an untrusted certificate at the IdP) is a gateway failure, not a credentials one.
      tokenBehaviour = () => async () => {
        throw new LanyardError(ErrorCodes.TLS_UNTRUSTED, 'The certificate presented for idp.corp is not trusted.', 'Add the CA.');
      };
      const tls = await fetch(`${gateway().url}/mcp/todo`, { method: 'POST', headers: authed(), body: '{}' });
      expect(tls.status).toBe(502);
      expect((await rpc(tls)).error.data).toMatchObject({ code: ErrorCodes.TLS_UNTRUSTED });
      expect(seen).toHaveLength(0);
    });

    it('token errors answer each request in a form SDK clients show: a tool error for tools/call, a JSON-RPC error otherwise', async () => {
      tokenBehaviour = () => async () => {
        throw new LanyardError(
          ErrorCodes.NOT_SIGNED_IN,
          'You are not signed in to your identity provider.',
          'Click "Sign in" in the Lanyard tray.',
        );
      };
      const call = await fetch(`${gateway().url}/mcp/todo`, {
        method: 'POST',
        headers: authed(),
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      expect(call.status).toBe(200);
      expect(await call.json()).toEqual({
        jsonrpc: '2.0',
        id: 7,
        result: {
          isError: true,
          content: [
            {
              type: 'text',
              text: 'You are not signed in to your identity provider.\nFix: Click "Sign in" in the Lanyard tray.\n(Lanyard error code: not_signed_in)',
            },
          ],
        },
      });
      const batch = await fetch(`${gateway().url}/mcp/todo`, {
        method: 'POST',
        headers: authed(),
        body: JSON.stringify([
          { jsonrpc: '2.0', id: 'a', method: 'initialize', params: {} },
          { jsonrpc: '2.0', method: 'notifications/initialized' },
        ]),
      });
      expect(batch.status).toBe(200);
      expect(await batch.json()).toEqual([
        {
          jsonrpc: '2.0',
          id: 'a',
          error: {
            code: -32603,
            message:
              'You are not signed in to your identity provider. Fix: Click "Sign in" in the Lanyard tray. (Lanyard error code: not_signed_in)',
            data: { code: ErrorCodes.NOT_SIGNED_IN, fix: 'Click "Sign in" in the Lanyard tray.', serverId: 'todo' },
          },
        },
      ]);
      expect(seen).toHaveLength(0);
    });

    it('a token error while an oversized body is still arriving is still a 413', async () => {
      tokenBehaviour = () => async () => {
        throw new LanyardError(ErrorCodes.NOT_SIGNED_IN, 'You are not signed in.', 'Sign in.');
      };
      const s = await postChunked(`${gateway().url}/mcp/todo`, authed(), [new Uint8Array(MAX / 2), new Uint8Array(MAX / 2 + 1)], {
        gapMs: 20,
        end: false,
      });
      expect(s.status).toBe(413);
      expect(seen).toHaveLength(0);
    });

    it('unknown and disabled servers are 404 JSON-RPC errors naming the id', async () => {
      for (const id of ['nope', 'off']) {
        const r = await fetch(`${gateway().url}/mcp/${id}`, { method: 'POST', headers: authed(), body: '{}' });
        expect(r.status).toBe(404);
        const body = await rpc(r);
        expect(body.error.message).toContain(`"${id}"`);
        expect(body.error.message).toMatch(/Fix:/);
      }
      expect(seen).toHaveLength(0);
    });

    it('an unreachable upstream is a 502 that says so', async () => {
      const r = await fetch(`${gateway().url}/mcp/gone`, { method: 'POST', headers: authed(), body: '{}' });
      expect(r.status).toBe(502);
      const body = await rpc(r);
      expect(body.error.message).toMatch(/"gone" .* could not be reached: ECONNREFUSED/);
      expect(body.error.data.code).toBe(ErrorCodes.SERVER_UNREACHABLE);
      expect(body.error.data).toMatchObject({ serverId: 'gone', fix: expect.stringMatching(/lanyard doctor/) });
    });

    it('oversized bodies are refused with 413 before or while they are forwarded', async () => {
      const r = await fetch(`${gateway().url}/mcp/todo`, { method: 'POST', headers: authed(), body: 'x'.repeat(MAX + 1) });
      expect(r.status).toBe(413);
      handler = async (_req, res, body) => {
        await body();
        res.writeHead(200).end();
      };
      // Chunked (no Content-Length): the limit is crossed while the body is already on its way upstream; the IDE
      // gets the 413 itself (not a reset), and the upstream request is cut.
      const before = seen.length;
      const s = await postChunked(`${gateway().url}/mcp/todo`, authed(), [new Uint8Array(MAX / 2), new Uint8Array(MAX / 2 + 1)], {
        gapMs: 20,
        end: false,
      });
      expect(s.status).toBe(413);
      expect(JSON.parse(s.body)).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/too large/) } });
      expect(seen.slice(before).every((r) => r.body.length <= MAX)).toBe(true);
      expect((await fetch(`${gateway().url}/healthz`)).status).toBe(200);
    });
  });
});

/**
 * The relay's own rule, without the front door (which strips the IDE's Authorization before any handler): called
 * directly with the IDE's credentials, it hands the token service none of them, so the upstream sees only the
 * brokered token.
 */
describe.each(['node', 'fetch'] as const)('the relay on its own, with the %s upstream client', (mode) => {
  let direct: Server;
  let directUrl = '';

  beforeAll(async () => {
    const relay = createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens, ...(mode === 'fetch' ? { fetch } : {}) });
    direct = createServer((req, res) => void relay.handleRequest(req, res, { serverId: 'todo', subpath: '', search: '' }));
    await new Promise<void>((r) => direct.listen(0, '127.0.0.1', r));
    directUrl = `http://127.0.0.1:${(direct.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await new Promise((r) => {
      direct.close(r);
      direct.closeAllConnections();
    });
  });

  it('a server that never answers gets a 504 once the response deadline passes, and its request is closed', async () => {
    const relay = createRelay({
      getServer: (id) => servers.find((s) => s.id === id),
      tokens,
      responseTimeoutMs: 150,
      ...(mode === 'fetch' ? { fetch } : {}),
    });
    const bounded = createServer((req, res) => void relay.handleRequest(req, res, { serverId: 'todo', subpath: '', search: '' }));
    await new Promise<void>((r) => bounded.listen(0, '127.0.0.1', r));
    try {
      handler = () => undefined; // accepts the call and never answers
      const r = await fetch(`http://127.0.0.1:${(bounded.address() as AddressInfo).port}/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow' } }),
      });
      expect(r.status).toBe(504);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/did not answer within 150 ms/);
      await expect.poll(() => closedResponses.length, { timeout: 2_000 }).toBe(1);
    } finally {
      await new Promise((r) => {
        bounded.close(r);
        bounded.closeAllConnections();
      });
    }
  });

  it("never hands the IDE's Authorization or Cookie to the token service or the upstream", async () => {
    const handed: Array<{ authorization: string | null; cookie: string | null }> = [];
    // Adds the brokered token without removing anything, so whatever the relay passed along would reach the upstream.
    tokenBehaviour = (base) => (input, init) => {
      const headers = new Headers(init?.headers);
      handed.push({ authorization: headers.get('authorization'), cookie: headers.get('cookie') });
      headers.append('authorization', `Bearer ${UPSTREAM_TOKEN}`);
      return base(input, { ...init, headers });
    };
    for (const method of ['POST', 'GET'] as const) {
      const r = await fetch(directUrl, {
        method,
        headers: { Authorization: 'Bearer the-ide-local-token', Cookie: 'lanyard_dashboard=ide-cookie', Accept: 'application/json' },
        ...(method === 'POST' ? { body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) } : {}),
      });
      await r.text();
    }
    expect(handed).toEqual([
      { authorization: null, cookie: null },
      { authorization: null, cookie: null },
    ]);
    expect(seen).toHaveLength(2);
    for (const got of seen) {
      expect(got.headers.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`);
      expect(got.headers.cookie).toBeUndefined();
      expect(JSON.stringify(got.headers)).not.toContain('the-ide-local-token');
    }
  });
});
