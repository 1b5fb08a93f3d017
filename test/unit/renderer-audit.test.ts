import { describe, expect, it } from 'vitest';
import type { AuditLog } from '../../shared/contract';
import { auditStateText } from '../../renderer/src/model/audit';

const base: AuditLog = { state: 'ok', seq: 1200, pending: 0, lost: 0, dir: '/h/audit', records: [] };

describe('the Activity view audit panel', () => {
  it('says whether the ledger records, whether its chain is intact, and names the first bad record', () => {
    expect(auditStateText(base)).toMatchObject({ tone: 'ok', title: 'Audit ledger: 1,200 records, hash-chained' });
    expect(auditStateText({ ...base, chain: { ok: true, records: 1200, ms: 4 } }).detail).toBe('Chain verified: 1,200 records intact.');
    const tampered = auditStateText({
      ...base,
      chain: {
        ok: false,
        records: 6,
        ms: 1,
        firstBreak: { problem: 'removed', seq: 7, file: 'ledger-000001-2026-12.jsonl', line: 7, message: 'Record 7 was removed.' },
      },
    });
    expect(tampered).toEqual({ tone: 'error', title: 'The audit ledger was tampered with', detail: 'Record 7 was removed.' });
    expect(auditStateText({ ...base, state: 'error', message: 'the disk is full' })).toMatchObject({
      tone: 'warn',
      detail: 'the disk is full',
    });
    expect(auditStateText({ ...base, state: 'damaged', message: 'deleted' }).tone).toBe('error');
  });
});
