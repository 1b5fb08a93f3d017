import { open } from 'node:fs/promises';
import { auditDir, listLedgerFiles, readHead } from './files';
import { GENESIS, HASH_FIELD_BYTES, hashBody } from './record';

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
const LEAD = Buffer.from('{"seq":');
const PREV = Buffer.from(',"prev":"');
const TAIL = Buffer.from('"}');

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
    await forEachLineBytes(file.path, (buf, from, to) => {
      lineNo++;
      if (from === to) return true;
      const parsed = parseLine(buf, from, to);
      if (!parsed) {
        found = {
          problem: 'malformed',
          seq: expectedSeq,
          file: file.name,
          line: lineNo,
          message: `The line after record ${expectedSeq - 1} is not an audit record (edited or corrupted).`,
        };
        return false;
      }
      const { seq, prev, hash } = parsed;
      if (hashBody(buf.subarray(from, parsed.hashFieldAt)) !== hash) {
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
      prevHash = hash;
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

/**
 * A record line's seq, prev and hash, read from its bytes (no decoding of the rest): `{"seq":N,"prev":"<64 hex>",…,"hash":"<64 hex>"}`.
 * Undefined when the line does not have that shape.
 */
function parseLine(buf: Buffer, from: number, to: number): { seq: number; prev: string; hash: string; hashFieldAt: number } | undefined {
  if (to - from < 160 || buf.compare(LEAD, 0, LEAD.length, from, from + LEAD.length) !== 0) return undefined;
  let i = from + LEAD.length;
  let seq = 0;
  const digitsFrom = i;
  while (i < to && buf[i]! >= 0x30 && buf[i]! <= 0x39 && i - digitsFrom < 16) seq = seq * 10 + (buf[i++]! - 0x30);
  if (i === digitsFrom || buf.compare(PREV, 0, PREV.length, i, i + PREV.length) !== 0) return undefined;
  const prevAt = i + PREV.length;
  const hashFieldAt = buf.lastIndexOf(HASH_FIELD_BYTES, to - 1);
  if (hashFieldAt < prevAt + 65 || to - hashFieldAt !== HASH_FIELD_BYTES.length + 64 + 2) return undefined;
  if (buf.compare(TAIL, 0, TAIL.length, to - 2, to) !== 0 || buf[prevAt + 64] !== 0x22) return undefined;
  const hashAt = hashFieldAt + HASH_FIELD_BYTES.length;
  // Not checked for hex here: a non-hex hash never equals a computed one, nor a non-hex prev a previous hash.
  return { seq, prev: buf.toString('latin1', prevAt, prevAt + 64), hash: buf.toString('latin1', hashAt, hashAt + 64), hashFieldAt };
}

/** Calls `each` with every line's byte range (newline excluded) until it returns false. */
async function forEachLineBytes(file: string, each: (buf: Buffer, from: number, to: number) => boolean): Promise<void> {
  const handle = await open(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(CHUNK);
    let filled = 0;
    for (;;) {
      if (filled === buf.length) {
        // One line longer than the buffer: grow it.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, filled);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, null);
      const end = filled + bytesRead;
      let from = 0;
      for (;;) {
        const nl = buf.indexOf(0x0a, from);
        if (nl < 0 || nl >= end) break;
        if (!each(buf, from, nl)) return;
        from = nl + 1;
      }
      if (bytesRead === 0) {
        if (from < end) each(buf, from, end);
        return;
      }
      buf.copy(buf, 0, from, end);
      filled = end - from;
    }
  } finally {
    await handle.close();
  }
}
