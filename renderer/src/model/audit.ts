/** The audit ledger panel's headline: recording, failing, damaged or tampered with (views/AuditPanel.tsx). */
import type { AuditLog } from '../../../shared/contract';

export function auditStateText(log: AuditLog): { tone: 'ok' | 'warn' | 'error' | 'info'; title: string; detail?: string | undefined } {
  if (log.chain && !log.chain.ok)
    return { tone: 'error', title: 'The audit ledger was tampered with', detail: log.chain.firstBreak?.message };
  if (log.state === 'damaged') return { tone: 'error', title: 'The audit ledger is damaged', detail: log.message };
  if (log.state === 'error') return { tone: 'warn', title: 'Audit records cannot be written', detail: log.message };
  if (log.state === 'off') return { tone: 'info', title: 'The audit ledger records while Lanyard serves your IDEs' };
  const chain = log.chain ? ` Chain verified: ${log.chain.records.toLocaleString('en-US')} records intact.` : '';
  return { tone: 'ok', title: `Audit ledger: ${log.seq.toLocaleString('en-US')} records, hash-chained`, detail: chain.trim() || undefined };
}
