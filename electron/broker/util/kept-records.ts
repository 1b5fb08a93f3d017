import { readFile } from 'node:fs/promises';
import { writePrivateFile } from '../paths';
import type { Logger } from './log';

export interface KeptRecordsOptions<R> {
  /** The `kind` the file carries, so a file of another kind (or version) is never taken for this one. */
  kind: string;
  /** What the file is, for log lines: "discovery state file". */
  what: string;
  /** What happens instead when the file is of no use, for log lines: "discovering afresh". */
  otherwise: string;
  /** A record as this version writes it; anything else (hand-edited, another version) is skipped. */
  valid: (record: unknown) => record is R;
  /** How long writes are coalesced: a start-up that learns fifty servers writes the file once or twice. */
  delayMs: number;
  log: Logger;
  /** JSON indentation of the written file (none: one line). */
  indent?: number;
}

/**
 * A non-secret JSON file under Lanyard's home that keeps one record per server across restarts (discovery.json,
 * catalogs.json). It is read tolerantly: a missing, unreadable, corrupt or foreign file gives no records, a record this
 * version would not write is skipped, each with a log line and never a crash. It is written whole, 0600 and atomically
 * (writePrivateFile), with writes coalesced and kept in order.
 */
export class KeptRecordsFile<R> {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private pending: (() => Promise<Record<string, R>>) | undefined;

  constructor(
    private readonly file: string | undefined,
    private readonly options: KeptRecordsOptions<R>,
  ) {}

  /** Whether there is a file at all (an instance without a home keeps nothing). */
  get enabled(): boolean {
    return this.file !== undefined;
  }

  /** The valid records in the file (none without a file). */
  async read(): Promise<Record<string, R>> {
    const records: Record<string, R> = {};
    if (!this.file) return records;
    const { kind, what, otherwise, log } = this.options;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`${what} unreadable; ${otherwise}`, { error: e });
      return records;
    }
    try {
      const parsed = JSON.parse(text) as { kind?: unknown; v?: unknown; servers?: unknown } | null;
      if (!parsed || parsed.kind !== kind || parsed.v !== 1 || typeof parsed.servers !== 'object' || !parsed.servers)
        throw new Error(`not a Lanyard ${what}`);
      for (const [id, record] of Object.entries(parsed.servers)) if (this.options.valid(record)) records[id] = record;
    } catch (e) {
      log.warn(`${what} ignored (corrupt or not ours); ${otherwise}`, { reason: e instanceof Error ? e.message.slice(0, 120) : 'invalid' });
    }
    return records;
  }

  /**
   * Writes the records `records()` gives, after the coalescing delay. Asked again before then, the latest `records`
   * is the one written (it runs when the write happens, so it sees every change made meanwhile).
   */
  schedule(records: () => Promise<Record<string, R>> | Record<string, R>): void {
    if (!this.file) return;
    this.pending = async () => records();
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.write();
    }, this.options.delayMs);
    this.timer.unref?.();
  }

  /** Writes pending changes now (the broker's stop; tests). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.write();
    }
    await this.writing;
  }

  private write(): void {
    const file = this.file;
    const records = this.pending;
    this.pending = undefined;
    if (!file || !records) return;
    const { kind, what, indent, log } = this.options;
    this.writing = this.writing
      .then(records)
      .then((servers) => writePrivateFile(file, `${JSON.stringify({ kind, v: 1, servers }, null, indent)}\n`))
      .catch((e: unknown) => log.warn(`could not write the ${what}`, { error: e }));
  }
}
