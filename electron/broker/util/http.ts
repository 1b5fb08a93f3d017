export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * Wraps fetch with a deadline on every request, so a stalled party (IdP, authorization server, MCP server) turns into
 * a timely, classified error instead of a hung IDE call. The caller's own signal still applies.
 */
export function withTimeout(base: FetchLike, timeoutMs: number): FetchLike {
  return (input, init) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    return base(input, { ...init, signal });
  };
}
