import type { AuthPath } from '../../../shared/auth-paths';
import type { ControlApi } from '../../../shared/contract';
import type { ErrorCode, ErrorInfo } from '../../../shared/errors';
import type { PathProbe } from '../auth/probe';
import type { ManagedPolicy } from '../config/managed';
import type { ConfigStore } from '../config/store';
import { LanyardError, redactText } from '../errors';
import type { TokenService } from '../exchange/token-service';
import type { RuntimeLookup } from '../gateway/runtime-file';
import type { IdentitySession } from '../identity/identity-session';
import type { OAuthPath, OAuthServerRef } from '../oauth/types';
import type { SecretStore } from '../secrets/secret-store';
import type { NetworkStack } from '../net/network-stack';
import type { FetchLike } from '../util/http';
import { describeNetworkError } from '../util/network-errors';

/** One line of the report: one hop, passed, failed (with its fix) or skipped. */
export interface DoctorCheck {
  /** Stable id: `keychain`, `config`, `idp.discovery`, `server.<id>.as`, … */
  id: string;
  /** What a person reads in the first column. */
  hop: string;
  ok: boolean;
  detail: string;
  error?: ErrorInfo;
  /** Not run because an earlier hop failed or it does not apply; never counted as a failure. */
  skipped?: boolean;
}

export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
}

export interface DoctorEngine {
  identity: IdentitySession;
  tokens: TokenService;
}

/**
 * The broker's auth-path router as the doctor uses it (auth/router.ts): which path a server is on, the probe, and the
 * OAuth path. The doctor never goes through the router's fetch: that would record a path as a side effect.
 */
export interface DoctorAuth {
  pathOf(serverId: string): AuthPath | undefined;
  probe(url: string, serverId?: string): Promise<PathProbe>;
  readonly oauth: Pick<OAuthPath, 'status' | 'getToken' | 'onEvent' | 'authorizedFetch'> | undefined;
  oauthRef(serverId: string): OAuthServerRef;
  /** Whether the administrator pinned the server's path (or forbade falling back from Cross-App Access). */
  policy(server: { id: string; authPath?: AuthPath | undefined; fallback?: boolean | undefined }): {
    pinned?: AuthPath | undefined;
    allowed?: readonly AuthPath[];
  };
}

export interface DoctorOptions {
  home: string;
  /**
   * This machine is a paired remote side (WSL, SSH, a dev container) whose IDEs use a laptop's Lanyard: no identity
   * provider here is expected, not a failure (the laptop signs in).
   */
  pairedRemote?: boolean | undefined;
  config: ConfigStore;
  secrets: SecretStore;
  managed?: ManagedPolicy | undefined;
  /** The in-process engine (when no broker runs); undefined when no IdP is configured. May touch the keychain. */
  engine?: (() => Promise<DoctorEngine | undefined>) | undefined;
  /** The running broker: the hops that hold rotating tokens (sign-in, exchange, OAuth refresh) are checked through it. */
  broker?: Pick<ControlApi, 'status' | 'testServer'> | undefined;
  /** The auth-path router (in this process); without it every server is checked as a Cross-App Access server. */
  auth?: DoctorAuth | undefined;
  /** Only this server (and the hops it needs). */
  serverId?: string | undefined;
  fetch?: FetchLike;
  /** The outbound network (proxy, CA trust): the hops go through it, and each gets a line with its proxy and certificate. */
  network?: NetworkStack | undefined;
  timeoutMs?: number;
  runtime?: () => Promise<RuntimeLookup>;
  /**
   * `lanyard doctor --profile <name>`: the profile's endpoint is `/p/<name>/mcp` of the default profile's broker, whose
   * home (`rootHome`: the last start's failure) and `gateway.port` (`port`) the endpoint hop checks instead of the
   * profile's own.
   */
  identityProfile?: { name: string; rootHome: string; port: number } | undefined;
  portProbe?: (port: number) => Promise<'free' | 'in-use'>;
  now?: () => number;
}

export function err(code: ErrorCode, message: string, fix: string, serverId?: string): ErrorInfo {
  return { code, message, fix, ...(serverId ? { serverId } : {}) };
}

export function fail(id: string, hop: string, error: ErrorInfo): DoctorCheck {
  return { id, hop, ok: false, detail: error.message, error };
}

/** `fail` with the error written in place: what happened and what to do, with the server it concerns. */
export function failWith(id: string, hop: string, code: ErrorCode, message: string, fix: string, serverId?: string): DoctorCheck {
  return fail(id, hop, err(code, message, fix, serverId));
}

export function skip(id: string, hop: string, why: string): DoctorCheck {
  return { id, hop, ok: false, skipped: true, detail: `skipped: ${why}` };
}

export function pass(id: string, hop: string, detail: string): DoctorCheck {
  return { id, hop, ok: true, detail };
}

export function minutes(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m >= 120 ? `${Math.round(m / 60)} h` : `${Math.max(m, 0)} min`;
}

/** A failure's cause for a detail line: Lanyard's own message, a network error in words, or a redacted excerpt. */
export function describe(e: unknown): string {
  if (e instanceof LanyardError) return e.message;
  const network = describeNetworkError(e);
  if (network) return network;
  return e instanceof Error ? redactText(e.message).slice(0, 160) : String(e);
}
