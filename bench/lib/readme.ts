import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import { budgetsTable, checkBudgets, latencyTable, type BenchResults } from './report';

/**
 * The README's benchmark tables come from a run's results, never by hand: the latency table and the budgets with
 * pass/fail, between the `bench:tables` markers of README.md. The budgets are checked again with the current numbers
 * of report.ts, so the README and latest.md can never disagree about what passes.
 */
const START = '<!-- bench:tables:start (generated from bench/results/latest.json by bench/readme.ts; do not edit) -->';
const END = '<!-- bench:tables:end -->';

export function readmeTables(results: Omit<BenchResults, 'budgets'> & { budgets?: unknown }): string {
  const m = results.machine;
  const checks = checkBudgets(results);
  const missed = checks.filter((c) => !c.pass).length;
  return [
    `Results from \`bench/results/latest.md\` (${results.generated_at.slice(0, 10)}; ${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB, Node ${m.node}, ${m.os}):`,
    '',
    latencyTable(results.latency),
    '',
    '`floor` is not Lanyard: a bare node:http byte pipe in front of the same server (`bench/floor-proxy.mjs`), measured in the same rounds: what any Node HTTP hop costs on this machine.',
    '',
    `Budgets ([budgets](docs/architecture.md#budgets)): ${checks.length - missed} of ${checks.length} pass.`,
    '',
    budgetsTable(checks),
  ].join('\n');
}

/** Rewrites the README's tables from `results`; false when the README has no markers (nothing written). */
export async function updateReadme(root: string, results: Omit<BenchResults, 'budgets'> & { budgets?: unknown }): Promise<boolean> {
  const file = path.join(root, 'README.md');
  const text = await readFile(file, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) return false;
  const next = `${text.slice(0, start + START.length)}\n\n${readmeTables(results)}\n\n${text.slice(end)}`;
  const formatted = await format(next, { ...(await resolveConfig(file)), filepath: file });
  await writeFile(file, formatted);
  return true;
}
