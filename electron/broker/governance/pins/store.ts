import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writePrivateFile } from '../../paths';
import type { Logger } from '../../util/log';

/**
 * `<home>/tool-pins.json` (0600, written atomically): per server, the fingerprint of every tool definition Lanyard has
 * shown to an IDE, the ones a person rejected, and the changes waiting for review. Not the config file: it changes
 * whenever a server's tools do, and an administrator's pins live in the managed configuration instead.
 */

const ScanFindingSchema = z.object({
  kind: z.enum(['invisible-tag', 'bidi-override', 'zero-width', 'instruction']),
  field: z.string(),
  detail: z.string(),
});

/** One pinned tool, as the file holds it. */
export interface Pin {
  fingerprint: string;
  /** The definition as pinned (for the review's diff); left out when larger than MAX_KEPT_DEFINITION_BYTES. */
  definition?: Record<string, unknown> | undefined;
  since: number;
  by: 'first-use' | 'approved';
}

export const PendingToolSchema = z.object({
  name: z.string(),
  /** changed: a pinned tool changed; added: new after the server's first listing; first-use: the scan flagged it at first sight; unpinned: not among the administrator's pins. */
  change: z.enum(['changed', 'added', 'first-use', 'unpinned']),
  fingerprint: z.string(),
  definition: z.record(z.string(), z.unknown()).optional(),
  fields: z.array(z.string()),
  findings: z.array(ScanFindingSchema),
  detectedAt: z.number(),
});

/** The pins as read: each already checked and rebuilt without its definition by `readPins` (5,400 of them through zod cost most of the read). */
const ReadPinsSchema = z.custom<Record<string, Pin>>((v) => isRecord(v));

const ServerPinsSchema = z.object({
  firstListedAt: z.number(),
  tools: ReadPinsSchema,
  rejected: z.record(z.string(), z.string()).default(() => ({})),
  pending: z.record(z.string(), PendingToolSchema).default(() => ({})),
  /** Set while the server's pending changes are one whole-catalog review (when it was detected). */
  catalogChangeAt: z.number().optional(),
});

const PinFileSchema = z.object({ version: z.literal(1), servers: z.record(z.string(), ServerPinsSchema) });

export type PendingTool = z.output<typeof PendingToolSchema>;
export type ServerPins = z.output<typeof ServerPinsSchema>;
export type PinFile = z.output<typeof PinFileSchema>;

/** A definition larger than this is pinned by fingerprint only (the review then says it is too large to show). */
export const MAX_KEPT_DEFINITION_BYTES = 64 * 1024;

export interface PinStoreOptions {
  file: string;
  log: Logger;
}

/** The stored definitions of one read of the file: per server, per tool, the pin as written (fingerprint and definition). */
type DiskPins = Record<string, Record<string, { fingerprint?: unknown; definition?: unknown } | undefined> | undefined>;

/** A definition set since the last completed write; the wrapper makes each one distinct (undefined: too large to keep). */
interface Unwritten {
  definition: Record<string, unknown> | undefined;
}

/**
 * Reads pinned definitions for one task (a listing, the review list): the file is read at most once, and only when a
 * definition is asked for that is not in memory.
 */
export interface PinDefinitions {
  get(serverId: string, toolName: string): Record<string, unknown> | undefined;
}

/**
 * The file in memory, read once on first use (synchronously: no listing may be filtered before it is known) and written
 * behind every change, one write at a time, the latest state winning.
 *
 * What stays in memory is what every listing and call needs: the fingerprints, rejections and pending reviews. The
 * pinned definitions (5,400 of them for 50 servers × 100 tools) are only needed for a review's diff, so they stay in the
 * file: dropped when it is read, read again when a diff needs one, and carried over from the file on each write.
 * Definitions pinned in this run are kept until a write has put them in the file.
 */
export class PinStore {
  /** The state without pinned definitions (`Pin.definition` is never set here: use `definitions()`). */
  readonly data: PinFile;
  /** Why the file could not be read, when it could not: the state then starts empty and says so. */
  readonly loadProblem: string | undefined;
  private readonly unwritten = new Map<string, Map<string, Unwritten>>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(private readonly options: PinStoreOptions) {
    const { data, problem } = readPins(options.file);
    this.data = data;
    this.loadProblem = problem;
    if (problem)
      options.log.warn('tool pins could not be read; starting with none (every server is listed as for the first time)', { problem });
  }

  server(serverId: string): ServerPins | undefined {
    return this.data.servers[serverId];
  }

  ensureServer(serverId: string, now: number): ServerPins {
    return (this.data.servers[serverId] ??= { firstListedAt: now, tools: {}, rejected: {}, pending: {} });
  }

  /** Pins a tool: its fingerprint in the state, its definition (undefined when too large to keep) until it is written. */
  pin(serverId: string, toolName: string, pin: Omit<Pin, 'definition'>, definition: Record<string, unknown> | undefined): void {
    this.ensureServer(serverId, pin.since).tools[toolName] = { fingerprint: pin.fingerprint, since: pin.since, by: pin.by };
    let tools = this.unwritten.get(serverId);
    if (!tools) this.unwritten.set(serverId, (tools = new Map()));
    tools.set(toolName, { definition });
  }

  /** A reader of pinned definitions for one task (see PinDefinitions). */
  definitions(): PinDefinitions {
    let disk: DiskPins | undefined;
    return {
      get: (serverId, toolName) => {
        const fingerprint = this.data.servers[serverId]?.tools[toolName]?.fingerprint;
        if (fingerprint === undefined) return undefined;
        const kept = this.unwritten.get(serverId)?.get(toolName);
        if (kept) return kept.definition;
        disk ??= readDiskPins(readText(this.options.file));
        return diskDefinition(disk, serverId, toolName, fingerprint);
      },
    };
  }

  /** Schedules a write of the whole state (coalesced: a burst of changes is one write). */
  save(): Promise<void> {
    if (this.dirty) return this.writing;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      try {
        const { text, written } = await this.serialize();
        await writePrivateFile(this.options.file, text);
        // In the file now: dropped from memory, unless pinned again while the write ran.
        for (const [serverId, toolName, kept] of written) {
          const tools = this.unwritten.get(serverId);
          if (tools?.get(toolName) !== kept) continue;
          tools.delete(toolName);
          if (!tools.size) this.unwritten.delete(serverId);
        }
      } catch (e) {
        this.options.log.error('writing the tool pins failed; they are kept in memory and written with the next change', { error: e });
      }
    });
    return this.writing;
  }

  flush(): Promise<void> {
    return this.writing;
  }

  /** The file's text: the state with each pin's definition, from memory when set in this run, else from the file as it is. */
  private async serialize(): Promise<{ text: string; written: Array<[string, string, Unwritten]> }> {
    const written: Array<[string, string, Unwritten]> = [];
    let needsDisk = false;
    for (const [serverId, record] of Object.entries(this.data.servers)) {
      const kept = this.unwritten.get(serverId);
      for (const name in record.tools) if (!kept?.has(name)) needsDisk = true;
    }
    let disk: DiskPins = {};
    if (needsDisk) {
      try {
        disk = readDiskPins(await readFile(this.options.file, 'utf8'));
      } catch {
        // No file (or not ours): the pins not set in this run are written by fingerprint only.
      }
    }
    const servers: Record<string, unknown> = {};
    for (const [serverId, record] of Object.entries(this.data.servers)) {
      const kept = this.unwritten.get(serverId);
      const tools: Record<string, Pin> = {};
      for (const [name, pin] of Object.entries(record.tools)) {
        const mine = kept?.get(name);
        if (mine) written.push([serverId, name, mine]);
        const definition = mine ? mine.definition : diskDefinition(disk, serverId, name, pin.fingerprint);
        tools[name] = definition
          ? { fingerprint: pin.fingerprint, definition, since: pin.since, by: pin.by }
          : { fingerprint: pin.fingerprint, since: pin.since, by: pin.by };
      }
      servers[serverId] = { ...record, tools };
    }
    return { text: `${JSON.stringify({ version: this.data.version, servers })}\n`, written };
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readDiskPins(text: string | undefined): DiskPins {
  if (text === undefined) return {};
  try {
    const parsed = JSON.parse(text) as { servers?: Record<string, { tools?: DiskPins[string] } | undefined> } | null;
    const out: DiskPins = {};
    for (const [serverId, record] of Object.entries(parsed?.servers ?? {})) out[serverId] = record?.tools;
    return out;
  } catch {
    return {};
  }
}

/** A stored definition, only when the file pins the same version the state does. */
function diskDefinition(disk: DiskPins, serverId: string, toolName: string, fingerprint: string): Record<string, unknown> | undefined {
  const pin = disk[serverId]?.[toolName];
  if (pin?.fingerprint !== fingerprint) return undefined;
  return isRecord(pin.definition) ? pin.definition : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readPins(file: string): { data: PinFile; problem?: string } {
  const empty: PinFile = { version: 1, servers: {} };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { data: empty };
    return { data: empty, problem: `${file} could not be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { data: empty, problem: `${file} is not valid JSON` };
  }
  // The pins are checked here and rebuilt without their definitions (definitions() reads one when a diff needs it).
  const badPin = rebuildPins(json);
  if (badPin) return { data: empty, problem: `${file} is not a tool-pin file Lanyard wrote (${badPin})` };
  const parsed = PinFileSchema.safeParse(json);
  if (parsed.success) return { data: parsed.data };
  return { data: empty, problem: `${file} is not a tool-pin file Lanyard wrote (${parsed.error.issues[0]?.message ?? 'invalid'})` };
}

/**
 * Replaces each server's `tools` of the parsed file by checked pins without their definitions (new objects: deleting
 * a property would leave 5,400 objects in V8's slower, larger dictionary form). Says what is wrong with the first bad pin.
 */
function rebuildPins(json: unknown): string | undefined {
  if (!isRecord(json) || !isRecord(json.servers)) return undefined; // the schema says what is wrong
  for (const record of Object.values(json.servers)) {
    if (!isRecord(record) || !isRecord(record.tools)) continue;
    const tools: Record<string, Pin> = {};
    for (const [name, pin] of Object.entries(record.tools)) {
      if (!isRecord(pin)) return `the pin of tool "${name}" is not an object`;
      const { fingerprint, definition, since, by } = pin;
      if (typeof fingerprint !== 'string' || typeof since !== 'number' || (by !== 'first-use' && by !== 'approved'))
        return `the pin of tool "${name}" is not one Lanyard wrote`;
      if (definition !== undefined && !isRecord(definition)) return `the pinned definition of tool "${name}" is not an object`;
      tools[name] = { fingerprint, since, by };
    }
    record.tools = tools;
  }
  return undefined;
}

/** The definition to keep beside a fingerprint, or undefined when it is too large to keep. */
export function keepable(definition: Record<string, unknown>): Record<string, unknown> | undefined {
  return JSON.stringify(definition).length <= MAX_KEPT_DEFINITION_BYTES ? definition : undefined;
}
