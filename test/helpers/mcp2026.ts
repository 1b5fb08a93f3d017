/**
 * Raw MCP requests for the tests that play an IDE by hand — what the SDK client would never send, or refuses to read
 * (a `resultType: "task"` answer): the 2026-07-28 `_meta` envelope, its routing headers (`Mcp-Method`, `Mcp-Name`), one
 * POST, the JSON-RPC message of its answer, and the SSE framing of a stream. See docs/protocol.md for what the gateway
 * does with each.
 */

export const MCP_2026 = '2026-07-28';
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/** A raw JSON-RPC answer: tests read nested fields of results and errors as they come off the wire. */
export type Wire = { result?: any; error?: { code: number; message: string; data?: any } }; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The `_meta` envelope every 2026-07-28 request carries: the revision, the client and what it can do. */
export function envelope(name: string, capabilities: unknown, version = '1.0.0'): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': MCP_2026,
    'io.modelcontextprotocol/clientInfo': { name, version },
    'io.modelcontextprotocol/clientCapabilities': capabilities,
  };
}

/** The headers of a 2026-07-28 POST (without the local token): the body's method and, when it has one, its name. */
export function headers2026(method?: string, name?: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MCP_2026,
    ...(method !== undefined ? { 'mcp-method': method } : {}),
    ...(name !== undefined ? { 'mcp-name': name } : {}),
  };
}

/** The `Mcp-Name` of a request: a task method's task id, else the tool's or prompt's name. */
export function mcpNameOf(params: unknown): string | undefined {
  const p = params as { taskId?: unknown; name?: unknown } | undefined;
  return typeof p?.taskId === 'string' ? p.taskId : typeof p?.name === 'string' ? p.name : undefined;
}

/**
 * One raw POST. A message object gets its `Mcp-Method` and `Mcp-Name` from its method and params; a string body is sent
 * as it is, with the routing headers given. `headers` come last (any case), so a test can send ones that disagree.
 */
export async function post2026(
  url: string,
  token: string,
  message: unknown,
  options: { method?: string; name?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<{ status: number; type: string; text: string }> {
  const parsed = typeof message === 'string' ? undefined : (message as { method?: string; params?: unknown });
  const method = options.method ?? parsed?.method;
  const name = options.name ?? mcpNameOf(parsed?.params);
  const extra = Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, ...headers2026(method, name), ...extra },
    body: typeof message === 'string' ? message : JSON.stringify(message),
    signal: options.signal ?? null,
  });
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** The JSON-RPC message of an answer body: the body itself when it is JSON, else the first SSE `data: ` line's data. */
export function messageText(raw: string, none = 'null'): string {
  if (raw.startsWith('{') || raw.startsWith('[')) return raw;
  return (raw.split('\n').find((l) => l.startsWith('data: ')) ?? `data: ${none}`).slice(6);
}

/** One 2026-07-28 request with its envelope, and its answer's message. */
export async function rpc2026(
  url: string,
  token: string,
  request: { id: number | string; method: string; params: Record<string, unknown>; meta: Record<string, unknown> },
): Promise<{ status: number; json: Wire }> {
  const { id, method, params, meta } = request;
  const answer = await post2026(url, token, { jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } });
  return { status: answer.status, json: JSON.parse(messageText(answer.text)) as Wire };
}

/** One event of a text/event-stream body. */
export interface SseEvent {
  id?: string;
  retry?: string;
  data: string;
}

/** A whole text/event-stream body, event by event (its `id`, `retry` and joined `data` lines). */
export function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const event: SseEvent = { data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'retry') event.retry = value;
        else if (field === 'data') data.push(value);
      }
      event.data = data.join('\n');
      return event;
    });
}

/** The JSON-RPC messages of a stream's events (a priming event's empty data is none). */
export const messagesOf = (events: SseEvent[]) =>
  events.filter((e) => e.data.trim() !== '').map((e) => JSON.parse(e.data) as { id?: unknown; method?: string; result?: unknown });
