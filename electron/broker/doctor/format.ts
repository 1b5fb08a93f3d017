import { printable } from '../../../shared/display-safe';
import type { DoctorReport } from './doctor';

/**
 * The doctor's report for a terminal: one line per hop (✓ pass, ✗ fail, – skipped), the fix under each failure, and a
 * last line that counts. Plain text (no colour codes), so it reads the same in a log or a ticket. Every line carries text
 * from outside Lanyard (metadata, a server's name, an IdP's error), so all of it is printed through `printable`: a
 * control character or bidi override is shown as an escape instead of acting on the terminal.
 */
export function formatDoctorReport(report: DoctorReport): string {
  const width = Math.min(40, Math.max(...report.checks.map((c) => c.hop.length)));
  const lines: string[] = [];
  for (const check of report.checks) {
    const mark = check.skipped ? (check.ok ? '✓' : '–') : check.ok ? '✓' : '✗';
    lines.push(`${mark} ${printable(check.hop).padEnd(width)}  ${printable(check.detail)}`);
    if (!check.ok && !check.skipped && check.error?.fix) lines.push(`  ${''.padEnd(width)}  → ${printable(check.error.fix)}`);
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
