import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type RequestId,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/client';
import { STREAM_ENDED_MARK } from './errors';
import { carryTaskHandle } from '../mcp-2026/task-handles';

/**
 * The largest `requestState` an input_required result may carry. The state is opaque and echoed byte for byte on
 * every round; real ones (a signed or encrypted blob) are a few KiB. One of megabytes would be held and re-sent on each
 * retry of each call, so it is refused as a broken answer instead.
 */
export const MAX_REQUEST_STATE_CHARS = 256 * 1024;

/** JSON-RPC error data marking an input_required result Lanyard refused (its requestState was over the limit). */
export const REQUEST_STATE_TOO_LARGE_MARK = 'lanyard:request_state_too_large';

/**
 * A result's `ttlMs` as the caching spec says to read it: a negative (or fractional) value counts as 0 rather than
 * making the SDK refuse the whole result (https://modelcontextprotocol.io/specification/2026-07-28/server/utilities/caching).
 * A huge one is bounded where it is used (the catalog).
 */
function withUsableTtl(message: JSONRPCMessage): JSONRPCMessage {
  if (!isJSONRPCResultResponse(message)) return message;
  const ttl = (message.result as { ttlMs?: unknown }).ttlMs;
  if (typeof ttl !== 'number' || (Number.isInteger(ttl) && ttl >= 0)) return message;
  return { ...message, result: { ...message.result, ttlMs: Number.isFinite(ttl) && ttl > 0 ? Math.floor(ttl) : 0 } };
}

/** An input_required result whose requestState is over the limit, turned into an error answer to the same request. */
function oversizedRequestState(message: JSONRPCMessage): JSONRPCMessage | undefined {
  if (!isJSONRPCResultResponse(message)) return undefined;
  const result = message.result as { resultType?: unknown; requestState?: unknown };
  if (result.resultType !== 'input_required' || typeof result.requestState !== 'string') return undefined;
  if (result.requestState.length <= MAX_REQUEST_STATE_CHARS) return undefined;
  return {
    jsonrpc: '2.0',
    id: message.id,
    error: {
      code: -32603,
      message: `The server asked for input with a requestState of ${result.requestState.length} characters; Lanyard accepts at most ${MAX_REQUEST_STATE_CHARS}.`,
      data: { lanyard: REQUEST_STATE_TOO_LARGE_MARK },
    },
  };
}

/**
 * The SDK transport's way of saying that the connection itself is gone: its SSE stream (the session's GET stream,
 * or a resumable response stream) could not be re-opened. Anything else it reports is about one message.
 */
const CONNECTION_LOST = /Maximum reconnection attempts|Failed to reconnect SSE stream/;

/**
 * Wraps an SDK client transport with the two things a long-lived proxy needs and the SDK's 2025-era protocol layer
 * does not do:
 *   - a request whose response stream ends without an answer (the server crashed or restarted mid-call) is answered
 *     at once with a marked JSON-RPC error, instead of hanging until its timeout;
 *   - loss of the whole connection (the GET stream cannot be re-opened, or the legacy SSE stream closed) is reported
 *     through `onLost`, so the owner can set up a new session in the background.
 */
export class GuardedTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage, extra?: MessageExtraInfo) => void) | undefined;
  /** Requests sent and not yet answered. */
  private readonly pending = new Set<RequestId>();
  private closing = false;

  constructor(
    readonly inner: Transport,
    private readonly onLost: (reason: string) => void,
  ) {
    inner.onmessage = (message, extra) => {
      if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) this.pending.delete(message.id as RequestId);
      // A task handle (2026-07-28 tasks extension) reaches the 2026 endpoint through the SDK: mcp-2026/task-handles.ts.
      this.onmessage?.(oversizedRequestState(message) ?? carryTaskHandle(withUsableTtl(message)), extra);
    };
    inner.onerror = (error) => {
      if (!this.closing && CONNECTION_LOST.test(error.message)) this.onLost(error.message);
      this.onerror?.(error);
    };
    inner.onclose = () => {
      if (!this.closing) this.onLost('the connection closed');
      this.onclose?.();
    };
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  setProtocolVersion(version: string): void {
    this.inner.setProtocolVersion?.(version);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.pending.clear();
    await this.inner.close();
  }

  /** Ends the session at the server (Streamable HTTP DELETE), when the transport supports it. */
  async terminateSession(): Promise<void> {
    const inner = this.inner as Transport & { terminateSession?: () => Promise<void> };
    await inner.terminateSession?.();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
      // A cancelled request gets no answer by design (the server SHOULD NOT respond): not a stream failure.
      const requestId = (message.params as { requestId?: RequestId } | undefined)?.requestId;
      if (requestId !== undefined) this.pending.delete(requestId);
    }
    if (!isJSONRPCRequest(message)) return this.inner.send(message, options);
    const id = message.id;
    this.pending.add(id);
    try {
      await this.inner.send(message, { ...options, onRequestStreamEnd: () => this.streamEnded(id) });
    } catch (e) {
      this.pending.delete(id);
      throw e;
    }
  }

  private streamEnded(id: RequestId): void {
    if (!this.pending.delete(id) || this.closing) return;
    this.onmessage?.({
      jsonrpc: '2.0',
      id,
      error: { code: -32000, message: 'The server closed the response stream without answering.', data: { lanyard: STREAM_ENDED_MARK } },
    });
  }
}
