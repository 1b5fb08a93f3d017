import { SdkError, SdkErrorCode, type JSONRPCMessage } from '@modelcontextprotocol/client';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { SseReader } from '../aggregate/raw-json';
import { nodeBodyOf } from '../relay-transport';
import type { UpstreamLane } from './session';

/**
 * A catalog list request (tools/list, prompts/list, resources/list, resources/templates/list) sent as raw JSON-RPC on
 * a connected 2025-11-25 Streamable HTTP session's lane: one POST, the answer (JSON or SSE) read from the Node stream
 * and parsed once. The SDK client's own path reads the answer through web streams and validates the whole result
 * against its schema; at start-up that is most of the broker's CPU for 50 servers (bench/results/evidence.md). Here
 * each item gets the structural check IDEs rely on instead (`wellFormed`).
 *
 * Anything unusual returns undefined, and the caller asks again through the SDK client, which keeps every behaviour
 * as it was: a non-200 answer (a forgotten session, a token refused), a JSON-RPC error (including method not found),
 * an item that does not pass the check, a body that is not JSON-RPC. A timeout is the SDK's timeout error, as the SDK
 * path would report it (asking again would double the wait). Messages the server sends on the
 * answer's stream before it (log messages, list_changed) are handed to the session's SDK client as if it had read them.
 */
export async function rawList(lane: UpstreamLane, method: string, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
  const id = `lanyard-list-${randomUUID()}`;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (lane.sessionId) headers['mcp-session-id'] = lane.sessionId;
  if (lane.protocolVersion) headers['mcp-protocol-version'] = lane.protocolVersion;
  const release = lane.hold();
  const signal = AbortSignal.timeout(timeoutMs);
  let answer: JSONRPCMessage | undefined;
  let linger: NodeJS.Timeout | undefined;
  try {
    const response = await lane.fetch(lane.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id, method, params: {} }),
      signal,
    });
    const body = nodeBodyOf(response) ?? (response.body ? Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>) : undefined);
    const type = (response.headers.get('content-type') ?? '').toLowerCase();
    const eventStream = type.startsWith('text/event-stream');
    if (response.status !== 200 || !body || (!eventStream && !type.startsWith('application/json'))) {
      body?.resume();
      return undefined;
    }
    const take = (data: Buffer) => {
      let message: JSONRPCMessage;
      try {
        message = JSON.parse(data.toString('utf8')) as JSONRPCMessage;
      } catch {
        return;
      }
      if ('method' in message) {
        if (!answer) lane.inject(message);
      } else if ((message as { id?: unknown }).id === id && !answer) {
        answer = message;
        // The rest of the stream is drained, so its socket goes back to the pool; a server that keeps the stream
        // open after answering gets it closed instead of holding the list up.
        linger = setTimeout(() => body.destroy(), ANSWERED_STREAM_LINGER_MS);
        linger.unref?.();
      }
    };
    if (eventStream) {
      const reader = new SseReader(take);
      for await (const chunk of body) if (!answer) reader.push(chunk as Buffer);
    } else {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      take(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    }
    return checked(lane, method, answer);
  } catch (e) {
    // A stream closed or broken after the answer arrived still answered.
    if (answer) return checked(lane, method, answer);
    if (signal.aborted)
      throw new SdkError(SdkErrorCode.RequestTimeout, `${method} timed out after ${timeoutMs} ms`, { timeout: timeoutMs }, { cause: e });
    return undefined;
  } finally {
    clearTimeout(linger);
    release();
  }
}

/** How long a list's SSE stream may stay open after its answer before it is closed. */
const ANSWERED_STREAM_LINGER_MS = 1_000;

function checked(lane: UpstreamLane, method: string, answer: JSONRPCMessage | undefined): Record<string, unknown> | undefined {
  const result = (answer as { result?: unknown } | undefined)?.result;
  if (!result || typeof result !== 'object' || Array.isArray(result)) return undefined;
  lane.succeeded();
  return wellFormed(method, result as Record<string, unknown>) ? (result as Record<string, unknown>) : undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optional = (v: unknown, check: (x: unknown) => boolean) => v === undefined || check(v);
const isString = (v: unknown) => typeof v === 'string';
const isStringArray = (v: unknown) => Array.isArray(v) && v.every(isString);

/** The common optional members of every listed item (BaseMetadata, Icons, `_meta`). */
function baseFields(item: Record<string, unknown>): boolean {
  return (
    isString(item.name) &&
    optional(item.title, isString) &&
    optional(item.description, isString) &&
    optional(item._meta, isObject) &&
    optional(item.icons, Array.isArray) &&
    optional(item.annotations, isObject)
  );
}

function objectSchema(v: unknown): boolean {
  return isObject(v) && v.type === 'object' && optional(v.properties, isObject) && optional(v.required, isStringArray);
}

const ITEMS: Record<string, { key: string; check: (item: Record<string, unknown>) => boolean }> = {
  'tools/list': {
    key: 'tools',
    check: (t) => baseFields(t) && objectSchema(t.inputSchema) && optional(t.outputSchema, objectSchema) && optional(t.execution, isObject),
  },
  'prompts/list': {
    key: 'prompts',
    check: (p) => baseFields(p) && optional(p.arguments, (a) => Array.isArray(a) && a.every((x) => isObject(x) && isString(x.name))),
  },
  'resources/list': {
    key: 'resources',
    check: (r) => baseFields(r) && isString(r.uri) && optional(r.mimeType, isString) && optional(r.size, (s) => typeof s === 'number'),
  },
  'resources/templates/list': {
    key: 'resourceTemplates',
    check: (r) => baseFields(r) && isString(r.uriTemplate) && optional(r.mimeType, isString),
  },
};

/**
 * The shape IDEs (and the SDK client's own result check) rely on: the list is an array of objects with the required
 * members typed as the MCP schema says, and the optional ones either absent or of the right kind; the pagination cursor
 * and caching hints as typed. Deeper contents (a JSON Schema's inner properties, icon entries) are passed on as the
 * server wrote them, as the SDK's schema does too.
 */
export function wellFormed(method: string, result: Record<string, unknown>): boolean {
  const spec = ITEMS[method];
  if (!spec) return false;
  const items = result[spec.key];
  if (!Array.isArray(items)) return false;
  if (!optional(result.nextCursor, isString) || !optional(result._meta, isObject)) return false;
  if (!optional(result.ttlMs, (v) => typeof v === 'number') || !optional(result.cacheScope, isString)) return false;
  for (const item of items) if (!isObject(item) || !spec.check(item)) return false;
  return true;
}
