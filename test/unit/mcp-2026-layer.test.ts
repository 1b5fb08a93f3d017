/**
 * Lanyard's 2026-07-28 serving layer (electron/broker/gateway/mcp-2026) against a scripted upstream: merged caching
 * hints, a 2026-07-28 server's own `input_required` rounds passed through with their keys and the server's state sealed
 * inside Lanyard's, bound to that server, and the round cap. The sandbox-backed end-to-end runs are in
 * test/integration/gateway-two-eras.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AggregatorCore } from '../../electron/broker/gateway/aggregate/core';
import { mergeCacheHints } from '../../electron/broker/gateway/mcp-2026/cache-hints';
import { ModernEndpoint } from '../../electron/broker/gateway/mcp-2026/modern-endpoint';
import { silentLogger } from '../../electron/broker/util/log';
import { openCallGuard } from '../../electron/broker/governance/call-guard';

describe('mergeCacheHints', () => {
  const fresh = (ttlMs: number, scope: 'public' | 'private', now = 1_000) => ({
    freshness: { tools: { ttlMs, scope, expiresAt: now + ttlMs } },
  });
  it('takes the smallest remaining lifetime, and private when any part is private', () => {
    expect(mergeCacheHints([fresh(60_000, 'public'), fresh(30_000, 'public')], 'tools', 1_000)).toEqual({
      ttlMs: 30_000,
      cacheScope: 'public',
    });
    expect(mergeCacheHints([fresh(60_000, 'public'), fresh(90_000, 'private')], 'tools', 1_000)).toEqual({
      ttlMs: 60_000,
      cacheScope: 'private',
    });
    // Ten seconds after the lists came, ten seconds less.
    expect(mergeCacheHints([fresh(60_000, 'public')], 'tools', 11_000)).toEqual({ ttlMs: 50_000, cacheScope: 'public' });
  });
  it('a part without a hint (a 2025-11-25 server, an unloaded catalog) makes the list uncacheable', () => {
    expect(mergeCacheHints([fresh(60_000, 'public'), {}], 'tools', 1_000)).toEqual({ ttlMs: 0, cacheScope: 'private' });
    expect(mergeCacheHints([fresh(60_000, 'public'), undefined], 'tools', 1_000)).toEqual({ ttlMs: 0, cacheScope: 'private' });
    expect(mergeCacheHints([], 'tools', 1_000)).toEqual({ ttlMs: 0, cacheScope: 'private' });
  });
});

describe('2026-07-28 rounds of a 2026-07-28 upstream', () => {
  let http: Server;
  let url: string;
  let endpoint: ModernEndpoint;
  /** What the scripted upstream received: server, method, params. */
  const calls: Array<{ serverId: string; params: Record<string, unknown> }> = [];

  const envelope = (name = 'IDE A') => ({
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name, version: '1' },
    'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
  });

  async function call(params: Record<string, unknown>, id = 1) {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28',
        'Mcp-Method': 'tools/call',
        'Mcp-Name': String(params.name),
      },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params }),
    });
    return (await response.json()) as {
      result?: {
        resultType?: string;
        inputRequests?: Record<string, unknown>;
        requestState?: string;
        content?: Array<{ text: string }>;
        isError?: boolean;
      };
      error?: { code: number; message: string };
    };
  }

  beforeAll(async () => {
    const core = {
      log: silentLogger,
      now: () => Date.now(),
      version: '0.0.0-test',
      separator: '__',
      canServe: () => true,
      signedIn: () => true,
      signInHint: () => '',
      builtinTool: () => undefined,
      activity: () => undefined,
      knownName: () => undefined,
      // Plain /mcp: the default profile, which leaves lists and names as they are.
      profileView: () => ({ id: 'default', active: () => false, shape: (list: unknown) => list, route: async () => undefined }),
      guard: openCallGuard,
      resolveName: async (_kind: string, exposed: string) => {
        const [serverId, originalName] = exposed.split('__');
        return serverId && originalName ? { serverId, originalName } : undefined;
      },
      pool: {
        serverIds: () => ['alpha', 'beta'],
        catalog: () => undefined,
        attach: () => ({
          close: async () => undefined,
          request: async (serverId: string, _method: string, params: Record<string, unknown>) => {
            calls.push({ serverId, params });
            // `ask` asks once; `nag` never stops asking.
            if (params.name === 'nag' || params.requestState === undefined)
              return {
                resultType: 'input_required',
                inputRequests: {
                  user_name: {
                    method: 'elicitation/create',
                    params: { message: 'Name?', requestedSchema: { type: 'object', properties: {} } },
                  },
                },
                requestState: `upstream-state-of-${serverId}`,
              };
            const answer = (params.inputResponses as { user_name?: { content?: { name?: string } } } | undefined)?.user_name?.content?.name;
            return { content: [{ type: 'text', text: `${serverId} greets ${answer} (${String(params.requestState)})` }] };
          },
        }),
      },
    } as unknown as AggregatorCore;
    endpoint = new ModernEndpoint(core);
    http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        void endpoint.handle(req, res, body);
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  });

  afterAll(async () => {
    await endpoint.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  it("relays the server's questions with its own keys, and its state only back to it", async () => {
    const first = await call({ name: 'alpha__ask', arguments: {}, _meta: envelope() });
    expect(first.result?.resultType).toBe('input_required');
    expect(Object.keys(first.result?.inputRequests ?? {})).toEqual(['user_name']);
    const state = first.result!.requestState!;
    expect(state).not.toBe('upstream-state-of-alpha');

    // The same state on another server's tool is refused, and nothing reaches that server.
    const before = calls.length;
    const foreign = await call({ name: 'beta__ask', arguments: {}, requestState: state, inputResponses: {}, _meta: envelope() }, 2);
    expect(foreign.error).toMatchObject({ code: -32602, message: 'Invalid or expired requestState' });
    expect(calls.length).toBe(before);

    const done = await call(
      {
        name: 'alpha__ask',
        arguments: {},
        requestState: state,
        inputResponses: { user_name: { action: 'accept', content: { name: 'Ada' } } },
        _meta: envelope(),
      },
      3,
    );
    expect(done.result?.content?.[0]?.text).toBe('alpha greets Ada (upstream-state-of-alpha)');
    expect(calls.at(-1)).toMatchObject({ serverId: 'alpha', params: { name: 'ask', requestState: 'upstream-state-of-alpha' } });
  });

  it('refuses a state minted for another IDE', async () => {
    const first = await call({ name: 'alpha__ask', arguments: {}, _meta: envelope('IDE A') }, 4);
    const other = await call(
      { name: 'alpha__ask', arguments: {}, requestState: first.result!.requestState, inputResponses: {}, _meta: envelope('IDE B') },
      5,
    );
    expect(other.error).toMatchObject({ code: -32602 });
  });

  it('stops a server that keeps asking after the round cap, with a tool error', async () => {
    let result = (await call({ name: 'alpha__nag', arguments: {}, _meta: envelope() }, 6)).result;
    let rounds = 1;
    while (result?.resultType === 'input_required' && rounds < 30) {
      result = (
        await call(
          {
            name: 'alpha__nag',
            arguments: {},
            requestState: result.requestState,
            inputResponses: { user_name: { action: 'accept', content: { name: 'x' } } },
            _meta: envelope(),
          },
          10 + rounds,
        )
      ).result;
      rounds++;
    }
    expect(rounds).toBe(9);
    expect(result).toMatchObject({ isError: true });
    expect(result?.content?.[0]?.text).toMatch(/kept asking for input/);
  });
});
