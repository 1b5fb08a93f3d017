import { mkdtemp, open, readdir, readFile, rm, stat, writeFile, unlink, truncate, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { auditDir, listLedgerFiles } from '../../electron/broker/governance/ledger/files';
import { AuditLedger } from '../../electron/broker/governance/ledger/ledger';
import { csvRow, parseSince, readLedger } from '../../electron/broker/governance/ledger/query';
import type { CallRecordInput } from '../../electron/broker/governance/ledger/record';
import { verifyLedger } from '../../electron/broker/governance/ledger/verify';

let home: string;
beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'lanyard-ledger-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

function call(i: number, extra: Partial<CallRecordInput> = {}): CallRecordInput {
  return {
    type: 'call',
    ide: 'Cursor',
    endpoint: '/mcp',
    server: i % 2 ? 'github' : 'jira',
    method: 'tools/call',
    name: `tool${i}`,
    outcome: 'ok',
    ms: 1.5,
    ...extra,
  };
}

async function writeRecords(n: number, options: { maxFileBytes?: number; now?: () => number } = {}): Promise<AuditLedger> {
  const ledger = new AuditLedger({ home, user: () => ({ iss: 'https://idp.example', sub: 'u1', email: 'dev@example.com' }), ...options });
  await ledger.open();
  for (let i = 1; i <= n; i++) ledger.append(call(i));
  await ledger.flush();
  return ledger;
}

async function lines(): Promise<{ file: string; lines: string[] }> {
  const [file] = await listLedgerFiles(auditDir(home));
  return { file: file!.path, lines: (await readFile(file!.path, 'utf8')).split('\n').filter(Boolean) };
}

describe('AuditLedger', () => {
  it('writes hash-chained JSONL records (0600 files in a 0700 directory) that verify, with the user and no arguments', async () => {
    const ledger = await writeRecords(5);
    await ledger.close();
    const { file, lines: l } = await lines();
    expect(l).toHaveLength(5);
    const first = JSON.parse(l[0]!);
    expect(first).toMatchObject({
      seq: 1,
      prev: '0'.repeat(64),
      type: 'call',
      ide: 'Cursor',
      user: { sub: 'u1', email: 'dev@example.com' },
    });
    expect(JSON.parse(l[1]!).prev).toBe(first.hash);
    if (process.platform !== 'win32') {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(auditDir(home))).mode & 0o777).toBe(0o700);
    }
    expect(await verifyLedger(home)).toMatchObject({ ok: true, records: 5 });
  });

  it('continues the chain across a restart and across rotation by size and by month', async () => {
    let t = Date.parse('2026-11-30T23:59:00Z');
    const first = await writeRecords(30, { maxFileBytes: 2_000, now: () => t });
    await first.close();
    t = Date.parse('2026-12-01T00:01:00Z');
    const second = new AuditLedger({ home, now: () => t, maxFileBytes: 2_000 });
    await second.open();
    for (let i = 0; i < 10; i++) second.append(call(100 + i));
    await second.close();
    const files = await listLedgerFiles(auditDir(home));
    expect(files.length).toBeGreaterThan(3);
    expect(files.at(-1)!.month).toBe('2026-12');
    expect(files[0]!.month).toBe('2026-11');
    for (const f of files) expect((await stat(f.path)).size).toBeLessThanOrEqual(2_000 + 400);
    expect(await verifyLedger(home)).toMatchObject({ ok: true, records: 40, lastSeq: 40 });
  });

  it('never blocks the caller: append returns before anything is written', async () => {
    const ledger = new AuditLedger({ home });
    await ledger.open();
    const seq = ledger.append(call(1));
    expect(seq).toBe(1);
    expect(ledger.status().pending).toBe(1);
    await ledger.flush();
    expect(ledger.status()).toMatchObject({ state: 'ok', pending: 0, seq: 1 });
    await ledger.close();
  });
});

describe('verifyLedger names the first record that was tampered with', () => {
  it('an edited record', async () => {
    (await writeRecords(10)).close();
    const { file, lines: l } = await lines();
    l[3] = l[3]!.replace('"outcome":"ok"', '"outcome":"error"');
    await writeFile(file, `${l.join('\n')}\n`);
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'edited', seq: 4, line: 4 });
  });

  it('an edited record whose hash was recomputed (the next record no longer chains to it)', async () => {
    (await writeRecords(10)).close();
    const { file, lines: l } = await lines();
    const { createHash } = await import('node:crypto');
    const body = `${l[3]!.slice(0, l[3]!.lastIndexOf(',"hash":"')).replace('"tool4"', '"tool999"')}}`;
    l[3] = `${body.slice(0, -1)},"hash":"${createHash('sha256').update(body).digest('hex')}"}`;
    await writeFile(file, `${l.join('\n')}\n`);
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'edited', seq: 4 });
  });

  it('a removed record', async () => {
    (await writeRecords(10)).close();
    const { file, lines: l } = await lines();
    l.splice(6, 1);
    await writeFile(file, `${l.join('\n')}\n`);
    const result = await verifyLedger(home);
    expect(result.ok).toBe(false);
    expect(result.firstBreak).toMatchObject({ problem: 'removed', seq: 7 });
    expect(result.firstBreak!.message).toContain('Record 7 was removed');
  });

  it('reordered records', async () => {
    (await writeRecords(10)).close();
    const { file, lines: l } = await lines();
    [l[4], l[5]] = [l[5]!, l[4]!];
    await writeFile(file, `${l.join('\n')}\n`);
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'removed', seq: 5 });
    // Swapped back by a later line: record 5 appears after record 6.
    l.splice(4, 1);
    l.splice(5, 0, (await lines()).lines[5]!);
    expect((await verifyLedger(home)).ok).toBe(false);
  });

  it('a cut-off tail (the head file remembers what was written)', async () => {
    (await writeRecords(10)).close();
    const { file, lines: l } = await lines();
    await writeFile(file, `${l.slice(0, 7).join('\n')}\n`);
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'removed', seq: 8 });
  });

  it('a line that is not a record', async () => {
    (await writeRecords(4)).close();
    const { file, lines: l } = await lines();
    l.splice(2, 0, '{"hello":"world"}');
    await writeFile(file, `${l.join('\n')}\n`);
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'malformed', seq: 3, line: 3 });
  });
});

describe('a steady stream of calls', () => {
  it('writes the first record after a quiet spell at once, and a burst that follows as one batch', async () => {
    const ledger = await writeRecords(1);
    const handle = await open(path.join(home, 'probe'), 'w');
    const write = vi.spyOn(Object.getPrototypeOf(handle) as FileHandle, 'write');
    await handle.close();
    try {
      await new Promise((r) => setTimeout(r, 30));
      ledger.append(call(2));
      for (let i = 0; i < 50 && (await lines()).lines.length < 2; i++) await new Promise((r) => setTimeout(r, 1));
      expect((await lines()).lines).toHaveLength(2);
      expect(write).toHaveBeenCalledTimes(1);
      // Calls one after another, each given the event-loop turn a real call has.
      for (let i = 3; i <= 12; i++) {
        ledger.append(call(i));
        await new Promise((r) => setImmediate(r));
      }
      for (let i = 0; i < 50 && (await lines()).lines.length < 12; i++) await new Promise((r) => setTimeout(r, 10));
      expect((await lines()).lines).toHaveLength(12);
      // One batch for the ten (two if this machine was too slow to append them within one window).
      expect(write.mock.calls.length - 1).toBeLessThanOrEqual(2);
      expect((await verifyLedger(home)).firstBreak).toBeUndefined();
    } finally {
      write.mockRestore();
      await ledger.close();
    }
  });

  it('each record reaches the file as calls go on, and a process that dies without a flush restarts undamaged', async () => {
    const ledger = await writeRecords(1);
    // Calls one after another, each given the event-loop turn a real call has: the batched writes run on their own.
    for (let i = 2; i <= 40; i++) {
      ledger.append(call(i));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 50 && (await lines()).lines.length < 40; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await lines()).lines).toHaveLength(40);
    // No flush, no close (a crash): the head may lag the file, never lead it.
    const next = new AuditLedger({ home });
    await next.open();
    expect(next.status()).toMatchObject({ state: 'ok', seq: 40 });
    await next.close();
    await ledger.close();
    expect(await verifyLedger(home)).toMatchObject({ ok: true, records: 40 });
  });
});

describe('faults while running', () => {
  it('a ledger file deleted under the running ledger: a clear damaged state, a new file, and verify names the gap', async () => {
    const ledger = await writeRecords(5);
    const { file } = await lines();
    await unlink(file);
    ledger.append(call(6));
    await ledger.flush();
    expect(ledger.status()).toMatchObject({ state: 'damaged' });
    expect(ledger.status().message).toMatch(/deleted/);
    await ledger.close();
    expect((await verifyLedger(home)).firstBreak).toMatchObject({ problem: 'removed', seq: 1 });
  });

  it('a ledger file truncated while stopped: the next start reports it and keeps the chain from the head', async () => {
    (await writeRecords(5)).close();
    const { file } = await lines();
    await truncate(file, 0);
    const ledger = new AuditLedger({ home });
    await ledger.open();
    expect(ledger.status().state).toBe('damaged');
    expect(ledger.status().message).toMatch(/records 1–5 are missing/);
    ledger.append(call(7));
    await ledger.close();
    const result = await verifyLedger(home);
    expect(result.firstBreak).toMatchObject({ problem: 'removed', seq: 1 });
  });

  it('a full disk: records wait in memory, the state says so, and are written when space returns', async () => {
    const ledger = await writeRecords(2);
    // Simulated with the directory made unwritable (new files cannot be created) and a rotation forced by month.
    const dir = auditDir(home);
    const files = await readdir(dir);
    for (const f of files) if (f.endsWith('.jsonl')) await unlink(path.join(dir, f)).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await writeFile(dir, 'not a directory');
    ledger.append(call(3));
    await ledger.flush();
    expect(ledger.status().state).toBe('error');
    expect(ledger.status().pending).toBe(1);
    await unlink(dir);
    // The retry runs on its timer; flush does not wait for it, so run it now.
    await new Promise((r) => setTimeout(r, 700));
    await ledger.flush();
    expect(ledger.status()).toMatchObject({ pending: 0 });
    await ledger.close();
  });
});

describe('query and export', () => {
  it('filters by server, IDE and time, and writes CSV without formula injection', async () => {
    const ledger = await writeRecords(6);
    ledger.append(call(7, { ide: '=HYPERLINK("x")', server: 'jira' }));
    await ledger.close();
    expect((await readLedger(home, { server: 'github' })).map((r) => r.record.seq)).toEqual([1, 3, 5]);
    expect(await readLedger(home, { ide: 'hyperlink' })).toHaveLength(1);
    expect(await readLedger(home, { since: Date.now() + 60_000 })).toHaveLength(0);
    const row = csvRow((await readLedger(home, { ide: 'hyperlink' }))[0]!.record);
    expect(row).toContain(`"'=HYPERLINK(""x"")"`);
    expect(parseSince('2h', 10_000_000)).toBe(10_000_000 - 7_200_000);
    expect(parseSince('nonsense')).toBeUndefined();
  });
});
