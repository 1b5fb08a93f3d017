import { closeSync, openSync, readSync } from 'node:fs';
import { hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** One file's chain, checked on its own; verify.ts joins the files (seq and prev across each boundary). */
export interface FileCheck {
  records: number;
  first?: { seq: number; prev: string } | undefined;
  last?: { seq: number; hash: string } | undefined;
  /** The first break inside the file; `seq` is undefined for a line that is not a record (`records` were good before it). */
  broken?:
    | {
        problem: 'edited' | 'removed' | 'reordered' | 'malformed' | 'unchained';
        seq?: number | undefined;
        got?: number | undefined;
        line: number;
      }
    | undefined;
}

type Io = { openSync: typeof openSync; readSync: typeof readSync; closeSync: typeof closeSync; hash: typeof hash };

/**
 * Checks one ledger file: every line's hash, and that its seqs and prevs run on inside the file. Self-contained (no
 * reference outside its body) because worker threads run its source text: verify.ts checks the files of a large ledger
 * in parallel, one file per task, so a million records take a few seconds even on two cores.
 */
export function checkLedgerFile(file: string, io: Io): FileCheck {
  const LEAD = Buffer.from('{"seq":');
  const PREV = Buffer.from(',"prev":"');
  const HASH = Buffer.from(',"hash":"');
  const TAIL = Buffer.from('"}');
  const result: FileCheck = { records: 0 };
  const fd = io.openSync(file, 'r');
  let line = 0;
  let expectedSeq = -1;
  let prevHash = '';
  const check = (buf: Buffer, from: number, to: number): boolean => {
    line++;
    if (from === to) return true;
    let ok = to - from >= 160 && buf.compare(LEAD, 0, LEAD.length, from, from + LEAD.length) === 0;
    let i = from + LEAD.length;
    let seq = 0;
    const digits = i;
    while (ok && i < to && buf[i]! >= 0x30 && buf[i]! <= 0x39 && i - digits < 16) seq = seq * 10 + (buf[i++]! - 0x30);
    ok = ok && i > digits && buf.compare(PREV, 0, PREV.length, i, i + PREV.length) === 0;
    const prevAt = i + PREV.length;
    const hashFieldAt = ok ? buf.lastIndexOf(HASH, to - 1) : -1;
    ok = ok && hashFieldAt >= prevAt + 65 && to - hashFieldAt === HASH.length + 66 && buf.compare(TAIL, 0, 2, to - 2, to) === 0;
    if (!ok) {
      result.broken = { problem: 'malformed', line };
      return false;
    }
    const prev = buf.toString('latin1', prevAt, prevAt + 64);
    const stored = buf.toString('latin1', hashFieldAt + HASH.length, hashFieldAt + HASH.length + 64);
    if (io.hash('sha256', buf.subarray(from, hashFieldAt), 'hex') !== stored) {
      result.broken = { problem: 'edited', seq, line };
      return false;
    }
    if (expectedSeq < 0) result.first = { seq, prev };
    else if (seq > expectedSeq) {
      result.broken = { problem: 'removed', seq: expectedSeq, got: seq, line };
      return false;
    } else if (seq < expectedSeq) {
      result.broken = { problem: 'reordered', seq, got: expectedSeq, line };
      return false;
    } else if (prev !== prevHash) {
      result.broken = { problem: 'unchained', seq, line };
      return false;
    }
    prevHash = stored;
    expectedSeq = seq + 1;
    result.records++;
    result.last = { seq, hash: stored };
    return true;
  };
  try {
    let buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    let filled = 0;
    for (;;) {
      if (filled === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, filled);
        buf = bigger;
      }
      const read = io.readSync(fd, buf, filled, buf.length - filled, null);
      const end = filled + read;
      let from = 0;
      for (;;) {
        const nl = buf.indexOf(0x0a, from);
        if (nl < 0 || nl >= end) break;
        if (!check(buf, from, nl)) return result;
        from = nl + 1;
      }
      if (read === 0) {
        if (from < end) check(buf, from, end);
        return result;
      }
      buf.copy(buf, 0, from, end);
      filled = end - from;
    }
  } finally {
    io.closeSync(fd);
  }
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { closeSync, openSync, readSync } = require('node:fs');
const { hash } = require('node:crypto');
const __name = (f) => f; // bundlers that keep function names wrap them with this helper
const checkLedgerFile = ${checkLedgerFile.toString()};
parentPort.on('message', ({ id, file }) => {
  try { parentPort.postMessage({ id, result: checkLedgerFile(file, { openSync, readSync, closeSync, hash }) }); }
  catch (e) { parentPort.postMessage({ id, error: String(e && e.message || e) }); }
});
`;

/**
 * Checks the files, in parallel on worker threads when there are several (never blocking the caller's event loop),
 * in the calling thread otherwise or when workers cannot start.
 */
export async function checkLedgerFiles(files: string[]): Promise<FileCheck[]> {
  const io = { openSync, readSync, closeSync, hash };
  const threads = Math.min(files.length, Math.max(1, availableParallelism()), 4);
  if (files.length < 2) return files.map((f) => checkLedgerFile(f, io));
  let workers: Worker[];
  try {
    workers = Array.from({ length: threads }, () => new Worker(WORKER_SOURCE, { eval: true }));
  } catch {
    return files.map((f) => checkLedgerFile(f, io));
  }
  const results: FileCheck[] = new Array<FileCheck>(files.length);
  let next = 0;
  try {
    await run();
  } catch {
    // A worker that could not run the check: the same check in this thread.
    return files.map((f) => checkLedgerFile(f, io));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;

  async function run(): Promise<void> {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const give = () => {
              if (next >= files.length) return resolve();
              const id = next++;
              worker.postMessage({ id, file: files[id] });
            };
            worker.on('message', (m: { id: number; result?: FileCheck; error?: string }) => {
              if (m.error !== undefined) return reject(new Error(m.error));
              results[m.id] = m.result!;
              give();
            });
            worker.on('error', reject);
            give();
          }),
      ),
    );
  }
}
