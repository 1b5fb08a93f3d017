import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { Emitter } from '../../../shared/emitter';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { lanyardPaths } from '../paths';
import { silentLogger, type Logger } from '../util/log';
import { jsonErrorPosition } from './json-position';
import type { LanyardConfig, LanyardConfigInput } from './schema';
import { parseLanyardConfig } from './validate';

/**
 * The file behind a `ConfigStore`. Headless (broker, CLI) it is read and written directly (createConfBackend); the
 * Electron app injects `electron-store` (which wraps `conf`) over the same `<home>/config.json`, in the same format,
 * so both read and write one file.
 */
export interface ConfigBackend {
  readonly path: string;
  /** The parsed JSON document, or `undefined` when there is no file yet. Throws `ConfigFileError` when unreadable. */
  read(): unknown;
  /** Replaces the whole document (atomically, mode 0600). */
  write(value: unknown): void;
  /**
   * Calls `onChange` when the file may have changed on disk (another process, a text editor), debounced, and `onEvent`
   * at once on every event (the store's cache check). Returns a stop function.
   */
  watch?(onChange: () => void, onEvent?: () => void): () => void;
}

/** The config file exists but is not JSON (or cannot be read). Carries a position, never the file's text. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
  constructor(
    message: string,
    readonly problem: 'syntax' | 'io',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Settings for one Lanyard instance: validated with zod on every read, and before every write so that an invalid
 * change never reaches the file (it stays byte-identical). `conf`'s own JSON-schema validation is not used: one
 * schema (schema.ts), one set of messages.
 */
export interface ConfigStoreOptions {
  /**
   * Applied on top of the user's file by every `load()`: the administrator's managed configuration (config/managed.ts).
   * `update()` works on the user's own file only, so managed values are never copied into it.
   */
  overlay?: (config: LanyardConfig) => LanyardConfig;
  /** Where a listener that throws is reported (the other listeners still run). */
  log?: Logger;
}

export class ConfigStore {
  private readonly backend: ConfigBackend;
  private readonly overlay: ((config: LanyardConfig) => LanyardConfig) | undefined;
  private readonly changes: Emitter<LanyardConfig>;
  private readonly errors: Emitter<LanyardError>;
  private stopWatching: (() => void) | undefined;
  /** The last config announced to listeners, serialized, so our own writes and no-op touches are not re-announced. */
  private lastSeen: string | undefined;
  private cached: { stamp: string; config: LanyardConfig } | undefined;
  /** When the file was last stat'ed (performance.now()); -Infinity forces a stat on the next load. */
  private checkedAt = Number.NEGATIVE_INFINITY;
  /** The backend's watcher is running: the cache is trusted between its events (see loadUser). */
  private watching = false;

  constructor(backend: ConfigBackend, options: ConfigStoreOptions = {}) {
    this.backend = backend;
    this.overlay = options.overlay;
    const log = options.log ?? silentLogger;
    const onListenerError = (e: unknown) => log.warn('config listener failed', { error: e });
    this.changes = new Emitter(onListenerError);
    this.errors = new Emitter(onListenerError);
  }

  get path(): string {
    return this.backend.path;
  }

  /**
   * The validated config with defaults applied. A missing or empty (`{}`) file is a fresh install: the defaults.
   * Throws `LanyardError(CONFIG_INVALID)` naming each bad field and the file to edit. With a managed overlay, the
   * result is the user's config with the managed values applied.
   */
  load(): LanyardConfig {
    const user = this.loadUser();
    return this.overlay ? this.overlay(user) : user;
  }

  /**
   * The user's own file, without the managed overlay (what `update()` edits). The parsed result is reused while the
   * file's identity (inode, size, mtime) is unchanged: the gateway reads the config several times per call, and
   * re-reading, parsing and validating it each time was 17% of the relay's CPU (bench). While the file is watched
   * (a listener is registered), not even a stat is made per call: every watch event marks the cache for a re-check,
   * and the file is stat'ed again at most every RECHECK_MS in case an event was lost (a stat per call was still 3% of
   * a tools/call's CPU). Callers must treat the result as read-only (`update()` works on a copy).
   */
  loadUser(): LanyardConfig {
    const now = performance.now();
    if (this.cached && this.watching && now - this.checkedAt < RECHECK_MS) return this.cached.config;
    const stamp = fileStamp(this.backend.path);
    this.checkedAt = now;
    if (stamp !== undefined && this.cached?.stamp === stamp) return this.cached.config;
    const config = this.readUser();
    this.cached = stamp === undefined ? undefined : { stamp, config };
    return config;
  }

  private readUser(): LanyardConfig {
    let raw: unknown;
    try {
      raw = this.backend.read();
    } catch (e) {
      throw this.fileError(e);
    }
    const result = parseLanyardConfig(isFresh(raw) ? { version: 1 } : stripInternal(raw));
    if (!result.ok) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `${this.path} is invalid: ${summarize(result.issues)}`,
        `Edit ${this.path} and change ${fieldsOf(result.issues)} as described, then retry.`,
      );
    }
    return result.config;
  }

  /**
   * Applies `mutator` to a copy of the current config (mutate the draft, or return a new object), validates the
   * result and writes it. On any error — invalid current file, mutator throws, result invalid — nothing is written.
   * Returns the config as written (defaults applied).
   */
  update(mutator: (draft: LanyardConfig) => LanyardConfigInput | void): LanyardConfig {
    const current = this.loadUser();
    const draft = structuredClone(current);
    const next = mutator(draft) ?? draft;
    const result = parseLanyardConfig(next);
    if (!result.ok) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `The change was not saved: ${summarize(result.issues)}`,
        `Correct ${fieldsOf(result.issues)} and try again; ${path.basename(this.path)} was not changed.`,
      );
    }
    this.cached = undefined;
    try {
      this.backend.write(result.config);
    } catch (e) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `Could not save ${this.path} (${(e as NodeJS.ErrnoException).code ?? 'I/O error'}).`,
        `Check that ${path.dirname(this.path)} is writable by you and the disk is not full, then retry.`,
        { cause: e },
      );
    }
    this.announce(this.overlay ? this.overlay(result.config) : result.config);
    return result.config;
  }

  /**
   * Calls `onChange` with the new config after every `update()` and, when the backend can watch, after the file is
   * changed by someone else. An edit that makes the file invalid goes to `onError` instead (the caller keeps running
   * on the last good config). Returns an unsubscribe function.
   */
  onChange(onChange: (config: LanyardConfig) => void, onError?: (error: LanyardError) => void): () => void {
    const offChange = this.changes.on(onChange);
    const offError = onError ? this.errors.on(onError) : () => {};
    if (this.changes.size === 1 && this.backend.watch) {
      try {
        this.lastSeen = JSON.stringify(this.load());
      } catch {
        this.lastSeen = undefined;
      }
      this.watching = true;
      this.stopWatching = this.backend.watch(
        () => this.onFileChanged(),
        () => (this.checkedAt = Number.NEGATIVE_INFINITY),
      );
    }
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      offChange();
      offError();
      if (this.changes.size === 0) this.close();
    };
  }

  /** Stops watching the file (listeners registered later start it again). */
  close(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
    this.watching = false;
  }

  private onFileChanged(): void {
    let config: LanyardConfig;
    try {
      config = this.load();
    } catch (e) {
      const error = e instanceof LanyardError ? e : this.fileError(e);
      this.errors.emit(error);
      return;
    }
    this.announce(config);
  }

  private announce(config: LanyardConfig): void {
    const serialized = JSON.stringify(config);
    if (serialized === this.lastSeen) return;
    this.lastSeen = serialized;
    this.changes.emit(config);
  }

  private fileError(e: unknown): LanyardError {
    if (e instanceof LanyardError) return e;
    if (e instanceof ConfigFileError && e.problem === 'syntax') {
      return new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `${this.path} is not valid JSON (${e.message}).`,
        `Fix the JSON syntax in ${this.path} (or move it aside to start with default settings), then retry.`,
        { cause: e },
      );
    }
    const code = (e as NodeJS.ErrnoException).code ?? (e instanceof ConfigFileError ? e.message : 'I/O error');
    return new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `Could not read ${this.path} (${code}).`,
      `Check that ${this.path} is a file you own and can read, then retry.`,
      { cause: e },
    );
  }
}

/** How often a watched file is stat'ed anyway (a watch event can be lost: a directory replaced, a network volume). */
const RECHECK_MS = 1_000;

/** The file's identity and version, or undefined when it cannot be stat'ed (then nothing is cached). */
function fileStamp(file: string): string | undefined {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** A missing file, or `{}` (what electron-store writes before anything is set), means "fresh install". */
function isFresh(raw: unknown): boolean {
  return raw === undefined || (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && Object.keys(raw).length === 0);
}

/** conf/electron-store keep migration bookkeeping under `__internal__`; it is theirs, not a setting. */
function stripInternal(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !('__internal__' in raw)) return raw;
  const { __internal__: _internal, ...rest } = raw as Record<string, unknown>;
  return rest;
}

const MAX_LISTED = 5;

function summarize(issues: string[]): string {
  const shown = issues.slice(0, MAX_LISTED).join('; ');
  return issues.length > MAX_LISTED ? `${shown}; and ${issues.length - MAX_LISTED} more` : shown;
}

/** "servers[1].url" or "servers[1].url and gateway.port" — the fields the fix names. */
function fieldsOf(issues: string[]): string {
  const fields = [...new Set(issues.map((i) => i.slice(0, i.indexOf(': ')) || 'the file'))];
  if (fields.length === 1) return fields[0] ?? 'the file';
  if (fields.length <= MAX_LISTED) return `${fields.slice(0, -1).join(', ')} and ${fields[fields.length - 1]}`;
  return `${fields.slice(0, MAX_LISTED).join(', ')} and the other fields listed`;
}

/** JSON.parse whose error says where, never what (V8's message quotes the text, which may hold a pasted secret). */
export function parseConfigJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    const at = jsonErrorPosition(text);
    throw new ConfigFileError(at ? `syntax error at line ${at.line}, column ${at.column}` : 'syntax error', 'syntax');
  }
}

/**
 * `<home>/config.json` read and written directly, in the format `conf` and `electron-store` use (the Electron app
 * injects electron-store over the same file): pretty-printed JSON, mode 0600 in a 0700 home, replaced atomically (a
 * temporary file in the same directory, then a rename). conf itself is not loaded here: the broker used none of its
 * features (no schema, no dot-notation, no migrations, no encryption) and it pulled ajv with it, about 15 MB of
 * resident memory and a slower start for every `lanyard serve` and CLI command (bench).
 */
export function createConfBackend(home: string): ConfigBackend {
  const file = lanyardPaths(home).configFile;
  return {
    path: file,
    read() {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
      const value = parseConfigJson(text);
      if (value === undefined) return undefined;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
      return Object.keys(value).length === 0 ? undefined : value;
    },
    write(value) {
      // Created 0700 before anything is written (a default mkdir would use the umask's 0755).
      mkdirSync(home, { recursive: true, mode: 0o700 });
      const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
        if (process.platform !== 'win32') chmodSync(temp, 0o600);
        renameSync(temp, file);
      } catch (e) {
        rmSync(temp, { force: true });
        throw e;
      }
    },
    watch(onChange, onEvent) {
      return watchFile(file, onChange, onEvent);
    },
  };
}

/**
 * A ConfigBackend over a conf-like store (conf headless, electron-store in the app: the same file and semantics).
 * An empty store reads as "no file" (a fresh install); writes end 0600; changes are watched through the directory.
 */
export function storeBackend(file: string, open: () => { store: Record<string, unknown> }): ConfigBackend {
  return {
    path: file,
    read() {
      const store = open().store;
      return Object.keys(store).length === 0 ? undefined : store;
    },
    write(value) {
      open().store = value as Record<string, unknown>;
      // The store atomically applies the mode to the temp file it renames; make sure of it for a file that pre-existed.
      if (process.platform !== 'win32') chmodSync(file, 0o600);
    },
    watch(onChange, onEvent) {
      return watchFile(file, onChange, onEvent);
    },
  };
}

/**
 * Watches `file` through its directory: writers (conf, editors) replace the file by rename, which a watch on the
 * file itself would stop seeing after the first change. Debounced: one save is several events.
 */
function watchFile(file: string, onChange: () => void, onEvent?: () => void): () => void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && name !== base) return;
      onEvent?.();
      clearTimeout(timer);
      timer = setTimeout(onChange, 50);
      timer.unref();
    });
    // A watcher error (directory removed) ends watching; the next update() still announces changes.
    watcher.on('error', () => watcher?.close());
  } catch {
    return () => undefined;
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}

/** The config store of the instance at `home`. */
export function openConfigStore(home: string): ConfigStore {
  return new ConfigStore(createConfBackend(home));
}
