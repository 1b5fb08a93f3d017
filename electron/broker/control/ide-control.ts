import { homedir } from 'node:os';
import path from 'node:path';
import type { ConnectIdeResult, DisconnectIdeResult, IdeName, RotateLocalTokenResult } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import type { ActivityLog } from '../activity/activity-log';
import type { ConfigStore } from '../config/store';
import { LanyardError } from '../errors';
import { LocalAuth } from '../gateway/local-auth';
import { connectIde, disconnectIde, refreshHttpConnections } from '../ide/connector';
import { resolveStdioLauncher } from '../ide/launcher';
import { IDE_TARGETS, type HttpEndpoint, type IdeEnvironment, type StdioLauncher } from '../ide/targets';
import type { SecretStore } from '../secrets/secret-store';
import type { Logger } from '../util/log';

/** What `connectIde` / `disconnectIde` need beyond the config; every field has a default. */
export interface IdeConnectDeps {
  /** Lanyard's home, where the connection ledger lives. Default: the config file's directory. */
  home?: string;
  /** The user's machine. Default: `os.homedir()`, `process.env`, `process.platform`. */
  machine?: IdeEnvironment;
  /**
   * How IDEs start `lanyard stdio`. Default: this interpreter and the running `lanyard` script (the CLI and `lanyard
   * serve`). The Electron app passes its bundled CLI, run with ELECTRON_RUN_AS_NODE=1.
   */
  launcher?: () => StdioLauncher;
  /** The local endpoint and its token. Default: the running gateway's port (else gateway.port) and the keychain's token. */
  endpoint?: () => Promise<HttpEndpoint>;
  /** The entry's name in IDE files (default `lanyard`; an identity profile's is `lanyard-<profile>`). */
  entryName?: string | undefined;
}

export interface IdeControlDeps {
  /** Its path places the connection ledger; its gateway.port is the endpoint's port while no gateway runs. */
  config: ConfigStore;
  /** Holds the local token while no gateway runs. */
  secrets: SecretStore;
  activity: ActivityLog;
  /** The running gateway's port (absent while it is not started). */
  gateway: () => { port: number } | undefined;
  ide?: IdeConnectDeps | undefined;
  log: Logger;
}

/** The control methods that connect IDEs to Lanyard, and the local token their HTTP-mode entries hold. */
export class IdeControl {
  private localAuth: LocalAuth | undefined;

  constructor(private readonly deps: IdeControlDeps) {}

  /**
   * Writes the IDE's user-level MCP config so it reaches Lanyard (ide/connector.ts): the HTTP endpoint with the local
   * token, or `lanyard stdio` by absolute path. The result carries the masked snippet and the IDE's install link, never
   * the token itself.
   */
  async connectIde(input: { ide: IdeName; stdio?: boolean | undefined }): Promise<ConnectIdeResult> {
    const target = IDE_TARGETS[input.ide];
    // stdio unless HTTP is asked for: the stdio entry holds no token and cannot be squatted (SECURITY.md).
    const http = input.stdio === false && target.supportsHttp;
    let launcher: StdioLauncher | undefined;
    try {
      launcher = this.deps.ide?.launcher?.() ?? resolveStdioLauncher({ home: this.ideHome() });
    } catch (e) {
      // Only the stdio entry needs it; for HTTP it just feeds the optional install link.
      if (!http) throw e;
    }
    const endpoint = http ? await (this.deps.ide?.endpoint ?? (() => this.localEndpoint()))() : undefined;
    const outcome = await connectIde(
      input.ide,
      { transport: http ? 'http' : 'stdio', endpoint, launcher },
      { home: this.ideHome(), machine: this.ideMachine(), entryName: this.deps.ide?.entryName },
    );
    this.deps.activity.record({
      kind: 'ide',
      summary: outcome.changed
        ? `Connected ${outcome.displayName} to Lanyard (${outcome.transport}): ${outcome.configPath}`
        : `${outcome.displayName} was already connected (${outcome.configPath})`,
      outcome: 'ok',
    });
    return {
      ide: outcome.ide,
      configPath: outcome.configPath,
      ...(outcome.backupPath ? { backupPath: outcome.backupPath } : {}),
      changed: outcome.changed,
      ...(outcome.deepLink ? { deepLink: outcome.deepLink } : {}),
      snippet: outcome.snippet,
      transport: outcome.transport,
      created: outcome.created,
      reloadHint: outcome.reloadHint,
    };
  }

  /** Undoes `connectIde`: the file back byte for byte when untouched since, otherwise only Lanyard's entry removed. */
  async disconnectIde(input: { ide: IdeName }): Promise<DisconnectIdeResult> {
    // The keychain holds the API keys taken out of the backup (ide/credentials.ts): the restore puts them back.
    const outcome = await disconnectIde(input.ide, {
      home: this.ideHome(),
      machine: this.ideMachine(),
      secrets: this.deps.secrets,
      entryName: this.deps.ide?.entryName,
    });
    if (outcome.changed)
      this.deps.activity.record({ kind: 'ide', summary: `Disconnected ${outcome.displayName}: ${outcome.detail}`, outcome: 'info' });
    return {
      ide: outcome.ide,
      configPath: outcome.configPath,
      changed: outcome.changed,
      action: outcome.action,
      ...(outcome.backupPath ? { backupPath: outcome.backupPath } : {}),
      detail: outcome.detail,
    };
  }

  /**
   * The running gateway's LocalAuth. Its token is new at every start (see LocalAuth), so the HTTP-mode IDE configs
   * Lanyard wrote are rewritten with it now; `rotateLocalToken` then rotates this one. Returns the detach function.
   */
  useLocalAuth(auth: LocalAuth): () => void {
    this.localAuth = auth;
    void this.rewriteIdeTokens().catch((e: unknown) =>
      this.deps.log.warn('IDE configs not rewritten with the new local token', { error: e }),
    );
    return () => {
      if (this.localAuth === auth) this.localAuth = undefined;
    };
  }

  /**
   * `lanyard token rotate`: a new local token at once (the running gateway's, or the keychain's when none runs), then
   * the HTTP-mode IDE configs rewritten with it. IDEs using `lanyard stdio` need nothing.
   */
  async rotateLocalToken(): Promise<RotateLocalTokenResult> {
    if (this.localAuth) await this.localAuth.rotate();
    else await (await LocalAuth.open(this.deps.secrets)).rotate();
    this.deps.activity.record({ kind: 'session', summary: 'Local token rotated', outcome: 'info' });
    return this.rewriteIdeTokens();
  }

  private async rewriteIdeTokens(): Promise<RotateLocalTokenResult> {
    const ctx = { home: this.ideHome(), machine: this.ideMachine(), entryName: this.deps.ide?.entryName };
    const result = await refreshHttpConnections(() => this.httpEndpoint(), ctx);
    for (const r of result.rewritten)
      this.deps.activity.record({ kind: 'ide', summary: `Wrote the new local token into ${r.configPath}`, outcome: 'info' });
    for (const f of result.failed)
      this.deps.activity.record({ kind: 'ide', summary: `Could not write the new local token into ${f.configPath}`, outcome: 'error' });
    return result;
  }

  private async httpEndpoint(): Promise<HttpEndpoint> {
    const gateway = this.deps.gateway();
    if (this.localAuth && gateway) return { url: `http://127.0.0.1:${gateway.port}/mcp`, token: this.localAuth.token };
    return (this.deps.ide?.endpoint ?? (() => this.localEndpoint()))();
  }

  private ideHome(): string {
    return this.deps.ide?.home ?? path.dirname(this.deps.config.path);
  }

  private ideMachine(): IdeEnvironment {
    return this.deps.ide?.machine ?? { homedir: homedir(), env: process.env, platform: process.platform };
  }

  /** The gateway's port (else the configured one) and the local token from the keychain (created on first use). */
  private localEndpoint(): Promise<HttpEndpoint> {
    return localEndpoint(this.deps.gateway()?.port ?? this.deps.config.load().gateway.port, this.deps.secrets);
  }
}

/**
 * The HTTP entry's endpoint when no gateway object is at hand: `port` (the running gateway's, else gateway.port) and
 * the local token from the keychain (created on first use). Shared by the control service and `lanyard import`.
 */
export async function localEndpoint(port: number, secrets: SecretStore): Promise<HttpEndpoint> {
  if (!port) {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      'The local endpoint has no fixed port (gateway.port is 0).',
      'Set gateway.port to a fixed port, or use the default stdio entry (drop `--http`; "stdio" in the dashboard), which needs no port.',
    );
  }
  let auth: LocalAuth;
  try {
    auth = await LocalAuth.open(secrets);
  } catch (e) {
    // The HTTP entry needs the local token from the keychain; the stdio entry needs nothing from it.
    if (e instanceof LanyardError && e.code === ErrorCodes.KEYCHAIN_UNAVAILABLE) {
      throw new LanyardError(
        e.code,
        e.message,
        `${e.fix} Or use the default stdio entry (drop \`--http\`; "stdio" in the dashboard), which puts no token in the IDE's file.`,
        { cause: e },
      );
    }
    throw e;
  }
  return { url: `http://127.0.0.1:${port}/mcp`, token: auth.token };
}
