import { toErrorInfo } from '../errors';
import type { NetworkStack } from '../net/network-stack';
import { probeHop } from '../net/probe';
import { displayProxy, type ProxyDecision } from '../net/proxy-rules';
import type { TrustSource } from '../net/trust';
import type { FetchLike } from '../util/http';
import { hostClass } from '../util/url-policy';
import { describe, type DoctorCheck } from './types';

/**
 * Doctor's network lines: one per party the other checks reached over https or through a proxy (IdP, each
 * authorization server, each MCP server), saying which proxy carried it (or "direct", and why) and who issued the
 * certificate it presented. Plain-http loopback parties get no line: they are always direct and have no certificate.
 */

/** A fetch that remembers every origin it was asked for, in order (doctor's hops, found as the other checks run). */
export function recordOrigins(base: FetchLike): { fetch: FetchLike; note: (url: string) => void; origins: () => URL[] } {
  const seen = new Map<string, URL>();
  const note = (input: string) => {
    try {
      const url = new URL(input);
      if (!seen.has(url.origin)) seen.set(url.origin, url);
    } catch {
      // not a URL: the base fetch reports it
    }
  };
  return {
    fetch: (input, init) => {
      note(String(input));
      return base(input, init);
    },
    note,
    origins: () => [...seen.values()],
  };
}

function way(decision: ProxyDecision): string {
  if (decision.kind === 'proxy') return `via proxy ${displayProxy(decision.proxy)} (${decision.source})`;
  if (decision.reason === 'loopback') return 'direct (this machine: never proxied)';
  if (decision.reason === 'no_proxy') return `direct (NO_PROXY entry "${decision.rule ?? ''}")`;
  return 'direct (no proxy set)';
}

/** The extra roots in force, for the lines that passed: where the company CA came from (or that none is added). */
function trustNote(network: NetworkStack, url: URL): string | undefined {
  let sources: TrustSource[];
  try {
    sources = network.route(url).trust;
  } catch {
    return undefined;
  }
  if (sources.length === 0) return undefined;
  return `extra roots: ${sources.map((s) => `${s.kind} ${s.path}${s.subjects.length ? ` (${s.subjects.length} certificate${s.subjects.length === 1 ? '' : 's'})` : ''}`).join(', ')}`;
}

export async function checkNetworkHops(network: NetworkStack, urls: URL[], timeoutMs: number): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  for (const url of urls) {
    let decision: ProxyDecision | undefined;
    try {
      decision = network.route(url).decision;
    } catch {
      decision = undefined;
    }
    if (url.protocol !== 'https:' && (decision?.kind !== 'proxy' || hostClass(url.hostname) === 'loopback')) continue;
    const probe = await probeHop(network, url, timeoutMs);
    const id = `network.${url.host}`;
    const hop = `Network ${url.host}`;
    const issuer = probe.issuer
      ? `certificate issued by "${probe.issuer}"${probe.validTo ? `, valid to ${probe.validTo}` : ''}`
      : undefined;
    if (probe.error === undefined) {
      checks.push({ id, hop, ok: true, detail: [way(probe.decision), issuer, trustNote(network, url)].filter(Boolean).join('; ') });
      continue;
    }
    const error = toErrorInfo(probe.error);
    const detail = `${way(probe.decision)}: ${error.code === 'internal' ? describe(probe.error) : error.message}${issuer ? ` (the ${issuer})` : ''}`;
    checks.push({ id, hop, ok: false, detail, error: { ...error, message: detail } });
  }
  return checks;
}
