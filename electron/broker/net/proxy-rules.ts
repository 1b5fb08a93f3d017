import { hostClass } from '../util/url-policy';

/**
 * Which proxy, if any, a URL goes through: the environment's HTTPS_PROXY / HTTP_PROXY / NO_PROXY (lower case wins
 * over upper case, as in curl and undici), overridden by the config's `network.proxy` / `network.noProxy`. Loopback is
 * always direct: Lanyard's own endpoint and the sign-in callback live there, and a proxy cannot reach either.
 *
 * NO_PROXY follows the common (curl) semantics: a comma- or space-separated list; `*` matches everything; an entry
 * matches its host and every subdomain (`example.com`, `.example.com` and `*.example.com` all match `a.example.com`);
 * `host:port` matches that port only; IP literals match exactly. CIDR ranges are not supported (curl does not either).
 */

export interface ProxySettings {
  /** For https URLs (falls back to `httpProxy`, as undici and most tools do). */
  httpsProxy?: string | undefined;
  httpProxy?: string | undefined;
  noProxy: readonly string[];
  /** Where the proxy setting came from, for doctor ("HTTPS_PROXY", "network.proxy"). */
  source: string;
}

/**
 * The way to one URL. `source` names where it came from ("HTTPS_PROXY", "network.proxy", "PAC https://…/proxy.pac",
 * "system proxy settings"). A PAC file or the system's settings may list more than one way ("PROXY a; PROXY b;
 * DIRECT"): the first is the decision, the rest are its `fallbacks`, tried in order when a proxy cannot be reached.
 */
export type ProxyDecision =
  | { kind: 'proxy'; proxy: URL; source: string; fallbacks?: ProxyCandidate[] | undefined }
  | { kind: 'direct'; reason: 'loopback' | 'no_proxy' | 'no_proxy_set'; rule?: string }
  /** A PAC file or the system's settings said DIRECT. */
  | { kind: 'direct'; reason: 'resolved'; source: string; fallbacks?: ProxyCandidate[] | undefined };

/** One entry of a PAC-style list Lanyard can use: a proxy (http or https) or DIRECT. */
export type ProxyCandidate = { kind: 'proxy'; proxy: URL } | { kind: 'direct' };

type Env = Record<string, string | undefined>;

function envValue(env: Env, name: string): string | undefined {
  const value = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return value && value.trim() !== '' ? value.trim() : undefined;
}

/** The entries of a NO_PROXY value. */
export function parseNoProxy(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/** The effective settings: the config's `network` section over the environment. */
export function proxySettings(
  env: Env,
  config: { proxy?: string | undefined; noProxy?: readonly string[] | undefined } = {},
): ProxySettings {
  const noProxy = config.noProxy ?? parseNoProxy(envValue(env, 'no_proxy'));
  if (config.proxy) return { httpsProxy: config.proxy, httpProxy: config.proxy, noProxy, source: 'network.proxy' };
  const httpsProxy = envValue(env, 'https_proxy');
  const httpProxy = envValue(env, 'http_proxy');
  return {
    httpsProxy,
    httpProxy,
    noProxy,
    source: httpsProxy ? (env.https_proxy ? 'https_proxy' : 'HTTPS_PROXY') : env.http_proxy ? 'http_proxy' : 'HTTP_PROXY',
  };
}

/** The proxy URL as text for messages and doctor: scheme, host and port, never its user name or password. */
export function displayProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

export function decideProxy(target: URL, settings: ProxySettings): ProxyDecision {
  if (hostClass(target.hostname) === 'loopback') return { kind: 'direct', reason: 'loopback' };
  const raw = target.protocol === 'https:' ? (settings.httpsProxy ?? settings.httpProxy) : settings.httpProxy;
  if (!raw) return { kind: 'direct', reason: 'no_proxy_set' };
  const rule = settings.noProxy.find((entry) => noProxyMatches(entry, target));
  if (rule !== undefined) return { kind: 'direct', reason: 'no_proxy', rule };
  let proxy: URL;
  try {
    // A bare "host:port" (common in HTTPS_PROXY) means an http proxy.
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    return { kind: 'direct', reason: 'no_proxy_set' };
  }
  return { kind: 'proxy', proxy, source: settings.source };
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

function noProxyMatches(entry: string, target: URL): boolean {
  if (entry === '*') return true;
  let host = entry;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2];
  } else {
    const m = /^([^:]+):(\d+)$/.exec(entry);
    if (m) {
      host = m[1]!;
      port = m[2];
    }
  }
  if (port !== undefined && port !== defaultPort(target)) return false;
  host = host.replace(/^\*?\./, '').replace(/\.$/, '');
  const hostname = target.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  return hostname === host || hostname.endsWith(`.${host}`);
}
