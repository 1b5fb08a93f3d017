import { homedir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Readable } from 'node:stream';
import type { ControlApi } from '../../shared/contract';
import { createHttpControlClient, ControlError } from '../../shared/control-client';
import { ErrorCodes, type ErrorInfo } from '../../shared/errors';
import { createManagedPolicy, type ManagedPolicy } from '../broker/config/managed';
import type { IdeConnectDeps } from '../broker/control/control-service';
import { identityEntryName, identityLauncher } from '../broker/identities/ide';
import { identityProfileNames, unknownProfile } from '../broker/identities/identity-profiles';
import { identityManagedPolicy } from '../broker/identities/managed-identity';
import { identityPathPrefix, identityProfileHome } from '../broker/identities/names';
import { writePrivateFile } from '../broker/paths';
import { LanyardError } from '../broker/errors';
import { readRuntimeFile, type RuntimeInfo, type RuntimeLookup } from '../broker/gateway/runtime-file';
import type { IdeContext } from '../broker/ide/connector';
import { resolveStdioLauncher } from '../broker/ide/launcher';
import type { HttpEndpoint, IdeEnvironment, StdioLauncher } from '../broker/ide/targets';
import type { SecretStore } from '../broker/secrets/secret-store';
import { createLogger, silentLogger, type Logger } from '../broker/util/log';
import type { Broker } from '../broker/broker';

type Env = Record<string, string | undefined>;

/** Exit codes, documented in `lanyard --help`. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  /** Not signed in, or the user must do something (confirm, sign in, pass --yes). */
  NEEDS_ACTION: 3,
  /** The broker is not running (or cannot be reached) where the command needs it. */
  BROKER_NOT_RUNNING: 4,
} as const;

/** A failure the CLI reports as `message` + `→ fix`, with its exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly fix: string,
    readonly exitCode: number = ExitCode.FAILURE,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string, fix = 'Run `lanyard help` for the commands and their options.') {
    super(message, fix, ExitCode.USAGE);
  }
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  stdin: Readable;
  /** Whether a person is at the terminal (prompts are only shown then). */
  interactive: boolean;
}

/** Everything the commands get from outside: injectable, so tests drive the CLI in-process. */
export interface CliDeps {
  io: CliIo;
  env: Env;
  version: string;
  platform?: NodeJS.Platform;
  homedir?: string;
  /** Opens a URL in the user's browser (the URL is always printed to stderr too). */
  openUrl?: (url: string) => Promise<void>;
  /** Asks a yes/no question; default: readline on stdin when interactive, "no" otherwise. */
  confirm?: (question: string) => Promise<boolean>;
  fetch?: typeof fetch;
  /** Tests inject the keychain namespace they clean up. */
  secrets?: SecretStore;
  managed?: ManagedPolicy;
  /** The running `lanyard` script (`process.argv[1]`): how IDE entries start `lanyard stdio`. */
  script?: string | undefined;
  execArgv?: string[];
  /** `lanyard serve` waits for this (SIGINT/SIGTERM by default). */
  waitForStop?: () => Promise<void>;
  /** Starts a detached `lanyard serve` (for `lanyard stdio` when no broker runs). */
  startBroker?: () => Promise<void>;
}

export interface BrokerConnection {
  info: RuntimeInfo;
  client: ControlApi;
  endpoint: HttpEndpoint;
}

/** Per-invocation helpers shared by the commands. */
export class CliContext {
  readonly io: CliIo;
  readonly env: Env;
  readonly version: string;
  readonly platform: NodeJS.Platform;
  readonly log: Logger;
  private localBroker: Promise<Broker> | undefined;
  private runtime: Promise<RuntimeLookup> | undefined;
  /** The identity profile's home (`--profile`), else the default one: what the command reads and changes. */
  readonly home: string;
  /**
   * `lanyard login --profile <new> --issuer …` creates the profile: with this set, a profile that does not exist yet is
   * made (its directory and an empty config) instead of refused.
   */
  createProfile = false;

  constructor(
    readonly deps: CliDeps,
    /** The default profile's home: the running broker's runtime file is there, whichever profile a command is for. */
    readonly rootHome: string,
    /** `--profile <name>`: the identity profile the command is for (undefined: the default one). */
    readonly identityProfile?: string | undefined,
  ) {
    this.home = identityProfile === undefined ? rootHome : identityProfileHome(rootHome, identityProfile);
    this.io = deps.io;
    this.env = deps.env;
    this.version = deps.version;
    this.platform = deps.platform ?? process.platform;
    this.log = deps.env.LANYARD_LOG_LEVEL ? createLogger() : silentLogger;
  }

  get machine(): IdeEnvironment {
    return { homedir: this.deps.homedir ?? this.env.HOME ?? homedir(), env: this.env, platform: this.platform };
  }

  get ideContext(): IdeContext {
    return { home: this.home, machine: this.machine };
  }

  /** How an IDE starts `lanyard stdio`: this Node and this script, by absolute path. */
  launcher(): StdioLauncher {
    const launcher = resolveStdioLauncher({
      // The running broker is the default profile's: an identity profile's entry adds `--profile <name>`.
      home: this.rootHome,
      env: this.env,
      platform: this.platform,
      script: this.deps.script,
      ...(this.deps.execArgv ? { execArgv: this.deps.execArgv } : {}),
    });
    return this.identityProfile === undefined ? launcher : identityLauncher(launcher, this.identityProfile);
  }

  /** Like `launcher()`, but undefined when it cannot be determined (the stdio variant is then unavailable). */
  launcherIfKnown(): StdioLauncher | undefined {
    try {
      return this.launcher();
    } catch {
      return undefined;
    }
  }

  openUrl = async (url: string): Promise<void> => {
    if (this.deps.openUrl) return this.deps.openUrl(url);
    const { openInBrowser } = await import('./open-url');
    return openInBrowser(url, { platform: this.platform, env: this.env, err: (t) => this.io.err(t) });
  };

  async confirm(question: string): Promise<boolean> {
    if (this.deps.confirm) return this.deps.confirm(question);
    if (!this.io.interactive) return false;
    const rl = createInterface({ input: this.io.stdin, output: process.stderr });
    try {
      return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
    } finally {
      rl.close();
    }
  }

  /** All of stdin (for `--client-secret-stdin`), without the final line break. */
  async readStdin(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.io.stdin as AsyncIterable<Buffer | string>)
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }

  /**
   * The default profile's `gateway.port`: where the running broker serves every profile's endpoint (an identity
   * profile's own config has no say in it).
   */
  async rootGatewayPort(): Promise<number> {
    // Loaded on demand, as in openLocal: `--help` and `stdio` never need the config store.
    const { openConfigStore } = await import('../broker/config/store');
    const config = openConfigStore(this.rootHome);
    try {
      return config.load().gateway.port;
    } finally {
      config.close();
    }
  }

  lookupRuntime(): Promise<RuntimeLookup> {
    this.runtime ??= readRuntimeFile(this.rootHome);
    return this.runtime;
  }

  /**
   * The running broker, reached with the runtime file's URL and local token, or undefined when none runs. A runtime
   * file that is not trustworthy (wrong owner or mode) is an error: the CLI never sends anything to it.
   */
  async broker(): Promise<BrokerConnection | undefined> {
    await this.ensureProfile();
    const lookup = await this.lookupRuntime();
    if (lookup.state === 'invalid') {
      throw new CliError(
        `Lanyard's runtime file is not trusted: ${lookup.problem}.`,
        `Delete ${this.rootHome}/run/broker.json; Lanyard writes a new one (0600) when it starts.`,
        ExitCode.BROKER_NOT_RUNNING,
      );
    }
    if (lookup.state !== 'running') return undefined;
    const info = lookup.info;
    if (info.version && info.version !== this.version) {
      this.io.err(`lanyard: note: the running Lanyard is version ${info.version}, this CLI is ${this.version}.\n`);
    }
    // An identity profile's control API and endpoint are the running broker's, under /p/<name>.
    const base = this.identityProfile === undefined ? info.url : `${info.url}${identityPathPrefix(this.identityProfile)}`;
    const client = createHttpControlClient({
      baseUrl: base,
      headers: { authorization: `Bearer ${info.token}` },
      ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
    });
    return { info, client, endpoint: { url: `${base}/mcp`, token: info.token } };
  }

  /**
   * Lanyard's logic in this process, for when no broker is running: the same Broker as `lanyard serve` and the tray app,
   * without its gateway. The keychain is opened on first use and the identity session and token service only when a
   * command calls `loadEngine()`, so `servers list` never touches the keychain; `status` and `login` build the engine,
   * which restores the session from the keychain without calling the IdP.
   */
  local(ide?: IdeConnectDeps): Promise<Broker> {
    if (ide) return this.openLocal(ide);
    this.localBroker ??= this.openLocal();
    return this.localBroker;
  }

  private async openLocal(ide?: IdeConnectDeps): Promise<Broker> {
    await this.ensureProfile();
    // Loaded on demand: it pulls in the config store, keychain and OIDC libraries that `--help` never needs.
    const { Broker } = await import('../broker/broker');
    const managed =
      this.identityProfile === undefined ? this.deps.managed : identityManagedPolicy(this.managedPolicy(), this.identityProfile);
    return Broker.create({
      home: this.home,
      env: this.env,
      version: this.version,
      openUrl: this.openUrl,
      // A test's injected store belongs to the default profile: another profile opens its own keychain namespace.
      secrets: this.identityProfile === undefined ? this.deps.secrets : undefined,
      managed,
      fetch: this.deps.fetch,
      log: this.log,
      ide: {
        machine: this.machine,
        launcher: () => this.launcher(),
        ...(this.identityProfile !== undefined ? { entryName: identityEntryName(this.identityProfile) } : {}),
        ...ide,
      },
      engine: 'on-demand',
      ...(this.identityProfile !== undefined ? { identityProfile: this.identityProfile } : {}),
    });
  }

  private managedPolicy(): ManagedPolicy {
    return this.deps.managed ?? createManagedPolicy({ env: this.env, platform: this.platform });
  }

  /** With `--profile`: refuses a profile that does not exist, or creates it for `login --issuer`. */
  private async ensureProfile(): Promise<void> {
    const name = this.identityProfile;
    if (name === undefined) return;
    const known = identityProfileNames(this.rootHome, this.managedPolicy());
    if (known.includes(name)) return;
    if (!this.createProfile) throw unknownProfile(name, known);
    await writePrivateFile(path.join(this.home, 'config.json'), '{\n  "version": 1\n}\n');
  }

  async close(): Promise<void> {
    if (this.localBroker) await (await this.localBroker).close();
  }
}

/** The error shape every command failure is reduced to, with its exit code. */
export function describeFailure(e: unknown): { info: ErrorInfo; exitCode: number } {
  if (e instanceof CliError) return { info: { code: ErrorCodes.INTERNAL, message: e.message, fix: e.fix }, exitCode: e.exitCode };
  const info: ErrorInfo | undefined = e instanceof LanyardError ? e.toInfo() : e instanceof ControlError ? e.info : undefined;
  if (!info) {
    const message = e instanceof Error ? e.message : String(e);
    return {
      info: {
        code: ErrorCodes.INTERNAL,
        message,
        fix: 'This is unexpected. Run `lanyard doctor` and, if it persists, report it with that output.',
      },
      exitCode: ExitCode.FAILURE,
    };
  }
  return { info, exitCode: exitCodeFor(info.code) };
}

export function exitCodeFor(code: string): number {
  switch (code) {
    case ErrorCodes.NOT_SIGNED_IN:
    case ErrorCodes.SESSION_EXPIRED:
      return ExitCode.NEEDS_ACTION;
    case ErrorCodes.BROKER_NOT_RUNNING:
      return ExitCode.BROKER_NOT_RUNNING;
    default:
      return ExitCode.FAILURE;
  }
}
