import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** The ledger lives in `<LANYARD_HOME>/audit/`: numbered files (rotated by size and month) and the chain's head. */
export const AUDIT_DIR = 'audit';
export const HEAD_FILE = 'head.json';
const FILE_PATTERN = /^ledger-(\d{6})-(\d{4}-\d{2})\.jsonl$/;

export interface LedgerFile {
  index: number;
  month: string;
  name: string;
  path: string;
}

/** What the writer last made durable: the seq and hash of the last record, for spotting a cut-off tail. */
export interface LedgerHead {
  seq: number;
  hash: string;
  file: string;
}

export function auditDir(home: string): string {
  return path.join(home, AUDIT_DIR);
}

export function ledgerFileName(index: number, month: string): string {
  return `ledger-${String(index).padStart(6, '0')}-${month}.jsonl`;
}

/** The ledger files in chain order; none when the directory does not exist. */
export async function listLedgerFiles(dir: string): Promise<LedgerFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const files: LedgerFile[] = [];
  for (const name of names) {
    const m = FILE_PATTERN.exec(name);
    if (m) files.push({ index: Number(m[1]), month: m[2]!, name, path: path.join(dir, name) });
  }
  return files.sort((a, b) => a.index - b.index);
}

export async function readHead(dir: string): Promise<LedgerHead | undefined> {
  try {
    const head = JSON.parse(await readFile(path.join(dir, HEAD_FILE), 'utf8')) as Partial<LedgerHead>;
    if (typeof head.seq === 'number' && typeof head.hash === 'string' && typeof head.file === 'string')
      return { seq: head.seq, hash: head.hash, file: head.file };
  } catch {
    // Absent or unreadable: verify says so when records exist.
  }
  return undefined;
}

/** `YYYY-MM` (UTC) of an ISO time. */
export function monthOf(iso: string): string {
  return iso.slice(0, 7);
}
