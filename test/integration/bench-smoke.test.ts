/**
 * `npm run bench -- --quick` end to end, so the benchmark cannot rot. It checks the shape of the results
 * and that the numbers are sane — nothing here is a timing assertion (the budgets are judged by the full benchmark,
 * not by tests). Runs inside the keyring session `npm test` provides.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/lib/report';

const root = path.resolve(import.meta.dirname, '../..');
let out: string;
let results: BenchResults;
let markdown: string;

beforeAll(async () => {
  out = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'bench-smoke-'));
  const run = spawnSync(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), 'bench/run.ts', '--quick', '--out', out], {
    cwd: root,
    encoding: 'utf8',
    timeout: 150_000,
  });
  if (run.status !== 0) throw new Error(`npm run bench -- --quick failed (${run.status ?? run.signal}):\n${run.stderr.slice(-4_000)}`);
  results = JSON.parse(await readFile(path.join(out, 'latest.json'), 'utf8')) as BenchResults;
  markdown = await readFile(path.join(out, 'latest.md'), 'utf8');
}, 180_000);

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

const positive = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n > 0;

describe('npm run bench -- --quick', () => {
  it('describes the machine', () => {
    expect(results.mode).toBe('quick');
    expect(results.machine.cpu).toEqual(expect.any(String));
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.machine.node).toBe(process.version);
  });

  it('measures tools/call on every path at concurrency 1, 8 and 64, without errors', () => {
    for (const path of ['direct', 'floor', 'relay', 'aggregated', 'profile', 'stdio', 'mcp-remote']) {
      for (const concurrency of [1, 8, 64]) {
        const row = results.latency.find((r) => r.path === path && r.concurrency === concurrency);
        expect(row, `${path} c=${concurrency}`).toBeDefined();
        expect(
          positive(row!.p50_ms) && positive(row!.p99_ms) && positive(row!.rps),
          `${path} c=${concurrency}: ${JSON.stringify(row)}`,
        ).toBe(true);
        expect(row!.p99_ms).toBeGreaterThanOrEqual(row!.p50_ms);
        expect(row!.errors).toBe(0);
      }
    }
  });

  it('collapses concurrent first calls to one server into one token exchange, and counts refreshes', () => {
    const one = results.exchange.find((e) => e.servers === 1);
    expect(one).toMatchObject({ exchanges: 1, refreshes: 0, errors: 0 });
    expect(one!.concurrent_calls).toBeGreaterThan(1);
    expect(positive(one!.wall_ms)).toBe(true);
    const several = results.exchange.find((e) => e.servers > 1);
    // One exchange per server, and the aged ID token refreshed once for all of them.
    expect(several).toMatchObject({ exchanges: several!.servers, refreshes: 1, id_token: 'needs_refresh', errors: 0 });
  });

  it('lists every server through /mcp and measures the broker', () => {
    const s = results.scale;
    expect(s.servers).toBeGreaterThan(1);
    expect(s.listed_tools).toBeGreaterThanOrEqual(s.servers * s.tools);
    for (const key of [
      'list_ms',
      'list_received_ms',
      'start_to_list_ms',
      'start_to_list_cached_tokens_ms',
      'rss_mb',
      'idle_rss_mb',
    ] as const)
      expect(positive(s[key]), key).toBe(true);
    expect(s.rss_mb).toBeLessThan(2_000);
  });

  it('times the stdio cold start of both bridges', () => {
    expect(positive(results.stdio_cold_start_ms.lanyard)).toBe(true);
    expect(positive(results.stdio_cold_start_ms.mcp_remote)).toBe(true);
    // The floor under any Node bridge, measured the same way: what the bridge adds is its own start-up.
    expect(positive(results.stdio_cold_start_ms.node_floor)).toBe(true);
  });

  it('judges every budget and writes the markdown table', () => {
    const ids = results.budgets.map((b) => b.id);
    for (const id of [
      'overhead_p50_relay',
      'overhead_p50_aggregated',
      'stdio_cold_start',
      'exchange_collapse_1_server_fresh',
      'scale_list',
      'scale_rss',
      'idle_rss',
      'start_to_list_cached',
      'stdio_p50_vs_mcp_remote_c1',
    ])
      expect(ids).toContain(id);
    for (const b of results.budgets) expect(typeof b.pass).toBe('boolean');
    expect(markdown).toContain('| path | c | p50 ms |');
    expect(markdown).toContain('## Budgets');
  });
});
