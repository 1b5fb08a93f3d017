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
  stdio_cold_start_ms: {
    lanyard: number;
    mcp_remote: number;
    lanyard_relay: number;
    /** A Node script that only answers initialize: the floor under any Node bridge (absent in older results). */
    node_floor?: number;
    /**
     * The same starts with the benchmark's environment as it is, when it sets Node options that slow every Node start
     * (bench/lib/cold-start.ts START_UP_ENV_COSTS); the other figures are measured without them.
     */
    environment?: { unset: string[]; lanyard: number; node_floor: number };
    runs: number;
  };
  /** Governance's cost (bench/governance.ts): the ledger append + secret scan per tools/call, and `audit verify`. */
  governance?: { added_p50_ms: number; added_p99_ms: number; calls: number; verify_records: number; verify_ms: number };
  /** `lanyard_search_tools` over a large catalog (bench/lib/tool-search.ts). */
  search?: { tools: number; queries: number; p50_ms: number; p99_ms: number; index_build_ms: number };
  /** The budgets (docs/architecture.md "Budgets") as numbers, and each check against them. */
  budget_limits: typeof BUDGETS;
  budgets: BudgetCheck[];
}

/** The budgets of docs/architecture.md "Budgets", as numbers (the same table, with pass/fail, ends latest.md). */
export const BUDGETS = {
  /** Added p50 per tools/call at c=1, against direct, in ms. */
  relayOverheadP50Ms: 0.5,
  aggregatedOverheadP50Ms: 0.35,
  /** Throughput as a share of direct, measured side by side, per concurrency. */
  relayThroughputShare: { 8: 0.85, 64: 0.95 } as Record<number, number>,
  aggregatedThroughputShare: { 8: 0.85, 64: 0.9 } as Record<number, number>,
  /** `lanyard stdio` against mcp-remote: p50 at c=1 no slower; throughput at c=8 and c=64 at least this share of it. */
  stdioThroughputVsMcpRemote: 1.1,
  coldStartMs: 80,
  listMs: 8,
  /** Broker VmRSS after the scale run, and of a broker that has just started with the same 50 servers. */
  rssMb: 100,
  idleRssMb: 70,
  /** `lanyard serve` spawn → first complete aggregated list, tokens cached, 50 servers. */
  startToListCachedMs: 600,
  /** Ledger append + secret scan added to one tools/call, p50, ms. */
  governanceAddedP50Ms: 0.05,
  /** `lanyard audit verify` over 1,000,000 records, ms. */
  auditVerifyMillionMs: 5_000,
  /** `lanyard_search_tools` over 5,000 tools, p50, ms. */
  searchP50Ms: 5,
};

const row = (rows: readonly LatencyRow[], path: LatencyRow['path'], c: number) => rows.find((r) => r.path === path && r.concurrency === c);
const pct = (share: number) => `${Math.round(share * 100)}%`;
/** How a share budget names the `floor` row measured in the same run: what any Node HTTP hop costs on the machine. */
const FLOOR = 'a bare node:http pipe';

export function checkBudgets(r: Omit<BenchResults, 'budgets' | 'budget_limits'>): BudgetCheck[] {
  const checks: BudgetCheck[] = [];
  const direct1 = row(r.latency, 'direct', 1);
  for (const path of ['aggregated', 'relay'] as const) {
    const p = row(r.latency, path, 1);
    const limit = path === 'relay' ? BUDGETS.relayOverheadP50Ms : BUDGETS.aggregatedOverheadP50Ms;
    if (direct1 && p) {
      const added = p.p50_ms - direct1.p50_ms;
      const floor1 = row(r.latency, 'floor', 1);
      checks.push({
        id: `overhead_p50_${path}`,
        budget: `${path === 'aggregated' ? '`/mcp`' : 'relay'} tools/call added p50, c=1: ≤ +${limit} ms`,
        measured: `+${round(added, 3)} ms (${p.p50_ms} vs ${direct1.p50_ms})${floor1 ? `; ${FLOOR}: +${round(floor1.p50_ms - direct1.p50_ms, 3)} ms` : ''}`,
        pass: added <= limit,
      });
    }
    // Throughput is judged under load: at c=1 it is 1/latency, which the overhead budget already covers.
    const shares = path === 'relay' ? BUDGETS.relayThroughputShare : BUDGETS.aggregatedThroughputShare;
    for (const c of [8, 64]) {
      const d = row(r.latency, 'direct', c);
      const x = row(r.latency, path, c);
      if (!d || !x) continue;
      const share = x.rps / d.rps;
      const floor = row(r.latency, 'floor', c);
      checks.push({
        id: `throughput_${path}_c${c}`,
        budget: `${path === 'aggregated' ? '`/mcp`' : 'relay'} throughput, c=${c}: ≥ ${pct(shares[c]!)} of direct`,
        measured: `${pct(share)} (${x.rps} vs ${d.rps} calls/s)${floor ? `; ${FLOOR}: ${pct(floor.rps / d.rps)}` : ''}`,
        pass: share >= shares[c]!,
      });
    }
  }
  const s1 = row(r.latency, 'stdio', 1);
  const m1 = row(r.latency, 'mcp-remote', 1);
  if (s1 && m1) {
    checks.push({
      id: 'stdio_p50_vs_mcp_remote_c1',
      budget: 'stdio bridge p50 vs mcp-remote, c=1: ≤ mcp-remote',
      measured: `${s1.p50_ms} vs ${m1.p50_ms} ms`,
      pass: s1.p50_ms <= m1.p50_ms,
    });
  }
  for (const c of [8, 64]) {
    const s = row(r.latency, 'stdio', c);
    const m = row(r.latency, 'mcp-remote', c);
    if (!s || !m) continue;
    checks.push({
      id: `stdio_throughput_vs_mcp_remote_c${c}`,
      budget: `stdio bridge throughput vs mcp-remote, c=${c}: ≥ ${pct(BUDGETS.stdioThroughputVsMcpRemote)} of it`,
      measured: `${pct(s.rps / m.rps)} (${s.rps} vs ${m.rps} calls/s)`,
      pass: s.rps / m.rps >= BUDGETS.stdioThroughputVsMcpRemote,
    });
  }
  const cold = r.stdio_cold_start_ms;
  checks.push({
    id: 'stdio_cold_start',
    budget: `stdio cold start to first response: ≤ ${BUDGETS.coldStartMs} ms`,
    measured: `${cold.lanyard} ms (mcp-remote ${cold.mcp_remote} ms${cold.node_floor !== undefined ? `; Node itself ${cold.node_floor} ms` : ''}${cold.environment ? `; with this machine's ${cold.environment.unset.join(', ')}: ${cold.environment.lanyard} ms, Node itself ${cold.environment.node_floor} ms` : ''})`,
    pass: cold.lanyard <= BUDGETS.coldStartMs,
  });
  for (const x of r.exchange.filter((e) => e.servers === 1)) {
    checks.push({
      id: `exchange_collapse_1_server_${x.id_token}`,
      budget: `${x.concurrent_calls} concurrent first calls to one server (ID token ${x.id_token.replace('_', ' ')}): exactly one token exchange`,
      measured: `${x.exchanges} exchange(s), ${x.refreshes} refresh(es), ${x.errors} errors`,
      pass: x.exchanges === 1 && x.errors === 0,
    });
  }
  const sc = r.scale;
  checks.push({
    id: 'scale_list',
    budget: `tools/list, ${sc.servers} servers × ${sc.tools} tools: ≤ ${BUDGETS.listMs} ms`,
    measured:
      sc.list_received_ms === undefined
        ? `${sc.list_ms} ms p50 (${sc.listed_tools} tools)`
        : `${sc.list_received_ms} ms p50 to the last byte (${sc.listed_tools} tools; ${sc.list_ms} ms with the client's undici fetch and parse, of which JSON.parse alone ${sc.list_client_parse_ms} ms)`,
    pass: (sc.list_received_ms ?? sc.list_ms) <= BUDGETS.listMs,
  });
  checks.push({
    id: 'scale_rss',
    budget: `broker RSS after the scale run: ≤ ${BUDGETS.rssMb} MB`,
    measured: `${sc.rss_mb} MB (peak ${sc.rss_peak_mb} MB)`,
    pass: sc.rss_mb <= BUDGETS.rssMb,
  });
  checks.push({
    id: 'idle_rss',
    budget: `broker RSS idle (started, ${sc.servers} servers configured, no IDE yet): ≤ ${BUDGETS.idleRssMb} MB`,
    measured: sc.idle_rss_mb === undefined ? 'not measured' : `${sc.idle_rss_mb} MB`,
    pass: sc.idle_rss_mb !== undefined && sc.idle_rss_mb <= BUDGETS.idleRssMb,
  });
  checks.push({
    id: 'start_to_list_cached',
    budget: `start → first complete list, cached tokens, ${sc.servers} servers: ≤ ${BUDGETS.startToListCachedMs} ms`,
    // The first list comes from the catalog snapshot; the first live one (no snapshot kept) is shown next to it.
    measured: `${sc.start_to_list_cached_tokens_ms} ms (from the catalog snapshot; first complete live list ${sc.start_to_live_list_cached_tokens_ms ?? '–'} ms)`,
    pass: sc.start_to_list_cached_tokens_ms <= BUDGETS.startToListCachedMs,
  });
  const gov = r.governance;
  if (gov) {
    checks.push({
      id: 'governance_added_p50',
      budget: `ledger append + secret scan added to a tools/call, p50: ≤ ${BUDGETS.governanceAddedP50Ms} ms`,
      measured: `${gov.added_p50_ms} ms (p99 ${gov.added_p99_ms} ms, ${gov.calls.toLocaleString('en-US')} calls)`,
      pass: gov.added_p50_ms <= BUDGETS.governanceAddedP50Ms,
    });
    checks.push({
      id: 'audit_verify',
      budget: `\`lanyard audit verify\`, 1,000,000 records: ≤ ${BUDGETS.auditVerifyMillionMs / 1000} s`,
      measured: `${(gov.verify_ms / 1000).toFixed(2)} s (${gov.verify_records.toLocaleString('en-US')} records)`,
      // A smaller (quick) run is scaled to a million records.
      pass: (gov.verify_ms * 1_000_000) / Math.max(1, gov.verify_records) <= BUDGETS.auditVerifyMillionMs,
    });
  }
  const search = r.search;
  if (search) {
    checks.push({
      id: 'tool_search_p50',
      budget: `lanyard_search_tools over ${search.tools.toLocaleString('en-US')} tools, p50: ≤ ${BUDGETS.searchP50Ms} ms`,
      measured: `${search.p50_ms} ms (p99 ${search.p99_ms} ms, ${search.queries} queries; index built once in ${search.index_build_ms} ms)`,
      pass: search.p50_ms <= BUDGETS.searchP50Ms,
    });
  }
  return checks;
}

/** The budgets with what was measured and pass/fail, as a Markdown table (latest.md and the README). */
export function budgetsTable(checks: readonly BudgetCheck[]): string {
  return [
    '| budget | measured | |',
    '|---|---|---|',
    ...checks.map((b) => `| ${b.budget} | ${b.measured} | ${b.pass ? 'pass' : '**miss**'} |`),
  ].join('\n');
}

/** The README's latency table: Lanyard's paths against direct and mcp-remote (the proxy column stays in latest.md). */
export function latencyTable(rows: readonly LatencyRow[]): string {
  const lines = ['| path | c | p50 ms | p99 ms | calls/s | % of direct | broker CPU µs/call |', '|---|---:|---:|---:|---:|---:|---:|'];
  for (const x of rows.filter((r) => r.path !== 'stdio-relay')) {
    const d = row(rows, 'direct', x.concurrency);
    lines.push(
      `| ${x.path} | ${x.concurrency} | ${x.p50_ms.toFixed(3)} | ${x.p99_ms.toFixed(3)} | ${x.rps} | ${d ? pct(x.rps / d.rps) : '–'} | ${x.broker_cpu_us_per_call ?? '–'} |`,
    );
  }
  return lines.join('\n');
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
    '`floor` is not Lanyard: a bare node:http byte pipe in front of the same server ([bench/floor-proxy.mjs](../floor-proxy.mjs): no authentication, no parsing, no governance), measured in the same rounds, so the cost of any Node HTTP hop on this machine can be read next to the relay and `/mcp`. Its CPU is in the broker column.',
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
    '| servers × tools | tools listed | list size | tools/list p50 / p99 to the last byte (node:http) | tools/list p50 / p99 (fetch + parse) | broker CPU per list | tools/list p50 (SDK client) | start → first complete list (no tokens / cached tokens) | broker RSS (peak) |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  lines.push(
    `| ${s.servers} × ${s.tools} | ${s.listed_tools} | ${Math.round(s.list_bytes / 1024)} KiB | ${s.list_received_ms ?? '–'} / ${s.list_received_p99_ms ?? '–'} ms | ${s.list_ms} / ${s.list_p99_ms} ms | ${s.list_broker_cpu_ms} ms | ${s.list_sdk_client_ms} ms | ${s.start_to_list_ms} / ${s.start_to_list_cached_tokens_ms} ms | ${s.rss_mb} MB (${s.rss_peak_mb} MB; idle ${s.idle_rss_mb ?? '–'} MB) |`,
  );
  lines.push(
    '',
    `Start with cached tokens: broker CPU ${s.start_broker_cpu_ms} ms, upstream (sandbox) CPU ${s.start_upstream_cpu_ms} ms until the first complete list (served from the catalog snapshot while the servers connect). The first complete live list (the same start without a snapshot): ${s.start_to_live_list_cached_tokens_ms ?? '–'} ms, broker CPU ${s.start_live_broker_cpu_ms ?? '–'} ms, upstream CPU ${s.start_live_upstream_cpu_ms ?? '–'} ms.`,
  );
  const c = r.stdio_cold_start_ms;
  lines.push('', '## stdio cold start (spawn → initialize response, median of ' + c.runs + ')', '');
  lines.push('| lanyard stdio (/mcp) | lanyard stdio --server todo (relay) | mcp-remote | Node floor (a script that only answers) |');
  lines.push('|---:|---:|---:|---:|');
  lines.push(`| ${c.lanyard} ms | ${c.lanyard_relay} ms | ${c.mcp_remote} ms | ${c.node_floor ?? '–'} ms |`);
  if (c.environment)
    lines.push(
      '',
      `Measured without ${c.environment.unset.join(', ')}, which this machine sets for every process: with it Node 20 loads its root certificates at every start, before any of the bridge's code runs (the floor goes to ${c.environment.node_floor} ms; \`lanyard stdio\` ${c.environment.lanyard} ms). A loopback bridge never uses them, and an IDE that does not set it does not pay it.`,
    );
  lines.push('', '## Budgets (docs/architecture.md)', '');
  lines.push(budgetsTable(r.budgets));
  if (r.budgets.some((b) => !b.pass))
    lines.push('', 'The profiles behind the budgets still missed, and what was tried: [evidence.md](evidence.md).');
  lines.push('', '## Setup', '');
  for (const [k, v] of Object.entries(r.setup)) lines.push(`- **${k}**: ${v}`);
  lines.push(
    '',
    'Rerun: `npm run bench` (about 2 minutes on 2 cores; `npm run bench -- --quick` for a smoke run). See README.md#benchmark (the "Benchmark" section) for profiling and experiments.',
    '',
  );
  return lines.join('\n');
}
