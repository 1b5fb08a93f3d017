/**
 * Upstream sessions against real SDK servers of both eras: a 2026-07-28-only server (createMcpHandler, legacy
 * 'reject') and the sandbox's 2025-11-25-only server (stateful Streamable HTTP). The pool's fetch records every
 * request, so the tests see what went on the wire: discover probes, initialize, `_meta`, Mcp-Method / Mcp-Name.
 */
import { inputRequired } from '@modelcontextprotocol/server';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ErrorCodes } from '../../shared/errors';
import type { DownstreamPeer } from '../../electron/broker/gateway/upstream/bound-peer';
import { freshnessOf, MAX_CATALOG_TTL_MS, staleKinds, type ServerCatalog } from '../../electron/broker/gateway/upstream/catalog';
import { MAX_REQUEST_STATE_CHARS } from '../../electron/broker/gateway/upstream/guarded-transport';
import { UpstreamPool, type TransportMemoryStore } from '../../electron/broker/gateway/upstream/pool';
import { MAX_INPUT_ROUNDS } from '../../electron/broker/gateway/upstream/session';
import { createLogger } from '../../electron/broker/util/log';
import { DiscoveryState, discoveryStateFile } from '../../electron/broker/exchange/discovery-state';
import { startMcpServer } from '../fixtures/sandbox/mcp-servers';
import { startModernServer } from '../helpers/modern-mcp-server';

interface Seen {
  method: string | undefined;
  headers: Record<string, string>;
  meta: Record<string, unknown> | undefined;
}

const stops: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
});

/** A fetch that records each POSTed JSON-RPC message (and can answer some itself, like a broken server would). */
function recordingFetch(answer?: (method: string | undefined) => Response | undefined) {
  const seen: Seen[] = [];
  const fetchImpl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let method: string | undefined;
    let meta: Record<string, unknown> | undefined;
    if (init?.method === 'POST' && typeof init.body === 'string') {
      try {
        const body = JSON.parse(init.body) as { method?: string; params?: { _meta?: Record<string, unknown> } };
        method = body.method;
        meta = body.params?._meta;
      } catch {
        // not JSON: recorded without a method
      }
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      seen.push({ method, headers, meta });
      const canned = answer?.(method);
      if (canned) return canned;
    }
    return fetch(input, init);
  };
  return { seen, fetch: fetchImpl, count: (m: string) => seen.filter((s) => s.method === m).length };
}

function pool(
  fetchImpl: ReturnType<typeof recordingFetch>['fetch'],
  now?: () => number,
  transportMemory?: TransportMemoryStore,
): UpstreamPool {
  const p = new UpstreamPool({
    ...(transportMemory ? { transportMemory } : {}),
    tokens: { authorizedFetch: (_id, base) => base ?? fetchImpl },
    fetch: fetchImpl,
    clientInfo: { name: 'lanyard-test', version: '0.0.0' },
    log: createLogger({ level: 'error' }),
    connectTimeoutMs: 5_000,
    ...(now ? { now } : {}),
  });
  stops.push(() => p.close());
  return p;
}

/** An IDE session that answers every elicitation with `accept` and counts them (a 2025-11-25 IDE unless `era`). */
function idePeer(era?: 'modern'): DownstreamPeer & { elicitations: number } {
  const peer = {
    ...(era ? { era } : {}),
    id: 'ide-1',
    clientName: 'Test IDE',
    capabilities: { elicitation: {} },
    elicitations: 0,
    elicit: async () => {
      peer.elicitations++;
      return { action: 'accept' as const, content: { ok: true } };
    },
    sample: () => Promise.reject(new Error('no sampling')),
    listRoots: async () => ({ roots: [] }),
    notify: async () => undefined,
  };
  return peer;
}

const call = (p: UpstreamPool, peer: DownstreamPeer, serverId: string, name: string, args: Record<string, unknown> = {}) =>
  p.attach(peer).request(serverId, 'tools/call', { name, arguments: args }, { signal: new AbortController().signal, target: peer });

describe('upstream era negotiation', () => {
  it('speaks 2026-07-28 to a server that only speaks it: discover, no initialize, per-request _meta and headers', async () => {
    const server = await startModernServer({ legacy: 'reject' });
    stops.push(() => server.stop());
    const wire = recordingFetch();
    const p = pool(wire.fetch);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);

    const catalog = await p.ensureCatalog('modern');
    expect(catalog.tools.map((t) => t.name)).toEqual(['echo']);
    const result = await call(p, idePeer('modern'), 'modern', 'echo', { text: 'hi' });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: hi' }]);

    expect(wire.count('initialize')).toBe(0);
    // One probe for the server: the bound session starts from the remembered discover result.
    expect(wire.count('server/discover')).toBe(1);
    const toolCall = wire.seen.find((s) => s.method === 'tools/call')!;
    expect(toolCall.headers['mcp-method']).toBe('tools/call');
    expect(toolCall.headers['mcp-name']).toBe('echo');
    expect(toolCall.headers['mcp-protocol-version']).toBe('2026-07-28');
    expect(toolCall.headers['mcp-session-id']).toBeUndefined();
    expect(toolCall.meta?.['io.modelcontextprotocol/protocolVersion']).toBe('2026-07-28');
  });

  it("mirrors a tool's x-mcp-header arguments into Mcp-Param headers, from the catalog's definition", async () => {
    const server = await startModernServer({
      tools: (mcp) =>
        mcp.registerTool(
          'regional',
          { description: 'Region in a header', inputSchema: z.object({ region: z.string().meta({ 'x-mcp-header': 'Region' }) }) },
          ({ region }) => ({ content: [{ type: 'text' as const, text: `region ${region}` }] }),
        ),
    });
    stops.push(() => server.stop());
    const wire = recordingFetch();
    const p = pool(wire.fetch);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
    await p.ensureCatalog('modern');
    const result = await call(p, idePeer(), 'modern', 'regional', { region: 'eu-west' });
    expect(result.content).toEqual([{ type: 'text', text: 'region eu-west' }]);
    expect(wire.seen.find((s) => s.method === 'tools/call')?.headers['mcp-param-region']).toBe('eu-west');
  });

  it('falls back to initialize for a 2025-11-25-only server, and probes it only once', async () => {
    const server = await startMcpServer({ id: 'old', name: 'Old', baseScopes: [] });
    stops.push(() => server.stop());
    const wire = recordingFetch();
    const p = pool(wire.fetch);
    p.setServers([{ id: 'old', name: 'Old', url: server.url }]);

    const catalog = await p.ensureCatalog('old');
    expect(catalog.tools.some((t) => t.name === 'echo')).toBe(true);
    const result = await call(p, idePeer(), 'old', 'echo', { text: 'hi' });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: hi' }]);
    expect(wire.count('server/discover')).toBe(1);
    // The catalog session and the bound session each initialized; the bound one without a probe first.
    expect(wire.count('initialize')).toBe(2);
    expect(p.health('old')?.state).toBe('ready');
  });

  it('after a restart, the era verdict kept in the discovery state file is used: no second probe', async () => {
    const server = await startMcpServer({ id: 'old', name: 'Old', baseScopes: [] });
    stops.push(() => server.stop());
    const home = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-eras-'));
    stops.push(() => rm(home, { recursive: true, force: true }));
    const run = async () => {
      const state = new DiscoveryState(discoveryStateFile(home));
      await state.load();
      const wire = recordingFetch();
      const p = pool(wire.fetch, undefined, {
        read: (id, url) => state.transport(id, url),
        write: (id, url, memory) => state.setTransport(id, url, memory),
      });
      p.setServers([{ id: 'old', name: 'Old', url: server.url }]);
      const catalog = await p.ensureCatalog('old');
      expect(catalog.tools.some((t) => t.name === 'echo')).toBe(true);
      await p.close();
      await state.flush();
      return wire;
    };
    expect((await run()).count('server/discover')).toBe(1);
    const restarted = await run();
    expect(restarted.count('server/discover')).toBe(0);
    expect(restarted.count('initialize')).toBe(1);
  });

  it('lists a 2025-11-25 catalog with one request per list; a malformed tool list is still refused as before', async () => {
    const server = await startMcpServer({ id: 'old', name: 'Old', baseScopes: [] });
    stops.push(() => server.stop());
    const wire = recordingFetch();
    const good = pool(wire.fetch);
    good.setServers([{ id: 'old', name: 'Old', url: server.url }]);
    expect((await good.ensureCatalog('old')).tools.some((t) => t.name === 'echo')).toBe(true);
    expect(wire.count('tools/list')).toBe(1);

    // The same server, its tools/list answered with a tool that has no inputSchema.
    let lists = 0;
    const malformed = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { id?: unknown; method?: string }) : undefined;
      if (body?.method !== 'tools/list') return fetch(input, init);
      lists++;
      return new Response(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { tools: [{ name: 'no-schema' }] } }), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    };
    const bad = pool(malformed);
    bad.setServers([{ id: 'old', name: 'Old', url: server.url }]);
    await expect(bad.ensureCatalog('old')).rejects.toBeTruthy();
    // Declined by the raw listing, then refused by the SDK client's own check, as before.
    expect(lists).toBe(2);
  });

  it('falls back to initialize when discover is answered with garbage (and says nothing about era)', async () => {
    const server = await startMcpServer({ id: 'old', name: 'Old', baseScopes: [] });
    stops.push(() => server.stop());
    const wire = recordingFetch((method) =>
      method === 'server/discover'
        ? new Response('<html>not json', { status: 200, headers: { 'content-type': 'application/json' } })
        : undefined,
    );
    const p = pool(wire.fetch);
    p.setServers([{ id: 'old', name: 'Old', url: server.url }]);
    const catalog = await p.ensureCatalog('old');
    expect(catalog.tools.length).toBeGreaterThan(0);
    expect(wire.count('initialize')).toBe(1);
  });

  it('reports a clear error when neither discover nor initialize gives anything readable', async () => {
    const wire = recordingFetch(() => new Response('{"jsonrpc":', { status: 200, headers: { 'content-type': 'application/json' } }));
    const p = pool(wire.fetch);
    p.setServers([{ id: 'broken', name: 'Broken', url: 'http://127.0.0.1:9/mcp' }]);
    const error = await p.ensureCatalog('broken').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCodes.SERVER_UNREACHABLE, serverId: 'broken' });
    expect((error as Error).message).toContain('"broken"');
    expect(p.health('broken')?.state).toBe('error');
  });
});

describe('the era of a bound session follows the IDE', () => {
  it("a 2025 IDE's session asks a 2026-only server for initialize once, is refused, and then speaks 2026-07-28", async () => {
    const server = await startModernServer({ legacy: 'reject' });
    stops.push(() => server.stop());
    const wire = recordingFetch();
    const p = pool(wire.fetch);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
    await p.ensureCatalog('modern');
    expect((await call(p, idePeer(), 'modern', 'echo', { text: 'a' })).content).toEqual([{ type: 'text', text: 'echo: a' }]);
    expect(wire.count('initialize')).toBe(1);
    // The refusal is remembered for the server: the next 2025 IDE goes straight to 2026-07-28.
    expect((await call(p, idePeer(), 'modern', 'echo', { text: 'b' })).content).toEqual([{ type: 'text', text: 'echo: b' }]);
    expect(wire.count('initialize')).toBe(1);
    expect(wire.count('server/discover')).toBe(1);
  });

  it('on a server that speaks both, a 2025 IDE gets 2025-11-25 (initialize, a session) and a 2026 IDE gets 2026-07-28', async () => {
    const server = await startMcpServer({ id: 'both', name: 'Both', baseScopes: [], era: 'both' });
    stops.push(() => server.stop());
    const wire = recordingFetch();
    const p = pool(wire.fetch);
    p.setServers([{ id: 'both', name: 'Both', url: server.url }]);
    await p.ensureCatalog('both');
    expect(wire.count('initialize')).toBe(0);

    await call(p, idePeer(), 'both', 'echo', { text: 'old' });
    const legacyCall = wire.seen.filter((s) => s.method === 'tools/call').at(-1)!;
    expect(wire.count('initialize')).toBe(1);
    expect(legacyCall.headers['mcp-session-id']).toBeDefined();
    expect(legacyCall.meta?.['io.modelcontextprotocol/protocolVersion']).toBeUndefined();

    await call(p, idePeer('modern'), 'both', 'echo', { text: 'new' });
    const modernCall = wire.seen.filter((s) => s.method === 'tools/call').at(-1)!;
    expect(wire.count('initialize')).toBe(1);
    expect(modernCall.headers['mcp-session-id']).toBeUndefined();
    expect(modernCall.meta?.['io.modelcontextprotocol/protocolVersion']).toBe('2026-07-28');
    expect(wire.count('server/discover')).toBe(1);
  });
});

describe('a remembered era that is out of date', () => {
  /** One server URL whose backend can be swapped (the server at that address was upgraded or rolled back). */
  async function switchable() {
    const modern = await startModernServer({ legacy: 'reject' });
    const old = await startMcpServer({ id: 'old', name: 'Old', baseScopes: [] });
    stops.push(
      () => modern.stop(),
      () => old.stop(),
    );
    const state = { backend: modern.url };
    const wire = recordingFetch();
    const route = (input: string | URL | Request, init?: RequestInit) =>
      wire.fetch(String(input).replace('http://switch.test/mcp', state.backend), init);
    return { modern, old, state, wire, route };
  }

  it('a 2026 server rolled back to 2025: the first request fails, the server is probed again, the call succeeds', async () => {
    const { old, state, wire, route } = await switchable();
    const p = pool(route);
    p.setServers([{ id: 's', name: 'Switch', url: 'http://switch.test/mcp' }]);
    await p.ensureCatalog('s');
    expect(wire.count('initialize')).toBe(0);
    state.backend = old.url;
    // A 2026 IDE's session starts from the remembered 2026 verdict (a 2025 IDE's would ask for initialize anyway).
    const result = await call(p, idePeer('modern'), 's', 'echo', { text: 'after' });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: after' }]);
    expect(wire.count('server/discover')).toBe(2);
    expect(wire.count('initialize')).toBe(1);
  });

  it('a 2025 server upgraded to 2026-only: initialize is refused, the server is probed again, the call succeeds', async () => {
    const { modern, old, state, wire, route } = await switchable();
    state.backend = old.url;
    const p = pool(route);
    p.setServers([{ id: 's', name: 'Switch', url: 'http://switch.test/mcp' }]);
    await p.ensureCatalog('s');
    state.backend = modern.url;
    const result = await call(p, idePeer(), 's', 'echo', { text: 'after' });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: after' }]);
    expect(wire.count('server/discover')).toBe(2);
  });
});

describe('multi-round-trip requests from a 2026-07-28 server', () => {
  it("asks the IDE through its elicitation handler and retries with the answer (the 2025 IDE's view of input_required)", async () => {
    const server = await startModernServer({
      tools: (mcp) =>
        mcp.registerTool('confirm', { description: 'Asks first', inputSchema: z.object({}) }, (_args, ctx) => {
          if (ctx.mcpReq.inputResponses?.ok) return { content: [{ type: 'text' as const, text: 'confirmed' }] };
          return inputRequired({
            inputRequests: {
              ok: inputRequired.elicit({ message: 'Sure?', requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } } } }),
            },
          });
        }),
    });
    stops.push(() => server.stop());
    const p = pool(recordingFetch().fetch);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
    const peer = idePeer();
    const result = await call(p, peer, 'modern', 'confirm');
    expect(result.content).toEqual([{ type: 'text', text: 'confirmed' }]);
    expect(peer.elicitations).toBe(1);
  });

  it('stops a server that asks for input forever, with a clear error, and keeps the session usable', async () => {
    const server = await startModernServer({
      tools: (mcp) =>
        mcp.registerTool('nag', { description: 'Never satisfied', inputSchema: z.object({}) }, () =>
          inputRequired({
            inputRequests: {
              again: inputRequired.elicit({ message: 'Again?', requestedSchema: { type: 'object', properties: {} } }),
            },
          }),
        ),
    });
    stops.push(() => server.stop());
    const p = pool(recordingFetch().fetch);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
    const peer = idePeer();
    const error = await call(p, peer, 'modern', 'nag').catch((e: unknown) => e);
    expect((error as Error).message).toContain('kept asking for more input');
    expect(peer.elicitations).toBeLessThanOrEqual(MAX_INPUT_ROUNDS);
    const after = await call(p, peer, 'modern', 'echo', { text: 'still here' });
    expect(after.content).toEqual([{ type: 'text', text: 'echo: still here' }]);
  });

  it('refuses a requestState of megabytes instead of echoing it back', async () => {
    let calls = 0;
    const server = await startModernServer({
      tools: (mcp) =>
        mcp.registerTool('hoard', { description: 'Huge state', inputSchema: z.object({}) }, () => {
          calls++;
          return inputRequired({ requestState: 'x'.repeat(3 * 1024 * 1024) });
        }),
    });
    stops.push(() => server.stop());
    const p = pool(recordingFetch().fetch);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
    const error = await call(p, idePeer(), 'modern', 'hoard').catch((e: unknown) => e);
    expect((error as Error).message).toContain(`at most ${MAX_REQUEST_STATE_CHARS}`);
    expect(calls).toBe(1);
  });
});

describe('caching hints on catalogs', () => {
  it('does not list a catalog again before its ttlMs runs out, and does after', async () => {
    const server = await startModernServer({ toolsCacheHint: { ttlMs: 60_000, cacheScope: 'public' } });
    stops.push(() => server.stop());
    let clock = 1_000_000;
    const wire = recordingFetch();
    const p = pool(wire.fetch, () => clock);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
    const catalog = await p.ensureCatalog('modern');
    expect(catalog.freshness?.tools).toEqual({ ttlMs: 60_000, scope: 'public', expiresAt: clock + 60_000 });
    expect(wire.count('tools/list')).toBe(1);

    clock += 59_000;
    p.catalog('modern');
    await p.ensureCatalog('modern');
    expect(wire.count('tools/list')).toBe(1);

    server.toolNames.push('added');
    clock += 2_000;
    const changed = new Promise<string[]>((resolve) => p.onEvent((e) => e.type === 'catalog' && resolve(e.kinds)));
    p.catalog('modern');
    expect(await changed).toEqual(['tools']);
    expect(wire.count('tools/list')).toBe(2);
    expect(p.catalog('modern')?.tools.map((t) => t.name)).toEqual(['echo', 'added']);
  });

  it('still re-lists on list_changed (from the subscriptions/listen stream) while the TTL says fresh', async () => {
    const server = await startModernServer({ toolsCacheHint: { ttlMs: 3_600_000, cacheScope: 'public' } });
    stops.push(() => server.stop());
    const wire = recordingFetch();
    const p = pool(wire.fetch);
    p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
    await p.ensureCatalog('modern');
    // The listen stream is opened right after connecting: wait for it.
    await expect.poll(() => wire.count('subscriptions/listen')).toBe(1);
    const changed = new Promise<string[]>((resolve) => p.onEvent((e) => e.type === 'catalog' && resolve(e.kinds)));
    server.toolNames.push('late');
    server.handler.notify.toolsChanged();
    expect(await changed).toEqual(['tools']);
    expect(p.catalog('modern')?.tools.map((t) => t.name)).toEqual(['echo', 'late']);
  });

  it('bounds hints it cannot trust: negative is 0, huge is capped, non-numbers and missing are no hint', () => {
    expect(freshnessOf([{ ttlMs: -5, cacheScope: 'public' }], 10)).toEqual({ ttlMs: 0, scope: 'public', expiresAt: 10 });
    expect(freshnessOf([{ ttlMs: 1e18 }], 0)).toEqual({ ttlMs: MAX_CATALOG_TTL_MS, scope: 'private', expiresAt: MAX_CATALOG_TTL_MS });
    expect(freshnessOf([{ ttlMs: Number.NaN }], 0)).toBeUndefined();
    expect(freshnessOf([{ ttlMs: '60000' }], 0)).toBeUndefined();
    expect(freshnessOf([{ tools: [] }], 0)).toBeUndefined();
    // resources + templates: the shorter TTL, private if either part is.
    expect(
      freshnessOf(
        [
          { ttlMs: 500, cacheScope: 'public' },
          { ttlMs: 100, cacheScope: 'private' },
        ],
        0,
      ),
    ).toEqual({
      ttlMs: 100,
      scope: 'private',
      expiresAt: 100,
    });
  });

  it('lists a 0-TTL catalog again at most once a second, however often it is read', () => {
    const catalog = {
      freshness: { tools: { ttlMs: 0, scope: 'private', expiresAt: 1_000 } },
      listedAt: { tools: 1_000 },
    } as unknown as ServerCatalog;
    expect(staleKinds(catalog, 1_500)).toEqual([]);
    expect(staleKinds(catalog, 2_000)).toEqual(['tools']);
  });

  it('survives a server sending a negative or huge ttlMs on the wire', async () => {
    const server = await startModernServer();
    stops.push(() => server.stop());
    for (const ttl of [-5, 1e15]) {
      const rewrite = async (input: string | URL | Request, init?: RequestInit) => {
        const response = await fetch(input, init);
        const isList = typeof init?.body === 'string' && init.body.includes('"tools/list"');
        if (!isList) return response;
        const text = await response.text();
        return new Response(text.replace(/"ttlMs":\s*\d+/, `"ttlMs":${ttl}`), { status: response.status, headers: response.headers });
      };
      const p = pool(rewrite);
      p.setServers([{ id: 'modern', name: 'Modern', url: server.url }]);
      const catalog = await p.ensureCatalog('modern');
      expect(catalog.tools.map((t) => t.name)).toEqual(['echo']);
      expect(catalog.freshness?.tools?.ttlMs).toBe(ttl < 0 ? 0 : MAX_CATALOG_TTL_MS);
    }
  });
});
