import type { FetchLike } from './http';

/**
 * One unauthenticated MCP `initialize` POST to a server's endpoint, sent only to read how it answers: 200 (open), or
 * 401 with the `WWW-Authenticate` challenge that names its protected-resource metadata and scopes (RFC 9728 §5.1,
 * MCP authorization "Authorization Server Discovery"). Discovery, the probe of every auth path, the OAuth engine and
 * doctor all ask this same question; the caller reads the answer and cancels its body.
 */
export function postProbeInitialize(
  fetchFn: FetchLike,
  url: string,
  options: { clientName: string; redirect?: RequestInit['redirect']; signal?: AbortSignal },
): Promise<Response> {
  return fetchFn(url, {
    method: 'POST',
    ...(options.redirect ? { redirect: options.redirect } : {}),
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: options.clientName, version: '0' } },
    }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
