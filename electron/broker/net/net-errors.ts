import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { classifyNetworkError } from '../util/network-errors';
import { displayProxy, type ProxyDecision } from './proxy-rules';

/**
 * Turns what undici and Node report about a failed hop into the network errors a user can act on: an untrusted or
 * expired certificate (TLS_UNTRUSTED), a proxy that wants credentials (PROXY_AUTH_REQUIRED) or does not answer
 * (PROXY_UNREACHABLE). Anything else is returned undefined and the caller's own classification applies.
 *
 * The original error stays as `cause`, so util/network-errors.ts still finds its system code along the chain.
 */

/** OpenSSL's verdicts that mean "no trusted root for this chain" — the signature of a TLS-inspecting proxy. */
const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export const UNTRUSTED_FIX =
  "Your company's CA is missing: set network.caFile in Lanyard's config to its PEM file, or start Lanyard with NODE_EXTRA_CA_CERTS pointing at it, or install it in the OS store (see README, Corporate networks).";

/** The undici message of a refused CONNECT tunnel; undici gives it no code, so this one place reads its text. */
const TUNNEL_STATUS = /Proxy response \((\d{3})\) !== 200 when HTTP Tunneling/;

function codesOf(e: unknown): { codes: string[]; messages: string[] } {
  const codes: string[] = [];
  const messages: string[] = [];
  let current: unknown = e;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    const obj = current as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    if (typeof obj.code === 'string') codes.push(obj.code);
    if (typeof obj.message === 'string') messages.push(obj.message);
    current = obj.cause ?? (Array.isArray(obj.errors) ? (obj.errors as unknown[])[0] : undefined);
  }
  return { codes, messages };
}

const NETWORK_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.TLS_UNTRUSTED,
  ErrorCodes.PROXY_AUTH_REQUIRED,
  ErrorCodes.PROXY_UNREACHABLE,
]);

/** Whether `e` is one of the network's own errors (an untrusted certificate, a proxy refusing or absent). */
export function isNetworkError(e: unknown): e is LanyardError {
  return e instanceof LanyardError && NETWORK_CODES.has(e.code);
}

/** The LanyardError for a failed hop to `url`, or undefined when the failure is not one of the network's own. */
export function hopError(e: unknown, url: URL, decision: ProxyDecision): LanyardError | undefined {
  if (e instanceof LanyardError) return undefined;
  const { codes, messages } = codesOf(e);
  const host = url.host;
  const untrusted = codes.find((c) => UNTRUSTED.has(c));
  if (untrusted)
    return new LanyardError(
      ErrorCodes.TLS_UNTRUSTED,
      `The certificate presented for ${host} is not trusted (${untrusted}).`,
      UNTRUSTED_FIX,
      {
        cause: e,
      },
    );
  const expired = codes.find((c) => EXPIRED.has(c));
  if (expired)
    return new LanyardError(
      ErrorCodes.TLS_UNTRUSTED,
      `The certificate presented for ${host} ${expired === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet'} (${expired}).`,
      "Check the computer's clock; if it is right, the server (or your company's TLS-inspecting proxy) must renew its certificate: tell its owner or your IT team.",
      { cause: e },
    );
  if (codes.includes('ERR_TLS_CERT_ALTNAME_INVALID'))
    return new LanyardError(
      ErrorCodes.TLS_UNTRUSTED,
      `The certificate presented for ${host} is for another host name (ERR_TLS_CERT_ALTNAME_INVALID).`,
      "Check the URL in Lanyard's settings; if it is right, the server's certificate is wrong: tell its owner or your IT team.",
      { cause: e },
    );
  if (decision.kind !== 'proxy') return undefined;
  const proxy = displayProxy(decision.proxy);
  const status = messages.map((m) => TUNNEL_STATUS.exec(m)?.[1]).find(Boolean);
  // A proxy a PAC file or the system's settings chose: there is no setting of its own to check.
  const chosen = decision.source.startsWith('PAC ') || decision.source === 'system proxy settings';
  if (status === '407')
    return new LanyardError(
      ErrorCodes.PROXY_AUTH_REQUIRED,
      `The proxy ${proxy} (${decision.source}) asks for credentials (HTTP 407) before it lets Lanyard reach ${host}.`,
      chosen
        ? `Put the proxy's user name and password in the HTTPS_PROXY environment variable as http://user:password@${decision.proxy.host} (Lanyard uses them for that proxy when the ${decision.source.startsWith('PAC ') ? 'PAC file' : 'system'} names it; its config never holds them), or ask your IT team to allow Lanyard.`
        : `Put the proxy's user name and password in the HTTPS_PROXY environment variable (http://user:password@host:port; Lanyard's config never holds them), or ask your IT team to allow Lanyard; if ${host} is internal, add it to NO_PROXY.`,
      { cause: e },
    );
  if (status)
    return new LanyardError(
      ErrorCodes.SERVER_UNREACHABLE,
      `The proxy ${proxy} (${decision.source}) refused to connect to ${host} (HTTP ${status}).`,
      `Ask your IT team whether ${host} is allowed through the proxy; if it is internal, add it to NO_PROXY (or network.noProxy).`,
      { cause: e, transient: status.startsWith('5') },
    );
  // The proxy is the only party a proxied request connects to: a connection-level failure is the proxy's.
  const network = classifyNetworkError(e);
  if (
    network &&
    (network.kind === 'refused' || network.kind === 'dns' || network.kind === 'unreachable' || network.code === 'UND_ERR_CONNECT_TIMEOUT')
  )
    return new LanyardError(
      ErrorCodes.PROXY_UNREACHABLE,
      `The proxy ${proxy} (${decision.source}) could not be reached (${network.summary}).`,
      chosen
        ? `The ${decision.source.startsWith('PAC ') ? 'PAC file' : "system's proxy settings"} named this proxy and Lanyard tried every entry after it: ask your IT team whether the proxy is down, or set network.proxy to one that works.`
        : `Check ${decision.source}: is the proxy's address right and is it running? Remove the setting if this network has no proxy.`,
      { cause: e, transient: true },
    );
  return undefined;
}
