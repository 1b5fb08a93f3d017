import type { PriorDiscovery } from '@modelcontextprotocol/client';
import path from 'node:path';
import { AUTH_PATHS, type AuthPath } from '../../../shared/auth-paths';
import { KeptRecordsFile } from '../util/kept-records';
import { silentLogger, type Logger } from '../util/log';
import { checkOutboundUrl } from '../util/url-policy';
import type { ServerAuthInfo } from './discovery';

/**
 * What a restart may reuse of a server's protocol negotiation (the upstream pool's transport memory): which MCP
 * transport answered, the protocol era verdict (the SDK's PriorDiscovery, with when it was learnt) and when the server
 * last refused initialize. Declared here, structurally, so the file layer does not import the gateway.
 */
export interface PersistedTransport {
  kind?: 'streamable-http' | 'sse' | undefined;
  era?: { verdict: PriorDiscovery; at: number } | undefined;
  legacyRefusedAt?: number | undefined;
}

interface ServerRecord {
  /** The server URL the record was learnt for: a changed URL makes it worthless. */
  url: string;
  /** The admin's pinned AS issuer when it was learnt (absent: none). */
  expectedAsIssuer?: string | undefined;
  auth?: ServerAuthInfo | undefined;
  transport?: PersistedTransport | undefined;
  /**
   * The auth path the probe chose, for a server whose entry the user's config does not hold (a managed server): the
   * user's own servers keep it in config.json.
   */
  authPath?: AuthPath | undefined;
}

const FILE_KIND = 'lanyard-discovery';

/** The discovery state file of the instance at `home`. */
export function discoveryStateFile(home: string): string {
  return path.join(home, 'discovery.json');
}
/** A remembered discovery older than this is discovered again at the next use (the in-memory TTL still applies after). */
export const DISCOVERY_STATE_TTL_MS = 24 * 60 * 60_000;
/** Writes are coalesced: a start-up that learns 50 servers writes the file once or twice, not 50 times. */
const WRITE_DELAY_MS = 200;

/**
 * What discovery learnt about each server, kept across restarts in a non-secret file under Lanyard's home (0600,
 * written atomically): the RFC 9728 / RFC 8414 results the token exchange needs (ServerAuthInfo), and the upstream
 * transport and protocol era verdict. A restart with cached tokens then reaches its servers without the metadata round
 * trips and without the server/discover probe. Never a token: ServerAuthInfo holds metadata only.
 *
 * Trust: a record is used only for the same server URL and pinned issuer it was learnt with, within
 * DISCOVERY_STATE_TTL_MS, and with its token endpoint still allowed by the URL policy; the owner forgets it on any
 * failure (the next use discovers again). A corrupt or foreign file is ignored with a log line and replaced on the next
 * write — never a crash.
 */
export class DiscoveryState {
  private servers: Record<string, ServerRecord> = {};
  private readonly kept: KeptRecordsFile<ServerRecord>;
  private readonly now: () => number;

  constructor(file: string | undefined, options: { log?: Logger; now?: () => number } = {}) {
    this.kept = new KeptRecordsFile(file, {
      kind: FILE_KIND,
      what: 'discovery state file',
      otherwise: 'discovering afresh',
      valid: validRecord,
      delayMs: WRITE_DELAY_MS,
      indent: 2,
      log: (options.log ?? silentLogger).child('discovery-state'),
    });
    this.now = options.now ?? Date.now;
  }

  async load(): Promise<void> {
    this.servers = await this.kept.read();
  }

  /** The remembered discovery of a server, when it is still for this URL and pinned issuer and within its TTL. */
  auth(serverId: string, url: string, expectedAsIssuer: string | undefined): ServerAuthInfo | undefined {
    const record = this.record(serverId, url, expectedAsIssuer);
    const auth = record?.auth;
    if (!auth || auth.serverUrl !== url) return undefined;
    const age = this.now() - auth.discoveredAt;
    if (age < 0 || age >= DISCOVERY_STATE_TTL_MS) return undefined;
    // The URL policy is judged again: a file edited to point the exchange elsewhere is not followed.
    if (auth.authRequired && !checkOutboundUrl(auth.tokenEndpoint, url).ok) return undefined;
    return auth;
  }

  setAuth(serverId: string, url: string, expectedAsIssuer: string | undefined, auth: ServerAuthInfo): void {
    this.update(serverId, url, expectedAsIssuer, (r) => {
      r.auth = auth;
    });
  }

  /** The remembered transport and era verdict of a server at this URL. */
  transport(serverId: string, url: string): PersistedTransport | undefined {
    const record = this.servers[serverId];
    return record && record.url === url ? record.transport : undefined;
  }

  setTransport(serverId: string, url: string, transport: PersistedTransport): void {
    const record = this.servers[serverId];
    if (record && record.url === url && JSON.stringify(record.transport ?? {}) === JSON.stringify(transport)) return;
    this.update(serverId, url, record?.url === url ? record.expectedAsIssuer : undefined, (r) => {
      r.transport = { ...transport };
    });
  }

  /** The auth path remembered for a server at this URL (managed servers; see ServerRecord.authPath). */
  authPath(serverId: string, url: string): AuthPath | undefined {
    const record = this.servers[serverId];
    return record && record.url === url ? record.authPath : undefined;
  }

  /** Remembers (or, with undefined, forgets) the auth path chosen for a server at this URL. */
  setAuthPath(serverId: string, url: string, path: AuthPath | undefined): void {
    const record = this.servers[serverId];
    if ((record?.url === url ? record.authPath : undefined) === path) return;
    this.update(serverId, url, record?.url === url ? record.expectedAsIssuer : undefined, (r) => {
      if (path) r.authPath = path;
      else delete r.authPath;
    });
  }

  /** Forgets what was learnt about a server's authorization (it failed, or the server was removed). */
  forgetAuth(serverId: string): void {
    const record = this.servers[serverId];
    if (!record?.auth) return;
    delete record.auth;
    this.schedule();
  }

  forget(serverId: string): void {
    if (!this.servers[serverId]) return;
    delete this.servers[serverId];
    this.schedule();
  }

  /** Writes pending changes now (the broker's stop; tests). */
  flush(): Promise<void> {
    return this.kept.flush();
  }

  private record(serverId: string, url: string, expectedAsIssuer: string | undefined): ServerRecord | undefined {
    const record = this.servers[serverId];
    if (!record || record.url !== url || (record.expectedAsIssuer ?? undefined) !== (expectedAsIssuer ?? undefined)) return undefined;
    return record;
  }

  private update(serverId: string, url: string, expectedAsIssuer: string | undefined, change: (record: ServerRecord) => void): void {
    const previous = this.servers[serverId];
    // A record for another URL is worthless: start over. Another pinned issuer voids what was learnt about
    // authorization only (the transport and era verdict do not depend on it).
    const record: ServerRecord =
      previous && previous.url === url
        ? previous.expectedAsIssuer === expectedAsIssuer
          ? previous
          : {
              url,
              ...(expectedAsIssuer ? { expectedAsIssuer } : {}),
              ...(previous.transport ? { transport: previous.transport } : {}),
              ...(previous.authPath ? { authPath: previous.authPath } : {}),
            }
        : { url, ...(expectedAsIssuer ? { expectedAsIssuer } : {}) };
    change(record);
    this.servers[serverId] = record;
    this.schedule();
  }

  private schedule(): void {
    this.kept.schedule(() => this.servers);
  }
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/** A record as this version writes it; anything else (hand-edited, another version) is skipped. */
function validRecord(value: unknown): value is ServerRecord {
  const r = value as Partial<ServerRecord> | null;
  if (!r || typeof r !== 'object' || !isString(r.url)) return false;
  if (r.expectedAsIssuer !== undefined && !isString(r.expectedAsIssuer)) return false;
  if (r.auth !== undefined && !validAuth(r.auth)) return false;
  if (r.transport !== undefined && !validTransport(r.transport)) return false;
  if (r.authPath !== undefined && !(AUTH_PATHS as readonly unknown[]).includes(r.authPath)) return false;
  return true;
}

function validAuth(a: Partial<ServerAuthInfo>): boolean {
  return (
    isString(a.serverUrl) &&
    typeof a.authRequired === 'boolean' &&
    isString(a.resource) &&
    (a.resourceMetadataUrl === undefined || isString(a.resourceMetadataUrl)) &&
    isStrings(a.challengedScopes) &&
    isStrings(a.scopesSupported) &&
    isString(a.asIssuer) &&
    isString(a.tokenEndpoint) &&
    isStrings(a.tokenEndpointAuthMethods) &&
    typeof a.advertisesJwtBearer === 'boolean' &&
    typeof a.advertisesIdJagProfile === 'boolean' &&
    typeof a.discoveredAt === 'number' &&
    Number.isFinite(a.discoveredAt) &&
    (a.unverifiedOpenStatus === undefined || typeof a.unverifiedOpenStatus === 'number')
  );
}

function validTransport(t: Partial<PersistedTransport>): boolean {
  if (typeof t !== 'object' || t === null) return false;
  if (t.kind !== undefined && t.kind !== 'streamable-http' && t.kind !== 'sse') return false;
  if (t.legacyRefusedAt !== undefined && typeof t.legacyRefusedAt !== 'number') return false;
  if (t.era !== undefined) {
    const era = t.era as Partial<NonNullable<PersistedTransport['era']>> | null;
    if (!era || typeof era.at !== 'number' || !era.verdict) return false;
    const v = era.verdict as { kind?: unknown; discover?: { supportedVersions?: unknown; capabilities?: unknown } | null };
    if (v.kind === 'legacy') return true;
    if (v.kind !== 'modern' || typeof v.discover !== 'object' || v.discover === null) return false;
    if (!isStrings(v.discover.supportedVersions) || typeof v.discover.capabilities !== 'object' || v.discover.capabilities === null)
      return false;
  }
  return true;
}
