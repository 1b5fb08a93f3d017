import { ErrorCodes } from '../../../../shared/errors';
import { Emitter } from '../../../../shared/emitter';
import type { ToolReview, ToolReviewTool } from '../../../../shared/contract';
import { LanyardError } from '../../errors';
import { silentLogger, type Logger } from '../../util/log';
import { changedFields, pinnedPart, prettyDefinition, toolFingerprint, type ToolDefinition } from './fingerprint';
import { describeFinding, scanTool, type ScanFinding } from './scan';
import { keepable, PinStore, type PendingTool, type ServerPins } from './store';

/** `toolPins` of the managed configuration (config/managed.ts). */
export interface ManagedToolPins {
  policy?: PinPolicy | undefined;
  /** Per server id, per tool name: the `sha256:…` fingerprint an administrator approved. */
  pins?: Record<string, Record<string, string>> | undefined;
}

/**
 * tofu: trust on first use (the default): a server's first listing is pinned, anything after is reviewed.
 * managed-only: only the administrator's pins are shown; every other tool waits for review.
 * off: no pinning, no scan.
 */
export type PinPolicy = 'tofu' | 'managed-only' | 'off';

export interface ToolGateOptions {
  /** `<home>/tool-pins.json`. */
  file: string;
  /** The administrator's settings, read on every listing (the managed file may change while Lanyard runs). */
  managed?: () => { toolPins?: ManagedToolPins | undefined; locked: boolean };
  log?: Logger;
  now?: () => number;
}

/** What changes for IDEs and for the review surfaces. */
export type ToolGateEvent =
  /** A server's visible tools may differ now (an approval): its catalog is filtered again and IDEs get list_changed. */
  | { type: 'visible'; serverId: string }
  /** The set of pending reviews changed (the tray count, the dashboard). */
  | { type: 'reviews' };

/** A server whose listing changes more than this share of its pinned tools is flagged as one review, not tool by tool. */
export const CATALOG_CHANGE_SHARE = 0.5;
/** ...when it had at least this many tools pinned (two tools of three changing is not a new catalog). */
export const CATALOG_CHANGE_MIN_TOOLS = 4;

const REVIEW_FIX =
  'Review it: run `lanyard tools review` (or open Review in the Lanyard dashboard), then `lanyard tools approve` or `reject`.';

interface Seen {
  fingerprint: string;
  state: 'visible' | 'pending' | 'rejected';
}

/**
 * Tool pinning and quarantine. Every tool list a server gives Lanyard passes through `filterTools` before any IDE sees
 * it (the upstream pool's catalog for `/mcp` and `lanyard stdio`, the relay's tools/list answers for `/mcp/<id>`):
 * each definition is fingerprinted and compared with its pin; a changed tool, a tool added after the server's first
 * listing, or one the injection scan flags is left out and refused on call (`refusal`) until a person approves it.
 */
export class ToolGate {
  /** The pin file in memory, read on first use (see `store`). */
  private opened: PinStore | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly events: Emitter<ToolGateEvent>;
  /** Per server, per tool name: the last listed fingerprint and what became of it (for refusing calls). */
  private readonly seen = new Map<string, Map<string, Seen>>();
  /** Scan results by fingerprint: a definition is scanned once, however often it is listed. */
  private readonly scans = new Map<string, ScanFinding[]>();

  constructor(private readonly options: ToolGateOptions) {
    this.log = (options.log ?? silentLogger).child('pins');
    this.now = options.now ?? Date.now;
    this.events = new Emitter((e) => this.log.error('tool gate listener failed', { error: e }));
  }

  /**
   * The pin file, read (synchronously) the first time anything needs it: always before the first listing is filtered,
   * but not while a broker no IDE has used yet sits idle (a 50 × 100 home's pins are about 1 MB of heap).
   */
  private get store(): PinStore {
    return (this.opened ??= new PinStore({ file: this.options.file, log: this.log }));
  }

  onEvent(listener: (event: ToolGateEvent) => void): () => void {
    return this.events.on(listener);
  }

  policy(): PinPolicy {
    return this.managed().toolPins?.policy ?? 'tofu';
  }

  /** The tools IDEs may see of one server's listing; records pins and pending reviews on the way. */
  filterTools<T extends ToolDefinition>(serverId: string, tools: readonly T[]): T[] {
    const managed = this.managed();
    const policy = managed.toolPins?.policy ?? 'tofu';
    if (policy === 'off') return [...tools];
    const managedPins = managed.toolPins?.pins?.[serverId] ?? {};
    const now = this.now();
    const existing = this.store.server(serverId);
    const firstListing = !existing;
    const record = existing ?? this.store.ensureServer(serverId, now);
    let dirty = firstListing;
    const seen = new Map<string, Seen>();
    const visible: T[] = [];
    const pendingNow = new Map<string, PendingTool>();
    // The pinned definitions stay in the file: read (once) only when a pinned tool changed and its diff is computed.
    const definitions = this.store.definitions();
    // A change already waiting for review was compared with the same pin (approving or rejecting clears it): its fields stand.
    const changed = (tool: T, fingerprint: string): string[] => {
      const waiting = record.pending[tool.name];
      if (waiting?.change === 'changed' && waiting.fingerprint === fingerprint) return waiting.fields;
      const pinned = definitions.get(serverId, tool.name);
      return pinned ? changedFields(pinned as ToolDefinition, tool) : [];
    };

    for (const tool of tools) {
      if (typeof tool?.name !== 'string' || seen.has(tool.name)) continue;
      const pin = record.tools[tool.name];
      const computed = toolFingerprint(tool);
      // The pin's own string when they are equal: `seen` then shares it instead of holding a copy per tool (5,400 × 71 characters).
      const fingerprint = pin?.fingerprint === computed ? pin.fingerprint : computed;
      const managedPin = managedPins[tool.name];
      let verdict: { pending: Omit<PendingTool, 'name' | 'fingerprint' | 'detectedAt' | 'definition'> } | 'visible' | 'rejected';
      if (record.rejected[tool.name] === fingerprint) verdict = 'rejected';
      else if (managedPin !== undefined) {
        // The administrator's pin decides; a person's approval of another version counts only while the pins are not locked.
        const approvedHere = pin?.fingerprint === fingerprint && pin.by === 'approved' && !managed.locked;
        verdict =
          managedPin === fingerprint || approvedHere
            ? 'visible'
            : {
                pending: {
                  change: 'changed',
                  fields: pin ? changed(tool, fingerprint) : [],
                  findings: this.scan(fingerprint, tool),
                },
              };
      } else if (pin?.fingerprint === fingerprint) verdict = 'visible';
      else if (policy === 'managed-only') verdict = { pending: { change: 'unpinned', fields: [], findings: this.scan(fingerprint, tool) } };
      else {
        const findings = this.scan(fingerprint, tool);
        if (pin)
          verdict = {
            pending: { change: 'changed', fields: changed(tool, fingerprint), findings },
          };
        else if (firstListing && !findings.length && !this.store.loadProblem) {
          this.store.pin(serverId, tool.name, { fingerprint, since: now, by: 'first-use' }, keepable(pinnedPart(tool)));
          verdict = 'visible';
        } else verdict = { pending: { change: firstListing ? 'first-use' : 'added', fields: [], findings } };
      }
      if (verdict === 'visible') {
        visible.push(tool);
        seen.set(tool.name, { fingerprint, state: 'visible' });
      } else if (verdict === 'rejected') seen.set(tool.name, { fingerprint, state: 'rejected' });
      else {
        const before = record.pending[tool.name];
        pendingNow.set(tool.name, {
          name: tool.name,
          fingerprint,
          definition: keepable(pinnedPart(tool)),
          ...verdict.pending,
          detectedAt: before?.fingerprint === fingerprint ? before.detectedAt : now,
        });
        seen.set(tool.name, { fingerprint, state: 'pending' });
      }
    }

    // The pending set is what this listing says: a server that reverts a change leaves nothing to review.
    const before = record.pending;
    const reviewsChanged =
      Object.keys(before).length !== pendingNow.size ||
      [...pendingNow.values()].some((p) => before[p.name]?.fingerprint !== p.fingerprint || before[p.name]?.change !== p.change);
    if (reviewsChanged) {
      record.pending = Object.fromEntries(pendingNow);
      dirty = true;
    }
    const wholeCatalog = this.isCatalogChange(record, pendingNow.size);
    if (wholeCatalog && record.catalogChangeAt === undefined) {
      record.catalogChangeAt = now;
      dirty = true;
    } else if (!wholeCatalog && record.catalogChangeAt !== undefined) {
      delete record.catalogChangeAt;
      dirty = true;
    }
    this.seen.set(serverId, seen);
    if (dirty) void this.store.save();
    if (reviewsChanged) {
      if (pendingNow.size)
        this.log.warn('tools held back for review', {
          serverId,
          tools: [...pendingNow.keys()].slice(0, 20),
          count: pendingNow.size,
          wholeCatalog,
        });
      this.events.emit({ type: 'reviews' });
    }
    return visible;
  }

  /** Why a call to this tool is refused, or undefined when it may go ahead. */
  refusal(serverId: string, toolName: string): LanyardError | undefined {
    // On every tools/call: the common answer (nothing held back) costs two lookups, before the managed policy is read.
    const record = this.store.server(serverId);
    const pending = record?.pending[toolName];
    const state = this.seen.get(serverId)?.get(toolName);
    if (!pending && state?.state !== 'rejected' && record?.rejected[toolName] === undefined) return undefined;
    if (this.policy() === 'off') return undefined;
    if (pending) {
      return new LanyardError(
        ErrorCodes.TOOL_QUARANTINED,
        `Lanyard held back tool "${toolName}" of server "${serverId}": ${reason(pending)}.`,
        REVIEW_FIX,
        {
          serverId,
        },
      );
    }
    if (state?.state === 'rejected' || (state === undefined && record?.rejected[toolName] !== undefined && !record.tools[toolName])) {
      return new LanyardError(
        ErrorCodes.TOOL_QUARANTINED,
        `Tool "${toolName}" of server "${serverId}" was rejected in review; Lanyard keeps it hidden.`,
        'If the server has fixed it, it will come back for review when its definition changes; `lanyard tools review` lists what is waiting.',
        { serverId },
      );
    }
    return undefined;
  }

  /** Whether anything of this server is held back (pending or rejected): else no call of it can be refused. */
  holdsBack(serverId: string): boolean {
    const record = this.store.server(serverId);
    if (!record) return false;
    for (const _ in record.pending) return true;
    for (const _ in record.rejected) return true;
    return false;
  }

  /** Everything waiting for a person: one item per tool, or one per server whose whole catalog changed. */
  reviews(): ToolReview[] {
    const out: ToolReview[] = [];
    const locked = this.managed().locked;
    const definitions = this.store.definitions();
    for (const [serverId, record] of Object.entries(this.store.data.servers)) {
      const pending = Object.values(record.pending);
      if (!pending.length) continue;
      const approvable = !locked || this.policy() === 'tofu';
      const tools = pending.map((p) => reviewTool(p, definitions.get(serverId, p.name)));
      if (record.catalogChangeAt !== undefined) {
        out.push({
          id: `${serverId}:catalog`,
          serverId,
          kind: 'catalog',
          summary: `Server "${serverId}" changed most of its tools at once (${pending.length} of them): review the whole catalog.`,
          detectedAt: record.catalogChangeAt,
          approvable,
          tools,
        });
        continue;
      }
      for (const tool of tools) {
        const p = record.pending[tool.name]!;
        out.push({
          id: `${serverId}/${tool.name}`,
          serverId,
          kind: 'tool',
          // The findings are listed beside the diff: the summary only says that there are some.
          summary: `${serverId} › ${tool.name}: ${reason(p, false)}`,
          detectedAt: p.detectedAt,
          approvable: approvable && !(locked && this.managed().toolPins?.pins?.[serverId]?.[tool.name] !== undefined),
          tools: [tool],
        });
      }
    }
    return out.sort((a, b) => a.detectedAt - b.detectedAt);
  }

  pendingCount(): number {
    let n = 0;
    for (const record of Object.values(this.store.data.servers)) n += Object.keys(record.pending).length;
    return n;
  }

  /** Pins the pending version of the named tools (all pending tools of the server when none are named). */
  approve(serverId: string, toolNames?: readonly string[]): string[] {
    const { record, names } = this.pick(serverId, toolNames, 'approve');
    const managed = this.managed();
    if (managed.locked && (this.policy() !== 'tofu' || names.some((n) => managed.toolPins?.pins?.[serverId]?.[n] !== undefined))) {
      throw new LanyardError(
        ErrorCodes.MANAGED_LOCKED,
        `Your administrator's managed configuration locks the tool pins of "${serverId}".`,
        'Ask your IT team to approve the new version (they pin it in the managed configuration).',
        { serverId },
      );
    }
    const now = this.now();
    for (const name of names) {
      const p = record.pending[name]!;
      this.store.pin(serverId, name, { fingerprint: p.fingerprint, since: now, by: 'approved' }, p.definition);
      delete record.rejected[name];
      delete record.pending[name];
      const seen = this.seen.get(serverId)?.get(name);
      if (seen?.fingerprint === p.fingerprint) seen.state = 'visible';
    }
    this.settle(record, serverId, names, 'approved');
    return names;
  }

  /** Keeps the named tools hidden and remembers the rejected version, so it never comes back for review. */
  reject(serverId: string, toolNames?: readonly string[]): string[] {
    const { record, names } = this.pick(serverId, toolNames, 'reject');
    for (const name of names) {
      record.rejected[name] = record.pending[name]!.fingerprint;
      delete record.pending[name];
      const seen = this.seen.get(serverId)?.get(name);
      if (seen) seen.state = 'rejected';
    }
    this.settle(record, serverId, names, 'rejected');
    return names;
  }

  flush(): Promise<void> {
    // Never read only to be flushed: a store not opened has nothing to write.
    return this.opened?.flush() ?? Promise.resolve();
  }

  private settle(record: ServerPins, serverId: string, names: string[], what: string): void {
    if (!Object.keys(record.pending).length) delete record.catalogChangeAt;
    void this.store.save();
    this.log.info(`tools ${what} in review`, { serverId, tools: names.slice(0, 20), count: names.length });
    this.events.emit({ type: 'reviews' });
    if (what === 'approved') this.events.emit({ type: 'visible', serverId });
  }

  private pick(serverId: string, toolNames: readonly string[] | undefined, verb: string): { record: ServerPins; names: string[] } {
    const record = this.store.server(serverId);
    const pending = record ? Object.keys(record.pending) : [];
    if (!record || !pending.length) {
      throw new LanyardError(
        ErrorCodes.SERVER_UNKNOWN,
        `Server "${serverId}" has no tools waiting for review.`,
        'Run `lanyard tools review` to see what is waiting.',
        {
          serverId,
        },
      );
    }
    const names = toolNames?.length ? [...new Set(toolNames)] : pending;
    const unknown = names.filter((n) => !record.pending[n]);
    if (unknown.length) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `Nothing to ${verb}: ${unknown.map((n) => `"${n}"`).join(', ')} of server "${serverId}" ${unknown.length === 1 ? 'is' : 'are'} not waiting for review.`,
        `Waiting for review: ${pending.slice(0, 10).join(', ')}${pending.length > 10 ? ', …' : ''}.`,
        { serverId },
      );
    }
    return { record, names };
  }

  private isCatalogChange(record: ServerPins, pendingCount: number): boolean {
    const pinned = Object.keys(record.tools).length;
    return pinned >= CATALOG_CHANGE_MIN_TOOLS && pendingCount > pinned * CATALOG_CHANGE_SHARE;
  }

  private scan(fingerprint: string, tool: ToolDefinition): ScanFinding[] {
    let findings = this.scans.get(fingerprint);
    if (!findings) {
      findings = scanTool(tool);
      if (this.scans.size > 10_000) this.scans.clear();
      this.scans.set(fingerprint, findings);
    }
    return findings;
  }

  private managed(): { toolPins?: ManagedToolPins | undefined; locked: boolean } {
    try {
      return this.options.managed?.() ?? { locked: false };
    } catch (e) {
      this.log.error('reading the managed tool pins failed', { error: e });
      return { locked: false };
    }
  }
}

/** Why a tool is held back, in one clause a person reads (the refusal message and the review list). */
export function reason(p: Pick<PendingTool, 'change' | 'fields' | 'findings'>, details = true): string {
  const parts: string[] = [];
  switch (p.change) {
    case 'changed':
      parts.push(
        p.fields.length ? `its ${p.fields.join(', ')} changed since it was approved` : 'its definition changed since it was approved',
      );
      break;
    case 'added':
      parts.push('the server added it after its first listing');
      break;
    case 'unpinned':
      parts.push('your administrator has not pinned it');
      break;
    case 'first-use':
      break;
  }
  if (p.findings.length)
    parts.push(
      details
        ? `the injection scan flagged it (${p.findings.slice(0, 2).map(describeFinding).join('; ')})`
        : 'the injection scan flagged it',
    );
  if (!parts.length) parts.push('it is new and was not pinned yet');
  return parts.join('; ');
}

function reviewTool(p: PendingTool, pinned: Record<string, unknown> | undefined): ToolReviewTool {
  return {
    name: p.name,
    change: p.change,
    fingerprint: p.fingerprint,
    fields: p.fields,
    findings: p.findings,
    ...(pinned ? { before: prettyDefinition(pinned as ToolDefinition) } : {}),
    after: p.definition ? prettyDefinition(p.definition as ToolDefinition) : '(definition too large to show)',
  };
}
