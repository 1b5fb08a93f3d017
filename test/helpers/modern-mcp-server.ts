/**
 * A small SDK MCP server that speaks 2026-07-28 (server/discover, no session, per-request `_meta`, input_required
 * results, caching hints, subscriptions/listen), built with the SDK's own `createMcpHandler`. With `legacy: 'reject'`
 * it speaks only 2026-07-28; with 'stateless' it also answers 2025-era requests, statelessly.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer, type CacheHint, type McpHttpHandler } from '@modelcontextprotocol/server';
import { z } from 'zod';

export interface ModernServerOptions {
  legacy?: 'reject' | 'stateless';
  /** The caching hint of tools/list (default: the SDK's, ttlMs 0 and private). */
  toolsCacheHint?: CacheHint;
  /** Registers the server's tools on each per-request McpServer (an `echo` tool is always there). */
  tools?: (mcp: McpServer) => void;
}

export interface ModernServer {
  url: string;
  /** Extra echo-like tools, added to every request's server from now on (then `notify.toolsChanged()`). */
  toolNames: string[];
  handler: McpHttpHandler;
  stop(): Promise<void>;
}

export async function startModernServer(options: ModernServerOptions = {}): Promise<ModernServer> {
  const toolNames: string[] = [];
  const factory = () => {
    const mcp = new McpServer(
      { name: 'modern-sandbox', version: '1.0.0' },
      {
        capabilities: { tools: { listChanged: true } },
        ...(options.toolsCacheHint ? { cacheHints: { 'tools/list': options.toolsCacheHint } } : {}),
      },
    );
    mcp.registerTool('echo', { description: 'Echo the text back', inputSchema: z.object({ text: z.string() }) }, ({ text }) => ({
      content: [{ type: 'text' as const, text: `echo: ${text}` }],
    }));
    for (const name of toolNames)
      mcp.registerTool(name, { description: `Tool ${name}` }, () => ({ content: [{ type: 'text' as const, text: name }] }));
    options.tools?.(mcp);
    return mcp;
  };
  const handler = createMcpHandler(factory, { legacy: options.legacy ?? 'reject', keepAliveMs: 0 });
  const node = toNodeHandler(handler);
  const server: Server = createServer((req, res) => {
    void node(req as Parameters<typeof node>[0], res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    toolNames,
    handler,
    stop: async () => {
      await handler.close().catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
