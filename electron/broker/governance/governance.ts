import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AuthPath } from '../../../shared/auth-paths';
import { ErrorCodes } from '../../../shared/errors';
import type { AggregatorActivity } from '../gateway/aggregate/core';
import { LanyardError } from '../errors';
import { writePrivateFile } from '../paths';
import { silentLogger, type Logger } from '../util/log';
import type { Admission, CallGuard, CallOutcome, GuardedCall } from './call-guard';
import { secretScanMode, type ManagedAuditConfig, type SecretScanConfig, type SecretScanMode } from './config';
import { auditDir } from './ledger/files';
import { AuditLedger, type LedgerStatus } from './ledger/ledger';
import type { CallRecordInput, LedgerUser, RecordInput, TokenRecordInput } from './ledger/record';
import type { OtlpExport, OtlpStatus } from './otlp/exporter';
import { SecretScanner, type KnownSecret, type ScanResult, type SecretFinding } from './secret-scan/scanner';
import { currentRemoteCaller } from '../remote/caller';

export interface GovernanceDeps {
  home: string;
  log?: Logger;
  /** The user's secret-scan and audit settings (config.json). */
  userSettings: () => { secretScan?: SecretScanConfig | undefined; audit?: { hashArguments?: boolean | undefined } | undefined };
  /** The managed configuration's, when one is in force. */
  managedSettings: () => { secretScan?: SecretScanConfig | undefined; audit?: ManagedAuditConfig | undefined } | undefined;
  locked: () => readonly string[];
  serverUrl: (serverId: string) => string | undefined;
  /** The server's auth path and a reference to its current grant (auth/router.ts). */
  auth: { pathOf(serverId: string): AuthPath | undefined; grantRef(serverId: string): string | undefined };
  /** The signed-in IdP user (issuer, subject, email). */
  user: () => LedgerUser | undefined;
  /** Tokens Lanyard holds in memory (IdP session, access tokens), compared by value by the secret scan. */
  heldTokens: () => string[];
  /** The activity view (and through it the tray): secret-scan warnings. */
  activity: (event: AggregatorActivity) => void;
  /** Loads the OTLP exporter (lazily: the OpenTelemetry SDK is only loaded when a collector is configured). */
  otlp?: ((options: { endpoint: string; headers: Record<string, string>; log: Logger }) => Promise<OtlpExport>) | undefined;
  /** Ledger rotation size (tests). */
  maxFileBytes?: number;
}

export interface GovernanceStatus {
  ledger: LedgerStatus;
  otlp?: OtlpStatus | undefined;
}

/** Most findings named in one message or record: the rest are counted. */
const MAX_FINDINGS = 5;
const SALT_FILE = 'args-salt';

/**
 * Governance on the call path (docs/architecture.md, "Governance"): the audit ledger, its OTLP export and the outbound
 * secret scan behind the gateway's CallGuard seam, plus the token events. Records are written only while this process
 * serves the gateway (it holds the broker lock), so two processes never write one chain.
 */
export class Governance implements CallGuard {
  private ledgerNow: AuditLedger;
  private readonly scanner: SecretScanner;
  private readonly log: Logger;
  private localToken: (() => string | undefined) | undefined;
  private otlp: OtlpExport | undefined;
  private salt: Buffer | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly deps: GovernanceDeps) {
    this.log = (deps.log ?? silentLogger).child('governance');
    this.ledgerNow = this.newLedger();
    this.scanner = new SecretScanner({ known: () => this.knownSecrets() });
  }

  get ledger(): AuditLedger {
    return this.ledgerNow;
  }

  /** Opens the ledger (and the collector export when the managed configuration names one). */
  async start(options: { localToken?: () => string | undefined } = {}): Promise<void> {
    if (this.started) return;
    if (this.stopped) this.ledgerNow = this.newLedger();
    this.localToken = options.localToken;
    await this.ledger.open();
    if (this.hashArguments()) await this.loadSalt();
    this.started = true;
    const otlp = this.deps.managedSettings()?.audit?.otlp;
    if (otlp && this.deps.otlp) {
      try {
        this.otlp = await this.deps.otlp({ endpoint: otlp.endpoint, headers: otlp.headers ?? {}, log: this.log });
      } catch (e) {
        this.log.warn('the OpenTelemetry export could not start', { error: e });
      }
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.stopped = true;
    await this.ledger.close();
    await this.otlp?.close();
    this.otlp = undefined;
  }

  /** Whether records are being made (this process serves the gateway). */
  get recording(): boolean {
    return this.started;
  }

  status(): GovernanceStatus {
    return { ledger: this.ledger.status(), ...(this.otlp ? { otlp: this.otlp.status() } : {}) };
  }

  mode(serverId: string): SecretScanMode {
    return secretScanMode(
      serverId,
      this.deps.userSettings().secretScan,
      this.deps.managedSettings()?.secretScan,
      this.deps.locked().includes('secretScan'),
    );
  }

  // ---- CallGuard ----

  admit(call: GuardedCall): Admission | Promise<Admission> {
    const admission: Admission = { call, started: performance.now() };
    // A paired remote device's call (the front door set its context): the record names the device.
    const remote = currentRemoteCaller();
    if (remote) admission.notes = { remote: remote.label };
    if (call.method !== 'tools/call' || call.arguments === undefined) return admission;
    const mode = this.mode(call.serverId);
    if (mode === 'off') return admission;
    const result = this.scanner.scan(call.arguments);
    if ('then' in result) return result.then((r) => this.decide(admission, r, mode));
    return this.decide(admission, result, mode);
  }

  settle(admission: Admission, outcome: CallOutcome, durationMs?: number): void {
    if (!this.started) return;
    try {
      this.append(this.callRecord(admission, outcome, durationMs ?? performance.now() - admission.started));
    } catch (e) {
      this.log.warn('audit record not made', { error: e });
    }
  }

  // ---- token events ----

  recordToken(input: Omit<TokenRecordInput, 'type' | 'authPath'> & { authPath?: string | undefined }): void {
    if (!this.started) return;
    const authPath = input.authPath ?? (input.server ? this.deps.auth.pathOf(input.server) : undefined);
    this.append({ type: 'token', ...input, ...(authPath ? { authPath } : {}) });
  }

  /** Waits for buffered records (tests, shutdown). */
  flush(): Promise<void> {
    return this.ledger.flush();
  }

  // ---- internals ----

  private newLedger(): AuditLedger {
    const { home, user, maxFileBytes } = this.deps;
    return new AuditLedger({ home, user, log: this.log, ...(maxFileBytes ? { maxFileBytes } : {}) });
  }

  private append(input: RecordInput): void {
    const seq = this.ledger.append(input);
    this.otlp?.export(seq, input, this.deps.user());
  }

  private decide(admission: Admission, result: ScanResult, mode: SecretScanMode): Admission {
    const { call } = admission;
    if (result.unscanned) admission.notes = { ...admission.notes, unscanned: result.unscanned };
    if (!result.findings.length) return admission;
    const findings = result.findings.slice(0, MAX_FINDINGS);
    const named = describe(result.findings);
    const tool = call.name ? ` › ${call.name}` : '';
    if (mode === 'block') {
      admission.notes = { ...admission.notes, secrets: { action: 'blocked', findings } };
      this.settle(admission, { kind: 'denied', code: ErrorCodes.SECRET_BLOCKED }, 0);
      throw new LanyardError(
        ErrorCodes.SECRET_BLOCKED,
        `Lanyard did not send this call to server "${call.serverId}": its arguments hold ${named}.`,
        'Remove the secret from the arguments and try again. If it is a false alarm, the secret scan for this server can be set to warn (Settings, or `secretScan` in config.json) unless your administrator locks it.',
        { serverId: call.serverId },
      );
    }
    admission.notes = { ...admission.notes, secrets: { action: 'warned', findings } };
    this.deps.activity({
      kind: 'tool_call',
      serverId: call.serverId,
      summary: `Secret sent to ${call.serverId}${tool}: ${named} (the secret scan warns; set it to block to stop such calls)`,
      outcome: 'error',
      error: {
        code: ErrorCodes.SECRET_SENT,
        message: `A tool call to server "${call.serverId}" carried ${named}.`,
        fix: 'Rotate that secret if the server should not have it; set the secret scan to block to stop such calls.',
        serverId: call.serverId,
      },
    });
    return admission;
  }

  private callRecord(admission: Admission, outcome: CallOutcome, ms: number): CallRecordInput {
    const { call, notes } = admission;
    const authPath = this.deps.auth.pathOf(call.serverId);
    const grant = this.deps.auth.grantRef(call.serverId);
    const secrets = notes?.secrets as CallRecordInput['secrets'];
    const unscanned = notes?.unscanned as string | undefined;
    const remote = notes?.remote as string | undefined;
    const argsHash = call.arguments !== undefined && this.hashArguments() ? this.argumentsHash(call.arguments) : undefined;
    const url = call.serverUrl ?? this.deps.serverUrl(call.serverId);
    return {
      type: 'call',
      ide: call.ide.name,
      ...(call.ide.version ? { ideVersion: call.ide.version } : {}),
      ...(remote ? { remote } : {}),
      endpoint: call.endpoint,
      ...(call.profileId ? { profile: call.profileId } : {}),
      server: call.serverId,
      ...(url ? { url } : {}),
      method: call.method,
      ...(call.name !== undefined ? { name: call.name.slice(0, 300) } : {}),
      ...(authPath ? { authPath } : {}),
      ...(grant ? { grant } : {}),
      outcome: outcome.kind,
      ...(outcome.kind !== 'ok' && outcome.code ? { code: outcome.code } : {}),
      ms: Math.round(ms * 100) / 100,
      ...(secrets ? { secrets } : {}),
      ...(unscanned ? { unscanned } : {}),
      ...(argsHash ? { argsHash } : {}),
    };
  }

  private hashArguments(): boolean {
    const managed = this.deps.managedSettings()?.audit?.hashArguments;
    return managed ?? this.deps.userSettings().audit?.hashArguments ?? false;
  }

  /** HMAC-SHA-256 of the arguments with this machine's salt: equal arguments match, but cannot be guessed back. */
  private argumentsHash(args: unknown): string | undefined {
    if (!this.salt) {
      void this.loadSalt();
      return undefined;
    }
    try {
      return createHmac('sha256', this.salt).update(JSON.stringify(args)).digest('hex').slice(0, 32);
    } catch {
      return undefined;
    }
  }

  private saltLoading: Promise<void> | undefined;
  private loadSalt(): Promise<void> {
    this.saltLoading ??= (async () => {
      const file = path.join(auditDir(this.deps.home), SALT_FILE);
      try {
        this.salt = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
        if (this.salt.length < 16) throw new Error('short salt');
      } catch {
        const salt = randomBytes(32);
        await writePrivateFile(file, salt.toString('base64url')).catch(() => undefined);
        this.salt = salt;
      }
    })();
    return this.saltLoading;
  }

  private knownSecrets(): KnownSecret[] {
    const out: KnownSecret[] = [];
    const local = this.localToken?.();
    if (local) out.push({ kind: 'Lanyard local token', value: local });
    for (const value of this.deps.heldTokens()) out.push({ kind: 'your IdP or access token', value });
    return out;
  }
}

/** "a private key at arguments.key and 2 more": kinds and paths only, never a value. */
function describe(findings: SecretFinding[]): string {
  const first = findings.slice(0, 2).map((f) => `${article(f.kind)}${f.kind} at ${f.path}`);
  const rest = findings.length - first.length;
  return `${first.join(' and ')}${rest > 0 ? ` and ${rest} more` : ''}`;
}

function article(kind: string): string {
  if (kind.startsWith('your ')) return '';
  return /^[aeiouAEIOU]/.test(kind) ? 'an ' : 'a ';
}
