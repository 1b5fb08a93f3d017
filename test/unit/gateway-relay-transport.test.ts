/**
 * nodeFetch's answers (electron/broker/gateway/relay-transport.ts): a body-less answer whose Node stream the relay
 * pipes reads like the Response it replaces (status, ok, and headers as Headers would give them).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeBodyOf, nodeStreamFetch } from '../../electron/broker/gateway/relay-transport';

let server: Server;
let url = '';
const RAW = [
  'Content-Type',
  'text/event-stream',
  'Mcp-Session-Id',
  'abc',
  'X-Request-Id',
  'one',
  'x-request-id',
  'two',
  'Set-Cookie',
  'a=1',
  'Set-Cookie',
  'b=2',
  'Cache-Control',
  'no-store',
];

beforeAll(async () => {
  server = createServer((req, res) => {
    const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? '200');
    res.writeHead(status, RAW);
    res.end('data: hello\n\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
});

afterAll(async () => {
  await new Promise((r) => {
    server.close(r);
    server.closeAllConnections();
  });
});

describe('nodeFetch', () => {
  it('answers a 2xx with status, ok and headers as a Response built from the same raw headers, and its body as a Node stream', async () => {
    const response = await nodeStreamFetch(url, { method: 'POST', body: '{}' });
    const body = nodeBodyOf(response);
    expect(body).toBeDefined();
    // What the answer was before: a Response with a Headers built from the raw headers as they came (Node adds Date,
    // Connection, Keep-Alive and Transfer-Encoding to ours).
    const raw = body!.rawHeaders;
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
    const expected = new Response(null, { status: 200, headers: pairs });
    expect(response.status).toBe(200);
    expect(response.ok).toBe(true);
    expect(response.body).toBeNull();
    expect([...response.headers]).toEqual([...expected.headers]);
    for (const name of ['content-type', 'MCP-SESSION-ID', 'x-request-id', 'set-cookie', 'absent'])
      expect([response.headers.get(name), response.headers.has(name)]).toEqual([expected.headers.get(name), expected.headers.has(name)]);
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    const seen: string[] = [];
    response.headers.forEach((value, name) => seen.push(`${name}=${value}`));
    expect(seen).toEqual([...expected.headers].map(([n, v]) => `${n}=${v}`));
    expect(await response.text()).toBe('');
    let text = '';
    for await (const chunk of body!) text += String(chunk);
    expect(text).toBe('data: hello\n\n');
  });

  it('answers a 401 or 403 with a real Response whose web body can be read or cancelled', async () => {
    for (const status of [401, 403]) {
      const response = await nodeStreamFetch(`${url}?status=${status}`, { method: 'POST', body: '{}' });
      expect(response).toBeInstanceOf(Response);
      expect(response.status).toBe(status);
      expect(response.ok).toBe(false);
      expect(nodeBodyOf(response)).toBeUndefined();
      expect(response.headers.get('x-request-id')).toBe('one, two');
      expect(await response.text()).toBe('data: hello\n\n');
    }
  });
});
