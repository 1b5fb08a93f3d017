import { rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { IdeName } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { ideMcpUrl, ideStdioArgs } from '../governance/profiles/endpoint';
import { writeFileAtomic } from '../paths';
import type { SecretStore } from '../secrets/secret-store';
import { mkdirTracked, modeOf, readBytes, resolveTarget, sha256, writeBackup } from './files';
import {
  applyEdits,
  detectStyle,
  findMember,
  JsoncSyntaxError,
  parseJsonc,
  removeMemberEdit,
  serialize,
  setMemberEdit,
  toValue,
  type MemberNode,
  type ObjectNode,
} from './jsonc';
import { forgetRedactions, redactCredentials, restoreCredentials, type Redaction } from './credentials';
import { IdeLedger, ledgerPath, type LedgerRecord } from './ledger';
import {
  IDE_TARGETS,
  LANYARD_ENTRY,
  type HttpEndpoint,
  type IdeEnvironment,
  type IdeTarget,
  type IdeTransport,
  type StdioLauncher,
} from './targets';

/** Where the IDE files are (the user's machine) and where Lanyard keeps its ledger (its home). */
export interface IdeContext {
  /** Lanyard's home: the ledger `ide-connections.json` lives here. */
  home: string;
  machine: IdeEnvironment;
  now?: () => Date;
  /**
   * The keychain, for the API keys in a backup (ide/credentials.ts): with it, backups keep placeholders and the keys go
   * to the keychain, and `disconnect` puts them back. Without it, backups are verbatim copies of the user's file.
   */
  secrets?: SecretStore | undefined;
  /** The entry's name in the IDE's file: `lanyard`, or `lanyard-<profile>` for an identity profile (identities/). */
  entryName?: string | undefined;
}

export interface ConnectRequest {
  transport: IdeTransport;
  /** Needed for `http` (and ignored for IDEs that only start stdio servers). */
  endpoint?: HttpEndpoint | undefined;
  /** Needed for `stdio`, and for the deep link of IDEs that have one. */
  launcher?: StdioLauncher | undefined;
  /** Other entries to take out in the same write (`lanyard import` moves them behind Lanyard). */
  remove?: readonly string[];
}

export interface ConnectOutcome {
  ide: IdeName;
  displayName: string;
  configPath: string;
  transport: IdeTransport;
  /** False when the file already had exactly this entry (nothing was written, no backup taken). */
  changed: boolean;
  /** The file did not exist and Lanyard created it. */
  created: boolean;
  backupPath?: string | undefined;
  /** The IDE's install link for the stdio variant (Cursor, VS Code). Never contains a token. */
  deepLink?: string | undefined;
  /** The entry as written, with the local token masked: safe to show anywhere. */
  snippet: string;
  /** Entries removed in the same write (import). */
  removed: string[];
  reloadHint: string;
}

export type DisconnectAction = 'restored-backup' | 'deleted-file' | 'removed-entry' | 'none';

export interface DisconnectOutcome {
  ide: IdeName;
  displayName: string;
  configPath: string;
  changed: boolean;
  action: DisconnectAction;
  /** A backup taken before a textual removal (the byte-exact paths need none: they put the original back). */
  backupPath?: string | undefined;
  detail: string;
}

/** What an IDE's file says about Lanyard, for `lanyard status` and the dashboard. */
export interface IdeConfigState {
  ide: IdeName;
  displayName: string;
  configPath: string;
  exists: boolean;
  /** The file has a `lanyard` entry. */
  connected: boolean;
  transport?: IdeTransport | undefined;
  /** The file could not be read as JSON(C): why. */
  problem?: string | undefined;
}

/** The masked form of the local token in snippets and messages. */
export const MASKED_TOKEN = '<your Lanyard local token>';

/**
 * Writes the IDE's user-level config so it reaches Lanyard: adds or updates one entry named `lanyard` (HTTP endpoint
 * with the local token header, or `lanyard stdio` by absolute path), creating the file and its directories when
 * missing, keeping every other byte of the user's file, after a backup; idempotent (a second run writes nothing).
 */
export async function connectIde(ide: IdeName, given: ConnectRequest, ctx: IdeContext): Promise<ConnectOutcome> {
  const target = IDE_TARGETS[ide];
  // Each IDE gets an endpoint that names it, so Lanyard applies that IDE's tool profile (governance/profiles); an
  // entry written before (plain /mcp) is rewritten here on the next connect, and keeps working until then.
  const request = withIdeIdentity(ide, given);
  const transport: IdeTransport = target.supportsHttp ? request.transport : 'stdio';
  const entry = entryFor(target, transport, request);
  const configPath = await resolveTarget(target.configPath(ctx.machine));
  const before = await readBytes(configPath);
  const beforeText = before === undefined ? undefined : decode(before, configPath, ide);
  const name = ctx.entryName ?? LANYARD_ENTRY;
  const plan = planConnect(target, beforeText, entry, request.remove ?? [], configPath, name);
  const outcome: ConnectOutcome = {
    ide,
    displayName: target.displayName,
    configPath,
    transport,
    changed: false,
    created: false,
    ...(request.launcher && target.deepLink ? { deepLink: target.deepLink(request.launcher) } : {}),
    snippet: snippetFor(target, entry, name),
    removed: plan.removed,
    reloadHint: target.reloadHint,
  };
  if (beforeText !== undefined && plan.text === beforeText) return outcome;

  const now = (ctx.now ?? (() => new Date()))();
  const ledger = new IdeLedger(ledgerPath(ctx.home));
  const previous = await ledger.get(ide, configPath);
  // Rewriting only Lanyard's own entry (a new token, stdio ↔ http) keeps every other byte, and the backup from the first
  // write still holds the user's original: no new backup, so rotations do not pile them up.
  const onlyOurEntry = previous !== undefined && plan.hadEntry && plan.removed.length === 0;
  const redactions: Redaction[] = [];
  let backupPath: string | undefined;
  if (before !== undefined && !onlyOurEntry) {
    const backup = await withoutKeys(withoutLocalToken(before, target, configPath), target, ctx.secrets);
    redactions.push(...backup.redactions);
    backupPath = await writeBackup(configPath, backup.bytes, now);
  }
  // The backup from the first write may still hold keys this write takes out of the file (`lanyard import` after
  // `lanyard connect`): they leave it now, so the file is not the last place the keys were written to.
  if (previous?.backupPath && plan.removed.length > 0 && ctx.secrets)
    redactions.push(...(await redactBackupInPlace(previous.backupPath, target, ctx.secrets)));
  const createdDirs = before === undefined ? await mkdirTracked(path.dirname(configPath)) : [];
  const originalMode = await modeOf(configPath);
  // The local token makes the file a credential: readable by the user only. The original mode comes back on disconnect.
  const mode = transport === 'http' ? (originalMode ?? 0o600) & 0o700 : (originalMode ?? 0o600);
  await writeFileAtomic(configPath, plan.text, mode);

  const writtenSha256 = sha256(plan.text);
  // While Lanyard's entry stays in the file, the record keeps describing the file as it was before Lanyard's first write.
  const record: LedgerRecord =
    previous && before !== undefined && plan.hadEntry
      ? { ...previous, writtenSha256, transport, ...withRedactions(previous.redactions, redactions) }
      : {
          ide,
          configPath,
          createdFile: before === undefined,
          createdDirs,
          createdContainer: plan.createdContainer,
          replacedEntry: plan.hadEntry,
          backupPath,
          originalSha256: before !== undefined ? sha256(before) : undefined,
          originalMode,
          writtenSha256,
          connectedAt: now.toISOString(),
          transport,
          ...withRedactions(undefined, redactions),
        };
  await ledger.put(record);
  return { ...outcome, changed: true, created: before === undefined, ...(backupPath ? { backupPath } : {}) };
}

/**
 * Undoes `connectIde`: when nobody changed the file since Lanyard's last write, the file comes back byte for byte (the
 * backup restored, or the file deleted if Lanyard created it); otherwise only the `lanyard` entry Lanyard added is
 * taken out (or the entry that was there before is put back), after a backup.
 */
export async function disconnectIde(ide: IdeName, ctx: IdeContext): Promise<DisconnectOutcome> {
  const target = IDE_TARGETS[ide];
  const configPath = await resolveTarget(target.configPath(ctx.machine));
  const ledger = new IdeLedger(ledgerPath(ctx.home));
  const record = await ledger.get(ide, configPath);
  const base = { ide, displayName: target.displayName, configPath };
  const bytes = await readBytes(configPath);
  if (bytes === undefined) {
    if (record) await ledger.delete(ide, configPath);
    return { ...base, changed: false, action: 'none', detail: `${configPath} does not exist; nothing to undo.` };
  }

  if (record && sha256(bytes) === record.writtenSha256) {
    if (record.createdFile) {
      await unlink(configPath);
      for (const dir of [...record.createdDirs].reverse()) await rmdir(dir).catch(() => undefined);
      await ledger.delete(ide, configPath);
      return { ...base, changed: true, action: 'deleted-file', detail: `Removed ${configPath}, which Lanyard had created.` };
    }
    const backup = record.backupPath ? await readBytes(record.backupPath) : undefined;
    const original = backup && (await withKeys(backup, record.redactions, ctx.secrets));
    if (original !== undefined && sha256(original) === record.originalSha256) {
      await writeFileAtomic(configPath, original, record.originalMode ?? (await modeOf(configPath)) ?? 0o600);
      await unlink(record.backupPath!).catch(() => undefined);
      await ledger.delete(ide, configPath);
      // The keys are back in the file they came from; their copies for the backup go.
      if (ctx.secrets && record.redactions?.length) await forgetRedactions(record.redactions, ctx.secrets);
      return {
        ...base,
        changed: true,
        action: 'restored-backup',
        detail: `Restored ${configPath} exactly as it was before Lanyard connected.`,
      };
    }
  }

  // The file changed since (or there is no ledger): take out only Lanyard's entry, keep everything else.
  const text = decode(bytes, configPath, ide);
  const doc = parseDocument(text, configPath, ide);
  const container = doc && containerOf(doc, target, configPath);
  const name = ctx.entryName ?? LANYARD_ENTRY;
  const ours = container && findMember(container, name);
  if (!doc || !container || !ours) {
    if (record) await ledger.delete(ide, configPath);
    return { ...base, changed: false, action: 'none', detail: `${configPath} has no "${name}" entry; nothing to undo.` };
  }
  let next: string;
  const original = record?.replacedEntry ? await originalEntryText(record, target, ide, name) : undefined;
  if (original !== undefined) {
    next = applyEdits(text, [{ start: ours.value.start, end: ours.value.end, text: original }]);
  } else {
    next = applyEdits(text, removeMemberEdit(text, container, name) ?? []);
    const after = parseDocument(next, configPath, ide)!;
    const afterContainer = findMember(after, target.containerKey);
    if (record?.createdContainer && afterContainer?.value.kind === 'object' && afterContainer.value.members.length === 0) {
      next = applyEdits(next, removeMemberEdit(next, after, target.containerKey) ?? []);
    }
    const root = parseDocument(next, configPath, ide);
    if (record?.createdFile && root && root.members.length === 0) {
      await unlink(configPath);
      await ledger.delete(ide, configPath);
      return {
        ...base,
        changed: true,
        action: 'deleted-file',
        detail: `Removed ${configPath}: Lanyard had created it and only its entry was left.`,
      };
    }
  }
  const backupPath = await writeBackup(configPath, withoutLocalToken(bytes, target, configPath), (ctx.now ?? (() => new Date()))());
  await writeFileAtomic(configPath, next, record?.originalMode ?? (await modeOf(configPath)) ?? 0o600);
  await ledger.delete(ide, configPath);
  return {
    ...base,
    changed: true,
    action: 'removed-entry',
    backupPath,
    detail:
      original !== undefined
        ? `Put back the "${name}" entry that was in ${configPath} before.`
        : `Removed the "${name}" entry from ${configPath}; the rest of the file is unchanged.`,
  };
}

export interface RefreshOutcome {
  rewritten: Array<{ ide: IdeName; configPath: string }>;
  failed: Array<{ ide: IdeName; configPath: string; message: string }>;
}

/**
 * Writes the current local token into every IDE config Lanyard connected over HTTP (the ledger knows which) whose
 * `lanyard` entry is still an HTTP one — after the token rotates (every broker start, `lanyard token rotate`). A file
 * that cannot be rewritten is reported, never half-written; stdio entries need nothing (they carry no token).
 */
export async function refreshHttpConnections(endpointOf: () => Promise<HttpEndpoint>, ctx: IdeContext): Promise<RefreshOutcome> {
  const result: RefreshOutcome = { rewritten: [], failed: [] };
  let endpoint: HttpEndpoint | undefined;
  const records = await new IdeLedger(ledgerPath(ctx.home)).all();
  for (const ide of [...new Set(records.filter((r) => r.transport === 'http').map((r) => r.ide))]) {
    const configPath = await resolveTarget(IDE_TARGETS[ide].configPath(ctx.machine));
    try {
      const state = await inspectIde(ide, ctx);
      if (!state.connected || state.transport !== 'http') continue;
      endpoint ??= await endpointOf();
      const outcome = await connectIde(ide, { transport: 'http', endpoint }, ctx);
      if (outcome.changed) result.rewritten.push({ ide, configPath });
    } catch (e) {
      result.failed.push({ ide, configPath, message: e instanceof Error ? e.message : String(e) });
    }
  }
  return result;
}

/**
 * The bytes of an IDE file as they go into a backup: Lanyard's own entry keeps its shape but not the local token (a
 * backup outlives the connection; the token must not). Other entries are kept byte for byte — they are the user's.
 */
function withoutLocalToken(bytes: Buffer, target: IdeTarget, configPath: string): Buffer {
  let text: string;
  let ours: MemberNode[];
  try {
    text = decode(bytes, configPath, target.name);
    const doc = parseDocument(text, configPath, target.name);
    const container = doc && containerOf(doc, target, configPath);
    // Every Lanyard entry: the default profile's and each identity profile's (`lanyard-<profile>`).
    ours = (container?.members ?? []).filter((m: MemberNode) => m.key === LANYARD_ENTRY || m.key.startsWith(`${LANYARD_ENTRY}-`));
  } catch {
    return bytes;
  }
  let out = text;
  for (const member of [...ours].sort((a, b) => b.value.start - a.value.start)) {
    const entry = out.slice(member.value.start, member.value.end);
    out = out.slice(0, member.value.start) + entry.replace(/(Bearer[ \t]+)[^"\s\\]+/g, `$1${MASKED_TOKEN}`) + out.slice(member.value.end);
  }
  return out === text ? bytes : Buffer.from(out, 'utf8');
}

/** A backup's bytes with its keys moved to the keychain (ide/credentials.ts); unchanged without a keychain. */
async function withoutKeys(
  bytes: Buffer,
  target: IdeTarget,
  secrets: SecretStore | undefined,
): Promise<{ bytes: Buffer; redactions: Redaction[] }> {
  if (!secrets) return { bytes, redactions: [] };
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return { bytes, redactions: [] };
  const redacted = await redactCredentials(text, target.containerKey, secrets);
  return redacted.redactions.length
    ? { bytes: Buffer.from(redacted.text, 'utf8'), redactions: redacted.redactions }
    : { bytes, redactions: [] };
}

/** Rewrites an existing backup without its keys; returns what was taken out. */
async function redactBackupInPlace(backupPath: string, target: IdeTarget, secrets: SecretStore): Promise<Redaction[]> {
  const bytes = await readBytes(backupPath);
  if (bytes === undefined) return [];
  const redacted = await withoutKeys(bytes, target, secrets);
  if (redacted.redactions.length) await writeFileAtomic(backupPath, redacted.bytes, 0o600);
  return redacted.redactions;
}

/** The backup as the user's file was: its placeholders replaced by the keys the keychain holds for them. */
async function withKeys(
  backup: Buffer,
  redactions: readonly Redaction[] | undefined,
  secrets: SecretStore | undefined,
): Promise<Buffer | undefined> {
  if (!redactions?.length) return backup;
  if (!secrets) return undefined;
  const text = await restoreCredentials(backup.toString('utf8'), redactions, secrets).catch(() => undefined);
  return text === undefined ? undefined : Buffer.from(text, 'utf8');
}

function withRedactions(before: Redaction[] | undefined, added: Redaction[]): { redactions?: Redaction[] } {
  const all = [...(before ?? []), ...added];
  return all.length ? { redactions: all } : {};
}

/** Reads an IDE's file and says whether it points at Lanyard. Never throws for a missing or broken file. */
export async function inspectIde(ide: IdeName, ctx: Pick<IdeContext, 'machine' | 'entryName'>): Promise<IdeConfigState> {
  const target = IDE_TARGETS[ide];
  const configPath = await resolveTarget(target.configPath(ctx.machine));
  const base = { ide, displayName: target.displayName, configPath };
  try {
    const entries = await readIdeEntries(ide, ctx);
    if (!entries.exists) return { ...base, exists: false, connected: false };
    const ours = entries.entries.find((e) => e.name === (ctx.entryName ?? LANYARD_ENTRY));
    if (!ours) return { ...base, exists: true, connected: false };
    const value = ours.value as Record<string, unknown> | null;
    const transport: IdeTransport = value && typeof value === 'object' && ('command' in value || value.type === 'stdio') ? 'stdio' : 'http';
    return { ...base, exists: true, connected: true, transport };
  } catch (e) {
    return { ...base, exists: true, connected: false, problem: e instanceof Error ? e.message : String(e) };
  }
}

/** The server entries of an IDE's file, in file order. */
export async function readIdeEntries(
  ide: IdeName,
  ctx: Pick<IdeContext, 'machine'>,
): Promise<{ configPath: string; exists: boolean; entries: Array<{ name: string; value: unknown }> }> {
  const target = IDE_TARGETS[ide];
  const configPath = await resolveTarget(target.configPath(ctx.machine));
  const bytes = await readBytes(configPath);
  if (bytes === undefined) return { configPath, exists: false, entries: [] };
  const doc = parseDocument(decode(bytes, configPath, ide), configPath, ide);
  const container = doc && containerOf(doc, target, configPath);
  return {
    configPath,
    exists: true,
    entries: container ? container.members.map((m: MemberNode) => ({ name: m.key, value: toValue(m.value) })) : [],
  };
}

function entryFor(target: IdeTarget, transport: IdeTransport, request: ConnectRequest): Record<string, unknown> {
  if (transport === 'http') {
    if (!request.endpoint)
      throw new LanyardError(
        ErrorCodes.INTERNAL,
        'No local endpoint to connect to.',
        'This is a bug in Lanyard; report it with `lanyard doctor`.',
      );
    return target.httpEntry(request.endpoint);
  }
  if (!request.launcher)
    throw new LanyardError(
      ErrorCodes.INTERNAL,
      'No `lanyard stdio` command to write.',
      'This is a bug in Lanyard; report it with `lanyard doctor`.',
    );
  return target.stdioEntry(request.launcher);
}

interface ConnectPlan {
  text: string;
  createdContainer: boolean;
  hadEntry: boolean;
  removed: string[];
}

function planConnect(
  target: IdeTarget,
  before: string | undefined,
  entry: Record<string, unknown>,
  remove: readonly string[],
  configPath: string,
  name: string = LANYARD_ENTRY,
): ConnectPlan {
  const key = target.containerKey;
  let doc = before === undefined ? undefined : parseDocument(before, configPath, target.name);
  if (before === undefined || doc === undefined) {
    // Missing or blank: a new document in the common style of these files (two spaces).
    const style = { indent: '  ', eol: before?.includes('\r\n') ? ('\r\n' as const) : ('\n' as const) };
    return {
      text: `${serialize({ [key]: { [name]: entry } }, style, '')}${style.eol}`,
      createdContainer: true,
      hadEntry: false,
      removed: [],
    };
  }
  const style = detectStyle(before);
  let text = before;
  const removed: string[] = [];
  for (const other of remove) {
    if (other === LANYARD_ENTRY || other === name) continue;
    const container = containerOf(doc!, target, configPath);
    const edits = container && removeMemberEdit(text, container, other);
    if (!edits) continue;
    text = applyEdits(text, edits);
    doc = parseDocument(text, configPath, target.name)!;
    removed.push(other);
  }
  const container = containerOf(doc!, target, configPath);
  const existing = container && findMember(container, name);
  if (existing && sameJson(toValue(existing.value), entry)) return { text, createdContainer: false, hadEntry: true, removed };
  const edits = container ? setMemberEdit(text, container, name, entry, style) : setMemberEdit(text, doc!, key, { [name]: entry }, style);
  return { text: applyEdits(text, edits), createdContainer: !container, hadEntry: Boolean(existing), removed };
}

/** The original text of the `lanyard` entry that was in the file before Lanyard's first write, from the backup. */
async function originalEntryText(record: LedgerRecord, target: IdeTarget, ide: IdeName, name: string): Promise<string | undefined> {
  if (!record.backupPath) return undefined;
  const bytes = await readBytes(record.backupPath);
  if (bytes === undefined) return undefined;
  try {
    const text = decode(bytes, record.backupPath, ide);
    const doc = parseDocument(text, record.backupPath, ide);
    const container = doc && containerOf(doc, target, record.backupPath);
    const member = container && findMember(container, name);
    return member ? text.slice(member.value.start, member.value.end) : undefined;
  } catch {
    return undefined;
  }
}

function decode(bytes: Buffer, file: string, ide: IdeName): string {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `${file} is not UTF-8 text; Lanyard did not change it.`,
      `Save it as UTF-8 in an editor, then run \`lanyard connect ${ide}\` again.`,
    );
  }
  return text;
}

/** The document's root object, or undefined for a blank file. Throws a LanyardError naming the position. */
function parseDocument(text: string, file: string, ide: IdeName): ObjectNode | undefined {
  let node;
  try {
    node = parseJsonc(text);
  } catch (e) {
    if (e instanceof JsoncSyntaxError) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `${file} is not valid JSON (${e.message}); Lanyard did not change it.`,
        `Fix the file at that position (or move it aside), then run \`lanyard connect ${ide}\` again.`,
      );
    }
    throw e;
  }
  if (node === undefined) return undefined;
  if (node.kind !== 'object') {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `${file} does not contain a JSON object; Lanyard did not change it.`,
      `Check the file: it should look like {"${IDE_TARGETS[ide].containerKey}": {…}}.`,
    );
  }
  return node;
}

function containerOf(doc: ObjectNode, target: IdeTarget, file: string): ObjectNode | undefined {
  const member = findMember(doc, target.containerKey);
  if (!member) return undefined;
  if (member.value.kind !== 'object') {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `"${target.containerKey}" in ${file} is not an object; Lanyard did not change the file.`,
      `Make "${target.containerKey}" an object of server entries, then retry.`,
    );
  }
  return member.value;
}

function snippetFor(target: IdeTarget, entry: Record<string, unknown>, name: string): string {
  const masked = JSON.parse(JSON.stringify(entry)) as Record<string, unknown>;
  const headers = masked.headers as Record<string, string> | undefined;
  if (headers?.Authorization) headers.Authorization = `Bearer ${MASKED_TOKEN}`;
  return JSON.stringify({ [target.containerKey]: { [name]: masked } }, null, 2);
}

/** Deep equality of JSON values, ignoring key order (an IDE may rewrite its file with keys reordered). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

/** The request with the IDE named in it: `/ide/<ide>/mcp` for HTTP, `lanyard stdio --ide <ide>` for stdio. */
function withIdeIdentity(ide: IdeName, request: ConnectRequest): ConnectRequest {
  const out: ConnectRequest = { ...request };
  if (request.endpoint) out.endpoint = { ...request.endpoint, url: ideMcpUrl(request.endpoint.url, ide) };
  const launcher = request.launcher;
  if (launcher && !launcher.args.includes('--ide')) out.launcher = { ...launcher, args: [...launcher.args, ...ideStdioArgs(ide)] };
  return out;
}
