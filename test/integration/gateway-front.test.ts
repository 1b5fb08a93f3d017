/**
 * The front door and the relay end to end: an SDK client as the IDE → Lanyard's gateway on 127.0.0.1 (local
 * token, Host, Origin) → relay `/mcp/<id>` → the token service (alice signed in at the sandbox IdP, ID-JAG, jwt-bearer
 * at the server's resource AS) → the sandbox's protected MCP servers. Real HTTP everywhere and the real OS keychain
 * (`npm test`, or `bash scripts/keyring-session.sh npx vitest run test/integration/gateway-front.test.ts`).
 */
import { connect } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanyardError } from '../../electron/broker/errors';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth, LOCAL_TOKEN_SECRET_KEY } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { ErrorCodes } from '../../shared/errors';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';

/** A response body as the tests read it: a JSON-RPC error, or any JSON object. */
interface RpcBody {
  jsonrpc?: string;
  id?: unknown;
  error: { code: number; message: string; data: Record<string, unknown> };
  [key: string]: unknown;
}
const rpc = async (r: Response) => (await r.json()) as RpcBody;

let sandbox: Sandbox;
let engine: EngineHarness;
let cleanup: () => Promise<void>;
let gateway: GatewayServer;
let localAuth: LocalAuth;
const clients: Client[] = [];

const textOf = (result: unknown) => (result as { content: Array<{ text: string }> }).content[0]!.text;

/** An IDE connected to `/mcp/<id>` the way a configured IDE is: local token in a header, nothing else. */
async function ide(
  serverId: string,
  options: { token?: string; capabilities?: Record<string, unknown>; name?: string } = {},
): Promise<Client> {
  const client = new Client({ name: options.name ?? 'test-ide', version: '1.0.0' }, { capabilities: options.capabilities ?? {} });
  const transport = new StreamableHTTPClientTransport(new URL(`${gateway.mcpUrl}/${serverId}`), {
    requestInit: { headers: { Authorization: `Bearer ${options.token ?? localAuth.token}` } },
  });
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** A raw HTTP exchange with full control of Host and Origin. */
function rawPost(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    });
    const socket = connect(gateway.port, '127.0.0.1');
    let out = '';
    socket.on('data', (d) => {
      out += d.toString();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(out);
      if (m) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
    const lines = Object.entries({
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'Content-Length': String(Buffer.byteLength(body)),
      ...headers,
    }).map(([k, v]) => `${k}: ${v}`);
    socket.write(`POST /mcp/todo HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}

beforeAll(async () => {
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
  const temp = await tempHome();
  cleanup = temp.cleanup;
  engine = await createEngine(sandbox, { home: temp.home });
  localAuth = await LocalAuth.open(engine.secrets);
  const servers = sandbox.lanyardConfig().servers;
  gateway = await startGatewayServer({
    port: 0,
    localAuth,
    aggregator: { handleRequest: async (_req, res) => void res.writeHead(501).end() },
    relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
  });
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await gateway?.close();
  await engine?.secrets.deleteAll();
  await sandbox?.stop();
  await cleanup?.();
});

describe('the local endpoint refuses strangers', () => {
  it('keeps the local token in the OS keychain', async () => {
    expect(engine.secrets.kind).toBe('os-keychain');
    expect(await engine.secrets.get(LOCAL_TOKEN_SECRET_KEY)).toBe(localAuth.token);
  });

  it('a missing or wrong local token is 401 with a Bearer realm challenge', async () => {
    for (const headers of [{}, { Authorization: 'Bearer not-the-token' }] as Array<Record<string, string>>) {
      const r = await fetch(`${gateway.mcpUrl}/todo`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: '{}',
      });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="lanyard"');
      expect((await rpc(r)).error.message).toMatch(/Missing or wrong Lanyard local token/);
    }
    const wrong = await ide('todo', { token: 'not-the-token' }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(Error);
    expect(sandbox.server('todo').mcp.counters.requests).toBe(0);
  });

  it('a foreign Origin is 403 and a foreign Host is refused, even with the right token', async () => {
    const auth = { Authorization: `Bearer ${localAuth.token}` };
    expect(await rawPost({ ...auth, Host: `127.0.0.1:${gateway.port}`, Origin: 'http://evil.example.com' })).toBe(403);
    expect(await rawPost({ ...auth, Host: `evil.example.com:${gateway.port}` })).toBe(421);
    expect(await rawPost({ ...auth, Host: `evil.example.com:${gateway.port}`, Origin: 'http://evil.example.com' })).toBe(421);
    expect(sandbox.server('todo').mcp.counters.requests).toBe(0);
  });

  it('a taken port is PORT_IN_USE, with the fix', async () => {
    const error = await startGatewayServer({
      port: gateway.port,
      localAuth,
      aggregator: { handleRequest: async () => undefined },
      relay: createRelay({ getServer: () => undefined, tokens: engine.tokens }),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LanyardError);
    expect((error as LanyardError).code).toBe(ErrorCodes.PORT_IN_USE);
    expect((error as LanyardError).fix).toMatch(/Another Lanyard.*gateway\.port/);
  });
});

describe('the relay before sign-in', () => {
  it('answers the request with what to do (message and fix), not with an HTTP 401 or the server challenge', async () => {
    const r = await fetch(`${gateway.mcpUrl}/todo`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${localAuth.token}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('www-authenticate')).toBeNull();
    const body = await rpc(r);
    expect(body.id).toBe(1);
    expect(body.error.data).toMatchObject({ code: ErrorCodes.NOT_SIGNED_IN, serverId: 'todo', fix: expect.any(String) });
    expect(body.error.message).toMatch(/not signed in.*Fix:.*[Ss]ign in/);
  });

  // What an IDE shows: SDK clients drop the body of an HTTP 401 (with an auth provider, as IDEs configure for HTTP
  // servers, they report a bare "Unauthorized"), so the answer has to be a JSON-RPC message they read.
  it.each([
    ['with an auth provider (as IDEs have)', true],
    ['with a static header', false],
  ])('an SDK client %s sees the message and the fix', async (_name, withProvider) => {
    const client = new Client({ name: 'test-ide', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(
      new URL(`${gateway.mcpUrl}/todo`),
      withProvider
        ? { authProvider: { token: async () => localAuth.token } }
        : { requestInit: { headers: { Authorization: `Bearer ${localAuth.token}` } } },
    );
    const error = await client.connect(transport).then(
      () => new Error('connected'),
      (e: unknown) => e as Error,
    );
    await client.close().catch(() => undefined);
    expect(error.message).toMatch(/not signed in/i);
    expect(error.message).toMatch(/Fix: .*[Ss]ign in/);
  });
});

describe('the relay, signed in as alice', () => {
  beforeAll(async () => {
    await engine.signIn('alice');
  });

  it('lists the tools unrenamed and calls whoami as alice', async () => {
    const client = await ide('todo');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['whoami', 'echo', 'slow_count', 'ask_user', 'summarize']));
    expect(tools.every((t) => !t.includes('__'))).toBe(true);
    const who = JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} }))) as {
      sub: string;
      server: string;
      clientId: string;
    };
    expect(who).toMatchObject({ sub: '00u-alice', server: 'todo', clientId: 'lanyard-at-todo' });
    const wiki = await ide('wiki');
    expect(JSON.parse(textOf(await wiki.callTool({ name: 'whoami', arguments: {} })))).toMatchObject({ sub: '00u-alice', server: 'wiki' });
  });

  it("never lets the IDE's Authorization reach the server: only Lanyard-minted bearer tokens arrive", () => {
    const seen = [...sandbox.server('todo').mcp.seenAuthorization, ...sandbox.server('wiki').mcp.seenAuthorization];
    expect(seen.length).toBeGreaterThan(0);
    for (const value of seen) {
      expect(value).toMatch(/^Bearer \S+$/);
      expect(value).not.toContain(localAuth.token);
    }
  });

  it('streams progress through as it happens (SSE), before the result', async () => {
    const client = await ide('todo');
    const arrivals: number[] = [];
    const started = Date.now();
    const result = await client.callTool(
      { name: 'slow_count', arguments: { steps: 4, delayMs: 120 } },
      { onprogress: () => arrivals.push(Date.now() - started) },
    );
    const finished = Date.now() - started;
    expect(textOf(result)).toBe('counted to 4');
    // The SDK client handles notifications a microtask later than responses: a last progress notification that shares
    // a read with the result can be dropped on the IDE side (not by the relay).
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    // Buffered responses would deliver every notification together with the result.
    expect(arrivals[0]!).toBeLessThan(finished - 200);
  });

  it('carries elicitation and sampling round trips, each to the session that asked', async () => {
    const asked: string[] = [];
    const a = await ide('todo', { name: 'ide-a', capabilities: { elicitation: { form: {} }, sampling: {} } });
    const b = await ide('todo', { name: 'ide-b', capabilities: { elicitation: { form: {} }, sampling: {} } });
    a.setRequestHandler('elicitation/create', async (req) => {
      asked.push(`a:${req.params.message}`);
      return { action: 'accept', content: { answer: 'from A' } };
    });
    b.setRequestHandler('elicitation/create', async (req) => {
      asked.push(`b:${req.params.message}`);
      return { action: 'accept', content: { answer: 'from B' } };
    });
    b.setRequestHandler('sampling/createMessage', async () => ({
      role: 'assistant',
      content: { type: 'text', text: 'a short summary' },
      model: 'test-model',
    }));
    const [ra, rb] = await Promise.all([
      a.callTool({ name: 'ask_user', arguments: { question: 'qa' } }),
      b.callTool({ name: 'ask_user', arguments: { question: 'qb' } }),
    ]);
    expect(JSON.parse(textOf(ra))).toEqual({ action: 'accept', answer: 'from A' });
    expect(JSON.parse(textOf(rb))).toEqual({ action: 'accept', answer: 'from B' });
    expect(asked.sort()).toEqual(['a:qa', 'b:qb']);
    expect(textOf(await b.callTool({ name: 'summarize', arguments: { text: 'long text' } }))).toBe('a short summary');
    // Two IDE sessions, two upstream sessions: the relay never shares one.
    const ids = clients.map((c) => (c.transport as StreamableHTTPClientTransport | undefined)?.sessionId).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('re-mints once when the server stops accepting the token mid-session, and the call succeeds', async () => {
    const client = await ide('todo');
    await client.callTool({ name: 'echo', arguments: { text: 'before' } });
    const exchanges = sandbox.idp.counters.exchanges;
    const unauthorized = sandbox.server('todo').mcp.counters.unauthorized;
    sandbox.server('todo').as.revokeAccessTokens();
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'after' } }))).toBe('echo: after');
    expect(sandbox.server('todo').mcp.counters.unauthorized).toBe(unauthorized + 1);
    expect(sandbox.idp.counters.exchanges).toBe(exchanges + 1);
  });

  it('an unknown server id is a 404 naming it', async () => {
    const r = await fetch(`${gateway.mcpUrl}/nope`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${localAuth.token}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(404);
    expect((await rpc(r)).error.message).toContain('"nope"');
  });

  it('a stopped upstream is a 502 with a clear message, and the gateway keeps serving the others', async () => {
    await sandbox.server('wiki').mcp.setFault('down');
    try {
      const r = await fetch(`${gateway.mcpUrl}/wiki`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${localAuth.token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          'Mcp-Session-Id': 'x',
        },
        body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      });
      expect(r.status).toBe(502);
      expect((await rpc(r)).error.message).toMatch(/"wiki".*could not be reached/);
      const client = await ide('todo');
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'still here' } }))).toBe('echo: still here');
    } finally {
      await sandbox.server('wiki').mcp.setFault(null);
    }
  });
});

describe('the relay after sign-out, in an open IDE session', () => {
  it('a tool call answers with the message and the fix, as a tool error the IDE shows', async () => {
    await engine.signIn('alice');
    const client = new Client({ name: 'test-ide', version: '1.0.0' }, { capabilities: {} });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gateway.mcpUrl}/todo`), { authProvider: { token: async () => localAuth.token } }),
    );
    clients.push(client);
    await engine.identity.signOut();
    try {
      const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { isError?: boolean; content: Array<{ text: string }> };
      expect(result.isError).toBe(true);
      expect(result.content[0]!.text).toMatch(/not signed in[\s\S]*Fix: .*[Ss]ign in/i);
      // Any other request: a JSON-RPC error carrying the same message and fix.
      const other = await client.listTools().then(
        () => new Error('listed'),
        (e: unknown) => e as Error,
      );
      expect(other.message).toMatch(/not signed in[\s\S]*Fix: .*[Ss]ign in/i);
    } finally {
      await engine.signIn('alice');
    }
  });
});
