/**
 * A small seeded generator of hostile input for the local endpoint and the stdio bridge (no dependencies): malformed,
 * truncated, oversized and random HTTP requests and JSON-RPC messages. Deterministic for a seed, so a failure can be
 * replayed with LANYARD_FUZZ_SEED=<seed>. Plus a raw HTTP/1.1 client over a socket, because fetch cannot send most of
 * what a hostile local process can (bad request lines, absurd headers, lying Content-Length, bare garbage).
 */
import { connect } from 'node:net';

/** mulberry32: tiny, fast, good enough to drive a fuzzer. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  text(n: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_/.%~!$&'()*+,;=:@"): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

/** Values of the wrong type, or of absurd size, for any JSON-RPC field. */
export function weirdValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(16)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, -0, 1e-320]);
    case 3:
      return rng.text(rng.int(40));
    case 4:
      return 'x'.repeat(rng.pick([1_000, 50_000, 300_000]));
    case 5:
      return '\u0000\ud800\udfff\u202e🙂\u2028';
    case 6:
      return [];
    case 7:
      return {};
    case 8:
      return depth < 3 ? Array.from({ length: rng.int(5) }, () => weirdValue(rng, depth + 1)) : 1;
    case 9:
      // JSON.parse makes `__proto__` an own key (an object literal would set the prototype instead).
      return depth < 3
        ? {
            [rng.text(8)]: weirdValue(rng, depth + 1),
            ...(JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}') as object),
          }
        : 'leaf';
    case 10:
      return nested(rng.pick([100, 5_000, 100_000]), rng.chance(0.5));
    case 11:
      return rng.pick(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']);
    case 12:
      return Array.from({ length: rng.pick([1_000, 20_000]) }, (_, i) => i);
    case 13:
      return { type: 'ref/prompt', name: rng.text(10) };
    case 14:
      return `sandbox://${rng.pick(['todo', 'wiki', 'nope'])}/${rng.text(8)}`;
    default:
      return rng.text(rng.int(10));
  }
}

/** A JSON text nested `depth` levels deep (built as text: JSON.stringify would itself overflow the stack). */
export function nestedText(depth: number, arrays: boolean): string {
  return arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** A marker for a deeply nested value; `toJson` splices its text in. */
function nested(depth: number, arrays: boolean): { __nested: string } {
  return { __nested: nestedText(depth, arrays) };
}

/** JSON.stringify that splices in nested markers (so messages may be far deeper than the stack allows to build). */
export function toJson(value: unknown): string {
  const splices: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && '__nested' in v && typeof (v as { __nested: unknown }).__nested === 'string') {
      splices.push((v as { __nested: string }).__nested);
      return `__NESTED_${splices.length - 1}__`;
    }
    return v;
  });
  return text.replace(/"__NESTED_(\d+)__"/g, (_m, i: string) => splices[Number(i)]!);
}

const METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'sampling/createMessage',
  'elicitation/create',
  'unknown/method',
  '',
  '__proto__',
  'constructor',
  'rpc.discover',
];

/**
 * Tools the fuzzer may call: quick ones only. Tools that wait for a person (elicitation, sampling, roots) or count
 * slowly would legitimately take minutes, which is not what this test is about.
 */
const AGG_TOOLS = [
  'todo__echo',
  'todo__add',
  'todo__whoami',
  'wiki__echo',
  'todo__admin_purge',
  'lanyard_status',
  'lanyard_sign_in',
  'nope__echo',
  'todo__',
  '__echo',
];
const RELAY_TOOLS = ['echo', 'add', 'whoami', 'admin_purge', 'nope'];

export interface JsonRpcCase {
  /** The text to send (a line for stdio, a body for HTTP). */
  text: string;
  /** The request id, when the text is a well-formed request (method + string/number id) that deserves an answer. */
  id?: string | number;
  label: string;
}

let idCounter = 0;

/** One JSON-RPC message (or something that claims to be one), valid, mutated, truncated or garbage. */
export function jsonRpcCase(rng: Rng, options: { relay: boolean; maxBytes?: number } = { relay: false }): JsonRpcCase {
  const id = rng.chance(0.5) ? `fz-${++idCounter}` : ++idCounter;
  const method = rng.chance(0.75) ? rng.pick(METHODS.slice(0, 13)) : rng.pick(METHODS);
  const tool = options.relay ? rng.pick(RELAY_TOOLS) : rng.pick(AGG_TOOLS);
  const params: Record<string, unknown> =
    method === 'initialize'
      ? {
          protocolVersion: rng.pick(['2025-11-25', '2025-06-18', '1999-01-01', '']),
          capabilities: rng.chance(0.8) ? {} : weirdValue(rng),
          clientInfo: { name: rng.chance(0.9) ? 'fuzz' : weirdValue(rng), version: '1' },
        }
      : method === 'tools/call'
        ? { name: rng.chance(0.85) ? tool : weirdValue(rng), arguments: rng.chance(0.5) ? { text: 'fuzz', a: 1, b: 2 } : weirdValue(rng) }
        : method === 'logging/setLevel'
          ? { level: rng.pick(['debug', 'info', 'emergency', 'LOUD', '']) }
          : method === 'resources/read' || method === 'resources/subscribe'
            ? {
                uri: rng.chance(0.7)
                  ? rng.pick(['sandbox://todo/readme', 'sandbox://wiki/readme', 'sandbox://todo/items/alpha'])
                  : weirdValue(rng),
              }
            : rng.chance(0.6)
              ? {}
              : (weirdValue(rng) as Record<string, unknown>);
  let message: Record<string, unknown> = { jsonrpc: '2.0', id, method, params };
  let wellFormed = true;
  switch (rng.int(14)) {
    case 0:
      delete message.jsonrpc;
      wellFormed = false;
      break;
    case 1:
      message.jsonrpc = rng.pick(['1.0', 2, null, '2.0 ', '']);
      wellFormed = false;
      break;
    case 2:
      message.id = weirdValue(rng);
      wellFormed = typeof message.id === 'string' || typeof message.id === 'number';
      break;
    case 3:
      message.method = weirdValue(rng);
      wellFormed = typeof message.method === 'string';
      break;
    case 4:
      delete message.id; // a notification: no answer expected
      wellFormed = false;
      break;
    case 5:
      message = { jsonrpc: '2.0', id, result: rng.chance(0.5) ? {} : weirdValue(rng) }; // a "response" nobody asked for
      wellFormed = false;
      break;
    case 6:
      message.params = weirdValue(rng);
      break;
    default:
      break;
  }
  const label = `${method || '<empty>'}${wellFormed ? '' : ' (malformed)'}`;
  let text: string;
  switch (rng.int(12)) {
    case 0: {
      const full = toJson(message);
      return { text: full.slice(0, rng.int(Math.max(1, full.length - 1))), label: 'truncated JSON' };
    }
    case 1:
      return { text: rng.bytes(1 + rng.int(200)).toString('latin1'), label: 'binary garbage' };
    case 2:
      text = toJson(Array.from({ length: rng.pick([0, 1, 3, 50]) }, () => ({ ...message, id: ++idCounter })));
      return { text, label: 'batch array' };
    case 3:
      return { text: nestedText(rng.pick([1_000, 20_000, 200_000]), rng.chance(0.5)), label: 'deep nesting' };
    case 4:
      return { text: rng.pick(['null', 'true', '42', '"str"', '[]', '{}', '', ' ', '\ufeff{}']), label: 'bare JSON value' };
    case 5:
      return { text: `${toJson(message)}${rng.pick(['}', ',', ' trailing', '\u0000'])}`, label: 'trailing junk' };
    default:
      text = toJson(message);
  }
  if (options.maxBytes !== undefined && Buffer.byteLength(text) > options.maxBytes)
    return { text: text.slice(0, options.maxBytes), label: 'truncated (size)' };
  return { text, label, ...(wellFormed && typeof message.id !== 'undefined' ? { id: message.id as string | number } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

/** /api methods that only read. Everything else is only ever sent a body its schema must refuse. */
export const SAFE_API = ['status', 'listServers', 'recentActivity', 'getSettings', 'listTools'];
export const MUTATING_API = [
  'signIn',
  'signOut',
  'addServer',
  'removeServer',
  'setServerEnabled',
  'probeUrl',
  'testServer',
  'authorizeServer',
  'setServerKey',
  'connectIde',
  'disconnectIde',
  'updateSettings',
];
/** Bodies no control method accepts (none is an object: every input schema is an object). Never empty or `null`. */
const REFUSED_API_BODIES = ['[]', '"x"', '42', 'true', '[{}]', '{', '{"a":', '\u0000\u0001', 'nul', '{}}'];

export interface HttpCase {
  bytes: Buffer;
  /** The request is deliberately incomplete: the client stops sending (half-close) after these bytes. */
  truncated: boolean;
  method: string;
  path: string;
  label: string;
}

export interface HttpContext {
  port: number;
  token: string;
  /** Live Mcp-Session-Ids seen so far (per endpoint path), reused so fuzz reaches inside sessions. */
  sessions: Map<string, string[]>;
}

function mcpPath(rng: Rng): string {
  return rng.pick([
    '/mcp',
    '/mcp',
    '/mcp',
    '/mcp/',
    '/mcp/todo',
    '/mcp/todo',
    '/mcp/wiki',
    '/mcp/nope',
    '/mcp/TODO',
    '/mcp/todo/extra',
    '/mcp/todo?x=1&x=2',
    '/mcp/%2e%2e/api/status',
    '/mcp/..%2f..%2fetc%2fpasswd',
    '/mcp/-',
    `/mcp/${'a'.repeat(40)}`,
  ]);
}

function otherPath(rng: Rng): string {
  return rng.pick([
    '/healthz',
    '/',
    '/index.html',
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/assets/..%2f..%2f..%2fpackage.json',
    '//etc/passwd',
    '/dashboard/login?code=guess',
    '/dashboard/login',
    '/dashboard/logout',
    '/api',
    '/api/',
    '/api/events',
    `/api/${rng.pick([...SAFE_API, ...MUTATING_API])}`,
    `/api/${rng.text(12)}`,
    '/api/__proto__',
    '/api/constructor',
    `/${rng.text(rng.pick([10, 2_000, 9_000]))}`,
    '*',
    'http://evil.example/mcp',
    '/mcp\u0000',
  ]);
}

function header(name: string, value: string): string {
  return `${name}: ${value}\r\n`;
}

/** One HTTP request to the local endpoint: mostly well-formed with the right credentials (so fuzz gets past the front door), with every part liable to be wrong. */
export function httpCase(rng: Rng, ctx: HttpContext): HttpCase {
  const rawGarbage = rng.chance(0.06);
  if (rawGarbage) {
    const bytes = rng.pick([
      () => rng.bytes(1 + rng.int(300)),
      () => Buffer.from(`${rng.text(20)}\r\n\r\n`),
      () => Buffer.from(`GET /mcp HTTP/9.9\r\nHost: 127.0.0.1:${ctx.port}\r\n\r\n`),
      () =>
        Buffer.from(
          `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        ),
      () =>
        Buffer.from(
          `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ${ctx.token}\r\n\r\nzz\r\nnot-hex\r\n`,
        ),
      () => Buffer.from(`GET /mcp HTTP/1.1\r\n${'X-Pad: '.concat('a'.repeat(20_000))}\r\n\r\n`),
      () =>
        Buffer.from(
          `GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\n${Array.from({ length: 3_000 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}\r\n`,
        ),
      () => Buffer.from(`GET /mcp HTTP/1.1\r\nHo st: x\r\n\r\n`),
      () => Buffer.from(`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\n folded: continuation\r\n\r\n`),
      () => Buffer.from('\r\n\r\n\r\n'),
      () => Buffer.from(`GET\t/mcp\tHTTP/1.1\r\n\r\n`),
      () => Buffer.from(`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`),
    ])();
    // The client sends its garbage and stops (half-close): the server must answer or close, not wait for more.
    return { bytes, truncated: true, method: '?', path: '?', label: 'raw garbage' };
  }

  const toMcp = rng.chance(0.7);
  const path = toMcp ? mcpPath(rng) : otherPath(rng);
  const isApi = path.startsWith('/api/');
  const method = rng.chance(0.8)
    ? toMcp || isApi
      ? rng.pick(['POST', 'POST', 'POST', 'POST', 'GET', 'DELETE'])
      : rng.pick(['GET', 'GET', 'POST', 'HEAD'])
    : rng.pick(['PUT', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'CONNECT', 'FOO', 'post', 'G E T', 'M'.repeat(100)]);

  // Body
  let body = '';
  let label = `${method} ${path.slice(0, 40)}`;
  if (method === 'POST' || rng.chance(0.05)) {
    if (isApi) {
      const name = path.slice('/api/'.length);
      body =
        SAFE_API.includes(name) && rng.chance(0.7)
          ? rng.pick(['{}', '{"limit":5}', '{"limit":-1}', '{"id":"todo"}', '{"id":"nope"}', '{"x":1}', toJson(weirdValue(rng))])
          : rng.pick(REFUSED_API_BODIES);
      label += ' (control API)';
    } else if (rng.chance(0.03)) {
      body = 'x'.repeat(4 * 1024 * 1024 + 1 + rng.int(1000)); // just over the 4 MiB limit
      label += ' (oversized)';
    } else {
      const c = jsonRpcCase(rng, { relay: path.startsWith('/mcp/') && path.length > 5 });
      body = c.text;
      label += ` ${c.label}`;
    }
  }
  const bodyBytes = Buffer.from(body, rng.chance(0.02) ? 'utf16le' : 'utf8');

  // Headers
  let headers = '';
  const hostChoice = rng.int(20);
  if (hostChoice === 0) {
    /* no Host */
  } else if (hostChoice === 1)
    headers += header(
      'Host',
      rng.pick([
        'evil.example',
        `evil.example:${ctx.port}`,
        '127.0.0.1',
        `localhost:${ctx.port + 1}`,
        `127.0.0.1:${ctx.port}.evil.example`,
        '[::1]',
        `0.0.0.0:${ctx.port}`,
        'x'.repeat(5_000),
      ]),
    );
  else if (hostChoice === 2) headers += header('Host', `127.0.0.1:${ctx.port}`) + header('Host', 'evil.example');
  else headers += header('Host', rng.pick([`127.0.0.1:${ctx.port}`, `localhost:${ctx.port}`, `LOCALHOST:${ctx.port}`]));

  const authChoice = rng.int(20);
  if (authChoice === 0) {
    /* no token */
  } else if (authChoice === 1)
    headers += header(
      'Authorization',
      rng.pick([
        'Bearer',
        'Bearer ',
        `Bearer ${ctx.token.slice(0, -1)}`,
        `Bearer ${ctx.token}x`,
        `Basic ${Buffer.from(`u:${ctx.token}`).toString('base64')}`,
        `Bearer ${'A'.repeat(43)}`,
        `Bearer ${ctx.token} extra`,
        'x'.repeat(8_000),
      ]),
    );
  else if (authChoice === 2) headers += header('Authorization', 'Bearer wrong') + header('Authorization', `Bearer ${ctx.token}`);
  else if (authChoice === 3)
    headers += header(
      'Cookie',
      rng.pick([
        `lanyard_session=${ctx.token}`,
        'lanyard_session=guess',
        'lanyard_dashboard=guess',
        `a=b; lanyard_session=${'x'.repeat(43)}`,
      ]),
    );
  else headers += header('Authorization', `${rng.pick(['Bearer', 'bearer', 'BEARER'])} ${ctx.token}`);

  if (rng.chance(0.1))
    headers += header(
      'Origin',
      rng.pick([
        'http://evil.example',
        'null',
        `http://127.0.0.1:${ctx.port}`,
        `http://localhost:${ctx.port + 1}`,
        'file://',
        'vscode-webview://abc',
        'http://127.0.0.1.evil.example',
        '',
      ]),
    );
  if (rng.chance(0.05)) headers += header('Access-Control-Request-Method', 'POST');
  headers += header(
    'Content-Type',
    rng.chance(0.85)
      ? 'application/json'
      : rng.pick([
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=--x',
          'application/json; charset=utf-16',
          '',
          'x'.repeat(3_000),
        ]),
  );
  headers += header(
    'Accept',
    rng.chance(0.85) ? 'application/json, text/event-stream' : rng.pick(['text/html', '*/*', 'application/json', 'text/event-stream', '']),
  );
  const live = ctx.sessions.get(path.startsWith('/mcp/') && path.length > 5 ? '/mcp/todo' : '/mcp') ?? [];
  const sid = rng.int(10);
  if (sid < 5 && live.length) headers += header('Mcp-Session-Id', rng.pick(live));
  else if (sid === 5)
    headers += header('Mcp-Session-Id', rng.pick(['00000000-0000-0000-0000-000000000000', 'x'.repeat(10_000), '../../etc', '', '\u00ff']));
  if (rng.chance(0.3)) headers += header('Mcp-Protocol-Version', rng.pick(['2025-11-25', '2025-06-18', 'garbage', '9999-99-99']));
  if (rng.chance(0.03)) headers += header('Last-Event-ID', rng.text(20));
  if (rng.chance(0.05)) for (let i = 0; i < rng.pick([50, 500]); i++) headers += header(`X-Junk-${i}`, rng.text(20));
  if (rng.chance(0.02)) headers += header('Expect', '100-continue');
  if (rng.chance(0.02)) headers += header('Upgrade', rng.pick(['websocket', 'h2c'])) + header('Connection', 'Upgrade');

  // Framing: mostly honest; sometimes lying or chunked.
  let truncated = false;
  let framed: Buffer;
  const framing = rng.int(25);
  if (framing === 0 && bodyBytes.length > 2) {
    // Content-Length larger than what is sent: the client gives up half-way.
    headers += header('Content-Length', String(bodyBytes.length + 100));
    framed = bodyBytes.subarray(0, rng.int(bodyBytes.length));
    truncated = true;
    label += ' (truncated body)';
  } else if (framing === 1) {
    headers += header('Transfer-Encoding', 'chunked');
    framed = Buffer.concat([Buffer.from(`${bodyBytes.length.toString(16)}\r\n`), bodyBytes, Buffer.from('\r\n0\r\n\r\n')]);
  } else if (framing === 2) {
    headers += header('Content-Length', rng.pick(['-1', 'abc', '1e3', '99999999999999999999', '5, 6']));
    framed = bodyBytes;
  } else {
    headers += header('Content-Length', String(bodyBytes.length));
    framed = bodyBytes;
  }
  headers += header('Connection', 'close');
  const version = rng.chance(0.97) ? 'HTTP/1.1' : rng.pick(['HTTP/1.0', 'HTTP/0.9', 'HTTP/1.1x', '']);
  const head = Buffer.from(`${method} ${path} ${version}\r\n${headers}\r\n`, 'latin1');
  return { bytes: Buffer.concat([head, framed]), truncated, method, path, label };
}

export interface RawResult {
  status?: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The server closed the connection without any answer. */
  closedWithoutAnswer: boolean;
  /** Neither an answer nor a close within the bound: a hang. */
  timedOut: boolean;
  ms: number;
}

/**
 * Sends raw bytes on a fresh connection and reads the answer: complete at Content-Length, at the chunked terminator,
 * after the headers of a GET event stream (which would stay open by design), or at close.
 */
export function rawExchange(port: number, c: Pick<HttpCase, 'bytes' | 'truncated' | 'method'>, timeoutMs: number): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (extra: Partial<RawResult> = {}) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const result = parse(data);
      resolve({
        ...result,
        closedWithoutAnswer: result.status === undefined && !extra.timedOut,
        timedOut: false,
        ms: performance.now() - started,
        ...extra,
      });
    };
    const timer = setTimeout(() => finish({ timedOut: true }), timeoutMs);
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      const r = parse(data);
      if (r.status === undefined) return;
      if (complete(r, c.method)) finish();
    });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.write(c.bytes, () => {
      if (c.truncated) socket.end();
    });
  });
}

function parse(all: Buffer): Pick<RawResult, 'status' | 'headers' | 'body'> & { rawBody?: Buffer } {
  let data = all;
  // Interim answers (100 Continue) come before the real one.
  while (/^HTTP\/1\.[01] 1\d\d/.test(data.subarray(0, 12).toString('latin1'))) {
    const interim = data.indexOf('\r\n\r\n');
    if (interim < 0) return { headers: {}, body: Buffer.alloc(0) };
    data = data.subarray(interim + 4);
  }
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return { headers: {}, body: Buffer.alloc(0) };
  const head = data.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rawBody = data.subarray(end + 4);
  // Whatever follows a Content-Length body belongs to the next answer (a pipelined leftover of a lying request).
  const length = Number(headers['content-length']);
  const body =
    headers['transfer-encoding'] === 'chunked' ? dechunk(rawBody) : Number.isFinite(length) ? rawBody.subarray(0, length) : rawBody;
  return { ...(m ? { status: Number(m[1]) } : {}), headers, body, rawBody };
}

function dechunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = raw.indexOf('\r\n', i);
    if (nl < 0) break;
    const size = parseInt(raw.subarray(i, nl).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(raw.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function complete(r: Pick<RawResult, 'status' | 'headers' | 'body'> & { rawBody?: Buffer }, method: string): boolean {
  const status = r.status!;
  if (method === 'HEAD' || status === 204 || status === 304) return true;
  const type = r.headers['content-type'] ?? '';
  if (type.startsWith('text/event-stream') && method === 'GET') return true;
  if (r.headers['content-length'] !== undefined) return (r.rawBody?.length ?? 0) >= Number(r.headers['content-length']);
  if (r.headers['transfer-encoding'] === 'chunked') return r.rawBody?.subarray(-5).toString('latin1') === '0\r\n\r\n';
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// MCP 2026-07-28 shapes (per-request `_meta` envelope, Mcp-* headers, multi-round-trip retries)

const MODERN_METHODS = [
  'server/discover',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'completion/complete',
  'subscriptions/listen',
  'tasks/get',
  'tasks/cancel',
  'initialize',
  'ping',
  'logging/setLevel',
  'unknown/method',
];
const MODERN_TOOLS = [
  'todo__echo',
  'todo__whoami',
  'todo__ask_user',
  'wiki__confirm_action',
  'wiki__forecast',
  'nope__x',
  'lanyard_status',
];

export interface ModernCase {
  headers: Record<string, string>;
  body: string;
  label: string;
}

/**
 * One 2026-07-28 request, valid or mangled: the envelope missing, malformed or naming an unknown version; headers that
 * disagree with the body (or are absent, or absurd); a requestState that is random, truncated, a real one altered or
 * replayed from another IDE (`states` holds real ones the caller collected); inputResponses of every wrong shape.
 */
export function modernCase(rng: Rng, states: readonly string[]): ModernCase {
  const method = rng.pick(MODERN_METHODS);
  const tool = rng.pick(MODERN_TOOLS);
  const version = rng.chance(0.8) ? '2026-07-28' : rng.pick(['2099-01-01', '2025-11-25', '', 'x'.repeat(300), '2026-07-28 ']);
  const envelope: Record<string, unknown> = {
    'io.modelcontextprotocol/protocolVersion': rng.chance(0.9) ? version : weirdValue(rng),
    'io.modelcontextprotocol/clientInfo': rng.chance(0.8) ? { name: rng.pick(['IDE A', 'IDE B', 'fuzz']), version: '1' } : weirdValue(rng),
    'io.modelcontextprotocol/clientCapabilities': rng.chance(0.8) ? { elicitation: {}, sampling: {} } : weirdValue(rng),
  };
  if (rng.chance(0.1)) delete envelope[rng.pick(Object.keys(envelope))];
  const params: Record<string, unknown> = { _meta: rng.chance(0.92) ? envelope : weirdValue(rng) };
  if (method === 'tools/call') {
    params.name = rng.chance(0.9) ? tool : weirdValue(rng);
    params.arguments = rng.chance(0.7)
      ? { text: 'fuzz', question: 'q?', action: 'a', region: rng.pick(['eu', 'Zürich', ' x ']) }
      : weirdValue(rng);
  } else if (method === 'prompts/get') params.name = rng.pick(['todo__greet', 'nope__p', '']);
  else if (method === 'resources/read') params.uri = rng.pick(['sandbox://todo/readme', 'sandbox://nope/x', '']);
  else if (method === 'subscriptions/listen') params.notifications = rng.chance(0.7) ? { toolsListChanged: true } : weirdValue(rng);
  else if (method.startsWith('tasks/')) params.taskId = rng.chance(0.5) ? rng.text(20) : weirdValue(rng);
  if (rng.chance(0.35)) {
    const real = states.length ? rng.pick(states) : undefined;
    params.requestState =
      real === undefined || rng.chance(0.3)
        ? rng.pick([rng.text(40), `v1.${rng.text(60)}.${rng.text(43)}`, '', 'x'.repeat(100_000), weirdValue(rng)])
        : rng.chance(0.5)
          ? real
          : `${real.slice(0, real.length - 1 - rng.int(10))}${rng.text(1 + rng.int(10))}`;
    params.inputResponses = rng.chance(0.7)
      ? {
          [rng.pick(['elicit-1', 'user_name', 'confirm', '__proto__'])]: rng.chance(0.6)
            ? { action: 'accept', content: { answer: 'x' } }
            : weirdValue(rng),
        }
      : weirdValue(rng);
  }
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (rng.chance(0.9)) headers['mcp-protocol-version'] = rng.chance(0.85) ? version : rng.pick(['2026-07-28', '2099-01-01', 'bogus']);
  if (rng.chance(0.9)) headers['mcp-method'] = rng.chance(0.85) ? method : rng.pick(['tools/list', 'TOOLS/LIST', 'x', ' ']);
  const name = typeof params.name === 'string' ? params.name : typeof params.uri === 'string' ? params.uri : undefined;
  if (name !== undefined && rng.chance(0.85)) headers['mcp-name'] = rng.chance(0.85) ? name.replace(/[^\x20-\x7e]/g, '') || 'x' : 'other';
  if (rng.chance(0.2)) headers['mcp-param-region'] = rng.pick(['eu', '=?base64?!!!?=', '=?base64?ZXU=?=', '']);
  const id = rng.chance(0.5) ? `m-${rng.int(1e6)}` : rng.int(1e6);
  const body = rng.chance(0.05) ? toJson([{ jsonrpc: '2.0', id, method, params }]) : toJson({ jsonrpc: '2.0', id, method, params });
  return { headers, body, label: `${method}${params.requestState !== undefined ? ' +requestState' : ''}` };
}
