import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { headerNameProblem } from '../../../shared/auth-paths';
import type { SecretStore } from '../secrets/secret-store';
import { findMember, parseJsonc, type JsonNode, type MemberNode, type ObjectNode } from './jsonc';

/**
 * API keys in IDE config files: an entry that sends a static credential header (`"headers": {"Authorization": "Bearer
 * …"}`, `X-API-Key`, or mcp-remote's `--header Name:value`, whose value may come from the entry's `env`).
 *
 * `lanyard import` moves such a key into the keychain and the server onto Lanyard's API-key path. The backup it takes of
 * the IDE file must not keep the key either, yet `lanyard disconnect` must put the file back byte for byte: so each
 * credential string in a backup is replaced by a placeholder naming a keychain entry that holds the original text, and
 * the restore puts it back (see connector.ts).
 */

/** Header names that carry a credential: an API key or a static bearer token. */
export const CREDENTIAL_HEADER =
  /^(authorization|proxy-authorization|cookie|x-api-key|api-key|apikey|private-token)$|token|secret|key|auth/i;

/** The static key an IDE entry sends, read from the file (never logged, printed or written anywhere but the keychain). */
export interface EntryCredential {
  headerName: string;
  value: string;
}

/**
 * What an entry's headers say about moving it onto the API-key path: `none` (no headers), `key` (exactly one credential
 * header with a literal value Lanyard can read), or `problem` with the reason it stays in the IDE. Never includes the
 * value in a reason.
 */
export type CredentialVerdict =
  { kind: 'none' } | { kind: 'key'; credential: EntryCredential } | { kind: 'problem'; headerNames: string[]; reason: string };

interface HeaderSource {
  name: string;
  value: unknown;
}

/** The headers an entry sends: `headers` of a URL entry, or `--header Name:value` arguments of an mcp-remote entry. */
function headersOf(entry: Record<string, unknown>): HeaderSource[] {
  if (typeof entry.url === 'string' || typeof entry.serverUrl === 'string') {
    const headers = entry.headers;
    if (!headers || typeof headers !== 'object' || Array.isArray(headers)) return [];
    return Object.entries(headers as Record<string, unknown>).map(([name, value]) => ({ name, value }));
  }
  const args = mcpRemoteArgs(entry);
  const out: HeaderSource[] = [];
  args.forEach((arg, i) => {
    if (arg !== '--header') return;
    const pair = args[i + 1];
    if (typeof pair !== 'string') return;
    const colon = pair.indexOf(':');
    if (colon <= 0) out.push({ name: pair.trim(), value: undefined });
    else out.push({ name: pair.slice(0, colon).trim(), value: pair.slice(colon + 1).trim() });
  });
  return out;
}

/** The arguments after `mcp-remote` in a stdio entry (`npx -y mcp-remote <url> --header …`), or [] for other entries. */
export function mcpRemoteArgs(entry: Record<string, unknown>): string[] {
  if (typeof entry.command !== 'string') return [];
  const tokens = [entry.command, ...(Array.isArray(entry.args) ? entry.args.filter((a): a is string => typeof a === 'string') : [])];
  const at = tokens.findIndex((t) => isMcpRemote(t));
  return at < 0 ? [] : tokens.slice(at + 1);
}

export function isMcpRemote(token: string): boolean {
  return /^mcp-remote(@[^/\\]*)?$/i.test(path.basename(token).replace(/\.(cmd|exe|js)$/i, ''));
}

/** `${NAME}` (mcp-remote's convention) resolved from the entry's own `env`; any other variable cannot be read here. */
function resolveValue(value: string, entry: Record<string, unknown>): string | undefined {
  const env = entry.env && typeof entry.env === 'object' ? (entry.env as Record<string, unknown>) : {};
  let unresolved = false;
  const resolved = value.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (typeof v !== 'string' || v.includes('${')) {
      unresolved = true;
      return '';
    }
    return v;
  });
  return unresolved ? undefined : resolved;
}

export function credentialOf(value: unknown): CredentialVerdict {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'none' };
  const entry = value as Record<string, unknown>;
  const headers = headersOf(entry);
  if (headers.length === 0) return { kind: 'none' };
  const headerNames = headers.map((h) => h.name);
  const credentials = headers.filter((h) => CREDENTIAL_HEADER.test(h.name));
  if (credentials.length === 0)
    return { kind: 'problem', headerNames, reason: `sends custom headers (${headerNames.join(', ')}) that Lanyard does not forward` };
  const first = credentials[0]!;
  if (headers.length > 1)
    return {
      kind: 'problem',
      headerNames,
      reason: `sends several headers (${headerNames.join(', ')}); Lanyard injects one key header per server, so it stays — add it by hand with \`lanyard servers add <url> --header ${first.name} --value-stdin\` if one is enough`,
    };
  if (headerNameProblem(first.name))
    return {
      kind: 'problem',
      headerNames,
      reason: `its ${first.name} header cannot be injected by Lanyard (${headerNameProblem(first.name)})`,
    };
  if (typeof first.value !== 'string' || first.value.trim() === '')
    return { kind: 'problem', headerNames, reason: `its ${first.name} header has no value Lanyard can read` };
  const resolved = resolveValue(first.value, entry);
  if (resolved === undefined || resolved.trim() === '' || /\$\{|\$env:|\$\(/.test(resolved))
    return {
      kind: 'problem',
      headerNames,
      reason: `its ${first.name} header comes from a variable only the IDE can resolve; add the key with \`lanyard servers add <url> --header ${first.name} --value-stdin\``,
    };
  return { kind: 'key', credential: { headerName: first.name, value: resolved } };
}

// ---------------------------------------------------------------------------------------------------------------------
// Backups without keys.

/** One credential string taken out of a backup: the keychain entry that holds its original text, and what replaced it. */
export interface Redaction {
  key: string;
  placeholder: string;
}

/** Keychain entries holding the credential strings of IDE-file backups. */
export const IDE_BACKUP_KEY_PREFIX = 'ide-backup:';

/**
 * The string literals of an IDE file's server entries that hold a credential: credential header values of URL entries,
 * mcp-remote `--header` arguments naming a credential header, and the `env` values those reference.
 */
export function credentialSpans(text: string, containerKey: string): Array<{ start: number; end: number }> {
  let doc: JsonNode | undefined;
  try {
    doc = parseJsonc(text);
  } catch {
    return [];
  }
  if (doc?.kind !== 'object') return [];
  const container = findMember(doc, containerKey)?.value;
  if (container?.kind !== 'object') return [];
  const spans: Array<{ start: number; end: number }> = [];
  for (const member of container.members) {
    if (member.value.kind !== 'object') continue;
    spans.push(...entrySpans(member.value));
  }
  return spans.sort((a, b) => a.start - b.start);
}

function entrySpans(entry: ObjectNode): Array<{ start: number; end: number }> {
  const spans: Array<{ start: number; end: number }> = [];
  const headers = findMember(entry, 'headers')?.value;
  if (headers?.kind === 'object') {
    for (const h of headers.members) if (CREDENTIAL_HEADER.test(h.key) && h.value.kind === 'string') spans.push(h.value);
  }
  const args = findMember(entry, 'args')?.value;
  const command = findMember(entry, 'command')?.value;
  if (args?.kind === 'array' && command?.kind === 'string') {
    const referenced = new Set<string>();
    args.items.forEach((item, i) => {
      const previous = args.items[i - 1];
      if (item.kind !== 'string' || previous?.kind !== 'string' || previous.value !== '--header') return;
      const pair = String(item.value);
      const name = pair.slice(0, Math.max(pair.indexOf(':'), 0)).trim();
      if (!CREDENTIAL_HEADER.test(name)) return;
      spans.push(item);
      for (const m of pair.matchAll(/\$\{([^}]*)\}/g)) referenced.add(m[1]!);
    });
    const env = findMember(entry, 'env')?.value;
    if (env?.kind === 'object')
      for (const e of env.members as MemberNode[]) if (referenced.has(e.key) && e.value.kind === 'string') spans.push(e.value);
  }
  return spans;
}

/**
 * Takes every credential string out of `text` (an IDE file's content, going into a backup): each one's original text
 * (between its quotes) goes to the keychain, and the backup gets a placeholder naming that entry. The keychain writes
 * happen before the caller writes the backup, so a failure leaves nothing half-saved.
 */
export async function redactCredentials(
  text: string,
  containerKey: string,
  secrets: SecretStore,
): Promise<{ text: string; redactions: Redaction[] }> {
  const spans = credentialSpans(text, containerKey);
  if (spans.length === 0) return { text, redactions: [] };
  const id = randomBytes(6).toString('hex');
  const redactions: Redaction[] = [];
  let out = '';
  let at = 0;
  for (const [n, span] of spans.entries()) {
    const key = `${IDE_BACKUP_KEY_PREFIX}${id}:${n}`;
    const placeholder = `<lanyard-keychain:${key}>`;
    await secrets.set(key, text.slice(span.start + 1, span.end - 1));
    redactions.push({ key, placeholder });
    out += `${text.slice(at, span.start + 1)}${placeholder}`;
    at = span.end - 1;
  }
  return { text: out + text.slice(at), redactions };
}

/**
 * The backup's original text: each placeholder replaced by the text the keychain holds for it. Undefined when a
 * placeholder's entry is gone (the caller then cannot restore byte for byte).
 */
export async function restoreCredentials(
  text: string,
  redactions: readonly Redaction[],
  secrets: SecretStore,
): Promise<string | undefined> {
  let out = text;
  for (const r of redactions) {
    if (!out.includes(r.placeholder)) continue;
    const original = await secrets.get(r.key);
    if (original === undefined) return undefined;
    out = out.replace(r.placeholder, () => original);
  }
  return out;
}

export async function forgetRedactions(redactions: readonly Redaction[], secrets: SecretStore): Promise<void> {
  for (const r of redactions) await secrets.delete(r.key).catch(() => undefined);
}
