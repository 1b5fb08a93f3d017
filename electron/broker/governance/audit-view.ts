import type { AuditLog } from '../../../shared/contract';
import { readLedger } from './ledger/query';
import type { LedgerRecord } from './ledger/record';
import { verifyLedger } from './ledger/verify';
import type { GovernanceStatus } from './governance';

/** The Activity view's audit panel: the writer's state, the newest records and, on request, the chain check. */
export async function auditLogView(
  home: string,
  status: GovernanceStatus | undefined,
  input: { limit?: number | undefined; verify?: boolean | undefined },
): Promise<AuditLog> {
  const [rows, chain] = await Promise.all([readLedger(home, {}, input.limit ?? 100), input.verify ? verifyLedger(home) : undefined]);
  const ledger = status?.ledger;
  return {
    state: ledger?.state ?? 'off',
    ...(ledger?.message ? { message: ledger.message } : {}),
    seq: ledger?.seq ?? rows.at(-1)?.record.seq ?? 0,
    pending: ledger?.pending ?? 0,
    lost: ledger?.lost ?? 0,
    dir: ledger?.dir ?? '',
    ...(status?.otlp ? { otlp: status.otlp } : {}),
    ...(chain
      ? {
          chain: {
            ok: chain.ok,
            records: chain.records,
            ms: Math.round(chain.ms),
            ...(chain.firstBreak ? { firstBreak: chain.firstBreak } : {}),
          },
        }
      : {}),
    records: rows.reverse().map((r) => row(r.record)),
  };
}

function row(r: LedgerRecord): AuditLog['records'][number] {
  const base = { seq: r.seq, at: r.at, type: r.type };
  if (r.type === 'call')
    return {
      ...base,
      ide: r.ide,
      server: r.server,
      what: `${r.method}${r.name ? ` ${r.name}` : ''}${r.secrets ? ` (${r.secrets.action}: ${r.secrets.findings.map((f) => `${f.kind} at ${f.path}`).join(', ')})` : ''}`,
      outcome: r.outcome,
      ...(r.code ? { code: r.code } : {}),
      ms: r.ms,
    };
  if (r.type === 'token')
    return {
      ...base,
      ...(r.server ? { server: r.server } : {}),
      what: `token: ${r.event.replace('_', ' ')}`,
      outcome: r.outcome,
      ...(r.code ? { code: r.code } : {}),
      ...(r.ms !== undefined ? { ms: r.ms } : {}),
    };
  return { ...base, what: `ledger ${r.note}: ${r.detail}` };
}
