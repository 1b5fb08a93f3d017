import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Emitter } from '../../../shared/emitter';
import { markRemoteCaller } from '../remote/caller';
import { isRemoteToken, type RemoteTokenVerdict } from '../remote/devices';
import type { SecretStore } from '../secrets/secret-store';
import { silentLogger, type Logger } from '../util/log';

/**
 * The local endpoint's front-door checks (docs/protocol.md; the MCP Streamable HTTP transport's security warning,
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#security-warning).
 *
 * Anything on the machine can open a socket to 127.0.0.1, and a web page can reach it too through DNS rebinding, so
 * binding to loopback is not enough. Every request must:
 *   1. name us in `Host` (127.0.0.1, localhost or [::1] with OUR port) — a rebinding page's requests carry its own
 *      hostname there, which is what defeats the attack;
 *   2. come from no browser (`Origin` absent) or from a loopback page on our port, or from an origin the user allowed
 *      in `gateway.allowedOrigins`;
 *   3. carry `Authorization: Bearer <local token>` (256 random bits, new at every broker start and on
 *      `lanyard token rotate`) unless the route is public — or, on the MCP endpoints only, a paired remote device's
 *      token (remote/devices.ts; docs/architecture.md "Remote development"), which the control API always refuses.
 * The checks run in that order, so a rebinding request is refused for its Host/Origin before the token is looked at
 * (the dns-rebinding-protection conformance scenario would otherwise pass on a mere 401).
 *
 * SECURITY-SENSITIVE: do not relax any rule here without a test in test/unit/gateway-front-local-auth.test.ts.
 */

/** Keychain entry of the local token. */
export const LOCAL_TOKEN_SECRET_KEY = 'gateway:local_token';

/** JSON-RPC error code for "the caller is not allowed in" (MCP servers use -32001 for auth-style failures). */
export const LOCAL_AUTH_ERROR_CODE = -32001;

/**
 * `session-or-token` is the control API's level: the local token, or a dashboard session (sent as a header) that the
 * dashboard's wrapper of this guard checks (control/dashboard.ts withDashboardSessions). No cookie is accepted: cookies
 * are not isolated by port, so every server on 127.0.0.1 would receive one.
 */
export type RouteAuth = 'token' | 'session-or-token' | 'none';

/** Why a request was refused: what the HTTP layer sends back. Messages name the fix and never echo a secret. */
export interface LocalAuthRejection {
  status: 401 | 403 | 421;
  reason: 'token' | 'host' | 'origin' | 'remote-scope' | 'remote-revoked' | 'remote-unknown';
  message: string;
  headers: Record<string, string>;
}

export interface RequestGuardContext {
  /** The port the gateway actually listens on (after binding, so port 0 works in tests). */
  port: number;
  auth: RouteAuth;
  /** CORS preflight: browsers never send credentials on it, so only Host and Origin are checked. */
  preflight?: boolean;
  /** An MCP endpoint (`/mcp`, `/mcp/<id>`, `/ide/<ide>/mcp`): the only routes a remote device's token opens. */
  mcp?: boolean;
}

/** Checks a remote device's token (remote/devices.ts). */
export type RemoteTokenCheck = (token: string) => RemoteTokenVerdict;

const TOKEN_BYTES = 32;

/** 32 random bytes, base64url: 256 bits, safe in headers, config snippets and URLs. */
export function generateLocalToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * Constant-time string comparison: both sides are padded to the same length before timingSafeEqual (which throws on
 * unequal lengths), so the time depends on the lengths only, never on the content.
 */
export function tokensEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  // Pad both to the same length without branching on content; the length comparison at the end is constant-time too.
  const size = Math.max(a.length, b.length, 1);
  const pa = Buffer.alloc(size);
  const pb = Buffer.alloc(size);
  a.copy(pa);
  b.copy(pb);
  const same = timingSafeEqual(pa, pb);
  return same && a.length === b.length && expected.length > 0;
}

/**
 * tokensEqual against an expected token whose bytes are kept (the gateway checks every request against the same
 * one): one buffer per check instead of four. A presented token of another length is compared as the expected bytes
 * against themselves, so the work is the same whatever the content, and the answer is false.
 */
export function tokenMatcher(expected: string): (presented: string | undefined) => boolean {
  const b = Buffer.from(expected, 'utf8');
  return (presented) => {
    if (presented === undefined || b.length === 0) return false;
    const a = Buffer.from(presented, 'utf8');
    const sameLength = a.length === b.length;
    const same = timingSafeEqual(sameLength ? a : b, b);
    return same && sameLength;
  };
}

/** The bearer credential of an Authorization header, or undefined (any other scheme counts as none). */
export function bearerFrom(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(value);
  return m?.[1];
}

/** The Host values that mean "this gateway": loopback names with our exact port. */
export function allowedHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
}

/** The browser origins that are "this gateway's own pages" (the dashboard served from the same port). */
export function loopbackOrigins(port: number): string[] {
  return allowedHosts(port).map((h) => `http://${h}`);
}

/** allowedHosts and loopbackOrigins of the last port asked about: the guard runs on every request with the same port. */
let loopback: { port: number; hosts: readonly string[]; origins: readonly string[] } | undefined;
function loopbackOf(port: number): { hosts: readonly string[]; origins: readonly string[] } {
  if (loopback?.port !== port) loopback = { port, hosts: allowedHosts(port), origins: loopbackOrigins(port) };
  return loopback;
}

/**
 * Owns the local token: kept in the SecretStore (the OS keychain) under `gateway:local_token`, cached in memory for the
 * hot path, rotatable. Also holds the browser origins the user allowed.
 *
 * The broker opens it `fresh`: a new token at every start. The port is fixed (so IDE configs keep working), which means
 * another local user can listen on it while Lanyard is not running and collect what an HTTP-mode IDE sends; a fresh
 * token makes that capture useless once Lanyard runs again. The connector rewrites the HTTP-mode IDE configs it wrote
 * with the new token (ControlService.useLocalAuth); `lanyard stdio` reads it from the owner-checked runtime file.
 */
export class LocalAuth {
  private current: string;
  private currentMatches: (presented: string | undefined) => boolean;
  /** Bound once: check() runs on every request. */
  private readonly matchesBound = (presented: string | undefined): boolean => this.currentMatches(presented);
  private readonly secrets: SecretStore;
  private readonly origins: () => readonly string[];
  private readonly rotations: Emitter<string>;
  private remote: RemoteTokenCheck | undefined;

  private constructor(secrets: SecretStore, token: string, origins: () => readonly string[], log: Logger) {
    this.secrets = secrets;
    this.current = token;
    this.currentMatches = tokenMatcher(token);
    this.origins = origins;
    // Guarded: a listener that throws (the runtime file could not be written) is logged, never undoes the rotation.
    this.rotations = new Emitter((e) => log.warn('token rotation listener failed', { error: e }));
  }

  /**
   * Loads the local token from the store, creating and storing one on first start. With `fresh` (what the broker does
   * at every start) the token is new and NOT stored yet: the broker stores it with `save()` once it owns the port, so a
   * second broker that cannot bind leaves the running one's token in the keychain untouched.
   *
   * `allowedOrigins` is read on every request, so a config change applies without a restart. `log` hears about rotation
   * listeners that fail.
   */
  static async open(
    secrets: SecretStore,
    options: { allowedOrigins?: readonly string[] | (() => readonly string[]); fresh?: boolean; log?: Logger } = {},
  ): Promise<LocalAuth> {
    const raw = options.allowedOrigins;
    const origins = typeof raw === 'function' ? raw : () => raw ?? [];
    if (options.fresh) return new LocalAuth(secrets, generateLocalToken(), origins, options.log ?? silentLogger);
    let token = await secrets.get(LOCAL_TOKEN_SECRET_KEY);
    if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) {
      // Missing, or not something we wrote (a hand-edited store): start over with a fresh one.
      token = generateLocalToken();
      await secrets.set(LOCAL_TOKEN_SECRET_KEY, token);
    }
    return new LocalAuth(secrets, token, origins, options.log ?? silentLogger);
  }

  /** Stores the current token in the keychain (after a `fresh` open, once the gateway owns its port). */
  async save(): Promise<void> {
    await this.secrets.set(LOCAL_TOKEN_SECRET_KEY, this.current);
  }

  /** The token IDE configs and the runtime file carry. */
  get token(): string {
    return this.current;
  }

  /**
   * Replaces the token (the old one stops working at once) and stores the new one. Listeners (the runtime file) are
   * told so `lanyard stdio` picks the new one up; IDE configs written with the old token must be written again.
   */
  async rotate(): Promise<string> {
    const next = generateLocalToken();
    await this.secrets.set(LOCAL_TOKEN_SECRET_KEY, next);
    this.current = next;
    this.currentMatches = tokenMatcher(next);
    this.rotations.emit(next);
    return next;
  }

  onRotate(listener: (token: string) => void): () => void {
    return this.rotations.on(listener);
  }

  /** Constant-time check of a presented token against the current one. */
  matches(presented: string | undefined): boolean {
    return this.currentMatches(presented);
  }

  allowedOrigins(): readonly string[] {
    return this.origins();
  }

  /** Lets paired remote devices' tokens in on the MCP endpoints (the broker wires its pairing service here). */
  useRemoteTokens(check: RemoteTokenCheck | undefined): void {
    this.remote = check;
  }

  /** Runs the three checks on a request; null when it may proceed. A remote device's request is marked as its. */
  check(req: Pick<IncomingMessage, 'headers'>, context: RequestGuardContext): LocalAuthRejection | null {
    const remote = this.remote;
    // The allowed origins (read from the config) are asked for only when the request has an Origin to check. Built
    // field by field: on Node 20, adding properties to a spread copy (`{ ...context, matches }`) takes about a
    // microsecond per property (V8 leaves the copy's map off its fast path), on every request.
    const guard: GuardContext = { port: context.port, auth: context.auth, matches: this.matchesBound, allowedOrigins: this.origins };
    if (context.preflight !== undefined) guard.preflight = context.preflight;
    if (context.mcp !== undefined) guard.mcp = context.mcp;
    if (remote)
      guard.remote = (t: string) => {
        const verdict = remote(t);
        if (verdict.kind === 'ok' && context.mcp) markRemoteCaller(req, { deviceId: verdict.device.id, label: verdict.device.label });
        return verdict;
      };
    return guardRequest(req.headers, guard);
  }
}

/** What guardRequest checks a request against. */
export type GuardContext = RequestGuardContext & {
  matches: (token: string | undefined) => boolean;
  /** The configured extra origins, or a function giving them (called only for a request that has an Origin). */
  allowedOrigins: readonly string[] | (() => readonly string[]);
  remote?: RemoteTokenCheck;
};

/**
 * The guard itself, as a pure function of the headers (unit-tested as a matrix).
 *
 * `Host` must be exactly one of the loopback names with our port (case-insensitive; HTTP/1.0 requests without Host are
 * refused too). A present `Origin` must be a loopback page on our port or an allowed origin; "null" (sandboxed
 * iframes, file://) is refused.
 */
export function guardRequest(headers: IncomingHttpHeaders, context: GuardContext): LocalAuthRejection | null {
  const host = headers.host?.toLowerCase();
  if (!host || !loopbackOf(context.port).hosts.includes(host)) {
    return {
      status: 421,
      reason: 'host',
      message: `This is Lanyard's local endpoint; it only answers requests addressed to 127.0.0.1:${context.port} or localhost:${context.port} (DNS-rebinding protection). Fix: point your client at http://127.0.0.1:${context.port}/mcp.`,
      headers: {},
    };
  }
  const origin = headers.origin;
  if (origin !== undefined && !originAllowed(origin, context.port, context.allowedOrigins)) {
    return {
      status: 403,
      reason: 'origin',
      message: `Browser origin ${JSON.stringify(origin.slice(0, 100))} may not call Lanyard's local endpoint. Fix: if you trust it, add it to gateway.allowedOrigins in Lanyard's settings.`,
      headers: {},
    };
  }
  if (context.auth === 'none' || context.preflight) return null;
  const presented = bearerFrom(headers.authorization);
  if (context.matches(presented)) return null;
  if (presented !== undefined && context.remote && isRemoteToken(presented)) {
    const refused = remoteRejection(context.remote(presented), context);
    if (!refused) return null;
    return refused;
  }
  return {
    status: 401,
    reason: 'token',
    message: `Missing or wrong Lanyard local token. Fix: send "Authorization: Bearer <local token>"; run \`lanyard connect <ide>\` (or "Connect an IDE" in the dashboard) to write a config that has it, or use \`lanyard stdio\`.`,
    headers: { 'WWW-Authenticate': 'Bearer realm="lanyard"' },
  };
}

/**
 * A remote device's token: good on the MCP endpoints only. Revoked or unknown ones are told how to pair again; one
 * used on the control API (sign-in, settings, secrets, pairing approval) is refused with 403 — scope, not identity.
 */
function remoteRejection(verdict: RemoteTokenVerdict, context: RequestGuardContext): LocalAuthRejection | null {
  const pairAgain = 'run `lanyard remote pair <laptop endpoint>` on the remote side and approve the new code on the laptop';
  if (verdict.kind === 'ok') {
    if (context.mcp) return null;
    return {
      status: 403,
      reason: 'remote-scope',
      message: `A remote device's token (${verdict.device.label}) may only call Lanyard's MCP endpoints, not the control API. Fix: sign-in, settings, secrets and pairing are done on the laptop (tray, dashboard or \`lanyard\` there).`,
      headers: {},
    };
  }
  if (verdict.kind === 'revoked') {
    return {
      status: 401,
      reason: 'remote-revoked',
      message: `This remote device (${verdict.device.label}) was revoked on the laptop. Fix: ${pairAgain}.`,
      headers: { 'WWW-Authenticate': 'Bearer realm="lanyard", error="invalid_token"' },
    };
  }
  return {
    status: 401,
    reason: 'remote-unknown',
    message: `This remote token is not known to the laptop's Lanyard (it was paired with another laptop, or its pairing expired). Fix: ${pairAgain}.`,
    headers: { 'WWW-Authenticate': 'Bearer realm="lanyard", error="invalid_token"' },
  };
}

function originAllowed(origin: string, port: number, allowed: GuardContext['allowedOrigins']): boolean {
  if (loopbackOf(port).origins.includes(origin.toLowerCase())) return true;
  return (typeof allowed === 'function' ? allowed() : allowed).includes(origin);
}
