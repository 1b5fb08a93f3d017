/**
 * Just enough of JSON, on bytes, for `/mcp`'s fast path to forward an upstream answer without parsing it: where the
 * top-level keys of a JSON-RPC message are (so its `id` can be replaced in place and an error told from a result),
 * and an SSE reader that yields each event's data as bytes. Values are skipped, never decoded: a multi-megabyte
 * result costs one pass over its bytes (strings are skipped with a native search for the closing quote), no objects.
 */

export interface Span {
  start: number;
  end: number;
}

/** The top level of a JSON-RPC message (and whether its result says `isError: true`). */
export interface MessageShape {
  method: boolean;
  id?: Span | undefined;
  result?: Span | undefined;
  error?: Span | undefined;
  resultIsError: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const TRUE = Buffer.from('true');

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(b: Buffer, i: number): number {
  while (i < b.length && isSpace(b[i])) i++;
  return i;
}

/** `i` at an opening quote: the index after the closing one, or -1. UTF-8 never puts an ASCII byte inside a character. */
function stringEnd(b: Buffer, i: number): number {
  for (let from = i + 1; ;) {
    const q = b.indexOf(QUOTE, from);
    if (q < 0) return -1;
    let slashes = 0;
    for (let k = q - 1; b[k] === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** `i` at the first byte of a value: the index after it, or -1. */
function valueEnd(b: Buffer, i: number): number {
  const c = b[i];
  if (c === QUOTE) return stringEnd(b, i);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0;
    for (let j = i; j < b.length;) {
      const x = b[j]!;
      if (x === QUOTE) {
        j = stringEnd(b, j);
        if (j < 0) return -1;
        continue;
      }
      if (x === OPEN_BRACE || x === OPEN_BRACKET) depth++;
      else if ((x === CLOSE_BRACE || x === CLOSE_BRACKET) && --depth === 0) return j + 1;
      j++;
    }
    return -1;
  }
  let j = i;
  while (j < b.length && b[j] !== COMMA && b[j] !== CLOSE_BRACE && b[j] !== CLOSE_BRACKET && !isSpace(b[j])) j++;
  return j > i ? j : -1;
}

/** Walks an object's members (`i` at `{`), calling `member` for each; returns the index after `}`, or -1. */
function walkObject(b: Buffer, i: number, member: (key: string, start: number) => number): number {
  if (b[i] !== OPEN_BRACE) return -1;
  i = skipSpace(b, i + 1);
  if (b[i] === CLOSE_BRACE) return i + 1;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const keyEnd = stringEnd(b, i);
    if (keyEnd < 0) return -1;
    // Keys of interest are short ASCII; longer ones are skipped without decoding.
    const key = keyEnd - i <= 18 ? b.toString('latin1', i + 1, keyEnd - 1) : '';
    i = skipSpace(b, keyEnd);
    if (b[i] !== COLON) return -1;
    i = skipSpace(b, i + 1);
    const end = member(key, i);
    if (end < 0) return -1;
    i = skipSpace(b, end);
    if (b[i] === COMMA) {
      i = skipSpace(b, i + 1);
      continue;
    }
    return b[i] === CLOSE_BRACE ? i + 1 : -1;
  }
}

/** The shape of one JSON-RPC message, or undefined when the bytes are not one JSON object. */
export function scanMessage(b: Buffer): MessageShape | undefined {
  const shape: MessageShape = { method: false, resultIsError: false };
  const start = skipSpace(b, 0);
  const end = walkObject(b, start, (key, at) => {
    switch (key) {
      case 'method':
        shape.method = true;
        return valueEnd(b, at);
      case 'id': {
        const e = valueEnd(b, at);
        shape.id = { start: at, end: e };
        return e;
      }
      case 'error': {
        const e = valueEnd(b, at);
        shape.error = { start: at, end: e };
        return e;
      }
      case 'result': {
        // One pass: the result's own members are walked (for isError) while finding its end.
        const e =
          b[at] === OPEN_BRACE
            ? walkObject(b, at, (inner, v) => {
                const ve = valueEnd(b, v);
                if (inner === 'isError' && ve - v === 4 && b.compare(TRUE, 0, 4, v, ve) === 0) shape.resultIsError = true;
                return ve;
              })
            : valueEnd(b, at);
        shape.result = { start: at, end: e };
        return e;
      }
      default:
        return valueEnd(b, at);
    }
  });
  if (end < 0 || skipSpace(b, end) !== b.length) return undefined;
  return shape;
}

/**
 * Server-sent events from a byte stream (https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream):
 * lines end in LF, CRLF or CR; `data:` lines of one event are joined with LF; events other than `message` and events
 * without data are dropped (as the SDK's client does). Data comes out as bytes, sliced from the input where it can be.
 */
export class SseReader {
  private line: Buffer[] = [];
  private data: Buffer[] = [];
  private event = '';
  private skipLf = false;
  /** The stream's last event id and reconnection time (`id:`, `retry:`), for resuming it with Last-Event-ID. */
  lastEventId: string | undefined;
  retryMs: number | undefined;

  constructor(private readonly onData: (data: Buffer) => void) {}

  push(chunk: Buffer): void {
    let pos = 0;
    if (this.skipLf && chunk[0] === 0x0a) pos = 1;
    this.skipLf = false;
    let lf = chunk.indexOf(0x0a, pos);
    let cr = chunk.indexOf(0x0d, pos);
    while (pos < chunk.length) {
      if (lf >= 0 && lf < pos) lf = chunk.indexOf(0x0a, pos);
      if (cr >= 0 && cr < pos) cr = chunk.indexOf(0x0d, pos);
      const eol = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (eol < 0) {
        this.line.push(chunk.subarray(pos));
        return;
      }
      const piece = chunk.subarray(pos, eol);
      const full = this.line.length ? Buffer.concat([...this.line, piece]) : piece;
      this.line = [];
      pos = eol + 1;
      if (chunk[eol] === 0x0d) {
        if (eol + 1 < chunk.length) {
          if (chunk[eol + 1] === 0x0a) pos++;
        } else this.skipLf = true;
      }
      this.lineDone(full);
    }
  }

  private lineDone(line: Buffer): void {
    if (line.length === 0) {
      const data = this.data;
      const event = this.event;
      this.data = [];
      this.event = '';
      if (!data.length || (event !== '' && event !== 'message')) return;
      this.onData(data.length === 1 ? data[0]! : joinLines(data));
      return;
    }
    if (line[0] === COLON) return;
    const colon = line.indexOf(COLON);
    const field = line.toString('latin1', 0, colon < 0 ? line.length : colon);
    let value = colon < 0 ? Buffer.alloc(0) : line.subarray(colon + 1);
    if (value[0] === 0x20) value = value.subarray(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value.toString('utf8');
    else if (field === 'id' && !value.includes(0)) this.lastEventId = value.toString('utf8');
    else if (field === 'retry' && /^\d+$/.test(value.toString('latin1'))) this.retryMs = Number(value.toString('latin1'));
  }
}

function joinLines(lines: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  const lf = Buffer.from('\n');
  lines.forEach((l, i) => {
    if (i) parts.push(lf);
    parts.push(l);
  });
  return Buffer.concat(parts);
}
