import path from 'node:path';
import { AUTH_PATH_LABELS, type AuthPath } from '../../../shared/auth-paths';
import type { ControlApi, IdeName, ProbeResult } from '../../../shared/contract';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { SERVER_ID_PATTERN, urlProblem } from '../config/schema';
import { suggestId } from '../control/control-service';
import { LanyardError, toErrorInfo } from '../errors';
import { credentialOf, isMcpRemote, mcpRemoteArgs, type EntryCredential } from './credentials';
import { connectIde, readIdeEntries, type ConnectOutcome, type IdeContext } from './connector';
import { IDE_NAMES, IDE_TARGETS, LANYARD_ENTRY, type HttpEndpoint, type IdeTransport, type StdioLauncher } from './targets';

/**
 * `lanyard import`: finds the remote MCP servers already configured in the IDEs' files (HTTP/SSE URL entries, and
 * `npx mcp-remote <url>` stdio wrappers) and moves them behind Lanyard — added to Lanyard's config, then replaced in the
 * IDE's file by the single `lanyard` entry (with a backup, through the same writer as `lanyard connect`). An entry that
 * sends an API key (one credential header with a value written in the file) moves onto Lanyard's API-key path: the key
 * goes to the keychain, and out of the IDE file and its backup (ide/credentials.ts). What cannot be moved stays where
 * it is, with the reason: local stdio servers, custom or several headers, keys only the IDE can resolve, the legacy
 * SSE transport, servers no auth path applies to, and anything unreachable or invalid.
 */

export type CandidateKind = 'http' | 'sse' | 'mcp-remote' | 'stdio' | 'lanyard' | 'other';

export interface ImportItem {
  ide: IdeName;
  displayName: string;
  configPath: string;
  /** The entry's name in the IDE's file. */
  name: string;
  kind: CandidateKind;
  url?: string | undefined;
  action: 'move' | 'skip';
  /** Why it moves, or why it stays. */
  reason: string;
  /** The Lanyard server it becomes (already configured, or to be added with this id). */
  serverId?: string | undefined;
  existing?: boolean | undefined;
  /** Moves, but something needs attention afterwards (e.g. a client id only the IdP admin knows). */
  warning?: string | undefined;
  /**
   * The entry sends an API key in this header: it moves onto the API-key path, the key into the keychain. Only the
   * name is in the plan; the value is read from the file when the plan is applied, and never printed.
   */
  keyHeader?: string | undefined;
  /** The auth path the probe found, recorded with the server when it is added (unless the administrator locks paths). */
  authPath?: AuthPath | undefined;
}

export interface ImportPlan {
  items: ImportItem[];
  /** IDE files that exist but could not be read. */
  unreadable: Array<{ ide: IdeName; configPath: string; problem: string }>;
}

export interface PlanImportOptions {
  ctx: Pick<IdeContext, 'machine'>;
  control: Pick<ControlApi, 'listServers' | 'probeUrl' | 'getSettings'>;
  ides?: readonly IdeName[];
  /** Ask each server whether cross-app access can work before offering to move it (default true). */
  probe?: boolean;
}

export async function planImport(options: PlanImportOptions): Promise<ImportPlan> {
  const ides = options.ides ?? IDE_NAMES;
  const [servers, settings] = await Promise.all([options.control.listServers({}), options.control.getSettings({})]);
  const byUrl = new Map(servers.map((s) => [normalizeUrl(s.url), s.id]));
  const takenIds = new Set(servers.map((s) => s.id));
  const serversLocked = settings.locked.includes('servers');
  const plan: ImportPlan = { items: [], unreadable: [] };
  const planned = new Map<string, { serverId: string; existing: boolean }>();
  const probes = new Map<string, Promise<ProbeResult>>();

  for (const ide of ides) {
    const target = IDE_TARGETS[ide];
    let file;
    try {
      file = await readIdeEntries(ide, options.ctx);
    } catch (e) {
      plan.unreadable.push({ ide, configPath: target.configPath(options.ctx.machine), problem: toErrorInfo(e).message });
      continue;
    }
    for (const entry of file.entries) {
      const found = classify(entry.name, entry.value);
      const item: ImportItem = {
        ide,
        displayName: target.displayName,
        configPath: file.configPath,
        name: entry.name,
        kind: found.kind,
        ...(found.url ? { url: found.url } : {}),
        action: 'skip',
        reason: '',
      };
      plan.items.push(item);
      const skip = skipReason(found, target.displayName);
      if (skip) {
        item.reason = skip;
        continue;
      }
      const url = found.url!;
      const key = normalizeUrl(url);
      const known = byUrl.get(key);
      if (known) {
        Object.assign(item, { action: 'move', serverId: known, existing: true, reason: `already in Lanyard as "${known}"` });
        continue;
      }
      if (serversLocked) {
        item.reason = 'your administrator manages the server list; ask your IT team to add it';
        continue;
      }
      const already = planned.get(key);
      if (already) {
        Object.assign(item, {
          action: 'move',
          serverId: already.serverId,
          existing: false,
          reason: `moves with the same server from another IDE ("${already.serverId}")`,
        });
        continue;
      }
      if (found.keyHeader) {
        // The key is what reaches this server today; it moves with it (no probe: without the key it would say nothing).
        const serverId = uniqueId(idFromName(entry.name) ?? suggestId(url, [...takenIds]), takenIds);
        takenIds.add(serverId);
        planned.set(key, { serverId, existing: false });
        Object.assign(item, {
          action: 'move',
          serverId,
          existing: false,
          keyHeader: found.keyHeader,
          reason: `sends an API key (${found.keyHeader} header): it moves to the keychain and the server onto the API-key path`,
        });
        continue;
      }
      let probe: ProbeResult | undefined;
      if (options.probe !== false) {
        if (!probes.has(key)) probes.set(key, options.control.probeUrl({ url }));
        probe = await probes.get(key)!;
        const refusal = probeRefusal(probe);
        if (refusal) {
          item.reason = refusal;
          continue;
        }
      }
      const serverId = uniqueId(idFromName(entry.name) ?? suggestId(url, [...takenIds]), takenIds);
      takenIds.add(serverId);
      planned.set(key, { serverId, existing: false });
      Object.assign(item, { action: 'move', serverId, existing: false, reason: moveReason(probe) });
      if (probe?.path && !settings.locked.includes('authPaths')) item.authPath = probe.path;
      const warning = probe && probeWarning(probe, serverId);
      if (warning) item.warning = warning;
    }
  }
  return plan;
}

export interface ApplyImportOptions {
  plan: ImportPlan;
  /** With `secrets`, so that the backups keep no key (ide/credentials.ts). */
  ctx: IdeContext;
  control: Pick<ControlApi, 'addServer'>;
  /** How the IDEs reach Lanyard afterwards (Claude Desktop always uses stdio). */
  transport: IdeTransport;
  endpoint?: HttpEndpoint | undefined;
  launcher?: StdioLauncher | undefined;
}

export interface ImportResult {
  moved: ImportItem[];
  failed: Array<{ item: ImportItem; error: ErrorInfo }>;
  files: ConnectOutcome[];
}

/**
 * Adds each new server to Lanyard, then rewrites each IDE file once: the moved entries out, the `lanyard` entry in.
 * An entry whose server could not be added stays in its IDE file.
 */
export async function applyImport(options: ApplyImportOptions): Promise<ImportResult> {
  const result: ImportResult = { moved: [], failed: [], files: [] };
  const added = new Map<string, ErrorInfo | true>();
  const keys = await keysOf(options.plan.items, options.ctx);
  for (const item of options.plan.items) {
    if (item.action !== 'move' || item.existing || added.has(item.serverId!)) continue;
    try {
      const base = { url: item.url!, id: item.serverId!, name: displayName(item.name, item.url!) };
      if (item.keyHeader) {
        const credential = keys.get(item);
        if (!credential)
          throw new LanyardError(
            ErrorCodes.CONFIG_INVALID,
            `The ${item.keyHeader} header of "${item.name}" changed in ${item.configPath} since the plan was made; nothing was moved.`,
            'Run `lanyard import` again.',
          );
        await options.control.addServer({ ...base, authPath: 'header', header: { name: credential.headerName, value: credential.value } });
      } else {
        await options.control.addServer({ ...base, ...(item.authPath ? { authPath: item.authPath } : {}) });
      }
      added.set(item.serverId!, true);
    } catch (e) {
      added.set(item.serverId!, toErrorInfo(e));
    }
  }
  const perFile = new Map<IdeName, ImportItem[]>();
  for (const item of options.plan.items) {
    if (item.action !== 'move') continue;
    const outcome = item.existing ? true : added.get(item.serverId!);
    if (outcome !== true) {
      result.failed.push({ item, error: outcome ?? { code: 'internal', message: 'not added', fix: 'Run `lanyard import` again.' } });
      continue;
    }
    perFile.set(item.ide, [...(perFile.get(item.ide) ?? []), item]);
  }
  for (const [ide, items] of perFile) {
    try {
      const outcome = await connectIde(
        ide,
        { transport: options.transport, endpoint: options.endpoint, launcher: options.launcher, remove: items.map((i) => i.name) },
        options.ctx,
      );
      result.files.push(outcome);
      result.moved.push(...items);
    } catch (e) {
      for (const item of items) result.failed.push({ item, error: toErrorInfo(e) });
    }
  }
  return result;
}

/** The keys of the planned key moves, read from the IDE files now (they are not in the plan, which is printed). */
async function keysOf(items: ImportItem[], ctx: IdeContext): Promise<Map<ImportItem, EntryCredential>> {
  const keys = new Map<ImportItem, EntryCredential>();
  const files = new Map<IdeName, Promise<Array<{ name: string; value: unknown }>>>();
  for (const item of items) {
    if (item.action !== 'move' || !item.keyHeader || item.existing) continue;
    if (!files.has(item.ide))
      files.set(
        item.ide,
        readIdeEntries(item.ide, ctx).then(
          (f) => f.entries,
          () => [],
        ),
      );
    const entry = (await files.get(item.ide)!).find((e) => e.name === item.name);
    const verdict = entry ? credentialOf(entry.value) : undefined;
    if (verdict?.kind === 'key' && verdict.credential.headerName === item.keyHeader) keys.set(item, verdict.credential);
  }
  return keys;
}

interface Classified {
  kind: CandidateKind;
  url?: string | undefined;
  headers: string[];
  command?: string | undefined;
  disabled: boolean;
  /** One credential header with a readable value: the entry moves onto the API-key path. */
  keyHeader?: string | undefined;
  /** Why its headers keep it in the IDE. */
  headerProblem?: string | undefined;
}

/** What kind of server an IDE entry describes, whichever IDE's dialect it is written in. */
export function classify(name: string, value: unknown): Classified {
  // An identity profile's entry (`lanyard-<profile>`) is Lanyard's too.
  if (name === LANYARD_ENTRY || name.startsWith(`${LANYARD_ENTRY}-`)) return { kind: 'lanyard', headers: [], disabled: false };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'other', headers: [], disabled: false };
  const entry = value as Record<string, unknown>;
  const disabled = entry.disabled === true;
  const url = typeof entry.url === 'string' ? entry.url : typeof entry.serverUrl === 'string' ? entry.serverUrl : undefined;
  const credential = credentialOf(entry);
  const headerInfo =
    credential.kind === 'key'
      ? { headers: [credential.credential.headerName], keyHeader: credential.credential.headerName }
      : credential.kind === 'problem'
        ? { headers: credential.headerNames, headerProblem: credential.reason }
        : { headers: [] };
  if (url !== undefined) {
    const sse = entry.type === 'sse' || (entry.type === undefined && /\/sse\/?$/.test(safePath(url)));
    return { kind: sse ? 'sse' : 'http', url, disabled, ...headerInfo };
  }
  if (typeof entry.command === 'string') {
    if (mcpRemoteArgs(entry).length > 0 || isMcpRemote(entry.command) || hasMcpRemote(entry)) {
      const rest = mcpRemoteArgs(entry);
      const remoteUrl = rest.find((t) => /^https?:\/\//i.test(t));
      const sseOnly = rest.some((t, i) => t === '--transport' && rest[i + 1] === 'sse-only');
      return { kind: sseOnly ? 'sse' : 'mcp-remote', url: remoteUrl, disabled, command: entry.command, ...headerInfo };
    }
    return { kind: 'stdio', headers: [], disabled, command: entry.command };
  }
  return { kind: 'other', headers: [], disabled };
}

function skipReason(c: Classified, ide: string): string | undefined {
  switch (c.kind) {
    case 'lanyard':
      return 'this is Lanyard’s own entry';
    case 'other':
      return 'not a server entry Lanyard understands (no url and no command)';
    case 'stdio':
      return `a local stdio server (\`${path.basename(c.command ?? '')}\`): it runs on this machine, and Lanyard brokers remote servers only`;
    default:
      break;
  }
  if (c.disabled) return `disabled in ${ide}; moving it would turn it on`;
  if (!c.url) return 'an mcp-remote entry without a URL Lanyard can read';
  if (c.headerProblem) return c.headerProblem;
  if (c.url.includes('${')) return 'its URL uses a variable Lanyard cannot resolve';
  const problem = urlProblem(c.url);
  if (problem) return `its URL ${problem}`;
  if (c.kind === 'sse')
    return 'it uses the legacy SSE transport, which Lanyard does not relay (if the server also offers Streamable HTTP, add that URL with `lanyard servers add`)';
  return undefined;
}

function hasMcpRemote(entry: Record<string, unknown>): boolean {
  return Array.isArray(entry.args) && entry.args.some((a) => typeof a === 'string' && isMcpRemote(a));
}

function probeRefusal(p: ProbeResult): string | undefined {
  // The probe names the path when it found one that applies (and policy allows): that is enough to move.
  if (p.path) return undefined;
  if (p.paths.length > 0 && p.reachable) {
    const why = p.paths.map((x) => `${x.path}: ${x.reason}`).join('; ');
    return `no auth path applies to it (${why}); keep it in the IDE`;
  }
  if (p.xaa === 'supported' || p.xaa === 'not_needed' || p.xaa === 'not_advertised') return undefined;
  if (p.xaa === 'unsupported')
    return `its authorization server does not support cross-app access (${p.error?.message ?? 'not XAA-capable'}); keep it in the IDE`;
  if (!p.reachable)
    return `it could not be reached (${p.error?.message ?? 'no answer'}); not moved — run \`lanyard import\` again when it is reachable`;
  return p.error ? `Lanyard could not tell how to authorize at it: ${p.error.message}` : 'Lanyard could not tell how to authorize at it';
}

function moveReason(p: ProbeResult | undefined): string {
  if (!p) return 'remote server (not probed)';
  if (p.path && p.path !== 'xaa') return `remote server on the ${p.path} path (${AUTH_PATH_LABELS[p.path]})`;
  if (p.xaa === 'not_needed') return 'remote server that needs no sign-in';
  if (p.xaa === 'supported') return `remote server with cross-app access at ${p.asIssuer ?? 'its authorization server'}`;
  return 'remote server';
}

function probeWarning(p: ProbeResult, serverId: string): string | undefined {
  if (p.path === 'oauth')
    return `authorize it once in the browser afterwards: \`lanyard servers authorize ${serverId}\` (or Authorize in the dashboard)`;
  if (p.path && p.path !== 'xaa') return undefined;
  if (p.xaa === 'not_advertised')
    return 'its authorization server does not advertise cross-app access; Lanyard will still try (`lanyard doctor` tells)';
  if (p.xaa === 'supported' && p.needsClientId) {
    return `needs Lanyard's client id at ${p.asIssuer ?? 'its authorization server'} (your IdP admin has it): set it with \`lanyard servers remove <id>\` + \`lanyard servers add <url> --client-id <id>\`, or in the dashboard`;
  }
  return undefined;
}

function idFromName(name: string): string | undefined {
  const id = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32);
  return SERVER_ID_PATTERN.test(id) && id !== LANYARD_ENTRY ? id : undefined;
}

function uniqueId(base: string, taken: Set<string>): string {
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base.slice(0, 28)}-${n}`;
  return id;
}

function displayName(name: string, url: string): string {
  const trimmed = name.trim().slice(0, 80);
  return trimmed || new URL(url).host;
}

function normalizeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.hash = '';
    return u.href.replace(/\/$/, '');
  } catch {
    return url;
  }
}

function safePath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}
