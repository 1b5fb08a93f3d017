import type { Envelope, RequestId } from './line-guard';

/**
 * The HTTP headers an MCP 2026-07-28 message needs on its way from stdio to the broker's `/mcp`. Over stdio a
 * 2026-07-28 request carries its protocol version in `_meta` only; over HTTP the same request must also carry
 * `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and, for a tool whose input schema marks an argument with
 * `x-mcp-header`, `Mcp-Param-<Name>` (https://modelcontextprotocol.io/specification/2026-07-28/basic/transports). The
 * bridge derives them from the message, and learns the `x-mcp-header` declarations from the tools/list answers it
 * passes to the IDE. 2025-11-25 messages (no `_meta` protocol version) get nothing here.
 */

const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
/** The param each method's `Mcp-Name` mirrors. */
const NAME_SOURCE: Record<string, string> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};
const BASE64_PREFIX = '=?base64?';
const BASE64_SUFFIX = '?=';
/** Tools remembered at most (a tools/list of a large gateway is a few thousand). */
const MAX_TOOLS = 20_000;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A header value as the spec encodes it: plain ASCII as is, anything else as `=?base64?…?=` of its UTF-8. */
function encodeValue(value: string): string {
  const plain =
    value.length > 0 &&
    value === value.trim() &&
    !(value.startsWith(BASE64_PREFIX) && value.endsWith(BASE64_SUFFIX)) &&
    [...value].every((ch) => ch === '\t' || (ch >= ' ' && ch <= '~'));
  return plain ? value : `${BASE64_PREFIX}${Buffer.from(value, 'utf8').toString('base64')}${BASE64_SUFFIX}`;
}

function primitive(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value)))
    return String(value);
  return undefined;
}

export class ModernHeaders {
  /** Tool name → its `x-mcp-header` declarations (argument → header name). */
  private readonly declarations = new Map<string, Array<[string, string]>>();
  private readonly toolLists = new Set<RequestId>();

  /** The headers for one message from the IDE, or undefined for a 2025-11-25 message. */
  headersFor(message: Envelope): Record<string, string> | undefined {
    const params = message.params as { _meta?: Record<string, unknown>; arguments?: unknown } | undefined;
    const version = params?._meta?.[PROTOCOL_VERSION_META_KEY];
    if (typeof version !== 'string' || typeof message.method !== 'string') return undefined;
    const headers: Record<string, string> = { 'mcp-protocol-version': version, 'mcp-method': message.method };
    const source = NAME_SOURCE[message.method];
    const name = source ? (params as Record<string, unknown>)[source] : undefined;
    if (typeof name === 'string') headers['mcp-name'] = encodeValue(name);
    if (message.method === 'tools/list' && (typeof message.id === 'string' || typeof message.id === 'number'))
      this.toolLists.add(message.id);
    if (message.method === 'tools/call' && typeof name === 'string' && params?.arguments && typeof params.arguments === 'object') {
      const args = params.arguments as Record<string, unknown>;
      for (const [arg, header] of this.declarations.get(name) ?? []) {
        const value = primitive(args[arg]);
        if (value !== undefined) headers[`mcp-param-${header.toLowerCase()}`] = encodeValue(value);
      }
    }
    return headers;
  }

  /** One answer line on its way to the IDE: the answer to a tools/list teaches the tools' `x-mcp-header` arguments. */
  observe(data: string): void {
    if (this.toolLists.size === 0 || !data.includes('x-mcp-header')) {
      if (this.toolLists.size > 0) this.forgetAnswered(data);
      return;
    }
    let message: { id?: unknown; result?: { tools?: Array<{ name?: unknown; inputSchema?: { properties?: Record<string, unknown> } }> } };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {
      return;
    }
    if (!this.toolLists.delete(message.id as RequestId)) return;
    for (const tool of message.result?.tools ?? []) {
      if (typeof tool.name !== 'string') continue;
      const found: Array<[string, string]> = [];
      for (const [arg, schema] of Object.entries(tool.inputSchema?.properties ?? {})) {
        const header = (schema as { 'x-mcp-header'?: unknown } | null)?.['x-mcp-header'];
        if (typeof header === 'string' && HEADER_NAME.test(header)) found.push([arg, header]);
      }
      if (found.length) this.declarations.set(tool.name, found);
      else this.declarations.delete(tool.name);
      if (this.declarations.size > MAX_TOOLS) this.declarations.delete(this.declarations.keys().next().value!);
    }
  }

  /** A tools/list answered without any declaration: stop waiting for it (cheaply: only its id is looked at). */
  private forgetAnswered(data: string): void {
    const id = /^\{"(?:jsonrpc":"2\.0","id|id)":("(?:[^"\\]|\\.)*"|-?\d+)/.exec(data)?.[1];
    if (id === undefined) return;
    this.toolLists.delete(id.startsWith('"') ? (JSON.parse(id) as string) : Number(id));
  }
}
