/**
 * The raw catalog listing's structural check (gateway/upstream/raw-list.ts): a list that IDEs can use passes; anything
 * that would fail the SDK client's result check is declined, so the SDK path lists it and reports it as before.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeStreamFetch } from '../../electron/broker/gateway/relay-transport';
import { rawList, wellFormed } from '../../electron/broker/gateway/upstream/raw-list';
import type { UpstreamLane } from '../../electron/broker/gateway/upstream/session';

const tool = {
  name: 'echo',
  description: 'Echo',
  inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

describe('raw list check', () => {
  it('passes well-formed lists of each kind, with cursors and caching hints', () => {
    expect(wellFormed('tools/list', { tools: [tool], nextCursor: 'n', ttlMs: 1000, cacheScope: 'public' })).toBe(true);
    expect(wellFormed('prompts/list', { prompts: [{ name: 'p', arguments: [{ name: 'a', required: true }] }] })).toBe(true);
    expect(wellFormed('resources/list', { resources: [{ name: 'r', uri: 'file:///r', mimeType: 'text/plain' }] })).toBe(true);
    expect(wellFormed('resources/templates/list', { resourceTemplates: [{ name: 't', uriTemplate: 'file:///{x}' }] })).toBe(true);
  });

  it('declines what the SDK would refuse: a missing or mistyped member, a list that is not an array', () => {
    expect(wellFormed('tools/list', { tools: [{ name: 'x' }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, inputSchema: { type: 'string' } }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, name: 42 }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, description: ['no'] }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, inputSchema: { type: 'object', required: 'text' } }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [tool, null] })).toBe(false);
    expect(wellFormed('tools/list', { tools: {} })).toBe(false);
    expect(wellFormed('tools/list', { tools: [tool], nextCursor: 7 })).toBe(false);
    expect(wellFormed('prompts/list', { prompts: [{ name: 'p', arguments: [{}] }] })).toBe(false);
    expect(wellFormed('resources/list', { resources: [{ name: 'r' }] })).toBe(false);
    expect(wellFormed('resources/templates/list', { resourceTemplates: [{ name: 't', uri: 'file:///t' }] })).toBe(false);
    expect(wellFormed('completion/complete', { tools: [] })).toBe(false);
  });
});

describe('raw list on the wire', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  /** A server answering each POST on an SSE stream it then keeps open (as some servers do), after a log message. */
  async function lingeringServer(): Promise<string> {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const { id } = JSON.parse(body) as { id: string };
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } })}\n\n`,
        );
        res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { tools: [tool] } })}\n\n`);
        // ...and never ends the stream.
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/mcp`;
  }

  it('answers with the list even when the server keeps the stream open; messages before it go to the session', async () => {
    const url = await lingeringServer();
    const injected: unknown[] = [];
    let held = 0;
    const lane: UpstreamLane = {
      url,
      fetch: nodeStreamFetch,
      sessionId: 's-1',
      protocolVersion: '2025-11-25',
      inject: (m) => injected.push(m),
      notify: async () => undefined,
      hold: () => {
        held++;
        return () => held--;
      },
      succeeded: () => undefined,
    };
    // A list budget far longer than the test's own: the answer must not wait for it.
    const result = await rawList(lane, 'tools/list', 120_000);
    expect(result).toEqual({ tools: [tool] });
    expect(injected).toEqual([{ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } }]);
    expect(held).toBe(0);
  });
});
