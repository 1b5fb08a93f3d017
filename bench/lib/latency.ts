import { cpuMs } from './proc';
import type { PathClient, PathName } from './clients';
import { percentile, round } from './stats';

export interface LatencyRow {
  /** The path (`direct`, `relay`, …), or `<path>+<experiment>` for a patched broker. */
  path: PathName | string;
  concurrency: number;
  p50_ms: number;
  p99_ms: number;
  rps: number;
  calls: number;
  errors: number;
  /** CPU the broker process spent per call (µs), for the paths through it. */
  broker_cpu_us_per_call?: number | undefined;
  /** CPU the stdio bridge or mcp-remote process spent per call (µs). */
  proxy_cpu_us_per_call?: number | undefined;
}

export interface LatencyPlan {
  concurrencies: number[];
  /** Measured calls per path and concurrency, split over `rounds`. */
  calls: (concurrency: number) => number;
  rounds: number;
  /** Calls thrown away before each measured batch (connections, JIT), per concurrency. */
  warmup: (concurrency: number) => number;
}

interface Batch {
  samples: number[];
  wallMs: number;
  errors: number;
  brokerCpuMs: number | undefined;
  proxyCpuMs: number | undefined;
}

/** `total` calls with `concurrency` in flight at once on one client (one session, as one IDE). */
async function run(
  client: PathClient,
  total: number,
  concurrency: number,
  record: boolean,
): Promise<Omit<Batch, 'brokerCpuMs' | 'proxyCpuMs'>> {
  const samples: number[] = [];
  let issued = 0;
  let errors = 0;
  let firstError: unknown;
  const started = performance.now();
  const worker = async () => {
    while (issued < total) {
      issued++;
      const t0 = performance.now();
      try {
        await client.call();
        if (record) samples.push(performance.now() - t0);
      } catch (e) {
        errors++;
        firstError ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const wallMs = performance.now() - started;
  if (errors > total / 10)
    throw new Error(
      `${client.path}: ${errors}/${total} calls failed; first: ${firstError instanceof Error ? firstError.message : String(firstError)}`,
    );
  return { samples, wallMs, errors };
}

/**
 * Every path at every concurrency, side by side: for each concurrency the paths take turns in `rounds` rounds (the
 * order rotating each round), so slow drift of the machine is spread over all of them. Warm-up calls before each
 * batch are not recorded.
 */
export async function measureLatency(clients: PathClient[], plan: LatencyPlan, progress: (line: string) => void): Promise<LatencyRow[]> {
  const rows: LatencyRow[] = [];
  // First contact: sessions, sockets and JIT for every path, at the highest concurrency too.
  for (const client of clients) {
    await run(client, plan.warmup(1) * 2, 1, false);
    await run(client, plan.warmup(Math.max(...plan.concurrencies)), Math.max(...plan.concurrencies), false);
  }
  for (const concurrency of plan.concurrencies) {
    const batches = new Map<string, Batch[]>();
    const perRound = Math.max(1, Math.ceil(plan.calls(concurrency) / plan.rounds));
    for (let round = 0; round < plan.rounds; round++) {
      const order = clients.map((_, i) => clients[(i + round) % clients.length]!);
      for (const client of order) {
        await run(client, plan.warmup(concurrency), concurrency, false);
        const broker0 = cpuMs(client.brokerPid);
        const proxy0 = cpuMs(client.proxyPid);
        const batch = await run(client, perRound, concurrency, true);
        const broker1 = cpuMs(client.brokerPid);
        const proxy1 = cpuMs(client.proxyPid);
        const list = batches.get(client.label) ?? [];
        list.push({
          ...batch,
          brokerCpuMs: broker0 !== undefined && broker1 !== undefined ? broker1 - broker0 : undefined,
          proxyCpuMs: proxy0 !== undefined && proxy1 !== undefined ? proxy1 - proxy0 : undefined,
        });
        batches.set(client.label, list);
      }
    }
    for (const client of clients) {
      const list = batches.get(client.label)!;
      const samples = list.flatMap((b) => b.samples);
      const calls = samples.length;
      const wallMs = list.reduce((s, b) => s + b.wallMs, 0);
      const brokerCpu = list.every((b) => b.brokerCpuMs !== undefined) ? list.reduce((s, b) => s + b.brokerCpuMs!, 0) : undefined;
      const proxyCpu = list.every((b) => b.proxyCpuMs !== undefined) ? list.reduce((s, b) => s + b.proxyCpuMs!, 0) : undefined;
      const row: LatencyRow = {
        path: client.label,
        concurrency,
        p50_ms: round(percentile(samples, 50)),
        p99_ms: round(percentile(samples, 99)),
        rps: Math.round((calls / wallMs) * 1000),
        calls,
        errors: list.reduce((s, b) => s + b.errors, 0),
        ...(client.brokerPid !== undefined && brokerCpu !== undefined
          ? { broker_cpu_us_per_call: Math.round((brokerCpu * 1000) / calls) }
          : {}),
        ...(client.proxyPid !== undefined && proxyCpu !== undefined
          ? { proxy_cpu_us_per_call: Math.round((proxyCpu * 1000) / calls) }
          : {}),
      };
      rows.push(row);
      progress(
        `  ${row.path.padEnd(Math.max(11, ...clients.map((c) => c.label.length)))} c=${String(concurrency).padStart(2)}  p50 ${row.p50_ms.toFixed(3).padStart(7)} ms  p99 ${row.p99_ms.toFixed(3).padStart(7)} ms  ${String(row.rps).padStart(5)} calls/s${row.broker_cpu_us_per_call !== undefined ? `  broker ${row.broker_cpu_us_per_call} µs/call` : ''}${row.proxy_cpu_us_per_call !== undefined ? `  proxy ${row.proxy_cpu_us_per_call} µs/call` : ''}`,
      );
    }
  }
  return rows;
}
