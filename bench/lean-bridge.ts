/**
 * A prototype, for the benchmark only: the stdio bridge as a plain byte pipe (what `lanyard stdio`'s initialize fast
 * path already is, applied to every message), to measure how much of the stdio path's cost is the SDK transports
 * (zod, web streams, undici) rather than the hop itself. Not a product: no GET stream for server-initiated messages,
 * no reconnection, no error mapping.
 *
 *   node --import tsx bench/lean-bridge.ts [--server <id>]      (LANYARD_HOME names the running broker)
 *
 * stdin lines → POST to /mcp (or /mcp/<id>) over one keep-alive node:http agent; the answer (JSON or SSE) → stdout,
 * one message per line, as it arrives.
 */
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { readRuntimeFile } from '../electron/broker/gateway/runtime-file';
import { resolveLanyardHome } from '../electron/broker/paths';

const serverArg = process.argv.indexOf('--server');
const found = await readRuntimeFile(resolveLanyardHome());
if (found.state !== 'running') {
  process.stderr.write(`lean-bridge: no running broker (${found.state})\n`);
  process.exit(1);
}
const { port, token } = found.info;
const path = serverArg > 0 ? `/mcp/${process.argv[serverArg + 1]}` : '/mcp';
const agent = new Agent({ keepAlive: true });
let sessionId: string | undefined;
let protocolVersion: string | undefined;

function post(line: string): Promise<void> {
  return new Promise((resolve) => send(line, resolve, true));
}

function send(line: string, done: () => void, retry: boolean): void {
  let answered = false;
  const body = Buffer.from(line);
  const headers: Record<string, string | number> = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'content-length': body.length,
  };
  if (sessionId) headers['mcp-session-id'] = sessionId;
  if (protocolVersion) headers['mcp-protocol-version'] = protocolVersion;
  const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent }, (res) => {
    answered = true;
    const sid = res.headers['mcp-session-id'];
    if (typeof sid === 'string') sessionId = sid;
    const sse = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      if (!sse) return;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (data) emit(data);
      }
    });
    res.on('end', () => {
      if (!sse && buffer.trim()) emit(buffer.trim());
      done();
    });
  });
  req.on('error', (e: NodeJS.ErrnoException) => {
    // A keep-alive socket the broker closed while idle: the request never arrived, send it again once.
    if (retry && !answered && e.code === 'ECONNRESET') {
      send(line, done, false);
      return;
    }
    process.stderr.write(`lean-bridge: ${e.message}\n`);
    done();
  });
  req.end(body);
}

function emit(data: string): void {
  // The negotiated version rides on every later request (the one JSON parse this bridge does, once).
  if (!protocolVersion && data.includes('"protocolVersion"')) {
    const v = (JSON.parse(data) as { result?: { protocolVersion?: string } }).result?.protocolVersion;
    if (v) protocolVersion = v;
  }
  process.stdout.write(`${data}\n`);
}

const lines = createInterface({ input: process.stdin });
// The first message (initialize) must have been answered — session id known — before anything else goes out.
let initialized: Promise<void> | undefined;
lines.on('line', (line) => {
  if (!line.trim()) return;
  if (!initialized) initialized = post(line);
  else void initialized.then(() => post(line));
});
lines.on('close', () => process.exit(0));
