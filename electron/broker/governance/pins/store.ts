import { readFileSync } from 'node:fs';
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

const PinSchema = z.object({
  fingerprint: z.string(),
  /** The definition as pinned (for the review's diff); left out when larger than MAX_KEPT_DEFINITION_BYTES. */
  definition: z.record(z.string(), z.unknown()).optional(),
  since: z.number(),
  by: z.enum(['first-use', 'approved']),
});

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

const ServerPinsSchema = z.object({
  firstListedAt: z.number(),
  tools: z.record(z.string(), PinSchema),
  rejected: z.record(z.string(), z.string()).default(() => ({})),
  pending: z.record(z.string(), PendingToolSchema).default(() => ({})),
  /** Set while the server's pending changes are one whole-catalog review (when it was detected). */
  catalogChangeAt: z.number().optional(),
});

const PinFileSchema = z.object({ version: z.literal(1), servers: z.record(z.string(), ServerPinsSchema) });

export type Pin = z.output<typeof PinSchema>;
export type PendingTool = z.output<typeof PendingToolSchema>;
export type ServerPins = z.output<typeof ServerPinsSchema>;
export type PinFile = z.output<typeof PinFileSchema>;

/** A definition larger than this is pinned by fingerprint only (the review then says it is too large to show). */
export const MAX_KEPT_DEFINITION_BYTES = 64 * 1024;

export interface PinStoreOptions {
  file: string;
  log: Logger;
}

/**
 * The file in memory, read once at start (synchronously: it is small, and no listing may be filtered before it is
 * known) and written behind every change, one write at a time, the latest state winning.
 */
export class PinStore {
  readonly data: PinFile;
  /** Why the file could not be read, when it could not: the state then starts empty and says so. */
  readonly loadProblem: string | undefined;
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

  /** Schedules a write of the whole state (coalesced: a burst of changes is one write). */
  save(): Promise<void> {
    if (this.dirty) return this.writing;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      try {
        await writePrivateFile(this.options.file, `${JSON.stringify(this.data)}\n`);
      } catch (e) {
        this.options.log.error('writing the tool pins failed; they are kept in memory and written with the next change', { error: e });
      }
    });
    return this.writing;
  }

  flush(): Promise<void> {
    return this.writing;
  }
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
  try {
    const parsed = PinFileSchema.safeParse(JSON.parse(text));
    if (parsed.success) return { data: parsed.data };
    return { data: empty, problem: `${file} is not a tool-pin file Lanyard wrote (${parsed.error.issues[0]?.message ?? 'invalid'})` };
  } catch {
    return { data: empty, problem: `${file} is not valid JSON` };
  }
}

/** The definition to keep beside a fingerprint, or undefined when it is too large to keep. */
export function keepable(definition: Record<string, unknown>): Record<string, unknown> | undefined {
  return JSON.stringify(definition).length <= MAX_KEPT_DEFINITION_BYTES ? definition : undefined;
}
