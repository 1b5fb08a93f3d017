import type { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type * as Undici from 'undici';
import type { Agent, Dispatcher, ProxyAgent } from 'undici';
import type { SecureContext } from 'node:tls';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import type { FetchLike } from '../util/http';
import { classifyNetworkError } from '../util/network-errors';
import { hopError } from './net-errors';
import { createPacEngine, PAC_REFRESH_MS, type PacEngine, type PacState } from './pac';
import { decisionFromCandidates, nextDecision, parseProxyList } from './proxy-list';
import type { SystemPac } from './system-pac';
import { decideProxy, proxySettings, type ProxyCandidate, type ProxyDecision } from './proxy-rules';
import { loadTrust, type Trust } from './trust';

/** The config's `network` section (config/schema.ts). */
export interface NetworkSettings {
  proxy?: string | undefined;
  noProxy?: string[] | undefined;
  caFile?: string | undefined;
  /** A proxy auto-configuration file (URL or path), evaluated when no `proxy` is set. */
  pac?: string | undefined;
}

/**
 * The system's proxy resolver: the Electron app passes Chromium's `session.resolveProxy`, whose answer (the system's
 * proxy settings, including their PAC file) has the PAC format ("PROXY host:port; DIRECT").
 */
export type SystemProxyResolver = (url: string) => Promise<string>;

/**
 * How the relay's node:http(s) transport sends one upstream request (gateway/relay-transport.ts): on a keep-alive
 * node agent (direct; with the company CA when one is configured), or, when a proxy applies, through undici's proxy
 * agent with the body handed over as-is.
 */
export type UpstreamRoute =
  | { agent: HttpAgent | HttpsAgent; send?: undefined }
  | {
      agent?: undefined;
      send: (url: URL, init: RequestInit | undefined, body: Buffer | ReadableStream<Uint8Array> | undefined) => Promise<Response>;
    };

/** What a hop goes through, for doctor. */
export interface HopRoute {
  decision: ProxyDecision;
  trust: Trust['sources'];
}

/**
 * The broker's outbound network: one place decides, per URL, the proxy (or none, and why) and the trusted roots, for
 * every hop — the IdP, each authorization server, each MCP server. `fetch` serves the request/response hops (discovery,
 * token endpoints, probes); `upstream` picks the agent of the relay's node:http(s) transport, so direct MCP traffic
 * keeps its fast keep-alive agents and only proxied traffic goes through undici.
 *
 * Settings are read on each use (cheap: a key compare) so an edited `network` section or caFile applies without a restart.
 */
export interface NetworkStack {
  fetch: FetchLike;
  upstream(url: URL): UpstreamRoute | undefined;
  route(url: URL): Promise<HopRoute>;
  /** The PAC file in use (`network.pac`), for doctor: where it came from, when it loaded, its last failure. */
  pac(): PacState | undefined;
  /**
   * A new, unpooled undici dispatcher that reaches `url` the way every hop does (same proxy, same roots), for doctor's
   * look at the TLS connection itself. `verify: false` only reads a certificate that failed verification, to name its
   * issuer; the caller sends nothing over it. The caller closes it.
   */
  probeDispatcher(url: URL, verify: boolean): Promise<Dispatcher>;
  close(): Promise<void>;
}

export interface NetworkStackOptions {
  env: Record<string, string | undefined>;
  settings: () => NetworkSettings | undefined;
  /** The platform fetch the stack hands its dispatcher to (default: global fetch). */
  fetch?: typeof fetch;
  /** Asked for every URL no configured proxy, PAC file or proxy environment variable decides (see SystemProxyResolver). */
  systemProxy?: SystemProxyResolver | undefined;
  /**
   * Headless: reads the desktop's PAC setting (net/system-pac.ts), used like `network.pac` for the URLs nothing else
   * decides. Read on first need and every PAC_REFRESH_MS. Ignored when `systemProxy` is given.
   */
  systemPac?: (() => Promise<SystemPac | undefined>) | undefined;
}

/** How long a PAC or system answer is used for an origin before it is asked again; a failure, a shorter time. */
const ANSWER_TTL_MS = 60_000;
const FAILED_ANSWER_TTL_MS = 15_000;
/** How long a proxy that could not be reached is skipped in favour of the list's next entry. */
const PROXY_DOWN_MS = 60_000;
const PAC_FETCH_TIMEOUT_MS = 10_000;
export const SYSTEM_PROXY_SOURCE = 'system proxy settings';

interface Answer {
  until: number;
  promise: Promise<ProxyCandidate[]>;
  /** Set once the promise settled (read synchronously by `upstream`). */
  settled?: { candidates: ProxyCandidate[] } | { error: unknown };
}

const AGENT_OPTIONS = { keepAlive: true, scheduling: 'lifo' as const };

/** undici's request() refuses hop-by-hop headers; the relay never means them for the upstream anyway. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'proxy-connection', 'te', 'trailer']);

interface Built {
  key: string;
  trust: Trust | undefined;
  /** Set when the trust could not be loaded (a missing caFile): every hop fails with it. */
  trustError: unknown;
  settings: ReturnType<typeof proxySettings>;
  proxies: Map<string, ProxyAgent>;
  direct: Agent | undefined;
  secureContext: SecureContext | undefined;
  httpsAgent: HttpsAgent | undefined;
  /** The undici agent of a direct relay request decided asynchronously (a PAC or the system said DIRECT). */
  plain: Agent | undefined;
  /** PAC or system answers per origin. */
  answers: Map<string, Answer>;
  /** `network.proxy` is set: it wins over `network.pac` and the environment. */
  configuredProxy: boolean;
  pacLocation: string | undefined;
}

/** undici is loaded on the first proxied or CA-pinned request only: most runs need neither, and start-up pays nothing. */
let undiciModule: Promise<typeof Undici> | undefined;
/**
 * Bundled (the CLI's esbuild ESM output), undici is CommonJS wrapped for import(): its exports arrive on `default` only,
 * and `ProxyAgent` on the namespace is undefined. Either shape is accepted.
 */
const loadUndici = () =>
  (undiciModule ??= import('undici').then((m) => {
    const wrapped = (m as unknown as { default?: typeof Undici }).default;
    return typeof m.ProxyAgent === 'function' || !wrapped ? m : wrapped;
  }));

/** The environment variables a stack is built from: a change to any of them builds a new one. */
const NO_SETTINGS: NetworkSettings = {};
const STACK_ENV = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY', 'NODE_EXTRA_CA_CERTS'] as const;

export function createNetworkStack(options: NetworkStackOptions): NetworkStack {
  const platformFetch = options.fetch ?? fetch;
  let built: Built | undefined;
  const retired: Dispatcher[] = [];
  let pacEngine: PacEngine | undefined;
  const down = new Map<string, number>();

  // Asked on every upstream request: the settings object the config hands out stays the same until the file changes,
  // so the same object and the same proxy/CA variables mean the same stack without serializing anything (the
  // serialization was about 2 % of the broker's CPU per relayed call).
  let seen: { settings: object; vars: Array<string | undefined> } | undefined;
  const current = (): Built => {
    const settings = options.settings() ?? NO_SETTINGS;
    const env = options.env;
    const vars = STACK_ENV.map((name) => env[name]);
    if (built && seen?.settings === settings && seen.vars.every((v, i) => v === vars[i])) return built;
    const key = JSON.stringify([settings, ...vars]);
    if (built?.key === key) {
      seen = { settings, vars };
      return built;
    }
    if (built) {
      retired.push(...built.proxies.values());
      if (built.direct) retired.push(built.direct);
      if (built.plain) retired.push(built.plain);
      built.httpsAgent?.destroy();
    }
    let trust: Trust | undefined;
    let trustError: unknown;
    try {
      trust = loadTrust({ caFile: settings.caFile, env });
    } catch (e) {
      trustError = e;
    }
    const secureContext = trust?.secureContext;
    built = {
      key,
      trust,
      trustError,
      settings: proxySettings(env, settings),
      proxies: new Map(),
      direct: undefined,
      secureContext,
      httpsAgent: secureContext ? new HttpsAgent({ ...AGENT_OPTIONS, secureContext }) : undefined,
      plain: undefined,
      answers: new Map(),
      configuredProxy: Boolean(settings.proxy),
      pacLocation: settings.pac,
    };
    // Only once the stack is built: one that failed to build (bad proxy settings) is tried again on the next request.
    seen = { settings, vars };
    return built;
  };

  /** The desktop's PAC setting (headless only): `known` once a first read finished. */
  let desktop: { at: number; known: boolean; value: SystemPac | undefined; pending: Promise<void> | undefined } | undefined;
  const readDesktopPac = (): Promise<void> | undefined => {
    const read = options.systemPac;
    if (!read) return undefined;
    if (desktop && (desktop.pending || Date.now() - desktop.at < PAC_REFRESH_MS)) return desktop.pending;
    const state: NonNullable<typeof desktop> = {
      at: Date.now(),
      known: desktop?.known ?? false,
      value: desktop?.value,
      pending: undefined,
    };
    state.pending = read()
      .then(
        (value) => {
          state.value = value;
        },
        () => undefined,
      )
      .finally(() => {
        state.known = true;
        state.pending = undefined;
      });
    desktop = state;
    return state.pending;
  };
  /** Whether the desktop's PAC setting is what would decide `decision` (nothing configured decides it). */
  const desktopDecides = (b: Built, decision: ProxyDecision) =>
    Boolean(options.systemPac) &&
    !options.systemProxy &&
    !b.configuredProxy &&
    !b.pacLocation &&
    decision.kind === 'direct' &&
    decision.reason === 'no_proxy_set';
  /** The PAC file in force: `network.pac`, else the desktop's (when it decides). */
  const pacOf = (b: Built): SystemPac | { location: string; from?: undefined } | undefined =>
    b.pacLocation ? { location: b.pacLocation } : options.systemProxy ? undefined : desktop?.value;

  const decide = (url: URL) => {
    const b = current();
    if (b.trustError) throw b.trustError;
    return { b, decision: decideProxy(url, b.settings) };
  };

  /**
   * Who decides beyond the static rules: `network.proxy` (and loopback) first; then `network.pac`; then HTTPS_PROXY /
   * NO_PROXY; then the system's resolver, when there is one. Undefined: the static decision stands.
   */
  const dynamicFor = (b: Built, decision: ProxyDecision): 'pac' | 'system' | undefined => {
    if (decision.kind === 'direct' && decision.reason === 'loopback') return undefined;
    if (b.configuredProxy) return undefined;
    if (b.pacLocation) return 'pac';
    if (decision.kind === 'proxy' || decision.reason === 'no_proxy') return undefined;
    if (options.systemProxy) return 'system';
    return desktopDecides(b, decision) && desktop?.value ? 'pac' : undefined;
  };

  const isDown = (proxy: URL) => {
    const until = down.get(proxy.href);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    down.delete(proxy.href);
    return false;
  };

  /** After a proxy could not be reached: it is skipped for a while, and the list's next entry is the way. */
  const failedOver = (decision: ProxyDecision, error: unknown): ProxyDecision | undefined => {
    if (decision.kind !== 'proxy' || !(error instanceof LanyardError) || error.code !== ErrorCodes.PROXY_UNREACHABLE) return undefined;
    down.set(decision.proxy.href, Date.now() + PROXY_DOWN_MS);
    return nextDecision(decision);
  };

  const fetchPac = async (url: URL): Promise<string> => {
    const b = current();
    // The PAC file is fetched direct (it says which proxy to use; it is not behind one), with the company CA.
    const dispatcher = url.protocol === 'https:' && b.secureContext ? await directAgent(b) : undefined;
    let response: Response;
    try {
      response = await platformFetch(url, {
        signal: AbortSignal.timeout(PAC_FETCH_TIMEOUT_MS),
        ...(dispatcher ? { dispatcher } : {}),
      } as unknown as RequestInit);
    } catch (e) {
      const tls = hopError(e, url, { kind: 'direct', reason: 'no_proxy_set' });
      throw new Error(tls?.message ?? classifyNetworkError(e)?.summary ?? 'fetch failed', { cause: e });
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`HTTP ${response.status}`);
    }
    return response.text();
  };

  const pac = (location: string): PacEngine => {
    if (pacEngine?.location !== location) {
      pacEngine?.close();
      pacEngine = createPacEngine({ location, fetchUrl: fetchPac });
    }
    return pacEngine;
  };

  const unusable = (source: 'pac' | 'system', url: URL, answer: string, skipped: string[]): LanyardError => {
    const what = skipped.length
      ? `only ${skipped.join(', ')}, which Lanyard cannot use (SOCKS is not supported)`
      : `"${answer.slice(0, 80)}"`;
    return source === 'pac'
      ? new LanyardError(
          ErrorCodes.PAC_FAILED,
          `The proxy auto-configuration (PAC) file ${pacEngine?.location ?? ''} names no usable way to ${url.host}: ${what}.`,
          'Ask your IT team for an http proxy for this host (or DIRECT) in the PAC file, or set network.proxy to an http proxy, which takes precedence over network.pac.',
        )
      : new LanyardError(
          ErrorCodes.PROXY_UNREACHABLE,
          `The system proxy settings name no usable way to ${url.host}: ${what}.`,
          "Set network.proxy in Lanyard's config (or HTTPS_PROXY) to an http proxy for this host, or ask your IT team to change the system's proxy settings.",
        );
  };

  const lookup = async (source: 'pac' | 'system', b: Built, url: URL): Promise<ProxyCandidate[]> => {
    let answer: string;
    const file = pacOf(b);
    if (source === 'pac' && file) answer = await pac(file.location).find(url);
    else {
      try {
        answer = await options.systemProxy!(url.href);
      } catch (e) {
        throw new LanyardError(
          ErrorCodes.PROXY_UNREACHABLE,
          `The system proxy settings could not be read for ${url.host}.`,
          "Check the system's proxy settings (or the PAC file they name); set network.proxy in Lanyard's config to bypass them.",
          { cause: e, transient: true },
        );
      }
    }
    const parsed = parseProxyList(answer);
    if (parsed.candidates.length === 0) throw unusable(source, url, answer, parsed.unsupported);
    return parsed.candidates;
  };

  const sourceName = (source: 'pac' | 'system', b: Built) => {
    const file = pacOf(b);
    if (source === 'system' || !file) return SYSTEM_PROXY_SOURCE;
    return file.from ? `PAC ${file.location} (${file.from})` : `PAC ${file.location}`;
  };

  /** The PAC's or the system's answer for the URL's origin, asked at most once per ANSWER_TTL_MS. */
  const answerFor = (source: 'pac' | 'system', b: Built, url: URL): Answer => {
    const now = Date.now();
    const hit = b.answers.get(url.origin);
    if (hit && now < hit.until) return hit;
    const answer: Answer = { until: now + ANSWER_TTL_MS, promise: lookup(source, b, url) };
    answer.promise.then(
      (candidates) => {
        answer.settled = { candidates };
      },
      (error: unknown) => {
        answer.settled = { error };
        answer.until = Date.now() + FAILED_ANSWER_TTL_MS;
      },
    );
    b.answers.set(url.origin, answer);
    return answer;
  };

  const fromCandidates = (source: 'pac' | 'system', b: Built, candidates: ProxyCandidate[]) =>
    decisionFromCandidates(candidates, sourceName(source, b), isDown)!;

  /** The decision for `url`, asking the PAC file or the system when they decide. */
  const decideAsync = async (url: URL): Promise<{ b: Built; decision: ProxyDecision }> => {
    const { b, decision } = decide(url);
    if (desktopDecides(b, decision)) await readDesktopPac();
    const source = dynamicFor(b, decision);
    if (!source) return { b, decision };
    return { b, decision: fromCandidates(source, b, await answerFor(source, b, url).promise) };
  };

  const directAgent = async (b: Built): Promise<Agent> => {
    if (b.secureContext) {
      if (!b.direct) {
        const { Agent } = await loadUndici();
        b.direct ??= new Agent({ connect: { secureContext: b.secureContext } });
      }
      return b.direct;
    }
    if (!b.plain) {
      const { Agent } = await loadUndici();
      b.plain ??= new Agent();
    }
    return b.plain;
  };

  /** A relay request on an undici dispatcher, moving down the decision's fallback list while its proxies are down. */
  const sendWithFallback = async (
    b: Built,
    first: ProxyDecision,
    target: URL,
    init: RequestInit | undefined,
    body: Buffer | ReadableStream<Uint8Array> | undefined,
  ): Promise<Response> => {
    for (let decision = first; ;) {
      const dispatcher = (await dispatcherFor(b, decision, target)) ?? (await directAgent(b));
      try {
        return await sendVia(dispatcher, target, init, body, decision);
      } catch (e) {
        const next = failedOver(decision, e);
        // A streamed body has been handed to the failed attempt: only a whole (or no) body can be sent again.
        if (!next || !(body === undefined || Buffer.isBuffer(body))) throw e;
        decision = next;
      }
    }
  };

  /**
   * A PAC file or the system names a proxy without credentials: the ones HTTPS_PROXY / HTTP_PROXY give for that same
   * proxy (host and port) apply, so a proxy that asks for them (407) can still be given them without a config file
   * holding a password.
   */
  const proxyUri = (b: Built, proxy: URL): string => {
    if (proxy.username) return proxy.href;
    for (const raw of [b.settings.httpsProxy, b.settings.httpProxy]) {
      if (!raw) continue;
      try {
        const known = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
        if (!known.username || known.host !== proxy.host) continue;
        const withCredentials = new URL(proxy.href);
        withCredentials.username = known.username;
        withCredentials.password = known.password;
        return withCredentials.href;
      } catch {
        // not a URL: no credentials from it
      }
    }
    return proxy.href;
  };

  const dispatcherFor = async (b: Built, decision: ProxyDecision, url: URL): Promise<Dispatcher | undefined> => {
    if (decision.kind === 'proxy') {
      let agent = b.proxies.get(decision.proxy.href);
      if (!agent) {
        const { ProxyAgent } = await loadUndici();
        const tls = b.secureContext ? { secureContext: b.secureContext } : {};
        agent = b.proxies.get(decision.proxy.href) ?? new ProxyAgent({ uri: proxyUri(b, decision.proxy), requestTls: tls, proxyTls: tls });
        b.proxies.set(decision.proxy.href, agent);
      }
      return agent;
    }
    if (url.protocol !== 'https:' || !b.secureContext) return undefined;
    if (!b.direct) {
      const { Agent } = await loadUndici();
      b.direct ??= new Agent({ connect: { secureContext: b.secureContext } });
    }
    return b.direct;
  };

  const stack: NetworkStack = {
    async fetch(input, init) {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const resolved = await decideAsync(url);
      // Only a body that can be read twice may be sent again through the list's next proxy.
      const replayable = !(input instanceof Request) && !(init?.body instanceof ReadableStream);
      for (let decision = resolved.decision; ;) {
        const dispatcher = await dispatcherFor(resolved.b, decision, url);
        try {
          return await platformFetch(input, dispatcher ? ({ ...init, dispatcher } as unknown as RequestInit) : init);
        } catch (e) {
          const error = hopError(e, url, decision) ?? e;
          const next = replayable ? failedOver(decision, error) : undefined;
          if (!next) throw error;
          decision = next;
        }
      }
    },
    upstream(url) {
      const { b, decision: fixed } = decide(url);
      let decision = fixed;
      if (desktopDecides(b, fixed)) {
        const pending = readDesktopPac();
        // The desktop's setting is not known yet (the first request): this one waits for it.
        if (pending && !desktop?.known)
          return {
            send: async (target, init, body) => {
              const resolved = await decideAsync(target);
              return sendWithFallback(resolved.b, resolved.decision, target, init, body);
            },
          };
      }
      const source = dynamicFor(b, fixed);
      if (source) {
        const answer = answerFor(source, b, url);
        const settled = answer.settled;
        // Not answered yet (or failed): the request waits for the answer (and fails with its error) on undici.
        if (!settled || 'error' in settled)
          return {
            send: async (target, init, body) => sendWithFallback(b, fromCandidates(source, b, await answer.promise), target, init, body),
          };
        decision = fromCandidates(source, b, settled.candidates);
      }
      if (decision.kind === 'proxy') {
        const proxied = decision;
        return { send: (target, init, body) => sendWithFallback(b, proxied, target, init, body) };
      }
      if (url.protocol === 'https:' && b.httpsAgent) return { agent: b.httpsAgent };
      return undefined;
    },
    async route(url) {
      const { b, decision } = await decideAsync(url);
      return { decision, trust: b.trust?.sources ?? [] };
    },
    pac() {
      const b = current();
      const file = b.configuredProxy ? undefined : pacOf(b);
      // The desktop's file yields to HTTPS_PROXY / HTTP_PROXY, as it does for every hop.
      if (!file || (file.from && (b.settings.httpsProxy || b.settings.httpProxy))) return undefined;
      const state = pacEngine?.location === file.location ? pacEngine.state() : { location: file.location };
      return file.from ? { ...state, from: file.from } : state;
    },
    async probeDispatcher(url, verify) {
      const { b, decision } = await decideAsync(url);
      const { Agent, ProxyAgent } = await loadUndici();
      const tls = { ...(b.secureContext ? { secureContext: b.secureContext } : {}), ...(verify ? {} : { rejectUnauthorized: false }) };
      return decision.kind === 'proxy'
        ? new ProxyAgent({
            uri: proxyUri(b, decision.proxy),
            requestTls: tls,
            proxyTls: b.secureContext ? { secureContext: b.secureContext } : {},
          })
        : new Agent({ connect: tls });
    },
    async close() {
      pacEngine?.close();
      pacEngine = undefined;
      const all = [
        ...retired.splice(0),
        ...(built ? [...built.proxies.values(), ...(built.direct ? [built.direct] : []), ...(built.plain ? [built.plain] : [])] : []),
      ];
      built?.httpsAgent?.destroy();
      built = undefined;
      await Promise.all(all.map((d) => d.close().catch(() => undefined)));
    },
  };
  return stack;
}

/**
 * One relay request through an undici dispatcher (the proxied route). undici's request() rather than fetch: no
 * decompression, so Content-Encoding and Content-Length pass through unchanged, as on the node:http route.
 */
async function sendVia(
  dispatcher: Dispatcher,
  url: URL,
  init: RequestInit | undefined,
  body: Buffer | ReadableStream<Uint8Array> | undefined,
  decision: ProxyDecision,
): Promise<Response> {
  const headers: Record<string, string> = {};
  new Headers(init?.headers).forEach((value, name) => {
    if (!HOP_BY_HOP.has(name) && name !== 'host') headers[name] = value;
  });
  const payload = body === undefined || Buffer.isBuffer(body) ? body : Readable.fromWeb(body as NodeReadableStream<Uint8Array>);
  try {
    const answer = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: (init?.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body: payload ?? null,
      ...(init?.signal ? { signal: init.signal } : {}),
    });
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
      else if (value !== undefined) responseHeaders.set(name, value);
    }
    const status = answer.statusCode;
    const empty = status === 204 || status === 304 || init?.method === 'HEAD';
    if (empty) answer.body.resume();
    const web = empty ? null : (Readable.toWeb(answer.body) as ReadableStream<Uint8Array>);
    return new Response(web, { status: status < 200 || status > 599 ? 502 : status, headers: responseHeaders });
  } catch (e) {
    throw hopError(e, url, decision) ?? e;
  }
}
