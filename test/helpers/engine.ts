import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LanyardConfigInput } from '../../electron/broker/config/schema';
import { openConfigStore } from '../../electron/broker/config/store';
import { createEngine as createProductionEngine } from '../../electron/broker/engine';
import type { IdentitySession } from '../../electron/broker/identity/identity-session';
import type { TokenService } from '../../electron/broker/exchange/token-service';
import { UsageCounter } from '../../electron/broker/exchange/usage';
import { keychainNamespace, lanyardPaths } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { silentLogger } from '../../electron/broker/util/log';
import type { Sandbox } from '../fixtures/sandbox';

/** Every token-bearing value any party returned to Lanyard, recorded so tests can prove none leaked to disk or logs. */
export class SecretRecorder {
  readonly values = new Set<string>();
  /** A fetch that records access/refresh/ID tokens and ID-JAGs from every JSON response it sees. */
  wrap(base: typeof fetch = fetch): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const response = await base(input, init);
      if ((response.headers.get('content-type') ?? '').includes('json')) {
        const body = (await response
          .clone()
          .json()
          .catch(() => undefined)) as Record<string, unknown> | undefined;
        for (const key of ['access_token', 'refresh_token', 'id_token']) {
          const v = body?.[key];
          if (typeof v === 'string' && v.length >= 8) this.values.add(v);
        }
      }
      return response;
    }) as typeof fetch;
  }
  add(...values: Array<string | undefined>): void {
    for (const v of values) if (v && v.length >= 8) this.values.add(v);
  }
}

/** Files under `dir` that contain any of the values (whole value, or its first 24 characters). */
export async function scanForSecrets(dir: string, values: Iterable<string>): Promise<string[]> {
  const needles = [...values].flatMap((v) => [v, v.slice(0, 24)]);
  const hits: string[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else {
        const text = await readFile(p, 'latin1');
        if (needles.some((n) => text.includes(n))) hits.push(p);
      }
    }
  };
  await walk(dir);
  return hits;
}

export async function tempHome(): Promise<{ home: string; cleanup: () => Promise<void> }> {
  const home = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-home-'));
  return { home, cleanup: () => rm(home, { recursive: true, force: true }) };
}

/** A clock Lanyard sees, which tests can move forward as after a sleep (the parties keep real time). */
export class TestClock {
  offsetMs = 0;
  readonly now = () => Date.now() + this.offsetMs;
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
}

export interface EngineHarness {
  home: string;
  secrets: SecretStore;
  identity: IdentitySession;
  tokens: TokenService;
  clock: TestClock;
  recorder: SecretRecorder;
  opened: string[];
  /** Sign in by driving the sandbox IdP's login page as the given user. */
  signIn(username?: string): Promise<void>;
  /** A second engine on the same home and keychain: Lanyard restarted. */
  restart(): Promise<EngineHarness>;
}

/** The servers of a test's config (the sandbox's by default). */
export type TestServers = NonNullable<LanyardConfigInput['servers']>;

/**
 * Lanyard's engine (identity session + token service) wired to a sandbox the way the broker builds it: the sandbox's
 * IdP and servers written to the config file in `home`, the production `createEngine` (so its mapping of the config —
 * client auth and key id, scopes, redirect port, token-exchange endpoint — is what runs), the real OS keychain under
 * a fresh LANYARD_HOME namespace, the browser step driven over HTTP, and every token the parties issue recorded.
 */
export async function createEngine(
  sandbox: Sandbox,
  options: {
    home: string;
    clock?: TestClock;
    recorder?: SecretRecorder;
    servers?: TestServers;
    fetch?: typeof fetch;
    secrets?: SecretStore;
    requestTimeoutSeconds?: number;
  } = { home: '' },
): Promise<EngineHarness> {
  const clock = options.clock ?? new TestClock();
  const recorder = options.recorder ?? new SecretRecorder();
  const secrets = options.secrets ?? new KeychainSecretStore({ service: keychainNamespace(options.home) });
  for (const [k, v] of Object.entries(sandbox.lanyardSecrets())) await secrets.set(k, v);
  const sandboxConfig = sandbox.lanyardConfig();
  const config = openConfigStore(options.home);
  config.update((draft) => ({ ...draft, idp: sandboxConfig.idp, servers: options.servers ?? sandboxConfig.servers }));
  const idp = config.load().idp!;
  const opened: string[] = [];
  let pendingUser = 'alice';
  const usage = new UsageCounter(lanyardPaths(options.home).stateFile, clock.now);
  await usage.load();
  const { identity, tokens } = createProductionEngine(idp, {
    config,
    secrets,
    usage,
    log: silentLogger,
    fetch: recorder.wrap(options.fetch ?? fetch),
    now: clock.now,
    requestTimeoutSeconds: options.requestTimeoutSeconds,
    openUrl: async (url) => {
      opened.push(url);
      // The "browser": the IdP's login page, filled in as a person would, then the redirect back to Lanyard.
      const callback = await sandbox.idp.completeLogin(url, pendingUser);
      await fetch(callback);
    },
  });
  await identity.restore();
  const harness: EngineHarness = {
    home: options.home,
    secrets,
    identity,
    tokens,
    clock,
    recorder,
    opened,
    async signIn(username = 'alice') {
      pendingUser = username;
      await identity.signIn({ timeoutMs: 10_000 });
    },
    restart: () => createEngine(sandbox, { ...options, clock, recorder }),
  };
  return harness;
}
