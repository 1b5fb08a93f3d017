import { open } from 'node:fs/promises';
import { auditDir, listLedgerFiles, readHead } from './files';
import { GENESIS, hashBody, unsealLine } from './record';

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
const LEAD = /^\{"seq":(\d+),"prev":"([0-9a-f]{64})"/;

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

  for (const file of files) {
    lastFile = file.name;
    let lineNo = 0;
    let found: ChainBreak | undefined;
    await forEachLine(file.path, (line) => {
      lineNo++;
      if (!line) return true;
      const sealed = unsealLine(line);
      const lead = sealed ? LEAD.exec(sealed.body) : undefined;
      if (!sealed || !lead) {
        found = {
          problem: 'malformed',
          seq: expectedSeq,
          file: file.name,
          line: lineNo,
          message: `The line after record ${expectedSeq - 1} is not an audit record (edited or corrupted).`,
        };
        return false;
      }
      const seq = Number(lead[1]);
      const prev = lead[2]!;
      if (hashBody(sealed.body) !== sealed.hash) {
        found = {
          problem: 'edited',
          seq,
          file: file.name,
          line: lineNo,
          message: `Record ${seq} was edited: its hash does not match its content.`,
        };
        return false;
      }
      if (seq > expectedSeq) {
        found = {
          problem: 'removed',
          seq: expectedSeq,
          file: file.name,
          line: lineNo,
          message:
            seq - expectedSeq === 1
              ? `Record ${expectedSeq} was removed (record ${seq} follows record ${expectedSeq - 1}).`
              : `Records ${expectedSeq}–${seq - 1} were removed (record ${seq} follows record ${expectedSeq - 1}).`,
        };
        return false;
      }
      if (seq < expectedSeq) {
        found = {
          problem: 'reordered',
          seq,
          file: file.name,
          line: lineNo,
          message: `Record ${seq} is out of place: it comes after record ${expectedSeq - 1}.`,
        };
        return false;
      }
      if (prev !== prevHash) {
        // The record itself is intact and in place, so the one before it is not the one it was chained to.
        found = {
          problem: 'edited',
          seq: seq - 1,
          file: file.name,
          line: lineNo - 1,
          message: `Record ${seq - 1} was edited or replaced: record ${seq} was chained to a different record ${seq - 1}.`,
        };
        return false;
      }
      prevHash = sealed.hash;
      expectedSeq = seq + 1;
      records++;
      return true;
    });
    if (found) return done(found);
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
