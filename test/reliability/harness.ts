/**
 * The whole broker against the sandbox, as a person runs it: `startHeadless` (config file, OS keychain, gateway with
 * front door, aggregator, relay, runtime file, control API) in a fresh LANYARD_HOME, with the sandbox's IdP login page
 * standing in for the browser, an SDK client standing in for each IDE, and every log line captured. Shared by the
 * reliability and security suites (test/reliability, test/security).
 */
import { rm } from 'node:fs/promises';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { openConfigStore } from '../../electron/broker/config/store';
import { startHeadless, type HeadlessBroker, type HeadlessOptions } from '../../electron/broker/headless';
import { createSecretStore } from '../../electron/broker/secrets';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { createLogger } from '../../electron/broker/util/log';
import type { Sandbox } from '../fixtures/sandbox';
import { tempHome } from '../helpers/engine';

/** One outgoing request the broker made (through the `fetch` it was given). */
export interface SentRequest {
  url: string;
  method: string;
  authorization: string | undefined;
  body: string;
}

/**
 * A fetch that records every request the broker makes and refuses (without any I/O) anything that is not on
 * 127.0.0.1/localhost: this machine's tests must never reach another host, and hostile-metadata tests assert the
 * broker refused such a URL before even trying.
 */
export function recordingFetch(base: typeof fetch = fetch): { fetch: typeof fetch; sent: SentRequest[]; offLoopback: string[] } {
  const sent: SentRequest[] = [];
  const offLoopback: string[] = [];
  const wrapped = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      offLoopback.push(url.href);
      throw new TypeError(`test guard: refused a request to ${url.host} (only 127.0.0.1 may be contacted here)`);
    }
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    const body = typeof init?.body === 'string' ? init.body : init?.body instanceof URLSearchParams ? init.body.toString() : '';
    sent.push({ url: url.href, method: init?.method ?? 'GET', authorization: headers.get('authorization') ?? undefined, body });
    return base(input, init);
  }) as typeof fetch;
  return { fetch: wrapped, sent, offLoopback };
}

export interface BrokerOnSandbox {
  headless: HeadlessBroker;
  home: string;
  secrets: SecretStore;
  /** Every JSON log line the broker wrote (all levels). */
  logs: string[];
  /** `http://127.0.0.1:<port>` */
  url: string;
  token: string;
  /** Sign in by driving the sandbox IdP's login page, as the browser would. */
  signIn(user?: string): Promise<void>;
  /** An SDK client as an IDE, on `/mcp` (no server id) or `/mcp/<id>`. */
  ide(serverId?: string, options?: { name?: string; capabilities?: Record<string, unknown> }): Promise<Client>;
  /** A raw request to the local endpoint with the local token. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Stops the broker (the keychain entries and home stay until `dispose`). */
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

export interface BrokerOnSandboxOptions {
  /** Servers to configure (default: the sandbox's own). */
  servers?: Array<{
    id: string;
    name: string;
    url: string;
    enabled: boolean;
    asClient?: { clientId: string; method: 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' };
    expectedAsIssuer?: string;
  }>;
  /** Extra keychain entries (beyond sandbox.lanyardSecrets()). */
  secrets?: Record<string, string>;
  fetch?: typeof fetch;
  timeouts?: HeadlessOptions['timeouts'];
  home?: string;
}

/**
 * Writes what an admin or `lanyard setup` would provide for the sandbox into `home`: the config file (IdP, servers,
 * gateway on any free port) and the keychain entries (client secrets). Returns the instance's secret store.
 */
export async function prepareHome(
  sandbox: Sandbox,
  home: string,
  options: Pick<BrokerOnSandboxOptions, 'servers' | 'secrets'> = {},
): Promise<SecretStore> {
  const lanyard = sandbox.lanyardConfig();
  const config = openConfigStore(home);
  config.update(() => ({ version: 1, idp: lanyard.idp, servers: options.servers ?? lanyard.servers, gateway: { port: 0 } }));
  config.close();
  const secrets = createSecretStore({ home });
  for (const [key, value] of Object.entries({ ...sandbox.lanyardSecrets(), ...options.secrets })) await secrets.set(key, value);
  return secrets;
}

/** Starts Lanyard headless in a fresh home, configured for the sandbox (IdP and servers), not yet signed in. */
export async function startBrokerOnSandbox(sandbox: Sandbox, options: BrokerOnSandboxOptions = {}): Promise<BrokerOnSandbox> {
  const temp = options.home ? { home: options.home, cleanup: () => rm(options.home!, { recursive: true, force: true }) } : await tempHome();
  const home = temp.home;
  const secrets = await prepareHome(sandbox, home, options);

  const logs: string[] = [];
  let pendingUser = 'alice';
  const headless = await startHeadless({
    version: 'test',
    home,
    port: 0,
    log: createLogger({ level: 'debug', sink: (line) => logs.push(line) }),
    openUrl: async (url) => {
      // The "browser": the IdP's sign-in page filled in as a person would, then the redirect back to Lanyard.
      const callback = await sandbox.idp.completeLogin(url, pendingUser);
      await fetch(callback);
    },
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
  const token = headless.gateway.localAuth.token;
  const clients: Client[] = [];
  let stopped = false;
  const handle: BrokerOnSandbox = {
    headless,
    home,
    secrets,
    logs,
    url: headless.url,
    token,
    async signIn(user = 'alice') {
      pendingUser = user;
      await headless.broker.getEngine()!.identity.signIn({ timeoutMs: 10_000 });
    },
    async ide(serverId, ideOptions = {}) {
      const client = new Client({ name: ideOptions.name ?? 'test-ide', version: '1.0.0' }, { capabilities: ideOptions.capabilities ?? {} });
      const transport = new StreamableHTTPClientTransport(new URL(`${headless.mcpUrl}${serverId ? `/${serverId}` : ''}`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      });
      await client.connect(transport);
      clients.push(client);
      return client;
    },
    post(path, body, headers = {}) {
      return fetch(`${headless.url}${path}`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          ...headers,
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await headless.stop();
    },
    async dispose() {
      await handle.stop();
      await secrets.deleteAll().catch(() => undefined);
      await temp.cleanup();
    },
  };
  return handle;
}

/** The text of a tool result's content. */
export function textOf(result: unknown): string {
  return ((result as { content?: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');
}

/** Waits (bounded) for a condition. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
