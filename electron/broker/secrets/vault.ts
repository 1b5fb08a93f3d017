import { randomBytes } from 'node:crypto';
import { RESERVED_KEY_PREFIX } from './secret-store';

/**
 * The keychain form of all of an instance's secrets: one JSON document in one item (account `__lanyard:vault`).
 *
 * Windows caps an item at 2,560 bytes (stored as UTF-16), far less than a few tokens, so there a document that does
 * not fit is spread over numbered chunk items of one generation, and the header item names the generation: chunks are
 * written first and the header last, so a reader sees the old document or the new one, never a mix.
 */
export const VAULT_ACCOUNT = `${RESERVED_KEY_PREFIX}:vault`;
const CHUNK_PREFIX = `${VAULT_ACCOUNT}:`;

/** How much of the document one item may hold: unlimited except on Windows (1,000 ASCII chars = 2,000 bytes there). */
export function maxItemChars(platform: NodeJS.Platform): number {
  return platform === 'win32' ? 1_000 : Number.POSITIVE_INFINITY;
}

interface Document {
  v: 1;
  secrets: Record<string, string>;
}
interface ChunkedHeader {
  v: 1;
  gen: string;
  chunks: number;
}

/** Where the current document lives: in the header itself, or in `chunks` items of generation `gen`. */
export type VaultLayout = { gen: string; chunks: number } | undefined;

/** Whether an account is one of the vault's own items (header or chunk), as opposed to an older per-key item. */
export function isVaultAccount(account: string): boolean {
  return account === VAULT_ACCOUNT || account.startsWith(CHUNK_PREFIX);
}

export function chunkAccount(gen: string, index: number): string {
  return `${CHUNK_PREFIX}${gen}:${index}`;
}

export class VaultDamagedError extends Error {
  override readonly name = 'VaultDamagedError';
}

/**
 * Reads the document from the header's value and a chunk lookup; `undefined` header → no vault yet. Throws
 * VaultDamagedError for anything that is not a vault (never quoting it: it is all secrets).
 */
export async function decodeVault(
  header: string | null | undefined,
  chunk: (account: string) => Promise<string | null | undefined>,
): Promise<{ secrets: Map<string, string>; layout: VaultLayout }> {
  if (header === null || header === undefined) return { secrets: new Map(), layout: undefined };
  const parsed = parse(header) as Partial<Document & ChunkedHeader> | undefined;
  if (parsed?.v === 1 && typeof parsed.gen === 'string' && Number.isSafeInteger(parsed.chunks) && parsed.chunks! > 0) {
    const parts: string[] = [];
    for (let i = 0; i < parsed.chunks!; i++) {
      const part = await chunk(chunkAccount(parsed.gen, i));
      if (typeof part !== 'string') throw new VaultDamagedError(`chunk ${i} of ${parsed.chunks} is missing`);
      parts.push(part);
    }
    return { secrets: documentSecrets(parse(parts.join(''))), layout: { gen: parsed.gen, chunks: parsed.chunks! } };
  }
  return { secrets: documentSecrets(parsed), layout: undefined };
}

/**
 * The items to write for `secrets`: the header last. Non-ASCII characters are escaped so that a character is a byte
 * and the Windows limit can be counted in characters.
 */
export function encodeVault(
  secrets: ReadonlyMap<string, string>,
  maxChars: number,
): { items: Array<[string, string]>; layout: VaultLayout } {
  const doc: Document = { v: 1, secrets: Object.fromEntries(secrets) };
  const text = JSON.stringify(doc).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (text.length <= maxChars) return { items: [[VAULT_ACCOUNT, text]], layout: undefined };
  const gen = randomBytes(4).toString('hex');
  const items: Array<[string, string]> = [];
  for (let i = 0, at = 0; at < text.length; i++, at += maxChars) items.push([chunkAccount(gen, i), text.slice(at, at + maxChars)]);
  const header: ChunkedHeader = { v: 1, gen, chunks: items.length };
  items.push([VAULT_ACCOUNT, JSON.stringify(header)]);
  return { items, layout: { gen, chunks: header.chunks } };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new VaultDamagedError('not JSON');
  }
}

function documentSecrets(doc: unknown): Map<string, string> {
  const secrets = (doc as Partial<Document> | undefined)?.secrets;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    (doc as Partial<Document>).v !== 1 ||
    typeof secrets !== 'object' ||
    secrets === null ||
    Array.isArray(secrets) ||
    !Object.values(secrets).every((v) => typeof v === 'string')
  ) {
    throw new VaultDamagedError('not a Lanyard vault');
  }
  return new Map(Object.entries(secrets));
}
