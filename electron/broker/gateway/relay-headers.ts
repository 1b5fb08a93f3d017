/**
 * What crosses the relay in headers, each way. Both directions are allow-lists: the relay carries an MCP Streamable
 * HTTP exchange (https://modelcontextprotocol.io/specification/2025-11-25/basic/transports), not arbitrary HTTP, so
 * only what that exchange (and tracing and rate limiting around it) needs passes.
 */

/** Request headers an MCP exchange needs upstream; everything else (Authorization, Cookie, Origin, Host) stays here. */
const FORWARDED_REQUEST_HEADERS = new Set([
  'accept',
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
  'user-agent',
  'traceparent',
  'tracestate',
  'baggage',
]);

export function forwardRequestHeader(name: string): boolean {
  const n = name.toLowerCase();
  // Future MCP headers (2026 era: Mcp-Method, Mcp-Name, …) pass too; Authorization and Cookie never do.
  return FORWARDED_REQUEST_HEADERS.has(n) || n.startsWith('mcp-');
}

/**
 * Response headers the IDE gets from the upstream. The relay answers on Lanyard's own origin, 127.0.0.1:<port>, and
 * browsers (and IDEs built on a browser's network stack) keep state per host, not per port. So a header that makes a
 * client remember something — Set-Cookie (a cookie for 127.0.0.1 reaches every local port, the dashboard included),
 * Clear-Site-Data, Strict-Transport-Security, Alt-Svc, NEL / Report-To (reports about later requests sent to a
 * server's collector), Accept-CH, Service-Worker-Allowed, Set-Login — or act on its own — Refresh, Location, Link
 * preloads — would let a remote server act with Lanyard's origin. None of them is part of MCP, so rather than list
 * the dangerous ones (a list that grows with every browser release), only these pass:
 */
const RELAYED_RESPONSE_HEADERS = new Set([
  // The body and how to read it (Content-Encoding and Content-Length are dropped when fetch already decoded them).
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  // Per-response caching: it concerns this response only.
  'cache-control',
  'expires',
  'etag',
  'last-modified',
  'vary',
  // What the IDE acts on: retry timing, rate limits, the allowed methods of a 405.
  'retry-after',
  'allow',
  'ratelimit',
  'ratelimit-policy',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  // Support and tracing.
  'x-request-id',
  'request-id',
  'traceparent',
  'tracestate',
  'traceresponse',
  'server-timing',
]);

/** The upstream's response headers as the IDE gets them; `decoded`: fetch already undid a Content-Encoding. */
export function relayedResponseHeaders(upstream: Headers, decoded: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const encoded = upstream.has('content-encoding');
  for (const [name, value] of upstream) {
    // Mcp-Session-Id, Mcp-Protocol-Version and future MCP headers pass unchanged.
    if (!RELAYED_RESPONSE_HEADERS.has(name) && !name.startsWith('mcp-')) continue;
    if (decoded && (name === 'content-encoding' || (name === 'content-length' && encoded))) continue;
    out[name] = value;
  }
  return out;
}
