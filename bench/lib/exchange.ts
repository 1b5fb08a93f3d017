import { prepareHome } from './home';
import { openRawSession, rawRequest, RawStepError } from './raw-mcp';
import type { SandboxHandle } from './sandbox-client';
import { openFds, spawnBroker } from './proc';
import { percentile, round } from './stats';

export interface ExchangeCase {
  servers: number;
  concurrent_calls: number;
  /** 'fresh': signed in just now; 'needs_refresh': the stored ID token is past its refresh margin (a laptop that slept). */
  id_token: 'fresh' | 'needs_refresh';
  /** Token exchanges (ID-JAG requests) the IdP saw. */
  exchanges: number;
  /** Refresh-token grants the IdP saw. */
  refreshes: number;
  /** Access tokens the authorization servers issued. */
  as_grants: number;
  /** From firing the calls to the last answer. */
  wall_ms: number;
  first_call_p50_ms: number;
  first_call_max_ms: number;
  errors: number;
  /**
   * Most file descriptors the broker had open during the case (sampled every 10 ms): past ~1,024 a keychain write
   * can freeze it (bench/keychain-probe.ts).
   */
  broker_max_fds?: number | undefined;
  /** Failures by step and reason, e.g. `{"tools/call: timed out": 3}`. */
  error_kinds?: Record<string, number> | undefined;
}

/** A first call that has not been answered after this long counts as failed (and the case goes on). */
const CALL_TIMEOUT_MS = 30_000;

/**
 * `calls` concurrent first calls, spread evenly over `servers` servers, each from its own new client through the relay
 * (`/mcp/<id>`): initialize, notifications/initialized, tools/call echo — so every one of them asks the token service
 * for the server's token at the same moment, on a broker that was just started, signed in, with no token cached.
 */
export async function exchangeCase(options: {
  root: string;
  scratch: string;
  cli: string;
  sandbox: SandboxHandle;
  servers: number;
  calls: number;
  agedIdToken: boolean;
}): Promise<ExchangeCase> {
  const { sandbox } = options;
  const serverIds = sandbox.servers.slice(0, options.servers).map((s) => s.id);
  if (serverIds.length < options.servers) throw new Error(`the sandbox has only ${serverIds.length} servers`);
  const home = await prepareHome({ root: options.scratch, sandbox, serverIds, ageIdToken: options.agedIdToken });
  const broker = await spawnBroker({ cli: options.cli, home: home.home });
  try {
    const before = await sandbox.counters();
    const latencies: number[] = [];
    let errors = 0;
    const kinds: Record<string, number> = {};
    let maxFds = 0;
    const sampler = setInterval(() => {
      maxFds = Math.max(maxFds, openFds(broker.pid) ?? 0);
    }, 10);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: options.calls }, async (_, i) => {
        const t0 = performance.now();
        try {
          const signal = AbortSignal.timeout(CALL_TIMEOUT_MS);
          const session = await openRawSession(`${broker.url}/mcp/${serverIds[i % serverIds.length]}`, broker.token, {
            clientName: `first-call-${i}`,
            signal,
          });
          await rawRequest(session, 'tools/call', { name: 'echo', arguments: { text: `call ${i}` } });
          latencies.push(performance.now() - t0);
        } catch (e) {
          errors++;
          const kind = e instanceof RawStepError ? e.message : `other: ${e instanceof Error ? e.message : String(e)}`;
          kinds[kind] = (kinds[kind] ?? 0) + 1;
        }
      }),
    );
    const wallMs = performance.now() - started;
    clearInterval(sampler);
    const after = await sandbox.counters();
    return {
      servers: options.servers,
      concurrent_calls: options.calls,
      id_token: options.agedIdToken ? 'needs_refresh' : 'fresh',
      exchanges: after.exchanges - before.exchanges,
      refreshes: after.refreshes - before.refreshes,
      as_grants: after.grants - before.grants,
      wall_ms: round(wallMs, 1),
      first_call_p50_ms: round(percentile(latencies, 50), 1),
      first_call_max_ms: round(Math.max(...latencies), 1),
      errors,
      ...(maxFds ? { broker_max_fds: maxFds } : {}),
      ...(errors ? { error_kinds: kinds } : {}),
    };
  } finally {
    await broker.stop();
    await home.cleanup();
    await sandbox.dropSessions();
  }
}
