import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { TLSSocket } from 'node:tls';
import { LanyardError } from '../errors';
import { hopError } from './net-errors';
import type { NetworkStack } from './network-stack';
import type { ProxyDecision } from './proxy-rules';

/** What doctor learns about one hop's connection: the way it went, and the certificate the other side presented. */
export interface HopProbe {
  decision: ProxyDecision;
  /** The presented certificate's issuer ("Example Corp TLS Inspection CA"), also when it was not trusted. */
  issuer?: string;
  /** The certificate's expiry (ISO date), when one was presented. */
  validTo?: string;
  /** Why the connection failed: TLS_UNTRUSTED, PROXY_AUTH_REQUIRED, PROXY_UNREACHABLE, or the raw error. */
  error?: unknown;
}

/** undici announces each new connection (and its socket) on this channel; the probe reads the peer certificate there. */
const CONNECTED = 'undici:client:connected';

interface ConnectedMessage {
  connectParams?: { hostname?: string; port?: string | number; protocol?: string };
  socket?: TLSSocket;
}

function issuerName(issuer: Record<string, string | string[] | undefined> | undefined): string | undefined {
  if (!issuer) return undefined;
  const pick = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  return pick(issuer.CN) ?? pick(issuer.O) ?? undefined;
}

/** One GET of the origin's root on a fresh dispatcher (no credentials sent), watching the TLS connection to its host. */
async function connectOnce(
  network: NetworkStack,
  url: URL,
  verify: boolean,
  timeoutMs: number,
): Promise<{ issuer?: string; validTo?: string }> {
  const seen: { issuer?: string; validTo?: string } = {};
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const onConnected = (message: unknown) => {
    const { connectParams, socket } = message as ConnectedMessage;
    if (connectParams?.hostname !== url.hostname || String(connectParams.port || port) !== port) return;
    const cert = typeof socket?.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    if (!cert || !cert.issuer) return;
    const issuer = issuerName(cert.issuer as unknown as Record<string, string | string[] | undefined>);
    if (issuer) seen.issuer = issuer;
    if (cert.valid_to) seen.validTo = new Date(cert.valid_to).toISOString().slice(0, 10);
  };
  const dispatcher = await network.probeDispatcher(url, verify);
  subscribe(CONNECTED, onConnected);
  try {
    const answer = await dispatcher.request({
      origin: url.origin,
      path: '/',
      method: 'GET',
      signal: AbortSignal.timeout(timeoutMs),
    });
    answer.body.resume();
    return seen;
  } finally {
    unsubscribe(CONNECTED, onConnected);
    await dispatcher.close().catch(() => undefined);
  }
}

/**
 * Connects to `url` as every hop would (same proxy, same trusted roots) and reports the way and the certificate. When
 * the certificate is refused, a second look without verification names the issuer the user's CA bundle is missing.
 */
export async function probeHop(network: NetworkStack, url: URL, timeoutMs = 10_000): Promise<HopProbe> {
  let decision: ProxyDecision;
  try {
    decision = (await network.route(url)).decision;
  } catch (e) {
    return { decision: { kind: 'direct', reason: 'no_proxy_set' }, error: e };
  }
  try {
    return { decision, ...(await connectOnce(network, url, true, timeoutMs)) };
  } catch (e) {
    const error = hopError(e, url, decision) ?? e;
    if (error instanceof LanyardError && error.code === 'tls_untrusted') {
      const seen = await connectOnce(network, url, false, timeoutMs).catch(() => ({}));
      return { decision, ...seen, error };
    }
    return { decision, error };
  }
}
