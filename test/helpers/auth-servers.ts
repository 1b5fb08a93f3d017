/**
 * MCP servers of the kinds that are not Cross-App Access, built with the SDK on one local HTTP server, for the auth-path
 * tests: `/key/mcp` wants `X-Api-Key: API_KEY` (and answers 401 without resource_metadata otherwise, as API-key services
 * do), `/open/mcp` wants nothing, `/oauth/mcp` wants `Bearer OAUTH_TOKEN` and publishes RFC 9728 metadata naming an
 * authorization server that offers authorization code + PKCE. Every request's path and headers are recorded.
 */
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';

export const API_KEY = 'sk-live-AbCdEf0123456789GhIjKlMnOp';
export const OAUTH_TOKEN = 'oauth-access-Zx9Yw8Vu7Ts6Rq5Po4';

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
}

/** One HTTP server hosting the three non-XAA kinds: /key/mcp (X-Api-Key), /open/mcp, /oauth/mcp (bearer from its AS). */
export async function startOtherServers(): Promise<{ origin: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  let origin = '';
  const build = (kind: string) => {
    const mcp = new McpServer({ name: `${kind}-server`, version: '1.0.0' }, { capabilities: { tools: {} } });
    mcp.registerTool('echo', { description: `Echo (${kind})`, inputSchema: z.object({ text: z.string() }) }, ({ text }) => ({
      content: [{ type: 'text', text: `${kind}: ${text}` }],
    }));
    return mcp;
  };
  const http: HttpServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    received.push({ path: url.pathname, headers: req.headers });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
          res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
        if (url.pathname === '/.well-known/oauth-protected-resource/oauth/mcp')
          return json(200, { resource: `${origin}/oauth/mcp`, authorization_servers: [`${origin}/as`] });
        if (url.pathname === '/.well-known/oauth-authorization-server/as')
          return json(200, {
            issuer: `${origin}/as`,
            authorization_endpoint: `${origin}/as/authorize`,
            token_endpoint: `${origin}/as/token`,
            response_types_supported: ['code'],
            grant_types_supported: ['authorization_code', 'refresh_token'],
            code_challenge_methods_supported: ['S256'],
          });
        const kind = /^\/(key|open|oauth)\/mcp$/.exec(url.pathname)?.[1];
        if (!kind) return json(404, { error: 'not found' });
        if (kind === 'key' && req.headers['x-api-key'] !== API_KEY)
          return json(401, { error: 'invalid api key' }, { 'www-authenticate': 'ApiKey realm="key"' });
        if (kind === 'oauth' && req.headers.authorization !== `Bearer ${OAUTH_TOKEN}`)
          return json(
            401,
            { error: 'unauthorized' },
            { 'www-authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/oauth/mcp"` },
          );
        if (req.method !== 'POST') return json(405, { error: 'stateless' });
        const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
        const mcp = build(kind);
        await mcp.connect(transport);
        await transport.handleRequest(req, res, JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      })().catch(() => res.writeHead(500).end());
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    origin,
    received,
    close: () =>
      new Promise<void>((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}
