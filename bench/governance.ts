/**
 * Governance's share of `npm run bench` (phase `governance`; alone: `npx tsx bench/governance.ts [--quick]`):
 *   e1. the p50 (and p99) time the ledger append and the secret scan add to one tools/call — Governance.admit + settle
 *       with ordinary arguments (code, prose, JSON from this repository), in process, against an open guard;
 *   e2. `lanyard audit verify` over 1,000,000 records.
 * Budgets (docs/architecture.md "Budgets"): e1 ≤ 0.05 ms p50, e2 ≤ 5 s.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isPending, openCallGuard, type Admission, type CallGuard, type GuardedCall } from '../electron/broker/governance/call-guard';
import { Governance } from '../electron/broker/governance/governance';
import { AuditLedger } from '../electron/broker/governance/ledger/ledger';
import { verifyLedger } from '../electron/broker/governance/ledger/verify';
import { buildCorpus } from '../test/fixtures/secret-scan/corpus';

export const GOVERNANCE_BUDGETS = { addedP50Ms: 0.05, verifyMillionMs: 5_000 };

export interface GovernanceBenchResult {
  calls: number;
  added_p50_ms: number;
  added_p99_ms: number;
  guard_p50_ms: number;
  open_p50_ms: number;
  verify_records: number;
  verify_ms: number;
  budgets: Array<{ id: string; limit: number; value: number; pass: boolean }>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Per-call time of admit + settle through `guard`, ms, over the arguments given (round-robin), sorted. */
async function timeGuard(guard: CallGuard, args: Array<Record<string, unknown>>, calls: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const call: GuardedCall = {
      ide: { name: 'Cursor', version: '1.7' },
      endpoint: '/mcp',
      serverId: 'github',
      method: 'tools/call',
      name: 'search',
      arguments: args[i % args.length],
    };
    const t = performance.now();
    const admitted = guard.admit(call);
    const admission: Admission = isPending(admitted) ? await admitted : admitted;
    guard.settle(admission, { kind: 'ok' }, 1);
    times.push(performance.now() - t);
    // Let the ledger's batched write run now and then, as the event loop would between calls.
    if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  }
  return times.sort((a, b) => a - b);
}

export async function governanceBench(options: { quick?: boolean; log?: (line: string) => void } = {}): Promise<GovernanceBenchResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'lanyard-bench-gov-'));
  try {
    // e1: ordinary tool arguments (a few KB each), the scan at its default (warn), a real ledger on disk.
    const corpus = buildCorpus()
      .map((c) => c.args)
      .filter((a) => JSON.stringify(a).length < 4_000);
    const calls = options.quick ? 4_000 : 40_000;
    const governance = new Governance({
      home: path.join(scratch, 'home'),
      userSettings: () => ({}),
      managedSettings: () => undefined,
      locked: () => [],
      serverUrl: () => 'https://mcp.example.com/mcp',
      auth: { pathOf: () => 'xaa', grantRef: () => 'at:0123456789abcdef' },
      user: () => ({ iss: 'https://idp.example.com', sub: '00u1', email: 'dev@example.com' }),
      heldTokens: () => ['a'.repeat(800), 'b'.repeat(64)],
      activity: () => undefined,
    });
    await governance.start({ localToken: () => 'c'.repeat(43) });
    await timeGuard(governance, corpus, 2_000); // warm-up (JIT, the preset loaded if a string reaches it)
    await timeGuard(openCallGuard, corpus, 2_000);
    const guarded = await timeGuard(governance, corpus, calls);
    const open = await timeGuard(openCallGuard, corpus, calls);
    await governance.stop();
    const guardP50 = percentile(guarded, 50);
    const openP50 = percentile(open, 50);
    const added = Math.max(0, guardP50 - openP50);
    log(
      `  ledger + secret scan per tools/call: +${added.toFixed(4)} ms p50, ${(percentile(guarded, 99) - percentile(open, 99)).toFixed(4)} ms p99 (${calls} calls over ${corpus.length} ordinary argument sets)`,
    );

    // e2: 1,000,000 records written through the ledger (rotated at its default size), then verified.
    const records = options.quick ? 100_000 : 1_000_000;
    const verifyHome = path.join(scratch, 'verify');
    const ledger = new AuditLedger({
      home: verifyHome,
      user: () => ({ iss: 'https://idp.example.com', sub: '00u1', email: 'dev@example.com' }),
    });
    await ledger.open();
    for (let i = 0; i < records; i++) {
      ledger.append({
        type: 'call',
        ide: 'Cursor',
        ideVersion: '1.7',
        endpoint: '/mcp',
        server: 'github',
        url: 'https://mcp.example.com/mcp',
        method: 'tools/call',
        name: 'search_issues',
        authPath: 'xaa',
        grant: 'at:0123456789abcdef',
        outcome: 'ok',
        ms: 12.5,
      });
      if (i % 5_000 === 4_999) await ledger.flush();
    }
    await ledger.close();
    const verified = await verifyLedger(verifyHome);
    if (!verified.ok) throw new Error(`verify failed on an untouched ledger: ${verified.firstBreak?.message}`);
    log(
      `  lanyard audit verify: ${verified.records.toLocaleString('en-US')} records in ${Math.round(verified.ms)} ms (${verified.files} files)`,
    );

    const verifyScaled = (verified.ms * 1_000_000) / verified.records;
    const budgets = [
      {
        id: 'governance_added_p50',
        limit: GOVERNANCE_BUDGETS.addedP50Ms,
        value: Number(added.toFixed(4)),
        pass: added <= GOVERNANCE_BUDGETS.addedP50Ms,
      },
      {
        id: 'audit_verify_1m',
        limit: GOVERNANCE_BUDGETS.verifyMillionMs,
        value: Math.round(verifyScaled),
        pass: verifyScaled <= GOVERNANCE_BUDGETS.verifyMillionMs,
      },
    ];
    for (const b of budgets) log(`  ${b.pass ? '✓' : '✗'} ${b.id}: ${b.value} (budget ${b.limit})`);
    return {
      calls,
      added_p50_ms: Number(added.toFixed(4)),
      added_p99_ms: Number((percentile(guarded, 99) - percentile(open, 99)).toFixed(4)),
      guard_p50_ms: Number(guardP50.toFixed(4)),
      open_p50_ms: Number(openP50.toFixed(4)),
      verify_records: verified.records,
      verify_ms: Math.round(verified.ms),
      budgets,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  governanceBench({ quick: process.argv.includes('--quick') }).then(
    (r) => process.exit(r.budgets.every((b) => b.pass) ? 0 : 1),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
