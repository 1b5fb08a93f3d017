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

/** The rest of a PAC or system list, when there is more than the first entry ("then http://b:3128, then direct"). */
function fallbacks(decision: ProxyDecision): string {
  const rest = decision.kind === 'proxy' || decision.reason === 'resolved' ? (decision.fallbacks ?? []) : [];
  return rest.map((c) => `, then ${c.kind === 'proxy' ? displayProxy(c.proxy) : 'direct'}`).join('');
}

function way(decision: ProxyDecision): string {
  if (decision.kind === 'proxy') return `via proxy ${displayProxy(decision.proxy)} (${decision.source}${fallbacks(decision)})`;
  if (decision.reason === 'resolved') return `direct (${decision.source} says DIRECT${fallbacks(decision)})`;
  if (decision.reason === 'loopback') return 'direct (this machine: never proxied)';
  if (decision.reason === 'no_proxy') return `direct (NO_PROXY entry "${decision.rule ?? ''}")`;
  return 'direct (no proxy set)';
}

/** The extra roots in force, for the lines that passed: where the company CA came from (or that none is added). */
function trustNote(sources: TrustSource[]): string | undefined {
  if (sources.length === 0) return undefined;
  return `extra roots: ${sources.map((s) => `${s.kind} ${s.path}${s.subjects.length ? ` (${s.subjects.length} certificate${s.subjects.length === 1 ? '' : 's'})` : ''}`).join(', ')}`;
}

/**
 * The PAC line, when `network.pac` is in force: where the file came from, whether it loaded (and when), and its last
 * failure with the fix. The hop lines below it say what the file answered for each host.
 */
export async function checkPac(network: NetworkStack, urls: URL[]): Promise<DoctorCheck | undefined> {
  // Asking for the hops loads the file (once) when nothing has yet, and reads the desktop's setting when it decides.
  for (const url of urls) await network.route(url).catch(() => undefined);
  const state = network.pac();
  if (!state) return undefined;
  const id = 'network.pac';
  const hop = 'Network PAC file';
  const loaded = state.loadedAt ? `loaded ${new Date(state.loadedAt).toISOString()}` : undefined;
  const where = `${state.from ?? 'network.pac'} ${state.location}`;
  if (!state.lastError) return { id, hop, ok: true, detail: [where, loaded].filter(Boolean).join('; ') };
  const error = state.lastError.toInfo();
  const retry = state.retryAt ? `; Lanyard tries again at ${new Date(state.retryAt).toISOString()}` : '';
  const detail = loaded
    ? `${error.message} Still using the last good copy (${loaded})${retry}.`
    : `${error.message} No copy was ever loaded: every hop that needs it fails${retry}.`;
  return { id, hop, ok: false, detail, error: { ...error, message: detail } };
}

export async function checkNetworkHops(network: NetworkStack, urls: URL[], timeoutMs: number): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const pac = await checkPac(network, urls);
  if (pac) checks.push(pac);
  for (const url of urls) {
    let decision: ProxyDecision | undefined;
    let trust: TrustSource[] = [];
    try {
      ({ decision, trust } = await network.route(url));
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
      checks.push({ id, hop, ok: true, detail: [way(probe.decision), issuer, trustNote(trust)].filter(Boolean).join('; ') });
      continue;
    }
    const error = toErrorInfo(probe.error);
    // When the way itself could not be decided (the PAC file failed), there is no way to name.
    const prefix = decision === undefined ? 'not sent' : way(probe.decision);
    const detail = `${prefix}: ${error.code === 'internal' ? describe(probe.error) : error.message}${issuer ? ` (the ${issuer})` : ''}`;
    checks.push({ id, hop, ok: false, detail, error: { ...error, message: detail } });
  }
  return checks;
}
