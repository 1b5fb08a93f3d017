/** The audit ledger in the Activity view: whether it records, whether its hash chain is intact, its newest records. */
import { useCallback, useEffect, useState } from 'react';
import type { AuditLog } from '../../../shared/contract';
import type { ViewContext } from '../view-context';
import { Button, Notice } from '../components/ui';

export function auditStateText(log: AuditLog): { tone: 'ok' | 'warn' | 'error' | 'info'; title: string; detail?: string | undefined } {
  if (log.chain && !log.chain.ok)
    return { tone: 'error', title: 'The audit ledger was tampered with', detail: log.chain.firstBreak?.message };
  if (log.state === 'damaged') return { tone: 'error', title: 'The audit ledger is damaged', detail: log.message };
  if (log.state === 'error') return { tone: 'warn', title: 'Audit records cannot be written', detail: log.message };
  if (log.state === 'off') return { tone: 'info', title: 'The audit ledger records while Lanyard serves your IDEs' };
  const chain = log.chain ? ` Chain verified: ${log.chain.records.toLocaleString('en-US')} records intact.` : '';
  return { tone: 'ok', title: `Audit ledger: ${log.seq.toLocaleString('en-US')} records, hash-chained`, detail: chain.trim() || undefined };
}

export function AuditPanel({ ctx }: { ctx: ViewContext }) {
  const [log, setLog] = useState<AuditLog | undefined>();
  const [busy, setBusy] = useState(false);
  const load = useCallback(
    async (verify: boolean) => {
      setBusy(verify);
      try {
        setLog(await ctx.client.api.auditLog({ limit: 20, verify }));
      } catch (e) {
        ctx.notify('error', e instanceof Error ? e.message : String(e));
      } finally {
        setBusy(false);
      }
    },
    [ctx],
  );
  useEffect(() => {
    void load(false);
  }, [load]);
  if (!log) return null;
  const state = auditStateText(log);
  return (
    <section className="audit-panel" aria-label="Audit ledger">
      <Notice tone={state.tone} title={state.title}>
        {state.detail ? <p>{state.detail}</p> : null}
        {log.otlp ? (
          <p className="muted small">
            Exported to {log.otlp.endpoint}: {log.otlp.state === 'ok' ? 'working' : `failing (${log.otlp.lastError ?? 'no answer'})`},{' '}
            {log.otlp.exported} sent, {log.otlp.failed} not delivered.
          </p>
        ) : null}
        <p>
          <Button size="sm" icon="check" busy={busy} onClick={() => void load(true)}>
            Verify the chain
          </Button>{' '}
          <span className="muted small">
            Or run <code>lanyard audit verify</code>. Records hold names, codes and hashes — never tokens or arguments.
          </span>
        </p>
      </Notice>
    </section>
  );
}
