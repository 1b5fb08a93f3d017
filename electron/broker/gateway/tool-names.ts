import { createHash } from 'node:crypto';
import { DEFAULT_TOOL_NAME_SEPARATOR, SERVER_ID_PATTERN } from '../config/schema';

/**
 * Names of tools and prompts on the aggregated `/mcp` endpoint: `<serverId><sep><name>`.
 *
 * IDEs limit tool names: Claude and VS Code refuse names over 64 characters (microsoft/vscode#243602), Cursor silently
 * drops tools over 60 (idosal/git-mcp#163), and the model APIs behind them accept only `[A-Za-z0-9_-]` (plus `.` in the
 * MCP guidance, SEP-986). A prefixed name that would break either rule is rewritten deterministically — a readable
 * prefix, `_`, and a short hash of the full name — and a reverse map turns it back into (server, original name). The
 * hash makes the rewrite stable across restarts (IDE allow-lists and transcripts keep working); a collision with a
 * name already handed out is detected and resolved with a longer hash, so two origins never share a name.
 */

/** The shape an exposed name maps back to. */
export interface NameOrigin {
  serverId: string;
  originalName: string;
}

export interface ToolNamerOptions {
  /** Joins server id and name (gateway.toolNameSeparator); must contain `_` or `.` so it can be split back. */
  separator?: string;
  /** The longest name handed out (default 64; 60 for Cursor). */
  maxLength?: number;
}

export const DEFAULT_MAX_TOOL_NAME_LENGTH = 64;
/** Below this a shortened name would be mostly hash; refuse rather than produce unreadable names. */
export const MIN_MAX_TOOL_NAME_LENGTH = 16;
const HASH_LENGTH = 6;
/** Characters every IDE and model API accepts in a tool name (MCP SEP-986; `.` is the only one some APIs reject). */
const SAFE_NAME = /^[A-Za-z0-9_.-]+$/;
const UNSAFE_CHAR = /[^A-Za-z0-9_.-]/gu;
const SEPARATOR_RULE = /^[_.-]{1,4}$/;
const REWRITTEN_TAIL = /_[0-9a-z]{6,}$/;

/** base36 of the first bytes of sha256(text), `length` characters. */
function shortHash(text: string, length: number): string {
  const digest = createHash('sha256').update(text, 'utf8').digest();
  // 8 bytes give 64 bits, plenty for up to 12 base36 characters; longer requests use more of the digest.
  let out = '';
  for (let offset = 0; out.length < length && offset + 8 <= digest.length; offset += 8) {
    out += digest.readBigUInt64BE(offset).toString(36).padStart(13, '0');
  }
  return out.slice(0, length);
}

/**
 * Splits an exposed name that was not rewritten back into server id and name, without any map: server ids contain no
 * `_` or `.` and the separator contains at least one, so the first `_`/`.` in the name fixes where the separator sits.
 * Returns undefined when the name does not have that shape.
 */
export function splitExposedName(exposed: string, separator: string = DEFAULT_TOOL_NAME_SEPARATOR): NameOrigin | undefined {
  const firstInSep = separator.search(/[_.]/);
  const firstInName = exposed.search(/[_.]/);
  if (firstInSep < 0 || firstInName < 0) return undefined;
  const idEnd = firstInName - firstInSep;
  if (idEnd <= 0) return undefined;
  const serverId = exposed.slice(0, idEnd);
  if (!SERVER_ID_PATTERN.test(serverId) || exposed.slice(idEnd, idEnd + separator.length) !== separator) return undefined;
  const originalName = exposed.slice(idEnd + separator.length);
  return originalName ? { serverId, originalName } : undefined;
}

/**
 * Hands out exposed names and remembers where each came from. One instance per namespace (tools, prompts): a tool
 * and a prompt may share a name.
 */
export class ToolNamer {
  readonly separator: string;
  readonly maxLength: number;
  private readonly byExposed = new Map<string, NameOrigin>();
  /** `${serverId}\n${originalName}` → exposed. */
  private readonly byOrigin = new Map<string, string>();

  constructor(options: ToolNamerOptions = {}) {
    const separator = options.separator ?? DEFAULT_TOOL_NAME_SEPARATOR;
    if (!SEPARATOR_RULE.test(separator) || !/[_.]/.test(separator)) {
      throw new RangeError(`Tool name separator ${JSON.stringify(separator)} must be 1-4 of '_', '.', '-' and contain '_' or '.'.`);
    }
    const maxLength = options.maxLength ?? DEFAULT_MAX_TOOL_NAME_LENGTH;
    if (!Number.isInteger(maxLength) || maxLength < MIN_MAX_TOOL_NAME_LENGTH) {
      throw new RangeError(`Maximum tool name length must be an integer of at least ${MIN_MAX_TOOL_NAME_LENGTH}.`);
    }
    this.separator = separator;
    this.maxLength = maxLength;
  }

  /** The exposed name for a server's tool (or prompt); the same input always gives the same output. */
  expose(serverId: string, originalName: string): string {
    const key = `${serverId}\n${originalName}`;
    const known = this.byOrigin.get(key);
    if (known !== undefined) return known;
    const full = `${serverId}${this.separator}${originalName}`;
    let exposed = full.length <= this.maxLength && SAFE_NAME.test(full) ? full : this.rewrite(full, HASH_LENGTH);
    // A different origin already holds this name (a hash collision, or a real name that looks like a rewritten one):
    // lengthen the hash until the name is free. Only the later arrival changes, so existing names stay stable.
    for (let hashLength = HASH_LENGTH + 2; this.taken(exposed, serverId, originalName); hashLength += 2) {
      // 40 base36 characters are ~206 bits: running out means the map itself is corrupt, not bad luck.
      if (hashLength > 40) throw new Error(`no free exposed name for ${JSON.stringify(full)}`);
      exposed = this.rewrite(full, hashLength);
    }
    this.byExposed.set(exposed, { serverId, originalName });
    this.byOrigin.set(key, exposed);
    return exposed;
  }

  /** Where an exposed name came from; undefined when this namer never handed it out. */
  resolve(exposed: string): NameOrigin | undefined {
    return this.byExposed.get(exposed);
  }

  /**
   * Like resolve, but also understands names this instance has not handed out yet (an IDE calling a tool from a list
   * it cached before Lanyard restarted), as long as they were not rewritten.
   */
  resolveOrSplit(exposed: string): NameOrigin | undefined {
    const known = this.byExposed.get(exposed);
    if (known) return known;
    const split = splitExposedName(exposed, this.separator);
    if (!split) return undefined;
    // Only a name that expose() would produce unchanged is trusted; a rewritten one needs the map. A name at the
    // limit that ends like a hash may be either, so it needs the map too.
    if (exposed.length === this.maxLength && REWRITTEN_TAIL.test(exposed)) return undefined;
    return exposed.length <= this.maxLength && SAFE_NAME.test(exposed) ? split : undefined;
  }

  /** Drops the names of a server's entries that are gone (after a re-list), or of the whole server. */
  retain(serverId: string, keep?: ReadonlySet<string>): void {
    for (const [key, exposed] of this.byOrigin) {
      const cut = key.indexOf('\n');
      if (key.slice(0, cut) !== serverId || keep?.has(key.slice(cut + 1))) continue;
      this.byOrigin.delete(key);
      this.byExposed.delete(exposed);
    }
  }

  private taken(exposed: string, serverId: string, originalName: string): boolean {
    const holder = this.byExposed.get(exposed);
    return holder !== undefined && (holder.serverId !== serverId || holder.originalName !== originalName);
  }

  /** `<readable prefix>_<hash>`: the prefix keeps the server id and as much of the name as fits, made safe. */
  private rewrite(full: string, hashLength: number): string {
    const hash = shortHash(full, hashLength);
    const room = Math.max(1, this.maxLength - hashLength - 1);
    // Replaced per code point (the `u` flag), so an emoji becomes one `_`, not two.
    const prefix = full.replace(UNSAFE_CHAR, '_').slice(0, room);
    return `${prefix}_${hash}`.slice(0, this.maxLength);
  }
}
