import { auditDir } from '../../broker/governance/ledger/files';
import { csvRow, CSV_COLUMNS, parseSince, readLedger } from '../../broker/governance/ledger/query';
import type { LedgerRecord } from '../../broker/governance/ledger/record';
import { verifyLedger } from '../../broker/governance/ledger/verify';
import { ExitCode, UsageError, type CliContext } from '../context';
import { outside, printJson, table } from '../output';

/**
 * `lanyard audit`: the audit ledger under LANYARD_HOME (docs/architecture.md, "Audit ledger"), read from its files —
 * no broker needed. `audit` lists records, `audit verify` checks the chain and names the first record that was edited,
 * removed or reordered (exit 1), `audit export` writes JSONL (the lines as stored, so the export verifies too) or CSV.
 */
export async function auditCommand(
  ctx: CliContext,
  args: {
    positionals: string[];
    json: boolean;
    since?: string | undefined;
    server?: string | undefined;
    ide?: string | undefined;
    format?: string | undefined;
    limit?: string | undefined;
  },
): Promise<number> {
  const [action, ...rest] = args.positionals;
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'.`, 'Usage: lanyard audit [verify | export --format jsonl|csv]');
  const since = args.since !== undefined ? parseSince(args.since) : undefined;
  if (args.since !== undefined && since === undefined)
    throw new UsageError(`--since '${args.since}' is neither a duration (30m, 2h, 7d) nor a date.`, 'Example: lanyard audit --since 24h');
  const filter = { since, server: args.server, ide: args.ide };

  if (action === 'verify') {
    const result = await verifyLedger(ctx.home);
    if (args.json) printJson(ctx.io, result);
    else if (result.ok)
      ctx.io.out(
        `✓ The audit ledger is intact: ${result.records.toLocaleString('en-US')} records in ${result.files} file${result.files === 1 ? '' : 's'} (${Math.round(result.ms)} ms).\n`,
      );
    else {
      const b = result.firstBreak!;
      ctx.io.out(
        `✗ The audit ledger was tampered with: ${b.message}\n  First bad record: ${b.seq} (${b.file}${b.line ? `, line ${b.line}` : ''}).\n`,
      );
      ctx.io.out(`  ${result.records.toLocaleString('en-US')} records before it are intact. The ledger is in ${auditDir(ctx.home)}.\n`);
    }
    return result.ok ? ExitCode.OK : ExitCode.FAILURE;
  }

  if (action === 'export') {
    const format = args.format ?? 'jsonl';
    if (format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format must be jsonl or csv (got '${format}').`);
    const rows = await readLedger(ctx.home, filter);
    if (format === 'jsonl') for (const r of rows) ctx.io.out(`${r.line}\n`);
    else {
      ctx.io.out(`${CSV_COLUMNS.join(',')}\n`);
      for (const r of rows) ctx.io.out(`${csvRow(r.record)}\n`);
    }
    return ExitCode.OK;
  }

  if (action !== undefined)
    throw new UsageError(`unknown audit action '${action}'.`, 'Usage: lanyard audit [verify | export --format jsonl|csv]');
  const limit = args.limit !== undefined ? Number(args.limit) : 50;
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive number.');
  const rows = await readLedger(ctx.home, filter, limit);
  if (args.json) {
    printJson(
      ctx.io,
      rows.map((r) => r.record),
    );
    return ExitCode.OK;
  }
  if (!rows.length) {
    ctx.io.out('No audit records match. Tool calls through Lanyard and token events are recorded while the broker runs.\n');
    return ExitCode.OK;
  }
  ctx.io.out(table([['TIME', 'IDE', 'SERVER', 'WHAT', 'OUTCOME', 'MS'], ...rows.map((r) => describe(r.record))]));
  return ExitCode.OK;
}

function describe(r: LedgerRecord): string[] {
  const time = r.at.replace('T', ' ').slice(0, 19);
  if (r.type === 'call') {
    const secrets = r.secrets ? ` [${r.secrets.action}: ${r.secrets.findings.map((f) => f.kind).join(', ')}]` : '';
    return [
      time,
      r.ide,
      r.server,
      `${r.method} ${r.name ?? ''}`.trim() + secrets,
      r.code ? `${r.outcome} (${r.code})` : r.outcome,
      String(r.ms),
    ];
  }
  if (r.type === 'token')
    return [
      time,
      '',
      r.server ?? '',
      `token: ${r.event}${r.scopes ? ` (${r.scopes})` : ''}`,
      r.code ? `${r.outcome} (${r.code})` : r.outcome,
      r.ms !== undefined ? String(r.ms) : '',
    ];
  return [time, '', '', `ledger: ${r.note}: ${outside(r.detail)}`, '', ''];
}
