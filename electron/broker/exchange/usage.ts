import { readFile } from 'node:fs/promises';
import { writePrivateFile } from '../paths';
import { silentLogger, type Logger } from '../util/log';

interface UsageFile {
  v: 1;
  /** month ("2026-11") → server id → ID-JAGs requested. */
  idJags: Record<string, Record<string, number>>;
}

/** Okta includes 250 ID-JAGs per user per resource app per month with SSO; shown next to the count. */
export const OKTA_MONTHLY_ID_JAG_QUOTA = 250;

export const monthOf = (epochMs: number): string => new Date(epochMs).toISOString().slice(0, 7);

/**
 * Counts the ID-JAGs Lanyard requested per server per calendar month (UTC), persisted in Lanyard's state file so the
 * dashboard can show use against the IdP's quota across restarts. Holds counts only, never a token.
 */
export class UsageCounter {
  private data: UsageFile = { v: 1, idJags: {} };
  private writing: Promise<void> = Promise.resolve();
  private loaded = false;

  constructor(
    private readonly file: string | undefined,
    private readonly now: () => number = Date.now,
    private readonly log: Logger = silentLogger,
  ) {}

  async load(): Promise<void> {
    this.loaded = true;
    if (!this.file) return;
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as Partial<UsageFile>;
      if (parsed && typeof parsed.idJags === 'object' && parsed.idJags) this.data = { v: 1, idJags: parsed.idJags };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('usage file unreadable; counting from zero', { error: e });
    }
  }

  async increment(serverId: string): Promise<void> {
    if (!this.loaded) await this.load();
    const month = monthOf(this.now());
    const counts = (this.data.idJags[month] ??= {});
    counts[serverId] = (counts[serverId] ?? 0) + 1;
    // Keep the last 12 months.
    for (const m of Object.keys(this.data.idJags).sort().slice(0, -12)) delete this.data.idJags[m];
    await this.persist();
  }

  count(serverId: string, month = monthOf(this.now())): number {
    return this.data.idJags[month]?.[serverId] ?? 0;
  }

  private persist(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const snapshot = JSON.stringify(this.data, null, 2);
    this.writing = this.writing
      .then(() => writePrivateFile(file, snapshot))
      .catch((e: unknown) => this.log.warn('could not write the usage file', { error: e }));
    return this.writing;
  }
}
