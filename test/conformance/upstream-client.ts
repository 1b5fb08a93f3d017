/**
 * The MCP conformance suite's client for the scenarios that test an MCP client's protocol behaviour (initialize,
 * tools_call, sse-retry, request-metadata, the SEP-2243 header scenarios, the JSON Schema ones, MRTR request state),
 * played by Lanyard's own upstream side — the UpstreamPool with its catalog session and a bound session for one IDE
 * session (electron/broker/gateway/upstream), exactly as the gateway uses them — not by a bare SDK client. The suite
 * runs it as `<command> <server-url>` with the scenario in MCP_CONFORMANCE_SCENARIO and its data in
 * MCP_CONFORMANCE_CONTEXT.
 *
 * It does what the gateway does when an IDE connects and works: list the server's catalog (tools, prompts,
 * resources), then call tools (those the scenario names in its context, else every listed tool with arguments made
 * from its input schema), read a resource and get a prompt — through the IDE session's bound session, with an IDE
 * that accepts every elicitation (filling in the schema's defaults or simple values).
 */
import type { ElicitRequest, ElicitResult, Tool } from '@modelcontextprotocol/client';
import type { DownstreamPeer } from '../../electron/broker/gateway/upstream/bound-peer';
import { UpstreamPool } from '../../electron/broker/gateway/upstream/pool';
import { createLogger } from '../../electron/broker/util/log';

interface Context {
  toolCalls?: Array<{ name: string; arguments?: Record<string, unknown> }>;
}

type JsonSchema = { type?: unknown; properties?: Record<string, JsonSchema>; required?: string[]; default?: unknown; enum?: unknown[] };

/** A value a schema accepts: its default, its first enum member, or a simple value of its type. */
function sample(schema: JsonSchema | undefined): unknown {
  if (!schema) return 'x';
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  switch (Array.isArray(schema.type) ? schema.type[0] : schema.type) {
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return argumentsFor(schema);
    default:
      return 'x';
  }
}

function argumentsFor(schema: JsonSchema | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(schema?.properties ?? {})) {
    if (schema?.required?.includes(name) || property.default !== undefined) out[name] = sample(property);
  }
  return out;
}

/** The IDE side of elicitation: accept, with every requested field filled. */
async function accept(params: ElicitRequest['params']): Promise<ElicitResult> {
  const schema = (params as { requestedSchema?: JsonSchema }).requestedSchema;
  const content: Record<string, string | number | boolean | string[]> = {};
  for (const [name, property] of Object.entries(schema?.properties ?? {})) content[name] = sample(property) as string | number | boolean;
  return { action: 'accept', content };
}

async function main(): Promise<void> {
  const serverUrl = process.argv.at(-1);
  if (!serverUrl || !/^https?:\/\//.test(serverUrl)) throw new Error('usage: upstream-client <server-url>');
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as Context;
  const log = createLogger({
    level: process.env.LANYARD_CONFORMANCE_DEBUG ? 'debug' : 'error',
    sink: (line) => process.stderr.write(`${line}\n`),
  });
  const pool = new UpstreamPool({
    // The scenario servers need no token: the token service's place is taken by the plain fetch.
    tokens: { authorizedFetch: (_serverId, base) => base ?? fetch },
    clientInfo: { name: 'lanyard-conformance', version: '0.1.0' },
    log,
    requestTimeoutMs: 20_000,
    connectTimeoutMs: 20_000,
  });
  const serverId = 'conformance';
  pool.setServers([{ id: serverId, name: 'Conformance scenario', url: serverUrl }]);
  // The IDE speaks the revision under test: at 2026-07-28 a 2026 IDE's bound session (gateway/mcp-2026), which
  // negotiates as the catalog does; at 2025-11-25 a 2025 IDE's, which asks for initialize first.
  const modernIde = (process.env.MCP_CONFORMANCE_PROTOCOL_VERSION ?? '2025-11-25') >= '2026-07-28';
  const peer: DownstreamPeer = {
    ...(modernIde ? { era: 'modern' as const } : {}),
    id: 'conformance-ide',
    clientName: 'Conformance IDE',
    capabilities: { elicitation: {} },
    elicit: (params) => accept(params),
    sample: () => Promise.reject(new Error('the conformance IDE does not sample')),
    listRoots: async () => ({ roots: [] }),
    notify: async () => undefined,
  };
  try {
    const catalog = await pool.ensureCatalog(serverId);
    const bound = pool.attach(peer);
    const options = () => ({ signal: AbortSignal.timeout(20_000), target: peer });
    const tryIt = async (what: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (e) {
        // One refused call (a tool the scenario expects to fail) does not end the run.
        process.stderr.write(`lanyard conformance client: ${what}: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    };
    const calls: Array<{ name: string; arguments: Record<string, unknown> }> = context.toolCalls?.length
      ? context.toolCalls.map((c) => ({ name: c.name, arguments: c.arguments ?? {} }))
      : catalog.tools.map((tool: Tool) => ({ name: tool.name, arguments: argumentsFor(tool.inputSchema as JsonSchema) }));
    if (process.env.MCP_CONFORMANCE_SCENARIO === 'json-schema-2020-12-preservation') {
      // The scenario reads back the focal tool's inputSchema as Lanyard's catalog holds it (what IDEs are shown),
      // passed to its echo tool: every JSON Schema 2020-12 keyword must have survived the listing.
      const echo = catalog.tools.find((t) => (t.inputSchema as JsonSchema).required?.includes('schema'));
      const focal = catalog.tools.find((t) => t !== echo);
      if (echo && focal) calls.splice(0, calls.length, { name: echo.name, arguments: { schema: focal.inputSchema } });
    }
    for (const c of calls) await tryIt(`tools/call ${c.name}`, () => bound.request(serverId, 'tools/call', c, options()));
    const resource = catalog.resources[0];
    if (resource) await tryIt('resources/read', () => bound.request(serverId, 'resources/read', { uri: resource.uri }, options()));
    const prompt = catalog.prompts[0];
    if (prompt) {
      const args: Record<string, string> = {};
      for (const a of prompt.arguments ?? []) if (a.required) args[a.name] = 'x';
      await tryIt('prompts/get', () => bound.request(serverId, 'prompts/get', { name: prompt.name, arguments: args }, options()));
    }
    await bound.close();
  } finally {
    await pool.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`lanyard conformance client: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
