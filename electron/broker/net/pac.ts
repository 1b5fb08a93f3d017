import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { createPacResolver as CreatePacResolver, sandbox as PacSandbox } from 'pac-resolver';
import type { QuickJS } from 'quickjs-wasi';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, redactText } from '../errors';

/**
 * A proxy auto-configuration (PAC) file, evaluated when Lanyard runs headless (the Electron app asks Chromium, which
 * reads the system's PAC itself). The script is the company's JavaScript, fetched over the network: it runs in a
 * QuickJS WebAssembly sandbox (pac-resolver with quickjs-wasi), never in Node, with a memory limit and a time limit per
 * call (a script that loops is interrupted). pac-resolver gives it the standard PAC functions (dnsDomainIs,
 * shExpMatch, isInNet, dnsResolve, ...).
 *
 * Loading: on first use only (nothing is loaded, not even the packages, unless `network.pac` is set); refreshed every
 * REFRESH_MS. A load that fails (unreachable, 404, a syntax error) keeps the last good script when there is one, and is
 * tried again with back-off (BACKOFF_*), never on every request. Answers are cached per origin by the network stack.
 */

/** How a PAC location is read: an http(s) URL through the network stack (direct, with the company CA), else a file. */
export type PacFetch = (url: URL) => Promise<string>;

export interface PacEngineOptions {
  /** `network.pac`: an http(s) URL, a file: URL or a file path. */
  location: string;
  fetchUrl: PacFetch;
  now?: () => number;
  /** The time one FindProxyForURL call may run before it is interrupted. */
  callTimeoutMs?: number;
}

export interface PacState {
  location: string;
  /** Set when the file is the desktop's setting, not `network.pac` ("GNOME proxy settings"). */
  from?: string | undefined;
  /** When the script in use was loaded (epoch ms); undefined while none ever loaded. */
  loadedAt?: number | undefined;
  /** The last load's failure, while it stands (the script in use, if any, is the last good one). */
  lastError?: LanyardError | undefined;
  /** When the next load is due after a failure (epoch ms). */
  retryAt?: number | undefined;
}

export interface PacEngine {
  readonly location: string;
  /** The script's answer for `url` ("PROXY proxy:8080; DIRECT"); PAC_FAILED when there is no script or it failed. */
  find(url: URL): Promise<string>;
  state(): PacState;
  close(): void;
}

export const PAC_REFRESH_MS = 15 * 60_000;
const BACKOFF_INITIAL_MS = 5_000;
const BACKOFF_MAX_MS = 5 * 60_000;
const CALL_TIMEOUT_MS = 1_000;
/** The whole of one call, DNS lookups included. */
const CALL_WALL_MS = 10_000;
const MEMORY_LIMIT = 32 * 1024 * 1024;
/** A PAC file is a few kilobytes; more is not a PAC file. */
const MAX_PAC_BYTES = 1024 * 1024;

export const PAC_FIX_LOAD =
  "Check network.pac in Lanyard's config (or the managed config): it must be the URL or path of your company's PAC file. Lanyard tries again by itself; to bypass the PAC file, set network.proxy to the proxy to use.";
const PAC_FIX_SCRIPT =
  "Your company's PAC file has an error: tell your IT team (`lanyard doctor` shows the PAC line). Meanwhile, set network.proxy to the proxy to use, which takes precedence over network.pac.";

/** The back-off after `failures` failed loads in a row: 5 s doubling to 5 minutes. */
export function pacBackoffMs(failures: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, Math.min(failures - 1, 20)));
}

/** Where the location points: an http(s) URL, or a file. */
export function pacTarget(location: string): { kind: 'url'; url: URL } | { kind: 'file'; path: string } {
  if (/^https?:\/\//i.test(location)) return { kind: 'url', url: new URL(location) };
  if (/^file:/i.test(location)) return { kind: 'file', path: decodeURIComponent(new URL(location).pathname) };
  return { kind: 'file', path: location };
}

/** What a thrown thing says, short and without anything token-like (a PAC message is the company's text). */
function what(e: unknown): string {
  if (e instanceof LanyardError) return e.message;
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return redactText(text).replace(/\s+/g, ' ').slice(0, 160);
}

/** The packages are loaded once, on the first PAC, and the WebAssembly module compiled once for every script after. */
let runtime:
  | Promise<{ QuickJS: typeof QuickJS; createPacResolver: typeof CreatePacResolver; sandbox: typeof PacSandbox; wasm: WebAssembly.Module }>
  | undefined;
function loadRuntime() {
  runtime ??= (async () => {
    const [{ QuickJS }, { createPacResolver, sandbox }] = await Promise.all([import('quickjs-wasi'), import('pac-resolver')]);
    const wasmPath = createRequire(import.meta.url).resolve('quickjs-wasi/quickjs.wasm');
    // Node's WebAssembly global (the project's type libraries declare only its types, not the value).
    const { WebAssembly: wasmApi } = globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WebAssembly.Module> } };
    const wasm = await wasmApi.compile(await readFile(wasmPath));
    return { QuickJS, createPacResolver, sandbox, wasm };
  })();
  runtime.catch(() => {
    runtime = undefined;
  });
  return runtime;
}

interface Compiled {
  text: string;
  vm: QuickJS;
  find: (url: string, host: string) => Promise<string>;
  /** The interrupt deadline of the call in progress (epoch ms). */
  deadline: { at: number };
  /** Where a failure of the script's continuation after a DNS lookup goes (the call in progress rejects with it). */
  guard: { fail?: ((e: unknown) => void) | undefined };
}

/**
 * The promise a DNS lookup hands to the sandbox. degenerator resumes the script inside the lookup promise's `then`
 * callback (`vm.executePendingJobs()`), so a script interrupted there (or failing) would reject a promise nobody
 * handles — an unhandled rejection that ends the process — and leave the call waiting forever. Every promise derived
 * from this one is therefore handled, and its failure handed to the call in progress.
 */
function guardedPromiseClass(guard: Compiled['guard']) {
  return class GuardedLookup<T> extends Promise<T> {
    static override get [Symbol.species]() {
      return Promise;
    }
    override then<R1 = T, R2 = never>(
      onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
      onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
    ): Promise<R1 | R2> {
      const derived = super.then(onFulfilled, onRejected);
      derived.catch((e: unknown) => guard.fail?.(e));
      return derived;
    }
  };
}

async function compile(text: string, callTimeoutMs: number): Promise<Compiled> {
  const { QuickJS, createPacResolver, sandbox, wasm } = await loadRuntime();
  const deadline = { at: Date.now() + callTimeoutMs };
  const guard: Compiled['guard'] = {};
  const Guarded = guardedPromiseClass(guard);
  let steps = 0;
  // The handler runs about once per bytecode instruction: the clock is read every 1024 of them.
  const vm = await QuickJS.create({
    wasm,
    memoryLimit: MEMORY_LIMIT,
    interruptHandler: () => (++steps & 1023) === 0 && Date.now() > deadline.at,
  });
  try {
    // The time limit is for the script's own work: a DNS lookup (dnsResolve, isResolvable, isInNet, myIpAddress) runs
    // on the host, outside the VM, and the script gets its full time again when one returns (the whole call has
    // CALL_WALL_MS).
    // (`async: true` is how pac-resolver recognises a function the script must await, besides native async functions.)
    const restart = () => {
      if (deadline.at !== 0) deadline.at = Date.now() + callTimeoutMs;
    };
    const lookups = Object.fromEntries(
      Object.entries(sandbox)
        .filter(([, fn]) => fn.constructor.name === 'AsyncFunction')
        .map(([name, fn]) => [
          name,
          Object.assign(
            (...args: unknown[]) =>
              new Guarded<unknown>((resolve, reject) => {
                (fn as (...a: unknown[]) => Promise<unknown>)(...args).then(
                  (value) => {
                    restart();
                    resolve(value);
                  },
                  (e: unknown) => {
                    restart();
                    reject(e instanceof Error ? e : new Error(String(e)));
                  },
                );
              }),
            { async: true },
          ),
        ]),
    );
    // alert() would print the company's text to stdout: the sandbox's default is console.log.
    const resolver = createPacResolver(vm, text, { sandbox: { ...lookups, alert: () => undefined } });
    return { text, vm, find: (url, host) => resolver(url, host), deadline, guard };
  } catch (e) {
    vm.dispose();
    throw e;
  }
}

export function createPacEngine(options: PacEngineOptions): PacEngine {
  const now = options.now ?? Date.now;
  const callTimeoutMs = options.callTimeoutMs ?? CALL_TIMEOUT_MS;
  const location = options.location;
  const target = pacTarget(location);
  let compiled: Compiled | undefined;
  let loadedAt: number | undefined;
  let refreshAt = 0;
  let failures = 0;
  let lastError: LanyardError | undefined;
  let retryAt: number | undefined;
  let loading: Promise<Compiled> | undefined;
  let closed = false;
  /** FindProxyForURL calls run one at a time: the VM is single-threaded, and the deadline is per call. */
  let queue: Promise<unknown> = Promise.resolve();

  const loadFailed = (message: string, cause?: unknown) =>
    new LanyardError(ErrorCodes.PAC_FAILED, `The proxy auto-configuration (PAC) file ${location} ${message}.`, PAC_FIX_LOAD, {
      cause,
      transient: true,
    });

  const readText = async (): Promise<string> => {
    let text: string;
    try {
      text = target.kind === 'url' ? await options.fetchUrl(target.url) : await readFile(target.path, 'utf8');
    } catch (e) {
      if (e instanceof LanyardError && e.code === ErrorCodes.PAC_FAILED) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw loadFailed(`could not be read (${code ? code : e instanceof Error ? redactText(e.message).slice(0, 200) : what(e)})`, e);
    }
    if (text.length > MAX_PAC_BYTES) throw loadFailed('is larger than 1 MB, which no PAC file is');
    return text;
  };

  const load = async (): Promise<Compiled> => {
    const text = await readText();
    if (compiled?.text === text) return compiled;
    let fresh: Compiled;
    try {
      fresh = await compile(text, callTimeoutMs);
    } catch (e) {
      throw new LanyardError(
        ErrorCodes.PAC_FAILED,
        `The proxy auto-configuration (PAC) file ${location} does not run (${what(e)}).`,
        PAC_FIX_SCRIPT,
        { cause: e, transient: true },
      );
    }
    if (closed) {
      fresh.vm.dispose();
      throw loadFailed('was closed');
    }
    const old = compiled;
    compiled = fresh;
    // A call in progress on the old script finishes first.
    if (old) void queue.finally(() => old.vm.dispose());
    return fresh;
  };

  const script = async (): Promise<Compiled> => {
    const t = now();
    if (compiled && t < refreshAt) return compiled;
    if (!compiled && retryAt !== undefined && t < retryAt && lastError) throw lastError;
    loading ??= load().then(
      (c) => {
        loadedAt = now();
        refreshAt = loadedAt + PAC_REFRESH_MS;
        failures = 0;
        lastError = undefined;
        retryAt = undefined;
        return c;
      },
      (e: unknown) => {
        failures++;
        lastError = e instanceof LanyardError ? e : loadFailed(`could not be loaded (${what(e)})`, e);
        retryAt = now() + pacBackoffMs(failures);
        // With a last good script, it stays in use until the next try.
        if (compiled) refreshAt = retryAt;
        throw lastError;
      },
    );
    const pending = loading;
    try {
      return await pending;
    } catch (e) {
      if (compiled) return compiled;
      throw e;
    } finally {
      if (loading === pending) loading = undefined;
    }
  };

  const call = (c: Compiled, url: URL): Promise<string> => {
    const run = () =>
      new Promise<string>((resolve, reject) => {
        c.deadline.at = Date.now() + callTimeoutMs;
        // The script's continuation after a DNS lookup failed: interrupted when its time was up, else it threw.
        c.guard.fail = (e) =>
          reject(Date.now() > c.deadline.at ? new Error('interrupted') : e instanceof Error ? e : new Error('the script failed'));
        // Only the origin goes to the script (as Chromium does for https): paths and queries are no business of a PAC file.
        c.find(`${url.protocol}//${url.host}/`, url.hostname).then((answer) => {
          if (typeof answer === 'string') resolve(answer);
          else reject(new TypeError(`FindProxyForURL returned ${answer === null ? 'null' : typeof answer}, not a string`));
        }, reject);
      }).finally(() => {
        c.guard.fail = undefined;
      });
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    // A DNS lookup the script waits for is bounded by the resolver; the caller is not kept longer than CALL_WALL_MS.
    let timer: NodeJS.Timeout | undefined;
    const wall = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // The script is stopped as soon as it runs again (its lookups no longer give it time).
        c.deadline.at = 0;
        reject(new Error(`FindProxyForURL did not answer within ${CALL_WALL_MS / 1000} s`));
      }, CALL_WALL_MS);
      timer.unref?.();
    });
    return Promise.race([result, wall]).finally(() => clearTimeout(timer));
  };

  return {
    location,
    async find(url) {
      const c = await script();
      try {
        return await call(c, url);
      } catch (e) {
        const interrupted = e instanceof Error && /interrupted/i.test(e.message);
        throw new LanyardError(
          ErrorCodes.PAC_FAILED,
          `The proxy auto-configuration (PAC) file ${location} failed for ${url.host}: ${interrupted ? `FindProxyForURL ran longer than ${callTimeoutMs} ms and was stopped` : what(e)}.`,
          PAC_FIX_SCRIPT,
          { cause: e },
        );
      }
    },
    state() {
      return { location, loadedAt: compiled ? loadedAt : undefined, lastError, retryAt: lastError ? retryAt : undefined };
    },
    close() {
      closed = true;
      const c = compiled;
      compiled = undefined;
      if (c) void queue.finally(() => c.vm.dispose());
    },
  };
}
