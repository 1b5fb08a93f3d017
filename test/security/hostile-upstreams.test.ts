/**
 * Hostile upstreams: MCP servers and authorization servers that lie in their metadata, point at
 * foreign or insecure parties, redirect elsewhere, publish enormous catalogs or speak broken JSON-RPC. The whole broker
 * runs (`startHeadless`, real keychain, alice signed in at the sandbox IdP) with IDEs on `/mcp` and `/mcp/<id>`. Each
 * case must be refused with a clear error naming what is wrong, the broker must keep serving the honest servers, and
 * NO CREDENTIAL MAY REACH THE WRONG PARTY: every fake party records every header and body it receives, and each is
 * searched for every token the sandbox issued (ID tokens, ID-JAGs, access tokens), every client secret and the local
 * token. Requests to hosts off this machine are refused by the test's fetch before any I/O and must never even be tried.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/security/hostile-upstreams.test.ts`
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server as HttpServer } from 'node:http';
import type { Client } from '@modelcontextprotocol/client';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { MAX_CATALOG_ITEMS } from '../../electron/broker/gateway/upstream/catalog';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startMcpServer, type SandboxMcpServer } from '../fixtures/sandbox/mcp-servers';
import { startResourceAs, type SandboxResourceAs } from '../fixtures/sandbox/resource-as';
import { SecretRecorder } from '../helpers/engine';
import { recordingFetch, startBrokerOnSandbox, textOf, type BrokerOnSandbox } from '../reliability/harness';
import { asMetadata, isMetadataRead, json, startFake, type FakeParty } from './fakes';

type ServerEntry = NonNullable<Parameters<typeof startBrokerOnSandbox>[1]>['servers'] extends Array<infer T> | undefined ? T : never;

let sandbox: Sandbox;
let lanyard: BrokerOnSandbox;
let agg: Client;
const recorder = new SecretRecorder();
const spy = recordingFetch(recorder.wrap(fetch));
const stops: Array<() => Promise<void>> = [];
/** Every client secret Lanyard holds for a server (the hostile ones get their own). */
const clientSecrets: Record<string, string> = {};
const fakes: Record<string, FakeParty> = {};
const mcps: Record<string, SandboxMcpServer> = {};
let mismatchAs: SandboxResourceAs;
let hugeSchema: { url: string; stop(): Promise<void> };
const report: string[] = [];

/** Every secret that may only ever reach its own party. */
function allSecrets(): string[] {
  return [...recorder.values, ...Object.values(clientSecrets), ...Object.values(sandbox.lanyardSecrets()), lanyard.token].filter(
    (s) => s.length >= 8,
  );
}

/** The secrets found in what a fake party received (whole value or its first 24 characters). */
function leakedTo(party: FakeParty): string[] {
  const text = party.text();
  return allSecrets().filter((s) => text.includes(s) || text.includes(s.slice(0, 24)));
}

function secret(id: string): string {
  return (clientSecrets[id] = `hostile-${id}-${randomBytes(18).toString('base64url')}`);
}

async function callAgg(name: string): Promise<{ ok: boolean; text: string }> {
  const result = await agg.callTool({ name, arguments: {} });
  return { ok: !result.isError, text: textOf(result) };
}

/** What an IDE on `/mcp/<id>` meets: the error of its initialize, or of its first tools/list. */
/** What an IDE on `/mcp/<id>` is told: the error's message, then its stable code (JSON-RPC error data). */
async function relayError(id: string): Promise<string> {
  try {
    const client = await lanyard.ide(id);
    await client.listTools();
    return 'no error';
  } catch (e) {
    const data = (e as { data?: { code?: unknown } }).data;
    return `${e instanceof Error ? e.message : String(e)}${typeof data?.code === 'string' ? ` (${data.code})` : ''}`;
  }
}

/** An open (no auth) MCP server built on the SDK, with one tool whose input schema is `schemaBytes` large. */
async function startHugeSchemaServer(schemaBytes: number): Promise<{ url: string; stop(): Promise<void> }> {
  const description = 'd'.repeat(schemaBytes);
  const http: HttpServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const mcp = new McpServer({ name: 'huge', version: '1' }, { capabilities: { tools: {} } });
        mcp.registerTool(
          'big',
          { description: 'a tool with an enormous schema', inputSchema: z.object({ blob: z.string().describe(description) }) },
          () => ({ content: [{ type: 'text', text: 'big' }] }),
        );
        mcp.registerTool('small', { description: 'an ordinary tool', inputSchema: z.object({}) }, () => ({
          content: [{ type: 'text', text: 'small ok' }],
        }));
        const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
        await mcp.connect(transport);
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
        await transport.handleRequest(req, res, body);
      })().catch(() => res.writeHead(500).end());
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    stop: () => new Promise<void>((r) => (http.closeAllConnections(), http.close(() => r()))),
  };
}

/** An open "MCP server" whose every answer is broken JSON-RPC (a different breakage per request). */
/**
 * Malformed answers a broken server can give, one server each, so every call meets a known answer. (One server that
 * rotated through them made the outcome depend on how many requests the broker's own background listing had sent.)
 */
const BROKEN_ANSWERS = {
  truncated: {
    said: /is not valid MCP \(malformed JSON\)/,
    body: (id: unknown) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":`,
    type: 'application/json',
  },
  'not-rpc': { said: /is not valid MCP \(not a well-formed JSON-RPC message\)/, body: () => '{"hello":"world"}', type: 'application/json' },
  html: { said: /answered with something that is not MCP/, body: () => '<html>502 Bad Gateway</html>', type: 'text/html' },
  'wrong-id': {
    said: /did not complete initialize within 3 s/,
    body: () => JSON.stringify({ jsonrpc: '2.0', id: 'someone-else', result: {} }),
    type: 'application/json',
  },
  'rpc-1': {
    said: /is not valid MCP \(not a well-formed JSON-RPC message\)/,
    body: (id: unknown) => JSON.stringify({ jsonrpc: '1.0', id, result: { protocolVersion: 42 } }),
    type: 'application/json',
  },
  binary: { said: /is not valid MCP \(malformed JSON\)/, body: () => '\u0000\u0001\u0002', type: 'application/json' },
} satisfies Record<string, { said: RegExp; body: (id: unknown) => string; type: string }>;

async function startBrokenJsonRpcServer(answer: {
  body: (id: unknown) => string;
  type: string;
}): Promise<{ url: string; stop(): Promise<void> }> {
  const http: HttpServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let id: unknown = null;
      try {
        id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id ?? null;
      } catch {
        /* whatever it was */
      }
      res.writeHead(200, { 'Content-Type': answer.type, 'Mcp-Session-Id': 'broken' });
      res.end(answer.body(id));
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    stop: () => new Promise<void>((r) => (http.closeAllConnections(), http.close(() => r()))),
  };
}

beforeAll(async () => {
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 3600 } });
  const todo = sandbox.server('todo');
  const todoSecret = sandbox.lanyardSecrets()['server:todo:client_secret']!;
  const trustedIdp = { issuer: sandbox.idp.issuer, jwksUri: sandbox.idp.jwksUri };
  const servers: ServerEntry[] = sandbox.lanyardConfig().servers;
  const secrets: Record<string, string> = {};
  const basic = (clientId: string, method: 'client_secret_basic' | 'client_secret_post' = 'client_secret_basic') => ({ clientId, method });
  const allow = (audience: string, resource: string, scopes: string[], clientIdAtAs: string) =>
    sandbox.idp.policy.push({ user: 'alice', audience, resource, scopes, clientIdAtAs });

  // A foreign AS, and a server whose PRM names it instead of its real AS (todo's); once unpinned, once pinned.
  for (const id of ['foreign-as', 'foreign-as-pinned']) {
    const foreign = (fakes[id] = await startFake((r, res) =>
      isMetadataRead(r) ? json(res, 200, asMetadata(fakes[id]!.origin)) : json(res, 400, { error: 'invalid_grant' }),
    ));
    const mcp = (mcps[id] = await startMcpServer({
      id,
      name: id,
      as: todo.as,
      baseScopes: ['todo:read'],
      prmOverride: { authorization_servers: [foreign.origin] },
    }));
    servers.push({
      id,
      name: id,
      url: mcp.url,
      enabled: true,
      asClient: basic('lanyard-at-todo'),
      ...(id.endsWith('pinned') ? { expectedAsIssuer: todo.as.issuer } : {}),
    });
    secrets[`server:${id}:client_secret`] = secret(id);
  }

  // A server that claims to be todo (its PRM names todo's resource), to have Lanyard mint todo's token and send it here.
  mcps['foreign-resource'] = await startMcpServer({
    id: 'foreign-resource',
    name: 'foreign-resource',
    as: todo.as,
    baseScopes: ['todo:read'],
    prmOverride: { resource: todo.mcp.url },
  });
  servers.push({
    id: 'foreign-resource',
    name: 'foreign-resource',
    url: mcps['foreign-resource'].url,
    enabled: true,
    asClient: basic('lanyard-at-todo'),
  });
  secrets['server:foreign-resource:client_secret'] = todoSecret;

  // An AS whose metadata names another issuer than where it was fetched.
  const mmSecret = secret('issuer-mismatch');
  mismatchAs = await startResourceAs({
    name: 'Mismatch AS',
    trustedIdp,
    clients: [{ clientId: 'lanyard-at-mm', authMethod: 'client_secret_basic', clientSecret: mmSecret }],
    resources: [],
    scopes: ['mm:read'],
    issuerOverride: 'http://127.0.0.1:1/not-me',
  });
  stops.push(() => mismatchAs.stop());
  mcps['issuer-mismatch'] = await startMcpServer({
    id: 'issuer-mismatch',
    name: 'issuer-mismatch',
    as: mismatchAs,
    baseScopes: ['mm:read'],
  });
  mismatchAs.resources.push(mcps['issuer-mismatch'].url);
  allow(mismatchAs.issuer, mcps['issuer-mismatch'].url, ['mm:read'], 'lanyard-at-mm');
  servers.push({
    id: 'issuer-mismatch',
    name: 'issuer-mismatch',
    url: mcps['issuer-mismatch'].url,
    enabled: true,
    asClient: basic('lanyard-at-mm'),
  });
  secrets['server:issuer-mismatch:client_secret'] = mmSecret;

  // http:// off this machine: in the PRM (the AS), and in AS metadata (the token endpoint).
  mcps['insecure-as'] = await startMcpServer({
    id: 'insecure-as',
    name: 'insecure-as',
    as: todo.as,
    baseScopes: ['todo:read'],
    prmOverride: { authorization_servers: ['http://example.invalid/as'] },
  });
  servers.push({ id: 'insecure-as', name: 'insecure-as', url: mcps['insecure-as'].url, enabled: true, asClient: basic('lanyard-at-todo') });
  secrets['server:insecure-as:client_secret'] = secret('insecure-as');
  fakes['insecure-token'] = await startFake((r, res) =>
    isMetadataRead(r)
      ? json(res, 200, asMetadata(fakes['insecure-token']!.origin, { token_endpoint: 'http://example.invalid/token' }))
      : json(res, 404, {}),
  );
  mcps['insecure-token'] = await startMcpServer({
    id: 'insecure-token',
    name: 'insecure-token',
    as: { issuer: fakes['insecure-token'].origin, verifyAccessToken: () => null },
    baseScopes: ['x:read'],
  });
  allow(fakes['insecure-token'].origin, mcps['insecure-token'].url, ['x:read'], 'lanyard-at-insecure');
  servers.push({
    id: 'insecure-token',
    name: 'insecure-token',
    url: mcps['insecure-token'].url,
    enabled: true,
    asClient: basic('lanyard-at-insecure', 'client_secret_post'),
  });
  secrets['server:insecure-token:client_secret'] = secret('insecure-token');

  // Redirects to another port: an MCP server that sends authenticated requests elsewhere, and an AS whose token
  // endpoint does. The sinks must receive nothing that is a credential.
  fakes['mcp-sink'] = await startFake((_r, res) => json(res, 401, { error: 'who are you' }, { 'WWW-Authenticate': 'Bearer' }));
  fakes['redirect-mcp'] = await startFake((r, res) => {
    const self = fakes['redirect-mcp']!.origin;
    if (r.url.startsWith('/.well-known/oauth-protected-resource'))
      return json(res, 200, { resource: `${self}/mcp`, authorization_servers: [todo.as.issuer], scopes_supported: ['todo:read'] });
    if (!r.headers.authorization)
      return json(
        res,
        401,
        { error: 'unauthorized' },
        { 'WWW-Authenticate': `Bearer resource_metadata="${self}/.well-known/oauth-protected-resource/mcp", scope="todo:read"` },
      );
    res.writeHead(r.method === 'GET' ? 302 : 307, { Location: `${fakes['mcp-sink']!.origin}/mcp` }).end();
  });
  todo.as.resources.push(`${fakes['redirect-mcp'].origin}/mcp`);
  allow(todo.as.issuer, `${fakes['redirect-mcp'].origin}/mcp`, ['todo:read'], 'lanyard-at-todo');
  servers.push({
    id: 'redirect-mcp',
    name: 'redirect-mcp',
    url: `${fakes['redirect-mcp'].origin}/mcp`,
    enabled: true,
    asClient: basic('lanyard-at-todo'),
  });
  secrets['server:redirect-mcp:client_secret'] = todoSecret;

  fakes['as-sink'] = await startFake((_r, res) => json(res, 200, { access_token: 'from-the-sink', token_type: 'Bearer', expires_in: 600 }));
  fakes['redirect-as'] = await startFake((r, res) => {
    if (isMetadataRead(r)) return json(res, 200, asMetadata(fakes['redirect-as']!.origin));
    res.writeHead(307, { Location: `${fakes['as-sink']!.origin}/token` }).end();
  });
  mcps['redirect-as'] = await startMcpServer({
    id: 'redirect-as',
    name: 'redirect-as',
    as: { issuer: fakes['redirect-as'].origin, verifyAccessToken: () => null },
    baseScopes: ['ra:read'],
  });
  allow(fakes['redirect-as'].origin, mcps['redirect-as'].url, ['ra:read'], 'lanyard-at-ra');
  servers.push({
    id: 'redirect-as',
    name: 'redirect-as',
    url: mcps['redirect-as'].url,
    enabled: true,
    asClient: basic('lanyard-at-ra', 'client_secret_post'),
  });
  secrets['server:redirect-as:client_secret'] = secret('redirect-as');

  // Enormous catalogs: 20,000 tools; one tool with a multi-megabyte schema. And broken JSON-RPC.
  mcps['many-tools'] = await startMcpServer({
    id: 'many-tools',
    name: 'many-tools',
    as: todo.as,
    baseScopes: ['todo:read'],
    toolCount: 20_000,
  });
  todo.as.resources.push(mcps['many-tools'].url);
  allow(todo.as.issuer, mcps['many-tools'].url, ['todo:read'], 'lanyard-at-todo');
  servers.push({ id: 'many-tools', name: 'many-tools', url: mcps['many-tools'].url, enabled: true, asClient: basic('lanyard-at-todo') });
  secrets['server:many-tools:client_secret'] = todoSecret;
  hugeSchema = await startHugeSchemaServer(6 * 1024 * 1024);
  stops.push(() => hugeSchema.stop());
  servers.push({ id: 'huge-schema', name: 'huge-schema', url: hugeSchema.url, enabled: true });
  for (const [kind, answer] of Object.entries(BROKEN_ANSWERS)) {
    const broken = await startBrokenJsonRpcServer(answer);
    stops.push(() => broken.stop());
    servers.push({ id: `broken-${kind}`, name: `broken-${kind}`, url: broken.url, enabled: true });
  }

  for (const m of Object.values(mcps)) stops.push(() => m.stop());
  for (const f of Object.values(fakes)) stops.push(() => f.stop());

  lanyard = await startBrokerOnSandbox(sandbox, {
    servers,
    secrets,
    fetch: spy.fetch,
    timeouts: { listBudgetMs: 3_000, requestMs: 5_000, connectMs: 3_000, relayResponseMs: 5_000 },
  });
  await lanyard.signIn('alice');
  agg = await lanyard.ide();
}, 60_000);

afterAll(async () => {
  await lanyard?.dispose();
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await sandbox?.stop();
  console.log(`hostile upstreams:\n  ${report.join('\n  ')}`);
});

describe('hostile metadata is refused before any credential is sent', () => {
  it('a PRM naming a foreign authorization server: the IdP refuses the grant; the foreign AS gets no credential', async () => {
    const r = await callAgg('foreign-as__echo');
    expect(r.ok).toBe(false);
    const relay = await relayError('foreign-as');
    expect(relay).toMatch(new RegExp(ErrorCodes.POLICY_BLOCKED));
    const foreign = fakes['foreign-as']!;
    // Only metadata reads reached it: no token request, no Authorization, no secret of any kind.
    expect(foreign.received.every(isMetadataRead)).toBe(true);
    expect(foreign.received.some((x) => x.headers.authorization)).toBe(false);
    expect(leakedTo(foreign)).toEqual([]);
    report.push(`foreign AS (unpinned): ${relay.slice(0, 160)}`);
  });

  it('…and with the AS pinned (expectedAsIssuer): refused before the foreign AS or the IdP is even asked', async () => {
    const exchanges = spy.sent.filter((s) => s.url === sandbox.idp.tokenEndpoint).length;
    const relay = await relayError('foreign-as-pinned');
    expect(relay).toMatch(new RegExp(ErrorCodes.SERVER_METADATA_INVALID));
    expect(relay).toMatch(/not the expected/);
    expect(fakes['foreign-as-pinned']!.received).toEqual([]);
    expect(spy.sent.filter((s) => s.url === sandbox.idp.tokenEndpoint).length).toBe(exchanges);
  });

  it('a PRM naming another server’s resource: refused, no token for that resource minted or sent here', async () => {
    const relay = await relayError('foreign-resource');
    expect(relay).toMatch(new RegExp(ErrorCodes.SERVER_METADATA_INVALID));
    expect(relay).toMatch(/names a different resource/);
    expect((await callAgg('foreign-resource__echo')).ok).toBe(false);
    // Not one bearer token (todo's or any other) was presented to the impostor.
    expect(mcps['foreign-resource']!.seenAuthorization).toEqual([]);
  });

  it('AS metadata whose issuer does not match: refused; that AS gets no grant request, the IdP no exchange for it', async () => {
    const relay = await relayError('issuer-mismatch');
    expect(relay).toMatch(new RegExp(ErrorCodes.SERVER_METADATA_INVALID));
    expect(relay).toMatch(/different issuer/);
    expect(mismatchAs.counters.grants).toBe(0);
    expect(mismatchAs.counters.rejections).toEqual({});
    expect(spy.sent.some((s) => s.body.includes(encodeURIComponent(mismatchAs.issuer)) || s.body.includes('not-me'))).toBe(false);
  });

  it('http:// endpoints off this machine (in the PRM, in AS metadata): refused before any request to them', async () => {
    const a = await relayError('insecure-as');
    expect(a).toMatch(new RegExp(ErrorCodes.SERVER_METADATA_INVALID));
    expect(a).toMatch(/does not use https/);
    const b = await relayError('insecure-token');
    expect(b).toMatch(new RegExp(ErrorCodes.SERVER_METADATA_INVALID));
    expect(b).toMatch(/its token endpoint\), which Lanyard will not contact: it does not use https/);
    expect((await callAgg('insecure-as__echo')).ok).toBe(false);
    // The test's fetch refuses (and records) any host that is not 127.0.0.1: Lanyard never even tried.
    expect(spy.offLoopback).toEqual([]);
    expect(fakes['insecure-token']!.received.every(isMetadataRead)).toBe(true);
    expect(leakedTo(fakes['insecure-token']!)).toEqual([]);
  });
});

describe('redirects to another host: no credential follows', () => {
  it('an MCP server redirecting authenticated requests (307/302) to another port', async () => {
    const aggResult = await callAgg('redirect-mcp__echo');
    expect(aggResult.ok).toBe(false);
    const relay = await relayError('redirect-mcp');
    expect(relay).not.toBe('no error');
    // The server itself legitimately got its own bearer token; the sink got none, and no other secret either.
    expect(fakes['redirect-mcp']!.received.some((r) => /^Bearer \S+$/.test(String(r.headers.authorization ?? '')))).toBe(true);
    const sink = fakes['mcp-sink']!;
    expect(sink.received.filter((r) => r.headers.authorization !== undefined)).toEqual([]);
    expect(leakedTo(sink)).toEqual([]);
    report.push(
      `MCP redirect: sink received ${sink.received.length} request(s), none with a credential; /mcp said: ${aggResult.text.slice(0, 120)}`,
    );
  });

  it('an authorization server whose token endpoint redirects (307) to another port: the grant is not re-sent there', async () => {
    const relay = await relayError('redirect-as');
    // Refused by the URL policy: a redirect to another origin is never followed, so the grant cannot be re-sent.
    expect(relay).toMatch(new RegExp(ErrorCodes.SERVER_METADATA_INVALID));
    expect(relay).toMatch(/does not follow redirects to another origin/);
    // The real AS (per the IdP's policy) received the ID-JAG; the sink received nothing at all.
    expect(fakes['redirect-as']!.received.some((r) => r.body.includes('assertion='))).toBe(true);
    expect(fakes['as-sink']!.received).toEqual([]);
    report.push(`AS redirect: ${relay.slice(0, 160)}`);
  });
});

describe('enormous catalogs and broken JSON-RPC', () => {
  it('20,000 tools and a 6 MB schema: the listing is bounded, and the broker stays responsive', async () => {
    const started = performance.now();
    const tools = (await agg.listTools()).tools;
    const listMs = performance.now() - started;
    const names = tools.map((t) => t.name);
    const size = Buffer.byteLength(JSON.stringify(tools));
    report.push(
      `catalog: tools/list on /mcp → ${tools.length} tools, ${(size / 1024 / 1024).toFixed(1)} MB, ${listMs.toFixed(0)} ms; many-tools: ${names.filter((n) => n.startsWith('many-tools')).length}; huge-schema: ${names.filter((n) => n.startsWith('huge-schema')).join(',')}`,
    );
    // Bounded: at most MAX_CATALOG_ITEMS of one server, no definition over MAX_CATALOG_ITEM_BYTES, and the log says so.
    expect(names.filter((n) => n.startsWith('many-tools__')).length).toBe(MAX_CATALOG_ITEMS);
    expect(names).toContain('huge-schema__small');
    expect(names).not.toContain('huge-schema__big');
    expect(size).toBeLessThan(2 * 1024 * 1024);
    expect(lanyard.logs.filter((l) => l.includes('server catalog bounded')).join('\n')).toMatch(
      /many-tools[\s\S]*huge-schema|huge-schema[\s\S]*many-tools/,
    );
    // The honest servers are there, and calls keep working at once.
    expect(names).toEqual(expect.arrayContaining(['todo__echo', 'wiki__echo']));
    const t = performance.now();
    expect(textOf(await agg.callTool({ name: 'todo__echo', arguments: { text: 'responsive' } }))).toBe('echo: responsive');
    expect(performance.now() - t).toBeLessThan(2_000);
  });

  it('invalid JSON-RPC from a server: a clear error for each kind, nothing else affected', async () => {
    const started = performance.now();
    const texts = Object.fromEntries(
      await Promise.all(
        Object.keys(BROKEN_ANSWERS).map(async (kind) => {
          const r = await callAgg(`broken-${kind}__anything`);
          expect(r.ok, kind).toBe(false);
          return [kind, r.text] as const;
        }),
      ),
    );
    for (const [kind, text] of Object.entries(texts)) {
      report.push(`broken JSON-RPC (${kind}): ${text.slice(0, 160)}`);
      expect(text, kind).toMatch(new RegExp(`^Server "broken-${kind}" `));
      // A wrong id is no answer at all: the initialize runs out its budget. Every other shape is named for what it is.
      expect(text, kind).toMatch(BROKEN_ANSWERS[kind as keyof typeof BROKEN_ANSWERS].said);
      expect(text, kind).not.toMatch(/invalid_union|"code":|\\u0000/);
    }
    expect(performance.now() - started).toBeLessThan(8_000);
    expect((await callAgg('wiki__echo')).ok).toBe(false); // wiki__echo needs arguments: a protocol error from wiki itself
    expect(textOf(await agg.callTool({ name: 'wiki__echo', arguments: { text: 'fine' } }))).toBe('echo: fine');
  });
});

describe('after all of it', () => {
  it('no secret reached any fake party, and nothing was sent off this machine', () => {
    for (const [name, party] of Object.entries(fakes)) {
      if (name === 'redirect-as' || name === 'redirect-mcp') continue; // legitimate parties for their own credentials
      expect(leakedTo(party), name).toEqual([]);
    }
    expect(spy.offLoopback).toEqual([]);
    // The honest servers only ever saw Lanyard-minted bearer tokens, never the local token.
    for (const id of ['todo', 'wiki'])
      for (const value of sandbox.server(id).mcp.seenAuthorization) expect(value).not.toContain(lanyard.token);
  });
});
