import { open } from 'node:fs/promises';
import { auditDir, listLedgerFiles, readHead } from './files';
import { GENESIS } from './record';
import { checkLedgerFiles } from './verify-file';

/** The first record that breaks the chain. */
export interface ChainBreak {
  problem: 'edited' | 'removed' | 'reordered' | 'malformed';
  /** The record named: the edited, first missing or out-of-place one. */
  seq: number;
  file: string;
  /** 1-based line in `file` where the break was seen. */
  line: number;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  files: number;
  /** The seq of the last record checked. */
  lastSeq: number;
  firstBreak?: ChainBreak | undefined;
  ms: number;
}

const CHUNK = 4 * 1024 * 1024;

/**
 * Checks the whole chain (`lanyard audit verify`): every record's hash, that each names the hash of the one before it
 * (across files), that the seqs run without a gap, and that the last record is the one the head file says was written
 * last (a cut-off tail). Stops at the first break and names that record. Reads the files in large chunks: a million
 * records take about a second.
 */
export async function verifyLedger(home: string): Promise<VerifyResult> {
  const started = performance.now();
  const dir = auditDir(home);
  const files = await listLedgerFiles(dir);
  const head = await readHead(dir);
  const checks = await checkLedgerFiles(files.map((f) => f.path));
  let expectedSeq = 1;
  let prevHash = GENESIS;
  let records = 0;
  let lastFile = '';
  const done = (firstBreak?: ChainBreak): VerifyResult => ({
    ok: !firstBreak,
    records,
    files: files.length,
    lastSeq: expectedSeq - 1,
    firstBreak,
    ms: performance.now() - started,
  });

  for (const [i, file] of files.entries()) {
    const check = checks[i]!;
    lastFile = file.name;
    // Where this file joins the chain so far.
    const first = check.first;
    if (first) {
      const line = 1; // the first record's line (the ledger writes no blank lines)
      if (first.seq > expectedSeq) return done(removed(expectedSeq, first.seq, file.name, line));
      if (first.seq < expectedSeq) return done(reordered(first.seq, expectedSeq, file.name, line));
      if (first.prev !== prevHash) return done(unchained(first.seq, file.name, line));
    }
    const b = check.broken;
    if (b) {
      const at = expectedSeq + check.records;
      records += check.records;
      expectedSeq = at;
      switch (b.problem) {
        case 'malformed':
          return done({
            problem: 'malformed',
            seq: at,
            file: file.name,
            line: b.line,
            message: `The line after record ${at - 1} is not an audit record (edited or corrupted).`,
          });
        case 'edited':
          return done({
            problem: 'edited',
            seq: b.seq!,
            file: file.name,
            line: b.line,
            message: `Record ${b.seq} was edited: its hash does not match its content.`,
          });
        case 'removed':
          return done(removed(b.seq!, b.got!, file.name, b.line));
        case 'reordered':
          return done(reordered(b.seq!, b.got!, file.name, b.line));
        case 'unchained':
          return done(unchained(b.seq!, file.name, b.line));
      }
    }
    if (check.last) {
      records += check.records;
      expectedSeq = check.last.seq + 1;
      prevHash = check.last.hash;
    }
  }
  if (head && head.seq > expectedSeq - 1) {
    return done({
      problem: 'removed',
      seq: expectedSeq,
      file: lastFile || head.file,
      line: 0,
      message:
        head.seq === expectedSeq
          ? `Record ${expectedSeq} was removed: Lanyard wrote ${head.seq} records and the ledger ends at ${expectedSeq - 1}.`
          : `Records ${expectedSeq}–${head.seq} were removed: Lanyard wrote ${head.seq} records and the ledger ends at ${expectedSeq - 1}.`,
    });
  }
  if (head && head.seq === expectedSeq - 1 && head.seq > 0 && head.hash !== prevHash) {
    return done({
      problem: 'edited',
      seq: head.seq,
      file: lastFile,
      line: 0,
      message: `Record ${head.seq} was edited or replaced: it is not the last record Lanyard wrote.`,
    });
  }
  return done();
}

function removed(expected: number, got: number, file: string, line: number): ChainBreak {
  return {
    problem: 'removed',
    seq: expected,
    file,
    line,
    message:
      got - expected === 1
        ? `Record ${expected} was removed (record ${got} follows record ${expected - 1}).`
        : `Records ${expected}–${got - 1} were removed (record ${got} follows record ${expected - 1}).`,
  };
}

function reordered(seq: number, expected: number, file: string, line: number): ChainBreak {
  return { problem: 'reordered', seq, file, line, message: `Record ${seq} is out of place: it comes after record ${expected - 1}.` };
}

/** The record is intact and in place, so the one before it is not the one it was chained to. */
function unchained(seq: number, file: string, line: number): ChainBreak {
  return {
    problem: 'edited',
    seq: seq - 1,
    file,
    line: line - 1,
    message: `Record ${seq - 1} was edited or replaced: record ${seq} was chained to a different record ${seq - 1}.`,
  };
}

/** Calls `each` for every line of a file (without the newline) until it returns false. */
export async function forEachLine(file: string, each: (line: string) => boolean): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    // Lines are split on '\n' bytes and only whole lines are decoded, so a multi-byte character is never cut.
    let carry: Buffer = Buffer.alloc(0);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const lastNl = chunk.lastIndexOf(0x0a);
      if (lastNl < 0) {
        carry = Buffer.from(chunk);
        continue;
      }
      const text = chunk.toString('utf8', 0, lastNl);
      carry = Buffer.from(chunk.subarray(lastNl + 1));
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        const line = nl < 0 ? text.slice(start) : text.slice(start, nl);
        if (!each(line)) return;
        if (nl < 0) break;
        start = nl + 1;
      }
    }
    if (carry.length) each(carry.toString('utf8'));
  } finally {
    await handle.close();
  }
}
