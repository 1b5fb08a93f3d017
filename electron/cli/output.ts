import type { ErrorInfo } from '../../shared/errors';
import { printable } from '../../shared/display-safe';
import type { CliIo } from './context';

/**
 * Makes text from outside Lanyard (server and IDE client names, issuers, URLs, user names, error descriptions from an
 * IdP or a server) safe to print: control characters and bidi overrides are shown as escapes instead of acting on the
 * terminal. Every command prints such text through this (or through `table` and `printError`, which use it).
 */
export const outside = printable;

/** `lanyard <command>: <message>` then `  → <fix>`: every failure says what to do. */
export function printError(io: CliIo, command: string | undefined, info: ErrorInfo): void {
  io.err(`lanyard${command ? ` ${command}` : ''}: ${outside(info.message)}\n  → ${outside(info.fix)}\n`);
}

export function printJson(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns, two spaces apart; the last column is not padded. Every cell is printed through `outside`. */
export function table(cells: string[][], indent = '  '): string {
  const rows = cells.map((row) => row.map(outside));
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return (
    rows
      .map(
        (row) =>
          indent +
          row
            .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
            .join('  ')
            .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** `/home/ada/.cursor/mcp.json` → `~/.cursor/mcp.json`, for display. */
export function tildify(file: string, home: string): string {
  return home && (file === home || file.startsWith(`${home}/`) || file.startsWith(`${home}\\`)) ? `~${file.slice(home.length)}` : file;
}

export function duration(ms: number): string {
  if (ms <= 0) return 'expired';
  const minutes = Math.round(ms / 60_000);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} days`;
}
