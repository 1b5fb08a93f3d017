/**
 * Minimal MCP-over-HTTP requests with plain fetch, for the parts of the benchmark where an SDK client would measure
 * itself (500 concurrent first calls; a 5,000-tool list, where the SDK client's own schema validation would dominate).
 */

export interface RpcReply {
  status: number;
  sessionId: string | undefined;
  /** The JSON-RPC response (from a JSON body or the SSE stream), if one came. */
  message: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string } } | undefined;
  bytes: number;
}

const ACCEPT = 'application/json, text/event-stream';

export async function postRpc(
  url: string,
  token: string,
  body: unknown,
  session?: { id?: string | undefined; protocolVersion?: string | undefined },
  signal?: AbortSignal,
): Promise<RpcReply> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT };
  if (session?.id) headers['mcp-session-id'] = session.id;
  if (session?.protocolVersion) headers['mcp-protocol-version'] = session.protocolVersion;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let message: RpcReply['message'];
  if (type.startsWith('application/json') && text) message = JSON.parse(text) as RpcReply['message'];
  else if (type.startsWith('text/event-stream')) {
    // The response is the event whose data carries our id; notifications before it are skipped.
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      const parsed = JSON.parse(data) as NonNullable<RpcReply['message']>;
      if (parsed.id !== undefined && ('result' in parsed || 'error' in parsed)) message = parsed;
    }
  }
  return { status: response.status, sessionId: response.headers.get('mcp-session-id') ?? undefined, message, bytes: text.length };
}

export interface RawSession {
  url: string;
  token: string;
  id: string | undefined;
  protocolVersion: string;
  /** Bounds every request of the session (a hung request fails instead of waiting for undici's 300 s). */
  signal?: AbortSignal | undefined;
}

/** Which step of a session failed, for the benchmark's error summary. */
export class RawStepError extends Error {
  constructor(
    readonly step: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${step}: ${message}`, options);
  }
}

const describe = (e: unknown) => {
  const cause = e instanceof Error && e.cause instanceof Error ? ` (${(e.cause as NodeJS.ErrnoException).code ?? e.cause.message})` : '';
  return `${e instanceof Error ? (e.name === 'TimeoutError' ? 'timed out' : e.message) : String(e)}${cause}`;
};

let nextId = 1;

/** initialize + notifications/initialized; throws unless the server answered. */
export async function openRawSession(
  url: string,
  token: string,
  options: { clientName?: string; signal?: AbortSignal } = {},
): Promise<RawSession> {
  const body = {
    jsonrpc: '2.0',
    id: nextId++,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: options.clientName ?? 'lanyard-bench', version: '1.0.0' },
    },
  };
  const init = await postRpc(url, token, body, undefined, options.signal).catch((e: unknown) => {
    throw new RawStepError('initialize', describe(e), { cause: e });
  });
  if (init.status !== 200 || !init.message?.result)
    throw new RawStepError('initialize', `HTTP ${init.status} ${JSON.stringify(init.message?.error ?? '')}`);
  const session: RawSession = {
    url,
    token,
    id: init.sessionId,
    protocolVersion: String(init.message.result.protocolVersion ?? '2025-11-25'),
    signal: options.signal,
  };
  const notified = await postRpc(url, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, session, options.signal).catch(
    (e: unknown) => {
      throw new RawStepError('notifications/initialized', describe(e), { cause: e });
    },
  );
  if (notified.status !== 202 && notified.status !== 200) throw new RawStepError('notifications/initialized', `HTTP ${notified.status}`);
  return session;
}

export async function rawRequest(session: RawSession, method: string, params: Record<string, unknown> = {}): Promise<RpcReply> {
  const reply = await postRpc(session.url, session.token, { jsonrpc: '2.0', id: nextId++, method, params }, session, session.signal).catch(
    (e: unknown) => {
      throw new RawStepError(method, describe(e), { cause: e });
    },
  );
  if (reply.status !== 200 || !reply.message) throw new RawStepError(method, `HTTP ${reply.status}`);
  if (reply.message.error) throw new RawStepError(method, reply.message.error.message);
  return reply;
}
