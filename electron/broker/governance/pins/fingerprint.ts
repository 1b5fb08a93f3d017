import { createHash } from 'node:crypto';

/**
 * A tool definition as a server lists it. Only the fields below are what an IDE (and its model) sees of a tool, so
 * they are what a pin covers; anything else a server adds (`_meta`, icons) does not change what the model is told.
 */
export interface ToolDefinition {
  name: string;
  title?: unknown;
  description?: unknown;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: unknown;
  [key: string]: unknown;
}

/** The pinned fields, in the order a diff names them. */
export const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;
export type PinnedField = (typeof PINNED_FIELDS)[number];

/** The part of a definition a pin covers (absent fields stay absent, so `title: undefined` equals no title). */
export function pinnedPart(tool: ToolDefinition): Partial<Record<PinnedField, unknown>> {
  const out: Partial<Record<PinnedField, unknown>> = {};
  for (const field of PINNED_FIELDS) if (tool[field] !== undefined) out[field] = tool[field];
  return out;
}

/**
 * Canonical JSON: object keys sorted by code unit at every depth, no whitespace, values as JSON.stringify writes them
 * (the ordering rule of RFC 8785, https://www.rfc-editor.org/rfc/rfc8785). Two servers sending the same definition with
 * keys in another order get the same fingerprint; undefined members are left out as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += `${i ? ',' : ''}${value[i] === undefined ? 'null' : canonicalJson(value[i])}`;
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

/**
 * Fingerprints already known for a definition object: computed once (a catalog filtered again after an approval, a
 * re-list keeping the other kinds' objects), or vouched for by a catalog snapshot Lanyard itself wrote with them
 * (exchange/catalog-snapshots.ts). Listed definitions are never modified in place, so an object keeps its fingerprint.
 */
const knownFingerprints = new WeakMap<object, string>();

/** `sha256:<hex>` of the canonical JSON of the pinned fields. */
export function toolFingerprint(tool: ToolDefinition): string {
  const known = knownFingerprints.get(tool);
  if (known !== undefined) return known;
  const fingerprint = `sha256:${createHash('sha256')
    .update(canonicalJson(pinnedPart(tool)), 'utf8')
    .digest('hex')}`;
  knownFingerprints.set(tool, fingerprint);
  return fingerprint;
}

/** The fingerprint computed (or remembered) for this very object, without computing one. */
export function knownFingerprint(tool: object): string | undefined {
  return knownFingerprints.get(tool);
}

/** Records the fingerprint of a definition object, as computed for the same definition by an earlier run. */
export function rememberFingerprint(tool: object, fingerprint: string): void {
  knownFingerprints.set(tool, fingerprint);
}

/** Which pinned fields differ between two definitions (canonically compared), in PINNED_FIELDS order. */
export function changedFields(before: ToolDefinition, after: ToolDefinition): PinnedField[] {
  return PINNED_FIELDS.filter((f) => canonicalJson(before[f] ?? null) !== canonicalJson(after[f] ?? null));
}

/**
 * The definition as a person reads it in a diff: the pinned fields only, keys sorted, two-space indented, with what
 * would be invisible made visible — a run of Unicode tag characters is decoded (`⟦hidden: read ~/.ssh⟧`), other
 * invisible and bidi characters are written as `\u{…}`. The fingerprint is of the real text; this is only its display.
 */
export function prettyDefinition(tool: ToolDefinition): string {
  return JSON.stringify(JSON.parse(canonicalJson(pinnedPart(tool))), null, 2)
    .replace(
      /[\u{E0000}-\u{E007F}]+/gu,
      (run) => `⟦hidden: ${[...run].map((c) => String.fromCodePoint(c.codePointAt(0)! - 0xe0000)).join('')}⟧`,
    )
    .replace(
      /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\u180E\uFEFF]/g,
      (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`,
    );
}
