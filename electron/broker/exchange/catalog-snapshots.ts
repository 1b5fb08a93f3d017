import { createHash } from 'node:crypto';
import path from 'node:path';
import { knownFingerprint, rememberFingerprint } from '../governance/pins/fingerprint';
import { KeptRecordsFile } from '../util/kept-records';
import { silentLogger, type Logger } from '../util/log';

/**
 * The part of a server's catalog a restart may show before its live session is up: its lists and what it said about
 * itself at initialize. Declared here, structurally, so the file layer does not import the gateway (the pool's
 * ServerCatalog fits it). Never a token: catalogs hold tool, prompt and resource definitions only.
 */
export interface SnapshotCatalog {
  tools: unknown[];
  prompts: unknown[];
  resources: unknown[];
  resourceTemplates: unknown[];
  capabilities: object;
  instructions?: string | undefined;
}

interface SnapshotRecord {
  /** The server URL the lists came from: a changed URL makes them worthless. */
  url: string;
  /** SHA-256 of the signed-in user (IdP issuer and subject) the lists were listed for. */
  subject: string;
  /** When the lists were last confirmed by a live listing (local clock). */
  savedAt: number;
  catalog: SnapshotCatalog;
  /**
   * The tool-pinning fingerprint of each tool, in order (null: none was computed), as Lanyard computed them from these
   * very definitions; used only while `digest` still matches the catalog as read back.
   */
  fingerprints?: Array<string | null> | undefined;
  /**
   * SHA-256 of the catalog's and the fingerprints' JSON as Lanyard wrote them (its lists had passed the live listing's
   * checks): a damaged fingerprint fails it as a damaged definition does. Not a secret: whoever can write the file can
   * recompute it, hence `trustFingerprints`.
   */
  digest?: string | undefined;
}

const FILE_KIND = 'lanyard-catalogs';

/** The catalog snapshot file of the instance at `home`. */
export function catalogSnapshotFile(home: string): string {
  return path.join(home, 'catalogs.json');
}

/** A snapshot older than this is not served (the live listing decides alone). */
export const CATALOG_SNAPSHOT_TTL_MS = 24 * 60 * 60_000;
/** A live listing equal to the snapshot rewrites it only when the snapshot is older than this (it keeps it within the TTL). */
const RECONFIRM_AFTER_MS = 60 * 60_000;
/** Writes are coalesced: fifty servers listed at start-up write the file once. */
const WRITE_DELAY_MS = 500;

/** The user a snapshot belongs to, as kept in the file: a digest, so the file does not carry who signed in. */
export function snapshotSubject(issuer: string, sub: string): string {
  return createHash('sha256')
    .update(JSON.stringify([issuer, sub]))
    .digest('base64url');
}

/**
 * The last live catalog of each server, kept across restarts in a non-secret file under Lanyard's home (0600, written
 * atomically), as an editor keeps its MCP servers' tools: right after a start, an IDE's first tools/list is answered
 * from it while the live sessions connect, and a live catalog that differs reaches IDEs as list_changed
 * (docs/architecture.md, "Catalog snapshots").
 *
 * Trust: a record is served only for the same server URL and the same signed-in user it was listed for, within
 * CATALOG_SNAPSHOT_TTL_MS (the caller also checks that the server's credentials are at hand). The file is read on the
 * first use, not at start, so a broker no IDE talks to never parses it. A corrupt or foreign file is ignored with a log
 * line and replaced on the next write, never a crash.
 */
export class CatalogSnapshots {
  private servers: Record<string, SnapshotRecord> = {};
  private loading: Promise<void> | undefined;
  private readonly kept: KeptRecordsFile<SnapshotRecord>;
  private readonly now: () => number;
  private readonly trustFingerprints: () => boolean;
  /** Bumped by clear(): a read of the file started before it must not bring the previous user's records back. */
  private generation = 0;

  /**
   * `trustFingerprints`: whether kept fingerprints may stand for their definitions (default: yes). Under the managed
   * pin policy `managed-only` it must say no: the file is the user's to write, the pins are the administrator's, so a
   * changed definition paired with an approved definition's fingerprint would otherwise pass as approved.
   */
  constructor(file: string | undefined, options: { log?: Logger; now?: () => number; trustFingerprints?: () => boolean } = {}) {
    this.kept = new KeptRecordsFile(file, {
      kind: FILE_KIND,
      what: 'catalog snapshot file',
      otherwise: 'listing afresh',
      valid: validRecord,
      delayMs: WRITE_DELAY_MS,
      log: (options.log ?? silentLogger).child('catalog-snapshots'),
    });
    this.now = options.now ?? Date.now;
    this.trustFingerprints = options.trustFingerprints ?? (() => true);
  }

  /** The kept catalog of a server at this URL for this user, when it is within its TTL. */
  async read(
    serverId: string,
    url: string,
    subject: string,
  ): Promise<{ catalog: SnapshotCatalog; savedAt: number; verified: boolean } | undefined> {
    await this.load();
    const record = this.servers[serverId];
    if (!record || record.url !== url || record.subject !== subject) return undefined;
    const age = this.now() - record.savedAt;
    if (age < 0 || age >= CATALOG_SNAPSHOT_TTL_MS) return undefined;
    return { catalog: record.catalog, savedAt: record.savedAt, verified: this.verify(record) };
  }

  /**
   * Whether the catalog and fingerprints read back are exactly the JSON Lanyard wrote (one digest over both): then its
   * lists are the ones a live listing had checked, and the tool-pinning fingerprints kept with them are taken for its
   * definitions (unless `trustFingerprints` says no). Pinning fingerprints every listed definition (canonical JSON and
   * SHA-256: for 5,000 tools most of a restart's CPU after the module load); any difference and the definitions are
   * checked and fingerprinted as a live list's.
   */
  private verify(record: SnapshotRecord): boolean {
    const { fingerprints, digest } = record;
    const tools = record.catalog.tools;
    if (!fingerprints || !digest || fingerprints.length !== tools.length || digestOf(record.catalog, fingerprints) !== digest) {
      // Not carried over to the next write of an unchanged catalog: that write computes it afresh.
      record.digest = undefined;
      return false;
    }
    if (!this.trustFingerprints()) return true;
    tools.forEach((tool, i) => {
      const fingerprint = fingerprints[i];
      if (typeof fingerprint === 'string' && typeof tool === 'object' && tool !== null) rememberFingerprint(tool, fingerprint);
    });
    return true;
  }

  /**
   * Keeps a live catalog. `changed`: it differs from the kept one (or none was kept); an unchanged one only replaces
   * the kept objects in memory (the live ones are the same lists) and is written when the kept one is getting old.
   */
  write(serverId: string, url: string, subject: string, catalog: SnapshotCatalog, changed: boolean): void {
    if (!this.kept.enabled) return;
    const previous = this.servers[serverId];
    const same = previous && previous.url === url && previous.subject === subject;
    const stale = !same || this.now() - previous.savedAt >= RECONFIRM_AFTER_MS;
    const fingerprints = catalog.tools.map((t) => (typeof t === 'object' && t !== null ? (knownFingerprint(t) ?? null) : null));
    this.servers[serverId] = {
      url,
      subject,
      savedAt: changed || stale ? this.now() : previous.savedAt,
      fingerprints,
      // An unchanged catalog with the same fingerprints keeps its digest; any other gets its own when the file is written.
      ...(!changed && same && previous.digest && sameFingerprints(previous.fingerprints, fingerprints) ? { digest: previous.digest } : {}),
      catalog: {
        tools: catalog.tools,
        prompts: catalog.prompts,
        resources: catalog.resources,
        resourceTemplates: catalog.resourceTemplates,
        capabilities: catalog.capabilities,
        ...(catalog.instructions !== undefined ? { instructions: catalog.instructions } : {}),
      },
    };
    if (changed || stale) this.schedule();
  }

  forget(serverId: string): void {
    if (!this.servers[serverId]) return;
    delete this.servers[serverId];
    this.schedule();
  }

  /** Forgets every snapshot (sign-out, another user): nothing listed for one user is shown to the next. */
  clear(): void {
    this.generation++;
    this.servers = {};
    // The file is not read after this (whether it had been or not): what it holds is the previous user's.
    this.loading = Promise.resolve();
    this.schedule();
  }

  /** Writes pending changes now (the broker's stop; tests). */
  flush(): Promise<void> {
    return this.kept.flush();
  }

  private load(): Promise<void> {
    const generation = this.generation;
    this.loading ??= this.kept.read().then((servers) => {
      // Signed out (or another user) while the file was read: its records are the previous user's.
      if (generation !== this.generation) return;
      // Whatever this run wrote before the file was read (a server listed first) wins over the file.
      this.servers = { ...servers, ...this.servers };
    });
    return this.loading;
  }

  private schedule(): void {
    // The file is rewritten whole: read it first, so records of servers not listed in this run are kept.
    this.kept.schedule(async () => {
      await this.load();
      for (const record of Object.values(this.servers))
        if (record.fingerprints) record.digest ??= digestOf(record.catalog, record.fingerprints);
      return this.servers;
    });
  }
}

/**
 * SHA-256 of a catalog's and its fingerprints' JSON, as JSON.stringify writes them (the file holds the same text: read
 * back, it gives the same).
 */
function digestOf(catalog: SnapshotCatalog, fingerprints: ReadonlyArray<string | null>): string {
  return createHash('sha256')
    .update(JSON.stringify([catalog, fingerprints]), 'utf8')
    .digest('base64url');
}

function sameFingerprints(a: ReadonlyArray<string | null> | undefined, b: ReadonlyArray<string | null>): boolean {
  return a !== undefined && a.length === b.length && a.every((f, i) => f === b[i]);
}

const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A record as this version writes it; anything else (hand-edited, another version) is skipped. */
function validRecord(value: unknown): value is SnapshotRecord {
  const r = value as Partial<SnapshotRecord> | null;
  if (!r || typeof r !== 'object' || typeof r.url !== 'string' || typeof r.subject !== 'string') return false;
  if (typeof r.savedAt !== 'number' || !Number.isFinite(r.savedAt)) return false;
  const c = r.catalog as Partial<SnapshotCatalog> | undefined;
  if (!isObject(c) || !isArray(c.tools) || !isArray(c.prompts) || !isArray(c.resources) || !isArray(c.resourceTemplates)) return false;
  if (!isObject(c.capabilities) || (c.instructions !== undefined && typeof c.instructions !== 'string')) return false;
  if (r.fingerprints !== undefined && !(isArray(r.fingerprints) && r.fingerprints.every((f) => f === null || typeof f === 'string')))
    return false;
  if (r.digest !== undefined && typeof r.digest !== 'string') return false;
  return true;
}
