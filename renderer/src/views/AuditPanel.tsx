/** The audit ledger in the Activity view: whether it records, whether its hash chain is intact, its newest records. */
import { useCallback, useEffect, useState } from 'react';
import type { AuditLog } from '../../../shared/contract';
import type { ViewContext } from '../view-context';
import { Button, Notice } from '../components/ui';
import { auditStateText } from '../model/audit';

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
