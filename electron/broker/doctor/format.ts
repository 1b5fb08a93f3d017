import type { DoctorReport } from './doctor';

/**
 * The doctor's report for a terminal: one line per hop (✓ pass, ✗ fail, – skipped), the fix under each failure, and a
 * last line that counts. Plain text (no colour codes), so it reads the same in a log or a ticket.
 */
export function formatDoctorReport(report: DoctorReport): string {
  const width = Math.min(40, Math.max(...report.checks.map((c) => c.hop.length)));
  const lines: string[] = [];
  for (const check of report.checks) {
    const mark = check.skipped ? (check.ok ? '✓' : '–') : check.ok ? '✓' : '✗';
    lines.push(`${mark} ${check.hop.padEnd(width)}  ${check.detail}`);
    if (!check.ok && !check.skipped && check.error?.fix) lines.push(`  ${''.padEnd(width)}  → ${check.error.fix}`);
  }
  const failed = report.checks.filter((c) => !c.ok && !c.skipped).length;
  const skipped = report.checks.filter((c) => c.skipped && !c.ok).length;
  lines.push('');
  lines.push(
    failed === 0
      ? `All ${report.checks.length - skipped} checks passed${skipped ? ` (${skipped} skipped)` : ''}.`
      : `${failed} check${failed === 1 ? '' : 's'} failed${skipped ? `, ${skipped} skipped` : ''}. Fix the first ✗ first: later hops depend on it.`,
  );
  return `${lines.join('\n')}\n`;
}
