import type { ExchangeCase } from './exchange';
import type { LatencyRow } from './latency';
import type { ScaleResult } from './scale';
import { round } from './stats';

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  os: string;
  memory_gb: number;
}

export interface BudgetCheck {
  id: string;
  budget: string;
  measured: string;
  pass: boolean;
}

export interface BenchResults {
  version: 1;
  generated_at: string;
  mode: 'full' | 'quick';
  duration_s: number;
  machine: Machine;
  setup: Record<string, string>;
  latency: LatencyRow[];
  exchange: ExchangeCase[];
  scale: ScaleResult;
  stdio_cold_start_ms: { lanyard: number; mcp_remote: number; lanyard_relay: number; runs: number };
  /** The budgets (docs/architecture.md "Budgets") as numbers, and each check against them. */
  budget_limits: typeof BUDGETS;
  budgets: BudgetCheck[];
}

/** The budgets of docs/architecture.md "Budgets", as numbers. */
export const BUDGETS = {
  overheadP50Ms: 0.5,
  throughputShare: 0.85,
  coldStartMs: 150,
  listMs: 20,
  rssMb: 150,
};

const row = (rows: LatencyRow[], path: LatencyRow['path'], c: number) => rows.find((r) => r.path === path && r.concurrency === c);

export function checkBudgets(r: Omit<BenchResults, 'budgets' | 'budget_limits'>): BudgetCheck[] {
  const checks: BudgetCheck[] = [];
  const concurrencies = [...new Set(r.latency.map((x) => x.concurrency))];
  const direct1 = row(r.latency, 'direct', 1);
  for (const path of ['relay', 'aggregated'] as const) {
    const p = row(r.latency, path, 1);
    if (direct1 && p) {
      const added = p.p50_ms - direct1.p50_ms;
      checks.push({
        id: `overhead_p50_${path}`,
        budget: `${path}: added p50 per tools/call ≤ ${BUDGETS.overheadP50Ms} ms (c=1, vs direct)`,
        measured: `+${round(added, 3)} ms (${p.p50_ms} vs ${direct1.p50_ms})`,
        pass: added <= BUDGETS.overheadP50Ms,
      });
    }
    // Throughput is judged under load: at c=1 it is 1/latency, which the overhead budget already covers (0.5 ms added
    // to a 0.6 ms direct call is 55% "throughput" by construction).
    for (const c of concurrencies.filter((n) => n > 1)) {
      const d = row(r.latency, 'direct', c);
      const x = row(r.latency, path, c);
      if (!d || !x) continue;
      const share = x.rps / d.rps;
      checks.push({
        id: `throughput_${path}_c${c}`,
        budget: `${path} c=${c}: throughput ≥ ${BUDGETS.throughputShare * 100}% of direct`,
        measured: `${Math.round(share * 100)}% (${x.rps} vs ${d.rps} calls/s)`,
        pass: share >= BUDGETS.throughputShare,
      });
    }
  }
  for (const c of concurrencies) {
    const s = row(r.latency, 'stdio', c);
    const m = row(r.latency, 'mcp-remote', c);
    if (!s || !m) continue;
    checks.push({
      id: `stdio_vs_mcp_remote_c${c}`,
      budget: `stdio c=${c}: at least as fast as mcp-remote (p50 and throughput)`,
      measured: `p50 ${s.p50_ms} vs ${m.p50_ms} ms; ${s.rps} vs ${m.rps} calls/s`,
      pass: s.p50_ms <= m.p50_ms && s.rps >= m.rps,
    });
  }
  const cold = r.stdio_cold_start_ms;
  checks.push({
    id: 'stdio_cold_start',
    budget: `lanyard stdio cold start to first response ≤ ${BUDGETS.coldStartMs} ms and ≤ mcp-remote`,
    measured: `${cold.lanyard} ms (mcp-remote ${cold.mcp_remote} ms)`,
    pass: cold.lanyard <= BUDGETS.coldStartMs && cold.lanyard <= cold.mcp_remote,
  });
  for (const x of r.exchange.filter((e) => e.servers === 1)) {
    checks.push({
      id: `exchange_collapse_1_server_${x.id_token}`,
      budget: `${x.concurrent_calls} concurrent first calls to one server (ID token ${x.id_token.replace('_', ' ')}): exactly one token exchange`,
      measured: `${x.exchanges} exchange(s), ${x.refreshes} refresh(es), ${x.errors} errors`,
      pass: x.exchanges === 1 && x.errors === 0,
    });
  }
  checks.push({
    id: 'scale_list',
    budget: `${r.scale.servers} servers × ${r.scale.tools} tools: aggregated tools/list ≤ ${BUDGETS.listMs} ms`,
    measured: `${r.scale.list_ms} ms p50 (${r.scale.listed_tools} tools)`,
    pass: r.scale.list_ms <= BUDGETS.listMs,
  });
  checks.push({
    id: 'scale_rss',
    budget: `broker resident memory ≤ ${BUDGETS.rssMb} MB`,
    measured: `${r.scale.rss_mb} MB (peak ${r.scale.rss_peak_mb} MB)`,
    pass: r.scale.rss_mb <= BUDGETS.rssMb,
  });
  return checks;
}

export function toMarkdown(r: BenchResults): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(`# Lanyard benchmark (${r.mode})`, '');
  lines.push(`${r.generated_at} · ${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB · Node ${m.node} · ${m.os} · ${r.duration_s} s`, '');
  lines.push('## tools/call latency and throughput', '');
  lines.push(
    "One client session per path, `concurrency` calls in flight; the sandbox `todo` server's `echo` tool; auth on, tokens cached; warm-up excluded.",
    '',
  );
  lines.push('| path | c | p50 ms | p99 ms | calls/s | % of direct | broker CPU µs/call | proxy CPU µs/call |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const x of r.latency) {
    const d = row(r.latency, 'direct', x.concurrency);
    lines.push(
      `| ${x.path} | ${x.concurrency} | ${x.p50_ms.toFixed(3)} | ${x.p99_ms.toFixed(3)} | ${x.rps} | ${d ? Math.round((x.rps / d.rps) * 100) : '–'}% | ${x.broker_cpu_us_per_call ?? '–'} | ${x.proxy_cpu_us_per_call ?? '–'} |`,
    );
  }
  lines.push('', '## Token-exchange collapse', '');
  lines.push(
    'Fresh broker per case (`lanyard serve`), signed in, no token cached; every call is a new client doing initialize → tools/call through `/mcp/<id>`.',
    '',
  );
  lines.push(
    '| servers | concurrent first calls | ID token | exchanges | refreshes | AS grants | all answered (ms) | first-call p50 / max (ms) | broker max fds | errors |',
  );
  lines.push('|---:|---:|---|---:|---:|---:|---:|---:|---:|---|');
  for (const x of r.exchange) {
    const errors = x.errors
      ? `${x.errors}: ${Object.entries(x.error_kinds ?? {})
          .map(([k, n]) => `${n}× ${k}`)
          .join('; ')}`
      : '0';
    lines.push(
      `| ${x.servers} | ${x.concurrent_calls} | ${x.id_token.replace('_', ' ')} | ${x.exchanges} | ${x.refreshes} | ${x.as_grants} | ${x.wall_ms} | ${x.first_call_p50_ms} / ${x.first_call_max_ms} | ${x.broker_max_fds ?? '–'} | ${errors} |`,
    );
  }
  const s = r.scale;
  lines.push('', '## Scale', '');
  lines.push(
    '| servers × tools | tools listed | list size | tools/list p50 / p99 (raw client) | broker CPU per list | tools/list p50 (SDK client) | start → first complete list (no tokens / cached tokens) | broker RSS (peak) |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  lines.push(
    `| ${s.servers} × ${s.tools} | ${s.listed_tools} | ${Math.round(s.list_bytes / 1024)} KiB | ${s.list_ms} / ${s.list_p99_ms} ms | ${s.list_broker_cpu_ms} ms | ${s.list_sdk_client_ms} ms | ${s.start_to_list_ms} / ${s.start_to_list_cached_tokens_ms} ms | ${s.rss_mb} MB (${s.rss_peak_mb} MB) |`,
  );
  lines.push(
    '',
    `Start with cached tokens: broker CPU ${s.start_broker_cpu_ms} ms, upstream (sandbox) CPU ${s.start_upstream_cpu_ms} ms until the first complete list.`,
  );
  const c = r.stdio_cold_start_ms;
  lines.push('', '## stdio cold start (spawn → initialize response, median of ' + c.runs + ')', '');
  lines.push('| lanyard stdio (/mcp) | lanyard stdio --server todo (relay) | mcp-remote |');
  lines.push('|---:|---:|---:|');
  lines.push(`| ${c.lanyard} ms | ${c.lanyard_relay} ms | ${c.mcp_remote} ms |`);
  lines.push('', '## Budgets (docs/architecture.md)', '');
  lines.push('| budget | measured | |');
  lines.push('|---|---|---|');
  for (const b of r.budgets) lines.push(`| ${b.budget} | ${b.measured} | ${b.pass ? 'pass' : '**miss**'} |`);
  lines.push('', '## Setup', '');
  for (const [k, v] of Object.entries(r.setup)) lines.push(`- **${k}**: ${v}`);
  lines.push(
    '',
    'Rerun: `npm run bench` (about 2 minutes on 2 cores; `npm run bench -- --quick` for a smoke run). See README.md#benchmark (the "Benchmark" section) for profiling and experiments.',
    '',
  );
  return lines.join('\n');
}
