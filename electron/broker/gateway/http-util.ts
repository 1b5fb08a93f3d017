import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode, ErrorInfo } from '../../../shared/errors';

/**
 * The HTTP helpers every local endpoint shares (the MCP front door, the relay, `/mcp`'s IDE sessions and the control
 * API): one bounded body reader with a typed too-large error, and one JSON-RPC error writer with one `data` shape.
 */

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** A request body crossed its limit: callers answer 413 on this type, never on a message. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
  }
}

/** The body was not valid JSON (or the connection broke while it was read). */
export class BodyNotJsonError extends Error {
  override readonly name = 'BodyNotJsonError';
}

/**
 * Reads a request body up to `limit` bytes (the declared Content-Length is checked first, then the bytes as they
 * arrive, so a chunked body cannot get past the limit) and parses it as JSON. An empty body is `undefined` with
 * `allowEmpty`, else not JSON. Rejects with BodyTooLargeError or BodyNotJsonError.
 *
 * Past the limit it stops reading (pauses the request) and rejects; the caller answers 413 with refuseTooLarge, which
 * closes the connection once the answer is out.
 */
export function readJsonBody(
  req: IncomingMessage,
  limit: number = DEFAULT_MAX_BODY_BYTES,
  options: { allowEmpty?: boolean } = {},
): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      done();
      req.pause();
      reject(new BodyTooLargeError(limit));
    };
    const onEnd = () => {
      done();
      const text = Buffer.concat(chunks, size).toString('utf8');
      if (!text.trim() && options.allowEmpty) {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text) as unknown);
      } catch (e) {
        reject(new BodyNotJsonError('the request body is not valid JSON', { cause: e }));
      }
    };
    const onError = (e: Error) => {
      done();
      reject(new BodyNotJsonError('the request body could not be read', { cause: e }));
    };
    const onClose = () => onError(new Error('the connection closed before the body was complete'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * The `data` of every JSON-RPC error Lanyard itself writes on `/mcp` and `/mcp/<id>`: the stable error code and the fix
 * (the same fields as shared ErrorInfo), and the server it concerns. Front-door refusals add `reason`.
 */
export interface JsonRpcErrorData {
  code: ErrorCode;
  fix?: string | undefined;
  serverId?: string | undefined;
  reason?: string | undefined;
}

/** A JSON answer that no cache keeps (the body may be an error meant for this request only). */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

/**
 * Sends a JSON-RPC error response (`id: null`: the endpoint answers before, or instead of, reading the request). When
 * the response has already started, the connection is cut instead (the client sees a break, never a garbled body).
 */
export function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  data?: JsonRpcErrorData,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message, ...(data ? { data: compact(data) } : {}) }, id: null }, headers);
}

/** 413 for a body past `limit`, then the connection closes (a refused body is not read to its end). */
export function refuseTooLarge(req: IncomingMessage, res: ServerResponse, limit: number): void {
  sendJsonRpcError(res, 413, -32600, `Request body too large (limit ${limit} bytes).`, undefined, { Connection: 'close' });
  res.on('finish', () => req.destroy());
}

function compact(data: JsonRpcErrorData): JsonRpcErrorData {
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined)) as unknown as JsonRpcErrorData;
}

/**
 * A Lanyard error as a JSON-RPC error object: the message with its fix and stable code (IDEs display the message
 * only), and the data above for clients that act on the code.
 */
export function jsonRpcErrorFor(info: ErrorInfo, code = -32603): { code: number; message: string; data: JsonRpcErrorData } {
  return {
    code,
    message: `${info.message} Fix: ${info.fix} (Lanyard error code: ${info.code})`,
    data: compact({ code: info.code, fix: info.fix, serverId: info.serverId }),
  };
}

/** A Lanyard error as the text of a tool result with isError (a failed tools/call, as IDEs show it). */
export function toolErrorText(info: ErrorInfo): string {
  return `${info.message}\nFix: ${info.fix}\n(Lanyard error code: ${info.code})`;
}
