import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writePrivateFile } from '../paths';
import { silentLogger, type Logger } from '../util/log';

interface UsageFile {
  v: 1;
  /** month ("2026-11") → server id → ID-JAGs requested. */
  idJags: Record<string, Record<string, number>>;
  /** month → meter key (one user at one resource app, hashed) → ID-JAGs requested. Absent in files from older versions. */
  perApp?: Record<string, Record<string, number>>;
  /** month → meter keys whose warning was already recorded, so it is recorded once. */
  warned?: Record<string, string[]>;
}

/**
 * Okta limits Cross App Access with SSO to 250 ID-JAGs per user per resource app per month (more needs a separate
 * subscription); shown next to the count:
 * https://help.okta.com/oie/en-us/content/topics/apps/apps-config-xaa-connection.htm
 */
export const OKTA_MONTHLY_ID_JAG_QUOTA = 250;

/** Warn at 80 % of the quota: early enough that the user or an admin can act before calls start failing. */
export const ID_JAG_WARNING_THRESHOLD = Math.ceil(OKTA_MONTHLY_ID_JAG_QUOTA * 0.8);

/** What Okta meters separately: one user (subject at an IdP) at one resource app (the ID-JAG's audience, the AS). */
export interface ResourceAppUse {
  idpIssuer: string;
  subject: string;
  /** The authorization server the ID-JAG is for. */
  audience: string;
}

export interface QuotaWarning {
  serverId: string;
  month: string;
  count: number;
  threshold: number;
  quota: number;
  message: string;
  fix: string;
}

export const monthOf = (epochMs: number): string => new Date(epochMs).toISOString().slice(0, 7);

/** A stable key per user and resource app; hashed so the state file names no user. */
const meterKey = (app: ResourceAppUse): string =>
  createHash('sha256')
    .update(JSON.stringify([app.idpIssuer, app.subject, app.audience]))
    .digest('base64url')
    .slice(0, 22);

/**
 * Counts the ID-JAGs Lanyard requested per server and per user and resource app, per calendar month (UTC), persisted
 * in Lanyard's state file so the dashboard can show use against the IdP's quota across restarts, and warns once per
 * user, resource app and month when the count reaches the warning threshold. Holds counts only, never a token.
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
      if (parsed && typeof parsed.idJags === 'object' && parsed.idJags) {
        this.data = { v: 1, idJags: parsed.idJags };
        if (parsed.perApp && typeof parsed.perApp === 'object') this.data.perApp = parsed.perApp;
        if (parsed.warned && typeof parsed.warned === 'object') this.data.warned = parsed.warned;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('usage file unreadable; counting from zero', { error: e });
    }
  }

  /**
   * Counts one ID-JAG for the server (and, when given, for the user at the resource app). Returns the warning when this
   * one reached the threshold for that user and resource app and no warning was recorded yet this month.
   */
  async increment(serverId: string, app?: ResourceAppUse): Promise<QuotaWarning | undefined> {
    if (!this.loaded) await this.load();
    const month = monthOf(this.now());
    const counts = (this.data.idJags[month] ??= {});
    counts[serverId] = (counts[serverId] ?? 0) + 1;
    let warning: QuotaWarning | undefined;
    if (app) {
      const key = meterKey(app);
      const perApp = ((this.data.perApp ??= {})[month] ??= {});
      const count = (perApp[key] = (perApp[key] ?? 0) + 1);
      const warned = ((this.data.warned ??= {})[month] ??= []);
      if (count >= ID_JAG_WARNING_THRESHOLD && !warned.includes(key)) {
        warned.push(key);
        warning = quotaWarning(serverId, month, count, app.audience);
      }
    }
    // Keep the last 12 months.
    for (const table of [this.data.idJags, this.data.perApp, this.data.warned]) {
      if (table) for (const m of Object.keys(table).sort().slice(0, -12)) delete table[m];
    }
    await this.persist();
    return warning;
  }

  count(serverId: string, month = monthOf(this.now())): number {
    return this.data.idJags[month]?.[serverId] ?? 0;
  }

  /** ID-JAGs this month for one user at one resource app: what the IdP's quota counts. */
  countFor(app: ResourceAppUse, month = monthOf(this.now())): number {
    return this.data.perApp?.[month]?.[meterKey(app)] ?? 0;
  }

  /** The standing warning for the user at the resource app this month, if the threshold was reached. */
  warning(serverId: string, app: ResourceAppUse): QuotaWarning | undefined {
    const month = monthOf(this.now());
    const count = this.countFor(app, month);
    return count >= ID_JAG_WARNING_THRESHOLD ? quotaWarning(serverId, month, count, app.audience) : undefined;
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

function quotaWarning(serverId: string, month: string, count: number, audience: string): QuotaWarning {
  const left = Math.max(0, OKTA_MONTHLY_ID_JAG_QUOTA - count);
  return {
    serverId,
    month,
    count,
    threshold: ID_JAG_WARNING_THRESHOLD,
    quota: OKTA_MONTHLY_ID_JAG_QUOTA,
    message: `${count} of the ${OKTA_MONTHLY_ID_JAG_QUOTA} ID-JAGs Okta includes per user per resource app this month are used for "${serverId}" (${left} left until ${month} ends); beyond them the IdP may refuse new tokens for this server.`,
    fix: `Ask the admin of ${audience} for longer-lived access tokens (each new one costs an ID-JAG), or your Okta account team for a larger allowance.`,
  };
}
