import type { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type * as Undici from 'undici';
import type { Agent, Dispatcher, ProxyAgent } from 'undici';
import type { SecureContext } from 'node:tls';
import type { FetchLike } from '../util/http';
import { hopError } from './net-errors';
import { decideProxy, proxySettings, type ProxyDecision } from './proxy-rules';
import { loadTrust, type Trust } from './trust';

/** The config's `network` section (config/schema.ts). */
export interface NetworkSettings {
  proxy?: string | undefined;
  noProxy?: string[] | undefined;
  caFile?: string | undefined;
}

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
  route(url: URL): HopRoute;
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
}

/** undici is loaded on the first proxied or CA-pinned request only: most runs need neither, and start-up pays nothing. */
let undiciModule: Promise<typeof Undici> | undefined;
const loadUndici = () => (undiciModule ??= import('undici'));

export function createNetworkStack(options: NetworkStackOptions): NetworkStack {
  const platformFetch = options.fetch ?? fetch;
  let built: Built | undefined;
  const retired: Dispatcher[] = [];

  const current = (): Built => {
    const settings = options.settings() ?? {};
    const env = options.env;
    const key = JSON.stringify([
      settings,
      env.https_proxy,
      env.HTTPS_PROXY,
      env.http_proxy,
      env.HTTP_PROXY,
      env.no_proxy,
      env.NO_PROXY,
      env.NODE_EXTRA_CA_CERTS,
    ]);
    if (built?.key === key) return built;
    if (built) {
      retired.push(...built.proxies.values());
      if (built.direct) retired.push(built.direct);
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
    };
    return built;
  };

  const decide = (url: URL) => {
    const b = current();
    if (b.trustError) throw b.trustError;
    return { b, decision: decideProxy(url, b.settings) };
  };

  const dispatcherFor = async (b: Built, decision: ProxyDecision, url: URL): Promise<Dispatcher | undefined> => {
    if (decision.kind === 'proxy') {
      let agent = b.proxies.get(decision.proxy.href);
      if (!agent) {
        const { ProxyAgent } = await loadUndici();
        const tls = b.secureContext ? { secureContext: b.secureContext } : {};
        agent = b.proxies.get(decision.proxy.href) ?? new ProxyAgent({ uri: decision.proxy.href, requestTls: tls, proxyTls: tls });
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

  const resolve = async (url: URL) => {
    const { b, decision } = decide(url);
    return { b, decision, dispatcher: await dispatcherFor(b, decision, url) };
  };

  const stack: NetworkStack = {
    async fetch(input, init) {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const { decision, dispatcher } = await resolve(url);
      try {
        return await platformFetch(input, dispatcher ? ({ ...init, dispatcher } as unknown as RequestInit) : init);
      } catch (e) {
        throw hopError(e, url, decision) ?? e;
      }
    },
    upstream(url) {
      const { b, decision } = decide(url);
      if (decision.kind === 'proxy')
        return { send: async (target, init, body) => sendVia((await dispatcherFor(b, decision, target))!, target, init, body, decision) };
      if (url.protocol === 'https:' && b.httpsAgent) return { agent: b.httpsAgent };
      return undefined;
    },
    route(url) {
      const b = current();
      if (b.trustError) throw b.trustError;
      return { decision: decideProxy(url, b.settings), trust: b.trust?.sources ?? [] };
    },
    async probeDispatcher(url, verify) {
      const { b, decision } = decide(url);
      const { Agent, ProxyAgent } = await loadUndici();
      const tls = { ...(b.secureContext ? { secureContext: b.secureContext } : {}), ...(verify ? {} : { rejectUnauthorized: false }) };
      return decision.kind === 'proxy'
        ? new ProxyAgent({ uri: decision.proxy.href, requestTls: tls, proxyTls: b.secureContext ? { secureContext: b.secureContext } : {} })
        : new Agent({ connect: tls });
    },
    async close() {
      const all = [...retired.splice(0), ...(built ? [...built.proxies.values(), ...(built.direct ? [built.direct] : [])] : [])];
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
