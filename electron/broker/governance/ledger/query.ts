import { auditDir, listLedgerFiles } from './files';
import type { LedgerRecord } from './record';
import { forEachLine } from './verify';

export interface LedgerFilter {
  /** Epoch ms: records at or after. */
  since?: number | undefined;
  server?: string | undefined;
  /** IDE client name (case-insensitive substring). */
  ide?: string | undefined;
}

/**
 * The records that match, oldest first, with their raw lines (export writes those unchanged, so an exported JSONL
 * file verifies like the ledger). Lines that are not records are skipped here; `verify` is what reports them.
 */
export async function readLedger(
  home: string,
  filter: LedgerFilter = {},
  limit = Infinity,
): Promise<Array<{ record: LedgerRecord; line: string }>> {
  const out: Array<{ record: LedgerRecord; line: string }> = [];
  const ide = filter.ide?.toLowerCase();
  for (const file of await listLedgerFiles(auditDir(home))) {
    await forEachLine(file.path, (line) => {
      if (!line) return true;
      let record: LedgerRecord;
      try {
        record = JSON.parse(line) as LedgerRecord;
      } catch {
        return true;
      }
      if (filter.since !== undefined && Date.parse(record.at) < filter.since) return true;
      if (filter.server !== undefined && ('server' in record ? record.server : undefined) !== filter.server) return true;
      if (ide !== undefined && !(record.type === 'call' && record.ide.toLowerCase().includes(ide))) return true;
      out.push({ record, line });
      if (out.length > limit) out.shift();
      return true;
    });
  }
  return out;
}

export const CSV_COLUMNS = [
  'seq',
  'at',
  'type',
  'event',
  'user_iss',
  'user_sub',
  'user_email',
  'ide',
  'ide_version',
  'endpoint',
  'server',
  'url',
  'method',
  'name',
  'auth_path',
  'grant',
  'outcome',
  'code',
  'ms',
  'secrets',
  'hash',
] as const;

/** One CSV row (RFC 4180 quoting; a cell starting with = + - @ is prefixed with ' so spreadsheets do not run it). */
export function csvRow(r: LedgerRecord): string {
  const call = r.type === 'call' ? r : undefined;
  const token = r.type === 'token' ? r : undefined;
  const cells: Array<string | number | undefined> = [
    r.seq,
    r.at,
    r.type,
    token?.event ?? (r.type === 'note' ? r.note : undefined),
    r.user?.iss,
    r.user?.sub,
    r.user?.email,
    call?.ide,
    call?.ideVersion,
    call?.endpoint,
    call?.server ?? token?.server,
    call?.url,
    call?.method,
    call?.name,
    call?.authPath ?? token?.authPath,
    call?.grant ?? token?.grant,
    call?.outcome ?? token?.outcome,
    call?.code ?? token?.code,
    call?.ms ?? token?.ms,
    call?.secrets ? `${call.secrets.action}: ${call.secrets.findings.map((f) => `${f.kind} at ${f.path}`).join('; ')}` : undefined,
    r.hash,
  ];
  return cells.map(csvCell).join(',');
}

function csvCell(v: string | number | undefined): string {
  if (v === undefined) return '';
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `--since 2h`, `7d`, `30m`, or an ISO date/time: epoch ms; undefined when it is neither. */
export function parseSince(value: string, now: number = Date.now()): number | undefined {
  const m = /^(\d+)\s*([smhdw])$/.exec(value.trim());
  if (m) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return now - Number(m[1]) * unit;
  }
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
