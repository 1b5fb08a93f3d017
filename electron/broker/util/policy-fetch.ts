import type { FetchLike } from './http';
import { checkOutboundUrl } from './url-policy';

/** How many same-origin redirects the wrapper follows itself, for a caller that asked it to follow. */
export const MAX_SAME_ORIGIN_REDIRECTS = 3;

export interface PolicyFetchOptions {
  /** The URL the user or their admin configured (the MCP server, or the IdP issuer): what every target is judged against. */
  anchor: string;
  /** The error to throw for a refused target (built from its origin only: no path or query, which may carry secrets). */
  refuse: (target: URL, reason: string) => Error;
}

/**
 * A fetch that applies the URL policy (util/url-policy.ts) to every request *before* it is sent, and to every
 * redirect. Redirects never leave the origin they came from: a cross-origin redirect is refused outright (a server
 * could otherwise bounce Lanyard from an allowed https URL to 169.254.169.254). Same-origin ones are followed here, at
 * most MAX_SAME_ORIGIN_REDIRECTS and only for GET/HEAD, unless the caller asked for `redirect: 'manual'` — the MCP
 * SDK's discovery helpers and openid-client do, and follow (or refuse) same-origin redirects themselves, each hop
 * coming back through this wrapper.
 */
export function policyFetch(base: FetchLike, options: PolicyFetchOptions): FetchLike {
  return async (input, init) => {
    let url = new URL(input instanceof URL ? input.href : input);
    const callerHandlesRedirects = init?.redirect === 'manual' || init?.redirect === 'error';
    const method = (init?.method ?? 'GET').toUpperCase();
    for (let followed = 0; ; followed++) {
      const verdict = checkOutboundUrl(url, options.anchor);
      if (!verdict.ok) throw options.refuse(url, verdict.reason);
      const response = await base(url.href, { ...init, redirect: 'manual' });
      const target = redirectTarget(url, response);
      if (!target) return response;
      if (target.origin !== url.origin) {
        await response.body?.cancel().catch(() => {});
        throw options.refuse(target, `${url.origin} redirected there, and Lanyard does not follow redirects to another origin`);
      }
      if (callerHandlesRedirects || (method !== 'GET' && method !== 'HEAD') || followed >= MAX_SAME_ORIGIN_REDIRECTS) return response;
      await response.body?.cancel().catch(() => {});
      url = target;
    }
  };
}

function redirectTarget(from: URL, response: Response): URL | undefined {
  if (![301, 302, 303, 307, 308].includes(response.status)) return undefined;
  const location = response.headers.get('location');
  if (!location) return undefined;
  try {
    return new URL(location, from);
  } catch {
    return undefined;
  }
}
