import type { ProxyCandidate, ProxyDecision } from './proxy-rules';

/**
 * The answer of a PAC file's FindProxyForURL, and of Chromium's `session.resolveProxy` (the Electron app's system
 * settings), which uses the same format: entries separated by `;`, each `DIRECT` or a type and `host:port` — `PROXY`
 * and `HTTP` (an http proxy), `HTTPS` (a proxy spoken to over TLS), `SOCKS`, `SOCKS4`, `SOCKS5` and `QUIC`. The list
 * is a fallback order: a client uses the first entry and moves on when that proxy cannot be reached.
 *
 * Lanyard's proxy agent (undici's) speaks to http and https proxies only: SOCKS and QUIC entries are skipped, so a list
 * that goes on to another proxy or DIRECT still works, and a list of nothing else is reported (never silently sent
 * direct: a company that routes a host through SOCKS may block it otherwise).
 */

export interface ParsedProxyList {
  /** The usable entries, in the list's order. */
  candidates: ProxyCandidate[];
  /** The entries skipped because Lanyard cannot use them ("SOCKS5 socks.example.com:1080"). */
  unsupported: string[];
  /** Entries that are not a type and an address at all. */
  invalid: string[];
}

const SCHEME: Record<string, 'http:' | 'https:' | undefined> = { PROXY: 'http:', HTTP: 'http:', HTTPS: 'https:' };
const UNSUPPORTED = new Set(['SOCKS', 'SOCKS4', 'SOCKS5', 'QUIC']);

export function parseProxyList(answer: string): ParsedProxyList {
  const parsed: ParsedProxyList = { candidates: [], unsupported: [], invalid: [] };
  for (const raw of answer.split(';')) {
    const entry = raw.trim();
    if (!entry) continue;
    const [type = '', address, ...rest] = entry.split(/\s+/);
    const kind = type.toUpperCase();
    if (kind === 'DIRECT' && address === undefined) {
      parsed.candidates.push({ kind: 'direct' });
      continue;
    }
    if (UNSUPPORTED.has(kind)) {
      parsed.unsupported.push(`${kind} ${address ?? ''}`.trim());
      continue;
    }
    const scheme = SCHEME[kind];
    if (!scheme || !address || rest.length) {
      parsed.invalid.push(entry.slice(0, 80));
      continue;
    }
    try {
      const proxy = new URL(`${scheme}//${address}`);
      if (proxy.username || proxy.password || proxy.pathname !== '/' || !proxy.hostname) throw new TypeError('not host:port');
      parsed.candidates.push({ kind: 'proxy', proxy });
    } catch {
      parsed.invalid.push(entry.slice(0, 80));
    }
  }
  return parsed;
}

/**
 * The decision for a parsed list: the first candidate not known to be down (`isDown`), with the ones after it as
 * fallbacks. When every proxy is known to be down, the list is used as it is (the proxies may be back). Undefined when
 * the list has no usable candidate.
 */
export function decisionFromCandidates(
  candidates: readonly ProxyCandidate[],
  source: string,
  isDown: (proxy: URL) => boolean = () => false,
): ProxyDecision | undefined {
  if (candidates.length === 0) return undefined;
  const up = candidates.filter((c) => c.kind === 'direct' || !isDown(c.proxy));
  const order = up.length ? [...up, ...candidates.filter((c) => !up.includes(c))] : [...candidates];
  return candidateDecision(order, source);
}

/** The decision for `order[0]`, with the rest as its fallbacks. */
export function candidateDecision(order: readonly ProxyCandidate[], source: string): ProxyDecision | undefined {
  const [first, ...rest] = order;
  if (!first) return undefined;
  const fallbacks = rest.length ? rest : undefined;
  return first.kind === 'proxy'
    ? { kind: 'proxy', proxy: first.proxy, source, fallbacks }
    : { kind: 'direct', reason: 'resolved', source, fallbacks };
}

/** The decision to try after `decision` failed to reach its proxy: its next fallback, if any. */
export function nextDecision(decision: ProxyDecision): ProxyDecision | undefined {
  if (decision.kind === 'direct' && decision.reason !== 'resolved') return undefined;
  const source = decision.source;
  return decision.fallbacks?.length ? candidateDecision(decision.fallbacks, source) : undefined;
}
