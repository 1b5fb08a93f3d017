/**
 * The one URL policy for every request Lanyard makes because a party told it where to go: a server's protected-resource
 * metadata (the `resource_metadata` URL of its 401 challenge is outside input), its authorization server's metadata
 * and token endpoint, and the IdP's discovery, token and key endpoints. Without it a hostile MCP server could make
 * Lanyard send requests to places only this machine can reach (a cloud metadata service on 169.254.169.254, a router
 * on 192.168.x, a dev server on another loopback port): a blind SSRF. See SECURITY.md, "Where discovery may send
 * Lanyard".
 *
 * Pure: it reads the URL's literal host and never resolves names (see `hostClass`).
 *
 * The rule, relative to the *anchor* (the URL the user or their admin configured: the MCP server, or the IdP issuer):
 * - only http and https, without user:password in the URL;
 * - https, or plain http only to loopback when the anchor itself is on loopback;
 * - a loopback, link-local or private address only when the anchor is in the same class (any port: a local sandbox
 *   runs its MCP server and authorization server on separate ports);
 * - never an unroutable address (0.0.0.0, multicast, broadcast), which some systems quietly treat as this machine.
 */

/** Where an address is, as far as the policy cares. Host names other than `localhost` are `public` (not resolved). */
export type HostClass = 'loopback' | 'link-local' | 'private' | 'public' | 'unroutable';

export type UrlVerdict = { ok: true } | { ok: false; reason: string };

const CLASS_WORDS: Record<Exclude<HostClass, 'public'>, string> = {
  loopback: 'a loopback address (this machine)',
  'link-local': 'a link-local address (where cloud metadata and device services live)',
  private: 'a private network address',
  unroutable: 'an unroutable address',
};

/**
 * Classifies a URL host. IP literals are judged by their numeric value: the WHATWG URL parser has already turned
 * `0x7f.1`, `2130706433` and `[::ffff:127.0.0.1]` into canonical forms. Names are not resolved: a public name that
 * resolves to an internal address is not caught here; the https requirement limits that case to a TLS handshake with
 * a host that has no certificate for the name, so no HTTP request reaches it.
 */
export function hostClass(hostname: string): HostClass {
  const host = hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  const v4 = parseIPv4(host);
  if (v4) return classifyIPv4(v4);
  const v6 = parseIPv6(host);
  if (v6) return classifyIPv6(v6);
  return 'public';
}

/** Decides whether Lanyard may send a request to `target` on behalf of the party configured at `anchor`. */
export function checkOutboundUrl(target: string | URL, anchor: string | URL): UrlVerdict {
  let url: URL;
  let base: URL;
  try {
    url = new URL(target);
    base = new URL(anchor);
  } catch {
    return { ok: false, reason: 'it is not a valid URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, reason: `it uses ${url.protocol} instead of https` };
  if (url.username || url.password) return { ok: false, reason: 'it carries a user name or password in the URL' };
  const targetClass = hostClass(url.hostname);
  const anchorClass = hostClass(base.hostname);
  if (targetClass === 'unroutable') return { ok: false, reason: `it is ${CLASS_WORDS.unroutable}` };
  if (targetClass !== 'public' && targetClass !== anchorClass) {
    return { ok: false, reason: `it is ${CLASS_WORDS[targetClass]} and the server itself is not` };
  }
  if (url.protocol === 'http:' && targetClass !== 'loopback')
    return { ok: false, reason: 'it does not use https (plain http is only for this machine)' };
  return { ok: true };
}

/** The part of a URL that may be shown: scheme, host and port (no path, query or credentials, which may carry secrets). */
export function safeOrigin(url: string | URL): string {
  try {
    const u = new URL(url);
    return u.origin === 'null' ? `${u.protocol}…` : u.origin;
  } catch {
    return 'an invalid URL';
  }
}

function parseIPv4(host: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return undefined;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

function classifyIPv4([a, b]: number[]): HostClass {
  const x = a!;
  const y = b!;
  if (x === 127) return 'loopback';
  if (x === 169 && y === 254) return 'link-local';
  if (x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168)) return 'private';
  // Carrier-grade NAT (RFC 6598) and benchmarking (RFC 2544) space: not the public internet either.
  if ((x === 100 && y >= 64 && y <= 127) || (x === 198 && (y === 18 || y === 19))) return 'private';
  // 0.0.0.0/8 (connects to this machine on Linux and macOS), multicast, reserved and broadcast.
  if (x === 0 || x >= 224) return 'unroutable';
  return 'public';
}

/** Eight 16-bit groups of a canonical (WHATWG-serialized) IPv6 literal, or undefined when it is not one. */
function parseIPv6(host: string): number[] | undefined {
  if (!host.includes(':') || !/^[0-9a-f:]+$/.test(host)) return undefined;
  const halves = host.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

function classifyIPv6(g: number[]): HostClass {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 7) && g[7] === 1) return 'loopback';
  if (zeros(0, 8)) return 'unroutable';
  // IPv4-mapped (::ffff:a.b.c.d) and the NAT64 well-known prefix (64:ff9b::a.b.c.d) reach the embedded IPv4 address.
  const embedded = [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff];
  if (zeros(0, 5) && g[5] === 0xffff) return classifyIPv4(embedded);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return classifyIPv4(embedded);
  // The rest of ::/96 (deprecated IPv4-compatible addresses) is not routed.
  if (zeros(0, 6)) return 'unroutable';
  const first = g[0]!;
  if ((first & 0xffc0) === 0xfe80) return 'link-local';
  // Unique local addresses (fc00::/7) and the deprecated site-local fec0::/10.
  if ((first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfec0) return 'private';
  if ((first & 0xff00) === 0xff00) return 'unroutable';
  return 'public';
}
