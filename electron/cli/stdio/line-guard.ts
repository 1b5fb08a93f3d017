import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** JSON-RPC's own error codes for input that is not a message. */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
/** A line longer than this is dropped with an error (the MCP SDK's stdio read buffer has the same bound). */
export const MAX_LINE_BYTES = 10 * 1024 * 1024;

export type RequestId = string | number;
/** One JSON-RPC 2.0 message as read from stdin: its raw line (forwarded as is) and the parsed envelope. */
export type Envelope = { jsonrpc: '2.0'; id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };

/**
 * Splits stdin into lines and passes on only lines that are JSON-RPC messages, each with its parsed envelope (so the
 * bridge reads the id and method without parsing again). The MCP client deserves an answer for what it sent, so a
 * malformed line gets a JSON-RPC parse error (-32700) and a JSON value that is not a message gets invalid request
 * (-32600) — and the bridge stays up.
 */
export class LineReader {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');
  onMessage: (line: string, message: Envelope) => void = () => undefined;
  onInvalid: (code: number, message: string, id?: RequestId) => void = () => undefined;

  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    // Only the new text can hold the next newline: a long line arriving in many chunks is not rescanned.
    let newline = text.indexOf('\n');
    if (newline < 0) {
      this.pending += text;
    } else {
      let line = this.pending + text.slice(0, newline);
      let from = newline + 1;
      for (;;) {
        this.line(line);
        newline = text.indexOf('\n', from);
        if (newline < 0) break;
        line = text.slice(from, newline);
        from = newline + 1;
      }
      this.pending = text.slice(from);
    }
    if (this.pending.length >= MAX_LINE_BYTES / 4 && Buffer.byteLength(this.pending) > MAX_LINE_BYTES) {
      this.pending = '';
      this.onInvalid(PARSE_ERROR, `Parse error: a message longer than ${MAX_LINE_BYTES} bytes was dropped.`);
    }
  }

  end(): void {
    this.pending += this.decoder.end();
    // A last message without its newline is still a message.
    if (this.pending.trim() !== '') this.line(this.pending);
    this.pending = '';
  }

  private line(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    // A line that arrived whole in one chunk escapes the check in push().
    if (line.length >= MAX_LINE_BYTES / 4 && Buffer.byteLength(line) >= MAX_LINE_BYTES) {
      this.onInvalid(PARSE_ERROR, `Parse error: a message longer than ${MAX_LINE_BYTES} bytes was dropped.`);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.onInvalid(PARSE_ERROR, 'Parse error: the line is not valid JSON.');
      return;
    }
    const message = value as { jsonrpc?: unknown; id?: unknown; method?: unknown };
    const id = typeof message?.id === 'string' || typeof message?.id === 'number' ? message.id : undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value) || message.jsonrpc !== '2.0') {
      this.onInvalid(INVALID_REQUEST, 'Invalid Request: expected one JSON-RPC 2.0 message per line.', id);
      return;
    }
    // The broker's transport drops a message of the wrong shape without a word; the request it carried deserves an answer.
    const problem = envelopeProblem(value as Record<string, unknown>);
    if (problem) {
      this.onInvalid(INVALID_REQUEST, `Invalid Request: ${problem}.`, id);
      return;
    }
    this.onMessage(line, value as Envelope);
  }
}

/** The same checks as a stream: valid lines pass through unchanged, one per line. */
export class LineGuard extends Transform {
  private readonly reader = new LineReader();

  constructor() {
    super();
    this.reader.onMessage = (line) => this.push(`${line}\n`);
    this.reader.onInvalid = (code, message, id) => this.onInvalid(code, message, id);
  }

  onInvalid: (code: number, message: string, id?: RequestId) => void = () => undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.reader.push(chunk);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.reader.end();
    callback();
  }
}

/** The id of a request (a message with a method and an id), or undefined for notifications and responses. */
export function requestIdOf(m: Envelope): RequestId | undefined {
  return typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number') ? m.id : undefined;
}

/**
 * Why a JSON-RPC 2.0 object is not a request, notification or response MCP accepts (the shapes the SDK's schema
 * checks), or undefined when it is one. Requests and notifications are checked strictly, since they expect an answer
 * or an effect; a response only needs a result or an error.
 */
function envelopeProblem(m: Record<string, unknown>): string | undefined {
  if ('method' in m) {
    if (typeof m.method !== 'string') return 'method must be a string';
    if ('id' in m && !(typeof m.id === 'string' || (typeof m.id === 'number' && Number.isSafeInteger(m.id))))
      return 'id must be a string or a (safe) integer';
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null || Array.isArray(m.params)))
      return 'params must be an object';
    // The HTTP transport takes any `initialize` for a handshake and would drop the session for an answer without one.
    if (m.method === 'initialize' && !('id' in m)) return 'initialize must be a request (with an id)';
    return undefined;
  }
  if (!('id' in m)) return 'a message needs a method (request or notification) or an id (response)';
  if (!('result' in m) && !('error' in m)) return 'a response needs a result or an error';
  return undefined;
}
