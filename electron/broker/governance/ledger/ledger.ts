import { open, rename, writeFile, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Emitter } from '../../../../shared/emitter';
import { ensurePrivateDir } from '../../paths';
import { silentLogger, type Logger } from '../../util/log';
import { auditDir, HEAD_FILE, ledgerFileName, listLedgerFiles, monthOf, readHead, type LedgerHead } from './files';
import { GENESIS, sealRecord, unsealLine, type LedgerUser, type RecordInput } from './record';

/** What the dashboard and `lanyard status` show about the ledger. */
export interface LedgerStatus {
  /**
   * ok: appending; error: the last write failed (full disk, permissions) — records wait in memory and are retried;
   * damaged: the files on disk are not what this ledger wrote (a file deleted or cut short since it was written).
   */
  state: 'ok' | 'error' | 'damaged';
  message?: string | undefined;
  /** The seq of the last record appended (written or waiting). */
  seq: number;
  /** Records waiting to be written. */
  pending: number;
  /** Records dropped because they could not be written for too long (the chain shows the gap). */
  lost: number;
  dir: string;
}

export interface AuditLedgerOptions {
  home: string;
  /** Rotation size (default 16 MiB); files also rotate when the month (UTC) changes. */
  maxFileBytes?: number;
  /** Records kept in memory while the disk refuses them (default 10,000); older ones are then dropped and counted. */
  maxPending?: number;
  /** The signed-in IdP user, recorded with every record. */
  user?: () => LedgerUser | undefined;
  now?: () => number;
  log?: Logger;
}

const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_PENDING = 10_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
const TAIL_BYTES = 64 * 1024;
/**
 * Under a steady stream of calls, the open file's deleted-or-replaced check (two stats) and the head (a write and a
 * rename) are done at most this often; each batch in between is one write. An explicit flush (shutdown, tests) always
 * does both. A head that lags the file by less than this only narrows what a restart can tell was cut short; it never
 * claims records that are not written.
 */
const CHECK_INTERVAL_MS = 1_000;
/**
 * A batch written less than this long ago makes the next one wait for the rest of the window, so a steady stream of
 * calls costs one file write per window instead of one per call (each write is a hand-off to the thread pool and a
 * syscall: it was the largest single part of the broker's CPU per relayed call, see bench/results/evidence.md). The first
 * record after a quiet spell is still written at once. A crash may lose at most this much more than it did before.
 */
const WRITE_WINDOW_MS = 20;

interface Pending {
  line: string;
  month: string;
}

/**
 * The append-only, hash-chained audit ledger. `append` is synchronous and cheap (one SHA-256 of a few hundred bytes and
 * a push): the line is written by a batched asynchronous flush, so a tool call never waits for the disk. A write that
 * fails (full disk, permissions, a directory removed) keeps the records in memory and retries; the status says so.
 * Files are 0600 in a 0700 directory under LANYARD_HOME; the chain continues across rotations and restarts.
 */
export class AuditLedger {
  private readonly dir: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly maxFileBytes: number;
  private readonly maxPending: number;
  private seq = 0;
  private lastHash = GENESIS;
  private buffer: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  /** performance.now() when the last batch write started (the write window counts from there). */
  private wroteAt = -Infinity;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private file: { handle: FileHandle; name: string; month: string; index: number; size: number } | undefined;
  private nextIndex = 1;
  private state: LedgerStatus['state'] = 'ok';
  private message: string | undefined;
  private lost = 0;
  private lostNoted = 0;
  private opened = false;
  private closed = false;
  /** performance.now() of the last check of the open file, and of the last head written; a batch since without one. */
  private checkedAt = -Infinity;
  private headAt = -Infinity;
  private headDue = false;
  private headTimer: NodeJS.Timeout | undefined;
  private readonly changes: Emitter<LedgerStatus>;

  constructor(private readonly options: AuditLedgerOptions) {
    this.dir = auditDir(options.home);
    this.log = (options.log ?? silentLogger).child('audit');
    this.now = options.now ?? Date.now;
    this.maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.changes = new Emitter((e) => this.log.warn('ledger status listener failed', { error: e }));
  }

  /** Finds where the chain ends (the last record on disk, or the head when the files were cut short since). */
  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    try {
      await ensurePrivateDir(this.options.home);
      await ensurePrivateDir(this.dir);
      const files = await listLedgerFiles(this.dir);
      const head = await readHead(this.dir);
      const last = files.at(-1);
      this.nextIndex = (last?.index ?? 0) + 1;
      const tail = last ? await lastRecord(last.path) : undefined;
      if (tail) {
        this.seq = tail.seq;
        this.lastHash = tail.hash;
      }
      if (head && head.seq > this.seq) {
        // Records this ledger wrote are gone (a file deleted or truncated): the chain continues from what was written,
        // so verify names the gap instead of the chain silently starting over.
        this.markDamaged(describeMissing(head, this.seq, files.length === 0));
        this.seq = head.seq;
        this.lastHash = head.hash;
        this.append({ type: 'note', note: 'damaged', detail: this.message ?? 'records missing' });
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** Appends one record; returns its seq. Never throws and never waits for the disk. */
  append(input: RecordInput): number {
    const seq = ++this.seq;
    const at = new Date(this.now()).toISOString();
    const { line, hash } = sealRecord(seq, this.lastHash, at, this.safeUser(), input);
    this.lastHash = hash;
    this.buffer.push({ line, month: monthOf(at) });
    if (this.buffer.length > this.maxPending) {
      const dropped = this.buffer.length - this.maxPending;
      this.buffer.splice(0, dropped);
      this.lost += dropped;
    }
    this.schedule();
    return seq;
  }

  status(): LedgerStatus {
    return { state: this.state, message: this.message, seq: this.seq, pending: this.buffer.length, lost: this.lost, dir: this.dir };
  }

  onStatus(listener: (status: LedgerStatus) => void): () => void {
    return this.changes.on(listener);
  }

  /** Writes what is buffered now (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffer.length && !this.retryTimer) {
      this.flushing = this.write(true).finally(() => (this.flushing = undefined));
      await this.flushing;
    } else if (this.headDue) {
      this.flushing = this.writeHead()
        .catch((e: unknown) => this.log.warn('audit head write failed', { code: (e as NodeJS.ErrnoException).code }))
        .finally(() => (this.flushing = undefined));
      await this.flushing;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.headTimer) clearTimeout(this.headTimer);
    this.headTimer = undefined;
    await this.flush();
    await this.file?.handle.close().catch(() => undefined);
    this.file = undefined;
  }

  private safeUser(): LedgerUser | undefined {
    try {
      return this.options.user?.();
    } catch {
      return undefined;
    }
  }

  private schedule(): void {
    if (this.scheduled || this.retryTimer || this.closed) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      if (this.flushing) {
        void this.flushing.then(() => this.schedule());
        return;
      }
      if (!this.buffer.length) return;
      this.flushing = this.write().finally(() => (this.flushing = undefined));
    };
    const wait = this.wroteAt + WRITE_WINDOW_MS - performance.now();
    if (wait > 0) setTimeout(run, wait);
    else setImmediate(run);
  }

  /**
   * One batch: everything buffered, to the current file (rotating by month and size), then the head. `thorough` (an
   * explicit flush) checks the open file and writes the head whatever the interval.
   */
  private async write(thorough = false): Promise<void> {
    if (!this.opened) await this.open();
    const batch = this.buffer;
    this.buffer = [];
    this.wroteAt = performance.now();
    let done = 0;
    try {
      while (done < batch.length) {
        const month = batch[done]!.month;
        const file = await this.target(month, thorough);
        const lines: string[] = [];
        let bytes = 0;
        while (done + lines.length < batch.length) {
          const p = batch[done + lines.length]!;
          if (p.month !== month) break;
          const size = Buffer.byteLength(p.line) + 1;
          if (lines.length && file.size + bytes + size > this.maxFileBytes) break;
          lines.push(p.line);
          bytes += size;
        }
        await file.handle.write(`${lines.join('\n')}\n`);
        file.size += bytes;
        done += lines.length;
        if (done < batch.length && batch[done]!.month === month) await this.rotate();
      }
      if (thorough || performance.now() - this.headAt >= CHECK_INTERVAL_MS) await this.writeHead();
      else this.headLater();
      this.retryMs = RETRY_MIN_MS;
      if (this.state === 'error') this.recovered();
    } catch (e) {
      // Kept, in order, ahead of what arrived meanwhile: retried later (a full disk may be freed).
      this.buffer = [...batch.slice(done), ...this.buffer];
      if (this.buffer.length > this.maxPending) {
        const dropped = this.buffer.length - this.maxPending;
        this.buffer.splice(0, dropped);
        this.lost += dropped;
      }
      await this.file?.handle.close().catch(() => undefined);
      this.file = undefined;
      this.fail(e);
      this.retryLater();
    }
  }

  private async target(month: string, thorough: boolean): Promise<NonNullable<AuditLedger['file']>> {
    if (this.file && this.file.month === month && this.file.size < this.maxFileBytes) {
      if (thorough || performance.now() - this.checkedAt >= CHECK_INTERVAL_MS) {
        this.checkedAt = performance.now();
        await this.checkUnchanged(this.file);
      }
      if (this.file) return this.file;
    }
    if (this.file) await this.rotate();
    await ensurePrivateDir(this.dir);
    const index = this.nextIndex++;
    const name = ledgerFileName(index, month);
    const handle = await open(path.join(this.dir, name), 'a', 0o600);
    this.file = { handle, name, month, index, size: (await handle.stat()).size };
    this.checkedAt = performance.now();
    return this.file;
  }

  /** The open file was deleted or cut short behind the ledger's back: say so and continue in a new file. */
  private async checkUnchanged(file: NonNullable<AuditLedger['file']>): Promise<void> {
    const st = await file.handle.stat();
    let problem: string | undefined;
    if (st.nlink === 0) problem = `The audit file ${file.name} was deleted while Lanyard was writing it.`;
    else if (st.size < file.size) problem = `The audit file ${file.name} was cut short while Lanyard was writing it.`;
    else {
      // Deleted and recreated under the same name (nlink is 1 again for a new file): compare inodes.
      const onDisk = await stat(path.join(this.dir, file.name)).catch(() => undefined);
      if (!onDisk || onDisk.ino !== st.ino) problem = `The audit file ${file.name} was removed or replaced while Lanyard was writing it.`;
    }
    if (!problem) return;
    this.markDamaged(`${problem} Run \`lanyard audit verify\` to see which records are missing.`);
    await file.handle.close().catch(() => undefined);
    this.file = undefined;
  }

  private async rotate(): Promise<void> {
    await this.file?.handle.close().catch(() => undefined);
    this.file = undefined;
  }

  /** The head of a batch written within the interval: written when the interval is over (or by a flush before). */
  private headLater(): void {
    this.headDue = true;
    if (this.headTimer || this.closed) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = undefined;
      if (this.headDue && !this.closed) void this.flush().catch(() => undefined);
    }, CHECK_INTERVAL_MS);
    this.headTimer.unref?.();
  }

  private async writeHead(): Promise<void> {
    this.headDue = false;
    this.headAt = performance.now();
    if (!this.file) return;
    // The head is the seq and hash of the last record written (not of records still buffered).
    const head: LedgerHead = { seq: this.seq - this.buffer.length, hash: this.writtenHash(), file: this.file.name };
    const target = path.join(this.dir, HEAD_FILE);
    const tmp = `${target}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(head), { mode: 0o600 });
    await rename(tmp, target);
  }

  /** The hash of the last record written: the last line of the batch just written when nothing is buffered behind it. */
  private writtenHash(): string {
    if (!this.buffer.length) return this.lastHash;
    // Records appended during the write: the first buffered line's prev is the hash of the last one written.
    const first = this.buffer[0]!.line;
    const m = /^\{"seq":\d+,"prev":"([0-9a-f]{64})"/.exec(first);
    return m ? m[1]! : this.lastHash;
  }

  private retryLater(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.schedule();
    }, this.retryMs);
    this.retryTimer.unref?.();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  private fail(e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code;
    const what =
      code === 'ENOSPC'
        ? 'the disk is full'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission was denied'
          : code === 'ENOENT'
            ? 'its directory is gone'
            : (code ?? 'the write failed');
    const message = `Audit records cannot be written (${what}); ${this.buffer.length} are waiting in memory and are retried. Free space or fix ${this.dir}.`;
    if (this.state !== 'error' || this.message !== message) this.log.warn('audit ledger write failed', { code, dir: this.dir });
    this.state = 'error';
    this.message = message;
    this.changes.emit(this.status());
  }

  private recovered(): void {
    this.state = 'ok';
    this.message = undefined;
    if (this.lost > this.lostNoted) {
      const n = this.lost - this.lostNoted;
      this.lostNoted = this.lost;
      this.append({ type: 'note', note: 'lost', detail: `${n} audit records could not be written and were dropped` });
    }
    this.changes.emit(this.status());
  }

  private markDamaged(message: string): void {
    this.state = 'damaged';
    this.message = message;
    this.log.warn('audit ledger damaged', { dir: this.dir });
    this.changes.emit(this.status());
  }
}

function describeMissing(head: LedgerHead, onDisk: number, noFiles: boolean): string {
  const gone = noFiles ? 'the audit files were deleted' : `records ${onDisk + 1}–${head.seq} are missing (a file deleted or cut short)`;
  return `The audit ledger was damaged since it was last written: ${gone}. Run \`lanyard audit verify\` for details.`;
}

/** The seq and hash of the last complete record of a file (reads only its tail). */
async function lastRecord(file: string): Promise<{ seq: number; hash: string } | undefined> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, TAIL_BYTES);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const sealed = unsealLine(lines[i]!);
      if (!sealed) continue;
      const m = /^\{"seq":(\d+),/.exec(sealed.body);
      if (m) return { seq: Number(m[1]), hash: sealed.hash };
    }
    return undefined;
  } finally {
    await handle.close();
  }
}
