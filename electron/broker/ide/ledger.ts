import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { IdeName } from '../../../shared/contract';
import { writePrivateFile } from '../paths';
import type { Redaction } from './credentials';

/**
 * What each IDE config file looked like before Lanyard first wrote to it: `<home>/ide-connections.json` (0600).
 *
 * It holds no content and no token — only hashes, flags, the path of the backup taken before the first write and the
 * names of the keychain entries holding the keys taken out of it — so
 * `disconnect` can put the file back exactly: restore the backup byte for byte when nobody touched the file since
 * Lanyard's last write, delete it when Lanyard created it, and otherwise remove just Lanyard's entry.
 */
export interface LedgerRecord {
  ide: IdeName;
  /** The file as written (symlinks resolved). */
  configPath: string;
  /** Lanyard created the file (it did not exist). */
  createdFile: boolean;
  /** Directories Lanyard created for it, outermost first. */
  createdDirs: string[];
  /** Lanyard added the `mcpServers` / `servers` object itself. */
  createdContainer: boolean;
  /** A `lanyard` entry was already there before the first write (its original text is in the backup). */
  replacedEntry: boolean;
  /** The backup of the file as it was before the first write. */
  backupPath?: string | undefined;
  /** sha256 of the file before the first write. */
  originalSha256?: string | undefined;
  /** The file's mode before Lanyard tightened it (an entry with the local token makes it 0600). */
  originalMode?: number | undefined;
  /** sha256 of the file as Lanyard last wrote it: equal to the current file means nobody else changed it. */
  writtenSha256: string;
  connectedAt: string;
  transport: 'http' | 'stdio';
  /**
   * Credential strings (API keys) taken out of the backups: each backup holds a placeholder, the keychain the original
   * text (ide/credentials.ts). Names only, never a value.
   */
  redactions?: Redaction[] | undefined;
}

interface LedgerFile {
  version: 1;
  records: Record<string, LedgerRecord>;
}

export function ledgerPath(home: string): string {
  return path.join(home, 'ide-connections.json');
}

const keyOf = (ide: IdeName, configPath: string) => `${ide}:${configPath}`;

/** Read-modify-write access to the ledger. Callers serialize their own operations (one CLI command or one broker). */
export class IdeLedger {
  constructor(private readonly file: string) {}

  private async read(): Promise<LedgerFile> {
    try {
      const raw = JSON.parse(await readFile(this.file, 'utf8')) as Partial<LedgerFile>;
      if (raw && raw.version === 1 && raw.records && typeof raw.records === 'object') return { version: 1, records: raw.records };
    } catch {
      // Missing or unreadable: start empty. Losing the ledger only costs exactness (the entry is still removed).
    }
    return { version: 1, records: {} };
  }

  async get(ide: IdeName, configPath: string): Promise<LedgerRecord | undefined> {
    return (await this.read()).records[keyOf(ide, configPath)];
  }

  /** Every file Lanyard has connected (and not disconnected since). */
  async all(): Promise<LedgerRecord[]> {
    return Object.values((await this.read()).records);
  }

  async put(record: LedgerRecord): Promise<void> {
    const ledger = await this.read();
    ledger.records[keyOf(record.ide, record.configPath)] = record;
    await writePrivateFile(this.file, `${JSON.stringify(ledger, null, 2)}\n`);
  }

  async delete(ide: IdeName, configPath: string): Promise<void> {
    const ledger = await this.read();
    if (!(keyOf(ide, configPath) in ledger.records)) return;
    delete ledger.records[keyOf(ide, configPath)];
    await writePrivateFile(this.file, `${JSON.stringify(ledger, null, 2)}\n`);
  }
}
