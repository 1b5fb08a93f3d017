import { open } from 'node:fs/promises';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { writePrivateFile } from '../paths';
import { assertValidSecretKey, probeSecretStore, type SecretStore, type SecretStoreProbe } from './secret-store';

export const FILE_STORE_DESCRIPTION = 'Plaintext file (0600) — opt-in, less safe than the OS keychain';

export interface FileSecretStoreOptions {
  /** `lanyardPaths(home).secretsFile`, i.e. `<home>/secrets.json`. */
  file: string;
  platform?: NodeJS.Platform;
}

interface SecretsFile {
  version: 1;
  secrets: Record<string, string>;
}

interface Loaded {
  /** Identity of the file version the map came from; a change means another process wrote it. */
  stamp: string;
  secrets: Map<string, string>;
}

/**
 * `SecretStore` in one JSON file (`<home>/secrets.json`, mode 0600) for headless machines without a usable keychain.
 *
 * Never chosen silently: only `LANYARD_SECRET_STORE=file` selects it, and its description says what it is, because
 * anything running as the user (or anyone with the disk) can read it. Before every operation the file's mode and owner
 * are checked; a file readable by group or others, or owned by someone else, is refused rather than used, since its
 * secrets may already have leaked and a silent fix would hide that. Writes are atomic (temp file + rename, 0600).
 */
export class FileSecretStore implements SecretStore {
  readonly kind = 'file' as const;
  readonly description = FILE_STORE_DESCRIPTION;
  readonly path: string;
  private readonly platform: NodeJS.Platform;
  private loaded: Loaded | undefined;
  /** One chain for the whole file: every operation is a read-modify-write of the same document. */
  private chain: Promise<void> = Promise.resolve();

  constructor(options: FileSecretStoreOptions) {
    this.path = options.file;
    this.platform = options.platform ?? process.platform;
  }

  get(key: string): Promise<string | undefined> {
    assertValidSecretKey(key);
    return this.enqueue(async () => (await this.load()).get(key));
  }

  set(key: string, value: string): Promise<void> {
    assertValidSecretKey(key);
    if (typeof value !== 'string') return Promise.reject(new TypeError('SecretStore values are strings'));
    return this.enqueue(async () => {
      const secrets = new Map(await this.load());
      secrets.set(key, value);
      await this.save(secrets);
    });
  }

  delete(key: string): Promise<void> {
    assertValidSecretKey(key);
    return this.enqueue(async () => {
      const current = await this.load();
      if (!current.has(key)) return;
      const secrets = new Map(current);
      secrets.delete(key);
      await this.save(secrets);
    });
  }

  deleteAll(prefix = ''): Promise<void> {
    return this.enqueue(async () => {
      const current = await this.load();
      const secrets = new Map([...current].filter(([k]) => !k.startsWith(prefix)));
      if (secrets.size !== current.size) await this.save(secrets);
    });
  }

  probe(): Promise<SecretStoreProbe> {
    return probeSecretStore(this);
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const result = this.chain.then(op);
    this.chain = result.then(noop, noop);
    return result;
  }

  /** The current secrets, re-read only when the file changed on disk. Checks mode and owner every time. */
  private async load(): Promise<Map<string, string>> {
    let handle;
    try {
      handle = await open(this.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.loaded = { stamp: 'absent', secrets: new Map() };
        return this.loaded.secrets;
      }
      throw this.unreadable(e);
    }
    try {
      // fstat on the open handle, not stat on the path: what we check is what we read.
      const st = await handle.stat();
      this.assertPrivate(st.mode, st.uid);
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (this.loaded?.stamp === stamp) return this.loaded.secrets;
      const text = await handle.readFile('utf8');
      this.loaded = { stamp, secrets: this.parse(text) };
      return this.loaded.secrets;
    } catch (e) {
      if (e instanceof LanyardError) throw e;
      throw this.unreadable(e);
    } finally {
      await handle.close();
    }
  }

  private async save(secrets: Map<string, string>): Promise<void> {
    const doc: SecretsFile = { version: 1, secrets: Object.fromEntries(secrets) };
    try {
      await writePrivateFile(this.path, `${JSON.stringify(doc, null, 2)}\n`);
    } catch (e) {
      throw new LanyardError(
        ErrorCodes.KEYCHAIN_UNAVAILABLE,
        `Could not write the secrets file ${this.path} (${(e as NodeJS.ErrnoException).code ?? 'I/O error'}).`,
        `Check that ${this.path} and its folder are writable by you and the disk is not full, then retry.`,
        { cause: e },
      );
    }
    // Our own write: the next load re-reads once (new stamp) and then reuses the map.
    this.loaded = undefined;
  }

  private assertPrivate(mode: number, uid: number): void {
    // Windows has no POSIX mode bits; %APPDATA% is private to the user by its ACL.
    if (this.platform === 'win32') return;
    const loose = mode & 0o077;
    if (loose !== 0) {
      throw new LanyardError(
        ErrorCodes.KEYCHAIN_UNAVAILABLE,
        `The secrets file ${this.path} is readable or writable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); Lanyard refuses to use it.`,
        `Run \`chmod 600 ${this.path}\`, then sign in again so the tokens it held are replaced (others could have read them).`,
      );
    }
    const me = process.getuid?.();
    if (me !== undefined && uid !== me) {
      throw new LanyardError(
        ErrorCodes.KEYCHAIN_UNAVAILABLE,
        `The secrets file ${this.path} belongs to another user (uid ${uid}); Lanyard refuses to use it.`,
        `Delete ${this.path} (or fix its owner) and sign in again.`,
      );
    }
  }

  private parse(text: string): Map<string, string> {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined;
    }
    const secrets = (doc as Partial<SecretsFile> | undefined)?.secrets;
    const valid =
      typeof doc === 'object' &&
      doc !== null &&
      (doc as Partial<SecretsFile>).version === 1 &&
      typeof secrets === 'object' &&
      secrets !== null &&
      !Array.isArray(secrets) &&
      Object.values(secrets).every((v) => typeof v === 'string');
    if (!valid) {
      // Never quote the content: it is all secrets.
      throw new LanyardError(
        ErrorCodes.KEYCHAIN_UNAVAILABLE,
        `The secrets file ${this.path} is damaged (not a Lanyard secrets file).`,
        `Delete ${this.path} and sign in again; it holds only Lanyard's own secrets.`,
      );
    }
    return new Map(Object.entries(secrets as Record<string, string>));
  }

  private unreadable(e: unknown): LanyardError {
    return new LanyardError(
      ErrorCodes.KEYCHAIN_UNAVAILABLE,
      `Could not read the secrets file ${this.path} (${(e as NodeJS.ErrnoException).code ?? 'I/O error'}).`,
      `Check that ${this.path} is a file you own and can read, then retry.`,
      { cause: e },
    );
  }
}

function noop(): void {}
