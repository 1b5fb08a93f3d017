/**
 * `npm run bench`: Lanyard's performance, measured on loopback in one run, side by side, and checked against the
 * budgets in docs/architecture.md "Budgets".
 *
 *   a. tools/call latency (p50, p99) and throughput at concurrency 1, 8 and 64: an SDK client straight to the server
 *      (`direct`), through the relay `/mcp/<id>` (`relay`), through `/mcp` (`aggregated`), through an IDE profile's
 *      endpoint `/ide/cursor/mcp` (`profile`), a stdio client through `lanyard stdio` (`stdio`; and `stdio-relay` with
 *      --server), and a stdio client through mcp-remote (`mcp-remote`). Same upstream tool; Lanyard's paths with auth
 *      on and tokens cached.
 *   b. Token-exchange collapse: 500 concurrent first calls to one server and to 20 servers, on a fresh broker — the
 *      exchanges and refreshes the IdP saw, and the time until all are answered.
 *   c. Scale: 50 servers × 100 tools — aggregated tools/list latency, broker start → first complete list, broker RSS.
 *   d. stdio cold start: spawn → initialize response, `lanyard stdio` vs mcp-remote.
 *
 * Three kinds of process, as on a user's machine: the benchmark (the IDE), the broker (`lanyard serve` from the CLI
 * bundle, built fresh for the run) and the sandbox enterprise (bench/sandbox-process.ts). Results go to
 * bench/results/latest.json and latest.md.
 *
 *   npm run bench                       the full run (about 3 minutes on 2 cores)
 *   npm run bench -- --quick            a smoke run with small counts (written to bench/results/raw/ unless --out)
 *   npm run bench -- --out <dir>        write latest.json / latest.md there instead
 *   npm run bench -- --only latency,cold   run some phases only (latency, cold, exchange, scale); nothing is written
 *   npm run bench -- --paths direct,aggregated   measure some paths only (with --only)
 *   npm run bench -- --experiment config-cache,json-response   measure a patched broker (bench/lib/experiments.ts)
 *   npm run bench -- --only latency --experiment-node-args=--max-semi-space-size=16   a second broker from the same
 *      bundle with other Node flags, measured next to the baseline (rows "<path>+exp"): flags compared under one load
 *   npm run bench -- --broker-node-args=--optimize-for-size   the broker (and stdio bridges) with these Node flags (space-separated)
 *   npm run bench -- --cpu-prof <dir>   run the broker and the stdio bridges under --cpu-prof (profiles land in <dir>;
 *                                       summarize them with `npx tsx bench/profile.ts <dir>`)
 *
 * On Linux without a desktop session it re-runs itself inside a private D-Bus session with an unlocked gnome-keyring
 * (scripts/keyring-session.sh): the broker keeps its secrets in the real OS keychain.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mcpRemoteArgs, mcpRemoteEnv, openPath, type PathClient, type PathName } from './lib/clients';
import { buildCli } from './lib/build';
import { measureColdStart, NODE_FLOOR_ARGS, START_UP_ENV_COSTS } from './lib/cold-start';
import { exchangeCase, type ExchangeCase } from './lib/exchange';
import { experimentPatches } from './lib/experiments';
import { prepareHome } from './lib/home';
import { measureLatency, type LatencyPlan, type LatencyRow } from './lib/latency';
import { spawnBroker } from './lib/proc';
import { BUDGETS, checkBudgets, toMarkdown, type BenchResults } from './lib/report';
import { startSandboxProcess, type SandboxHandle } from './lib/sandbox-client';
import { updateReadme } from './lib/readme';
import { scaleCase, type ScaleResult } from './lib/scale';

const root = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    paths: { type: 'string' },
    experiment: { type: 'string' },
    'experiment-node-args': { type: 'string' },
    'broker-node-args': { type: 'string' },
  },
});
const quick = args.quick;
const PHASES = ['latency', 'cold', 'exchange', 'scale', 'governance', 'search'] as const;
type Phase = (typeof PHASES)[number];
const only = args.only ? (args.only.split(',').map((p) => p.trim()) as Phase[]) : undefined;
if (only?.some((p) => !PHASES.includes(p))) {
  process.stderr.write(`bench: --only takes ${PHASES.join(', ')}\n`);
  process.exit(2);
}
const runs = (phase: Phase) => !only || only.includes(phase);
const experiments = args.experiment ? args.experiment.split(',').map((e) => e.trim()) : [];

/** Sizes of the full run and of the smoke run (`--quick`, a few seconds, used by test/integration/bench-smoke.test.ts). */
const SIZES = quick
  ? {
      latency: { concurrencies: [1, 8, 64], calls: () => 24, rounds: 1, warmup: () => 4 } satisfies LatencyPlan,
      coldRuns: 2,
      exchange: [
        { servers: 1, calls: 40, agedIdToken: false },
        { servers: 4, calls: 40, agedIdToken: true },
      ],
      extraServers: 4,
      scale: { servers: 5, tools: 20, listRuns: 5 },
    }
  : {
      latency: {
        concurrencies: [1, 8, 64],
        calls: (c: number) => (c === 1 ? 1500 : c === 8 ? 3000 : 6000),
        rounds: 3,
        warmup: (c: number) => Math.max(50, c * 4),
      } satisfies LatencyPlan,
      coldRuns: 10,
      exchange: [
        { servers: 1, calls: 500, agedIdToken: false },
        { servers: 1, calls: 500, agedIdToken: true },
        { servers: 20, calls: 500, agedIdToken: false },
        { servers: 20, calls: 500, agedIdToken: true },
      ],
      extraServers: 18,
      scale: { servers: 50, tools: 100, listRuns: 30 },
    };
const ALL_PATHS: PathName[] = ['direct', 'floor', 'relay', 'aggregated', 'profile', 'stdio', 'stdio-relay', 'mcp-remote'];
/** Prototypes measured only when asked for with --paths (bench/lean-bridge.ts). */
const EXTRA_PATHS: PathName[] = ['lean-stdio', 'lean-stdio-relay'];
const PATHS = args.paths ? (args.paths.split(',').map((p) => p.trim()) as PathName[]) : ALL_PATHS;
if (PATHS.some((p) => !ALL_PATHS.includes(p) && !EXTRA_PATHS.includes(p))) {
  process.stderr.write(`bench: --paths takes ${[...ALL_PATHS, ...EXTRA_PATHS].join(', ')}\n`);
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/**
 * The SDK's HTTP client transport hands one AbortSignal to every fetch of a session, and undici lets go of each
 * request's abort listener only when the request is garbage collected: a session making thousands of calls trips
 * Node's listener-leak warning without leaking. Printing that warning thousands of times would slow the client being
 * measured, so it is reported once.
 */
function quietAbortListenerWarning(): void {
  let noted = false;
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'MaxListenersExceededWarning' && /abort listeners/.test(warning.message)) {
      if (!noted) log(`bench: (once) ${warning.message.split('.')[0]} — undici frees them on GC; not a leak of the benchmark.`);
      noted = true;
      return;
    }
    log(`${warning.name}: ${warning.message}`);
  });
}

function ensureKeyringSession(): void {
  if (process.platform !== 'linux' || process.env.DBUS_SESSION_BUS_ADDRESS || process.env.LANYARD_BENCH_IN_SESSION) return;
  const deps = spawnSync('bash', [path.join(root, 'scripts/ensure-system-deps.sh'), 'gnome-keyring', 'libsecret-1-0', 'dbus', 'dbus-x11'], {
    stdio: 'inherit',
  });
  if (deps.status !== 0) process.exit(1);
  log('bench: no desktop session here; starting a private D-Bus session with gnome-keyring for the OS keychain.');
  const child = spawnSync(
    'bash',
    [path.join(root, 'scripts/keyring-session.sh'), process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, LANYARD_BENCH_IN_SESSION: '1' },
    },
  );
  process.exit(child.status ?? 1);
}

function machine(): BenchResults['machine'] {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
  };
}

async function latencyAndColdStart(ctx: {
  scratch: string;
  cli: string;
  /** A patched bundle (--experiment): its broker runs next to the baseline one and its paths are measured too. */
  experimentCli: string | undefined;
  /** Node flags for a second broker of the same bundle (--experiment-node-args), measured like an experiment. */
  experimentNodeArgs?: string[] | undefined;
  sandbox: SandboxHandle;
  nodeArgs: string[];
}): Promise<{ latency: LatencyRow[]; cold: BenchResults['stdio_cold_start_ms'] | undefined }> {
  const { sandbox } = ctx;
  const stops: Array<() => Promise<void>> = [];
  const clients: PathClient[] = [];
  const start = async (cli: string, nodeArgs = ctx.nodeArgs) => {
    const home = await prepareHome({ root: ctx.scratch, sandbox, serverIds: ['todo'], mintFor: ['todo'] });
    stops.push(() => home.cleanup());
    const broker = await spawnBroker({ cli, home: home.home, nodeArgs });
    stops.push(() => broker.stop());
    return {
      root,
      serverUrl: sandbox.server('todo').url,
      serverToken: home.tokens.todo!,
      serverId: 'todo',
      brokerUrl: broker.url,
      brokerPid: broker.pid,
      localToken: broker.token,
      home: home.home,
      cli,
      scratch: ctx.scratch,
      stdioNodeArgs: ctx.nodeArgs,
    };
  };
  try {
    const targets = await start(ctx.cli);
    const patched = ctx.experimentCli
      ? await start(ctx.experimentCli)
      : ctx.experimentNodeArgs
        ? await start(ctx.cli, [...ctx.nodeArgs, ...ctx.experimentNodeArgs])
        : undefined;
    let latency: LatencyRow[] = [];
    if (runs('latency')) {
      log('a. tools/call latency and throughput');
      for (const p of PATHS) clients.push(await openPath(p, targets));
      if (patched) {
        for (const p of PATHS.filter((x) => x !== 'direct' && x !== 'floor' && x !== 'mcp-remote'))
          clients.push(await openPath(p, patched, `${p}+exp`));
      }
      latency = await measureLatency(clients, SIZES.latency, log);
      await Promise.all(clients.splice(0).map((c) => c.close()));
    }
    let cold: BenchResults['stdio_cold_start_ms'] | undefined;
    if (runs('cold')) {
      log('d. stdio cold start');
      const env = { LANYARD_HOME: targets.home };
      const unset = START_UP_ENV_COSTS.filter((name) => process.env[name] !== undefined);
      const result = await measureColdStart(
        [
          { name: 'lanyard', args: [ctx.cli, 'stdio'], env, unset },
          { name: 'lanyard_relay', args: [ctx.cli, 'stdio', '--server', 'todo'], env, unset },
          { name: 'mcp_remote', args: await mcpRemoteArgs(targets), env: mcpRemoteEnv(targets), unset },
          { name: 'node_floor', args: NODE_FLOOR_ARGS, env: {}, unset },
          // The same starts in the environment as it is (only when it differs).
          ...(unset.length
            ? [
                { name: 'lanyard_as_is', args: [ctx.cli, 'stdio'], env },
                { name: 'node_floor_as_is', args: NODE_FLOOR_ARGS, env: {} },
              ]
            : []),
        ],
        SIZES.coldRuns,
      );
      cold = {
        lanyard: result.lanyard!.median_ms,
        lanyard_relay: result.lanyard_relay!.median_ms,
        mcp_remote: result.mcp_remote!.median_ms,
        node_floor: result.node_floor!.median_ms,
        ...(unset.length
          ? { environment: { unset, lanyard: result.lanyard_as_is!.median_ms, node_floor: result.node_floor_as_is!.median_ms } }
          : {}),
        runs: SIZES.coldRuns,
      };
      log(
        `  lanyard stdio ${cold.lanyard} ms · lanyard stdio --server ${cold.lanyard_relay} ms · mcp-remote ${cold.mcp_remote} ms · node floor ${cold.node_floor} ms (medians)`,
      );
      if (cold.environment)
        log(
          `  with ${unset.join(', ')} as set here: lanyard stdio ${cold.environment.lanyard} ms · node floor ${cold.environment.node_floor} ms`,
        );
    }
    return { latency, cold };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    for (const stop of stops.reverse()) await stop();
    await sandbox.dropSessions();
  }
}

async function main(): Promise<void> {
  ensureKeyringSession();
  quietAbortListenerWarning();
  const started = performance.now();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'lanyard-bench-'));
  // The CLI bundle from the current sources, next to the real one (its npm imports resolve from node_modules).
  const cliDir = path.join(root, 'out', `bench-cli-${process.pid}`);
  const cli = await buildCli(root, cliDir);
  const experimentCli = experiments.length
    ? await buildCli(root, path.join(cliDir, 'experiment'), experimentPatches(experiments))
    : undefined;
  if (experimentCli)
    log(
      `bench: experiment ${experiments.join(' + ')}: a patched broker (rows "<path>+exp") runs next to the baseline; the working tree is unchanged`,
    );
  const nodeArgs: string[] = args['broker-node-args'] ? args['broker-node-args'].split(/\s+/).filter(Boolean) : [];
  if (args['cpu-prof']) {
    await mkdir(path.resolve(args['cpu-prof']), { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', path.resolve(args['cpu-prof']));
  }
  const sandboxes: SandboxHandle[] = [];
  try {
    let latency: LatencyRow[] = [];
    let cold: BenchResults['stdio_cold_start_ms'] | undefined;
    const exchange: ExchangeCase[] = [];
    let scale: ScaleResult | undefined;

    if (runs('latency') || runs('cold') || runs('exchange')) {
      const sandbox = await startSandboxProcess(root, { extraServers: SIZES.extraServers, accessTokenTtlSeconds: 3600 });
      sandboxes.push(sandbox);
      if (runs('latency') || runs('cold'))
        ({ latency, cold } = await latencyAndColdStart({
          scratch,
          cli,
          experimentCli,
          experimentNodeArgs: args['experiment-node-args']?.split(/\s+/).filter(Boolean),
          sandbox,
          nodeArgs,
        }));
      if (runs('exchange')) {
        log('b. token-exchange collapse');
        for (const c of SIZES.exchange) {
          const result = await exchangeCase({
            root,
            scratch,
            cli: experimentCli ?? cli,
            sandbox,
            servers: c.servers,
            calls: c.calls,
            agedIdToken: c.agedIdToken,
          });
          exchange.push(result);
          log(
            `  ${result.concurrent_calls} first calls → ${result.servers} server(s), ID token ${result.id_token}: ${result.exchanges} exchanges, ${result.refreshes} refreshes, all answered in ${result.wall_ms} ms (broker ≤ ${result.broker_max_fds ?? '?'} fds)${result.errors ? ` — ${result.errors} FAILED: ${JSON.stringify(result.error_kinds)}` : ''}`,
          );
        }
      }
      await sandbox.stop();
    }

    if (runs('scale')) {
      log(`c. scale: ${SIZES.scale.servers} servers × ${SIZES.scale.tools} tools`);
      const sandbox = await startSandboxProcess(root, {
        extraServers: SIZES.scale.servers,
        toolsPerExtraServer: SIZES.scale.tools,
        accessTokenTtlSeconds: 3600,
      });
      sandboxes.push(sandbox);
      scale = await scaleCase({
        scratch,
        cli: experimentCli ?? cli,
        sandbox,
        toolsPerServer: SIZES.scale.tools,
        listRuns: SIZES.scale.listRuns,
        nodeArgs,
      });
      log(
        `  tools/list p50 ${scale.list_received_ms} ms to the last byte, ${scale.list_ms} ms with fetch + parse (parse ${scale.list_client_parse_ms} ms; broker CPU ${scale.list_broker_cpu_ms} ms; ${scale.listed_tools} tools; SDK client ${scale.list_sdk_client_ms} ms) · start → list ${scale.start_to_list_ms} ms (cached tokens ${scale.start_to_list_cached_tokens_ms} ms from the catalog snapshot: broker CPU ${scale.start_broker_cpu_ms} ms, upstream CPU ${scale.start_upstream_cpu_ms} ms; first live list ${scale.start_to_live_list_cached_tokens_ms} ms: broker CPU ${scale.start_live_broker_cpu_ms} ms, upstream CPU ${scale.start_live_upstream_cpu_ms} ms) · RSS ${scale.rss_mb} MB (idle ${scale.idle_rss_mb ?? '?'} MB)`,
      );
      await sandbox.stop();
    }

    let governance: BenchResults['governance'];
    let search: BenchResults['search'];
    // e. governance (bench/governance.ts): ledger + secret scan per tools/call, `lanyard audit verify` over 1M records.
    if (runs('governance')) {
      log('e. governance: ledger + secret scan per call, audit verify');
      const g = await (await import('./governance')).governanceBench({ quick, log });
      governance = {
        added_p50_ms: g.added_p50_ms,
        added_p99_ms: g.added_p99_ms,
        calls: g.calls,
        verify_records: g.verify_records,
        verify_ms: g.verify_ms,
      };
    }

    if (runs('search')) {
      // f. lanyard_search_tools over 5,000 tools (bench/lib/tool-search.ts), in-process: logged with its budget.
      const { toolSearchCase, SEARCH_BUDGET_P50_MS } = await import('./lib/tool-search');
      const s = await toolSearchCase(quick ? { queries: 200 } : {});
      search = { tools: s.tools, queries: s.queries, p50_ms: s.p50_ms, p99_ms: s.p99_ms, index_build_ms: s.index_build_ms };
      log(
        `f. lanyard_search_tools over ${s.tools} tools: p50 ${s.p50_ms} ms, p99 ${s.p99_ms} ms (${s.queries} queries; index built in ${s.index_build_ms} ms) — budget ≤ ${SEARCH_BUDGET_P50_MS} ms p50: ${s.pass ? 'pass' : 'FAIL'}`,
      );
    }

    if (only || args.paths || experiments.length || args['broker-node-args'] || args['experiment-node-args']) {
      log('bench: --only, --paths, --experiment or --broker-node-args given; results are not written.');
      return;
    }
    const partial: Omit<BenchResults, 'budgets' | 'budget_limits'> = {
      version: 1,
      generated_at: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      duration_s: Math.round((performance.now() - started) / 1000),
      machine: machine(),
      setup: {
        processes:
          'benchmark client (the IDE) · broker = `lanyard serve` from the CLI bundle · sandbox (IdP, authorization servers, MCP servers) in a third process',
        'cpu accounting':
          'broker/proxy CPU per call from /proc/<pid>/stat over the measured batches (10 ms ticks); on a 2-core machine throughput under load is bounded by total CPU per call across all processes',
        upstream:
          "the sandbox `todo` server's `echo` tool (SDK v2 McpServer, stateful Streamable HTTP, bearer token checked on every request)",
        clients:
          'SDK v2 Client: StreamableHTTPClientTransport for direct/relay/aggregated, StdioClientTransport for stdio and mcp-remote; one session per path',
        'mcp-remote':
          'mcp-remote 0.15 (`--header-file` with the bearer token Lanyard minted, `--transport http-only --allow-http --silent`)',
        counts: quick
          ? 'quick (smoke) sizes'
          : 'latency: 1,500 / 3,000 / 6,000 measured calls per path at c=1/8/64 in 3 interleaved rounds, warm-up excluded',
      },
      latency,
      exchange,
      scale: scale!,
      stdio_cold_start_ms: cold!,
      ...(governance ? { governance } : {}),
      ...(search ? { search } : {}),
    };
    const results: BenchResults = { ...partial, budget_limits: BUDGETS, budgets: checkBudgets(partial) };
    const outDir = args.out ? path.resolve(args.out) : path.join(root, 'bench/results', quick ? 'raw' : '');
    await mkdir(outDir, { recursive: true });
    await writeFile(path.join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(path.join(outDir, 'latest.md'), toMarkdown(results));
    log('');
    for (const b of results.budgets) log(`  ${b.pass ? 'pass' : 'MISS'}  ${b.budget}: ${b.measured}`);
    log(`\nbench: wrote ${path.relative(process.cwd(), path.join(outDir, 'latest.json'))} and latest.md in ${results.duration_s} s`);
    // The README's tables come from the same results (bench/lib/readme.ts); a smoke run or --out leaves it alone.
    if (!quick && !args.out && (await updateReadme(root, results))) log('bench: README.md tables regenerated');
  } finally {
    for (const s of sandboxes) await s.stop().catch(() => undefined);
    await rm(cliDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
