import type { IncomingMessage, ServerResponse } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { ErrorCodes } from '../../../../shared/errors';
import { jsonRpcErrorFor, sendJsonRpcError, toolErrorText } from '../../gateway/http-util';
import { relayedResponseHeaders } from '../../gateway/relay-headers';
import { nodeBodyOf } from '../../gateway/relay-transport';
import { MAX_CATALOG_ITEM_BYTES, MAX_CATALOG_ITEMS } from '../../gateway/upstream/catalog';
import type { Logger } from '../../util/log';
import type { ToolDefinition } from './fingerprint';
import type { ToolGate } from './gate';

/**
 * Tool pinning on `/mcp/<id>`. The relay interprets nothing else, but what the IDE is shown of a server's tools must
 * be the same as on `/mcp`: a tools/call to a quarantined tool is answered here (a tool result with isError naming
 * the change and the review command, never forwarded), and a tools/list answer is read whole, filtered through the
 * same ToolGate (which also pins what it sees) and sent on. Everything else streams through untouched.
 */

export type RpcId = string | number;

export interface RelayVerdict {
  /** The answer to send instead of forwarding (every request in the body was a refused tools/call). */
  answer?: unknown;
  /** The ids of tools/list requests in the body: their answers are filtered. */
  listIds?: Set<RpcId>;
}

/** An upstream tools/list answer larger than this is refused rather than held in memory. */
export const MAX_LIST_ANSWER_BYTES = 64 * 1024 * 1024;

export interface RelayToolGate {
  inspect(serverId: string, body: Buffer | undefined): RelayVerdict | undefined;
  sendFiltered(serverId: string, response: Response, res: ServerResponse, listIds: Set<RpcId>): Promise<void>;
}

export function createRelayToolGate(gate: ToolGate, log: Logger): RelayToolGate {
  return {
    inspect(serverId, body) {
      if (!body?.length) return undefined;
      // Every relayed POST comes through here: a body is parsed only when it may list tools, or call a tool of a
      // server that has something held back (a native byte search decides; a false hit only costs the parse).
      const mayList = body.includes('"tools/list"');
      if (!mayList && !(gate.holdsBack(serverId) && body.includes('"tools/call"'))) return undefined;
      if (gate.policy() === 'off') return undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return undefined;
      }
      const messages = Array.isArray(parsed) ? parsed : [parsed];
      const listIds = new Set<RpcId>();
      const answers: unknown[] = [];
      let requests = 0;
      for (const m of messages) {
        const msg = m as { id?: unknown; method?: unknown; params?: { name?: unknown } } | null;
        if (typeof msg?.method !== 'string' || (typeof msg.id !== 'string' && typeof msg.id !== 'number')) continue;
        requests++;
        if (msg.method === 'tools/list') listIds.add(msg.id);
        if (msg.method === 'tools/call' && typeof msg.params?.name === 'string') {
          const refused = gate.refusal(serverId, msg.params.name);
          if (refused)
            answers.push({
              jsonrpc: '2.0',
              id: msg.id,
              result: { content: [{ type: 'text', text: toolErrorText({ ...refused.toInfo(), serverId }) }], isError: true },
            });
        }
      }
      // A batch mixing refused calls with others is refused whole: forwarding part of it would need a second answer.
      if (answers.length && answers.length === requests) return { answer: Array.isArray(parsed) ? answers : answers[0] };
      if (answers.length) {
        const error = jsonRpcErrorFor({
          code: ErrorCodes.TOOL_QUARANTINED,
          message: 'The batch calls a tool Lanyard holds back for review.',
          fix: 'Review it: run `lanyard tools review` (or open Review in the Lanyard dashboard).',
          serverId,
        });
        return {
          answer: messages
            .filter((m) => typeof (m as { method?: unknown } | null)?.method === 'string' && (m as { id?: unknown }).id !== undefined)
            .map((m) => ({ jsonrpc: '2.0', id: (m as { id: RpcId }).id, error })),
        };
      }
      return listIds.size ? { listIds } : undefined;
    },

    async sendFiltered(serverId, response, res, listIds) {
      let raw: Buffer;
      try {
        raw = decode(await readAll(response, MAX_LIST_ANSWER_BYTES), response.headers.get('content-encoding'));
      } catch (e) {
        log.warn('a tools/list answer could not be read for tool pinning', { serverId, error: e });
        sendJsonRpcError(
          res,
          502,
          -32000,
          `MCP server "${serverId}" sent a tools/list answer Lanyard could not check (${e instanceof Error ? e.message : 'unreadable'}). Fix: try again; if it persists, report it to the server's owner.`,
          { code: ErrorCodes.SERVER_UNREACHABLE, serverId },
        );
        return;
      }
      const sse = (response.headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream');
      const filterMessage = (message: unknown): unknown => {
        const msg = message as { id?: RpcId; result?: { tools?: unknown } } | null;
        if (!msg || msg.id === undefined || !listIds.has(msg.id) || !Array.isArray(msg.result?.tools)) return message;
        return {
          ...msg,
          result: { ...msg.result, tools: gate.filterTools(serverId, bounded(serverId, msg.result.tools as ToolDefinition[], log)) },
        };
      };
      let out: string;
      try {
        out = sse
          ? filterSse(raw.toString('utf8'), filterMessage)
          : JSON.stringify(mapJson(JSON.parse(raw.toString('utf8')), filterMessage));
      } catch {
        // Not JSON we can read: nothing of it reaches the IDE as a tool list unchecked.
        sendJsonRpcError(res, 502, -32000, `MCP server "${serverId}" sent a tools/list answer that is not valid JSON.`, {
          code: ErrorCodes.SERVER_UNREACHABLE,
          serverId,
        });
        return;
      }
      const headers = relayedResponseHeaders(response.headers, true);
      delete headers['content-length'];
      res.writeHead(response.status, { ...headers, 'content-length': String(Buffer.byteLength(out)) });
      res.end(out);
    },
  };
}

/** The same bounds `/mcp` puts on a server's catalog (upstream/catalog.ts): oversized definitions out, then a count cap. */
function bounded(serverId: string, tools: ToolDefinition[], log: Logger): ToolDefinition[] {
  const fitting = tools.filter((t) => JSON.stringify(t).length <= MAX_CATALOG_ITEM_BYTES);
  const out = fitting.length > MAX_CATALOG_ITEMS ? fitting.slice(0, MAX_CATALOG_ITEMS) : fitting;
  if (out.length < tools.length)
    log.warn('server catalog bounded: definitions left out', {
      serverId,
      oversized: tools.length - fitting.length,
      beyondLimit: fitting.length - out.length,
      maxItems: MAX_CATALOG_ITEMS,
      maxItemBytes: MAX_CATALOG_ITEM_BYTES,
    });
  return out;
}

function mapJson(parsed: unknown, f: (m: unknown) => unknown): unknown {
  return Array.isArray(parsed) ? parsed.map(f) : f(parsed);
}

/** Rewrites the `data:` of each SSE event that carries a tools/list answer; ids, event names and comments stay as they were. */
function filterSse(text: string, f: (m: unknown) => unknown): string {
  const events = text.split(/(\r?\n\r?\n)/);
  return events
    .map((chunk) => {
      const lines = chunk.split(/\r?\n/);
      const dataLines = lines.filter((l) => l.startsWith('data:'));
      if (!dataLines.length) return chunk;
      const data = dataLines.map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        return chunk;
      }
      const mapped = mapJson(parsed, f);
      if (mapped === parsed) return chunk;
      const first = lines.findIndex((l) => l.startsWith('data:'));
      const kept = lines.filter((l, i) => !l.startsWith('data:') || i === first);
      return kept.map((l, i) => (i === first ? `data: ${JSON.stringify(mapped)}` : l)).join('\n');
    })
    .join('');
}

async function readAll(response: Response, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const take = (chunk: Uint8Array) => {
    size += chunk.length;
    if (size > limit) throw new Error(`answer larger than ${Math.round(limit / 1024 / 1024)} MB`);
    chunks.push(Buffer.from(chunk));
  };
  const node: IncomingMessage | undefined = nodeBodyOf(response);
  if (node) {
    try {
      for await (const chunk of node) take(chunk as Buffer);
    } catch (e) {
      node.destroy();
      throw e;
    }
  } else if (response.body) {
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        take(value);
      }
    } catch (e) {
      await reader.cancel().catch(() => undefined);
      throw e;
    }
  }
  return Buffer.concat(chunks, size);
}

function decode(raw: Buffer, encoding: string | null): Buffer {
  switch ((encoding ?? 'identity').trim().toLowerCase()) {
    case 'identity':
    case '':
      return raw;
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(raw, { maxOutputLength: MAX_LIST_ANSWER_BYTES });
    case 'deflate':
      return inflateSync(raw, { maxOutputLength: MAX_LIST_ANSWER_BYTES });
    case 'br':
      return brotliDecompressSync(raw, { maxOutputLength: MAX_LIST_ANSWER_BYTES });
    default:
      throw new Error(`unsupported content-encoding ${encoding}`);
  }
}
