import { request } from 'node:http';

/**
 * The laptop's endpoint as the remote side reaches it (docs/architecture.md, "Remote development"): a port forwarded
 * over `ssh -R`, WSL's localhost in mirrored networking, a dev container's `host.docker.internal`. Always plain http:
 * the connection is a loopback one at both ends (or the SSH tunnel's), never the open network.
 *
 * The laptop's front door answers only requests addressed to `127.0.0.1:<its port>` (DNS-rebinding protection), so
 * every request from here names that Host whatever name the remote side dials: the forward must keep the port number
 * (`ssh -R 47821:127.0.0.1:47821`). A non-browser client setting Host defeats nothing: the check exists to stop web
 * pages, which cannot choose it.
 */
export interface RemoteEndpoint {
  /** `http://<host>:<port>`, the key the credentials are stored under. */
  origin: string;
  /** Where to connect. */
  host: string;
  port: number;
  /** What the Host header says: `127.0.0.1:<port>`. */
  hostHeader: string;
}

export class RemoteEndpointError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

const DEFAULT_PORT = 47821;

/** `http://127.0.0.1:47821`, `127.0.0.1:47821`, `host.docker.internal:47821` or a bare port. */
export function parseRemoteEndpoint(input: string): RemoteEndpoint {
  const text = input.trim();
  const withScheme = /^\d+$/.test(text) ? `http://127.0.0.1:${text}` : /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new RemoteEndpointError(`"${text.slice(0, 80)}" is not an endpoint.`, 'Give the laptop endpoint as http://127.0.0.1:<port>.');
  }
  if (url.protocol !== 'http:')
    throw new RemoteEndpointError(
      `The laptop endpoint must be http:// (it is a forwarded loopback port), not ${url.protocol}.`,
      'Use http://127.0.0.1:<port> (forwarded with the same port number).',
    );
  // The address IDE configs hold (`…/mcp`) is taken too: the endpoint is its origin.
  if (!['/', '', '/mcp', '/mcp/'].includes(url.pathname) || url.search || url.username || url.password)
    throw new RemoteEndpointError('The laptop endpoint is a host and a port only.', 'Use http://127.0.0.1:<port>, without a path.');
  const port = url.port ? Number(url.port) : DEFAULT_PORT;
  // `localhost` is dialled as 127.0.0.1: Node (and WSL) may resolve it to ::1 first, where the broker does not listen.
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
  return {
    origin: `http://${url.hostname === 'localhost' ? '127.0.0.1' : url.hostname}:${port}`,
    host,
    port,
    hostHeader: `127.0.0.1:${port}`,
  };
}

export interface RemoteAnswer {
  status: number;
  body: unknown;
}

/** One JSON request to the laptop's broker; rejects when nothing answers (asleep, forward gone). */
export function remoteRequest(
  endpoint: RemoteEndpoint,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  options: { token?: string; timeoutMs?: number } = {},
): Promise<RemoteAnswer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: endpoint.host,
        port: endpoint.port,
        path,
        method,
        timeout: options.timeoutMs ?? 10_000,
        headers: {
          host: endpoint.hostHeader,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** What to tell the user when the laptop does not answer at all. */
export function unreachableText(endpoint: RemoteEndpoint, e: unknown): { message: string; fix: string } {
  const code = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
  return {
    message: `The laptop's Lanyard at ${endpoint.origin} cannot be reached (${code}): the laptop may be asleep, Lanyard not running there, or the port forward gone.`,
    fix: `Wake the laptop and check Lanyard runs there; re-open the forward (e.g. \`ssh -R ${endpoint.port}:127.0.0.1:${endpoint.port} <this host>\`); see "Remote development" in Lanyard's README.`,
  };
}
