/**
 * The relay (`/mcp/<id>`) with 2026-07-28 traffic, end to end: an SDK client pinned to 2026-07-28 talks through the
 * gateway to an SDK server that speaks only 2026-07-28. Nothing in the relay knows the revision; this proves it needs
 * not: no session id is expected, Mcp-Method / Mcp-Name / Mcp-Param headers reach the server (which rejects a
 * mismatch), input_required rounds and the subscriptions/listen stream pass through.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { inputRequired } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { startModernServer, type ModernServer } from '../helpers/modern-mcp-server';

let server: ModernServer;
let gateway: GatewayServer;
let auth: LocalAuth;
const upstreamHeaders: Array<Record<string, string>> = [];

beforeAll(async () => {
  server = await startModernServer({
    legacy: 'reject',
    toolsCacheHint: { ttlMs: 60_000, cacheScope: 'public' },
    tools: (mcp) => {
      mcp.registerTool('confirm', { description: 'Asks first', inputSchema: z.object({}) }, (_args, ctx) => {
        if (ctx.mcpReq.inputResponses?.ok) return { content: [{ type: 'text' as const, text: 'confirmed' }] };
        return inputRequired({
          inputRequests: { ok: inputRequired.elicit({ message: 'Sure?', requestedSchema: { type: 'object', properties: {} } }) },
          requestState: 'opaque-state',
        });
      });
      mcp.registerTool(
        'regional',
        {
          description: 'Mirrors its region argument into a header',
          inputSchema: z.object({ region: z.string().meta({ 'x-mcp-header': 'Region' }) }),
        },
        ({ region }) => ({ content: [{ type: 'text' as const, text: `region ${region}` }] }),
      );
    },
  });
  auth = await LocalAuth.open(new MemorySecretStore());
  gateway = await startGatewayServer({
    port: 0,
    localAuth: auth,
    aggregator: { handleRequest: async (_q, r) => void r.writeHead(501).end() },
    relay: createRelay({
      getServer: (id) => (id === 'modern' ? { id, url: server.url } : undefined),
      tokens: {
        authorizedFetch: (_id, base) => (input, init) => {
          const seen: Record<string, string> = {};
          new Headers(init?.headers).forEach((v, k) => (seen[k] = v));
          upstreamHeaders.push(seen);
          return (base ?? fetch)(input, init);
        },
      },
    }),
  });
});

afterAll(async () => {
  await gateway?.close();
  await server?.stop();
});

function client(): { client: Client; transport: StreamableHTTPClientTransport } {
  const c = new Client(
    { name: 'ide-2026', version: '1.0.0' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  c.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: {} }));
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gateway.port}/mcp/modern`), {
    requestInit: { headers: { Authorization: `Bearer ${auth.token}` } },
  });
  return { client: c, transport };
}

describe('relay /mcp/<id> with a 2026-07-28 server', () => {
  it('discover, lists with caching hints, calls with input_required rounds and Mcp-Param headers, listen', async () => {
    const { client: c, transport } = client();
    await c.connect(transport);
    expect(c.getProtocolEra()).toBe('modern');
    expect(transport.sessionId).toBeUndefined();

    const tools = await c.listTools();
    expect(tools.tools.map((t) => t.name).sort()).toEqual(['confirm', 'echo', 'regional']);
    expect((tools as { ttlMs?: number }).ttlMs).toBe(60_000);

    expect((await c.callTool({ name: 'echo', arguments: { text: 'hi' } })).content).toEqual([{ type: 'text', text: 'echo: hi' }]);
    expect((await c.callTool({ name: 'confirm', arguments: {} })).content).toEqual([{ type: 'text', text: 'confirmed' }]);
    expect((await c.callTool({ name: 'regional', arguments: { region: 'eu-west' } })).content).toEqual([
      { type: 'text', text: 'region eu-west' },
    ]);

    const call = upstreamHeaders.find((h) => h['mcp-method'] === 'tools/call' && h['mcp-name'] === 'regional');
    expect(call).toMatchObject({ 'mcp-protocol-version': '2026-07-28', 'mcp-param-region': 'eu-west' });
    // The IDE's local token never goes upstream.
    expect(upstreamHeaders.every((h) => !h.authorization?.includes(auth.token))).toBe(true);

    const subscription = await c.listen({ toolsListChanged: true });
    const changed = new Promise<void>((resolve) => c.setNotificationHandler('notifications/tools/list_changed', () => resolve()));
    server.handler.notify.toolsChanged();
    await changed;
    await subscription.close();
    await c.close();
  });
});
