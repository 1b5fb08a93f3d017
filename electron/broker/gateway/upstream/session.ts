import {
  Client,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type ClientCapabilities,
  type Implementation,
  type JSONRPCMessage,
  type PriorDiscovery,
  type Transport,
} from '@modelcontextprotocol/client';
import { ErrorCodes } from '../../../../shared/errors';
import { LanyardError } from '../../errors';
import type { FetchLike } from '../../util/http';
import type { Logger } from '../../util/log';
import { classifyNetworkError } from '../../util/network-errors';
import { activeCall } from './call-context';
import { classifyUpstreamError, unreachable } from './errors';
import { GuardedTransport } from './guarded-transport';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy, type UpstreamTransportKind } from './health';

/** What a session reports to its owner (the pool turns it into the server's health). */
export type UpstreamSessionEvent =
  | { type: 'connecting' }
  | { type: 'connected'; transport: UpstreamTransportKind; reconnect: boolean }
  | { type: 'succeeded' }
  | { type: 'failed'; error: LanyardError }
  | { type: 'lost'; error: LanyardError };

/**
 * Remembers, per server, which transport worked and which protocol era it speaks, so later sessions go straight to
 * them: a 2025-11-25 server is not probed with server/discover again, a 2026-07-28 one is not asked to discover again.
 */
export interface TransportMemory {
  kind?: UpstreamTransportKind | undefined;
  era?: EraMemory | undefined;
  /**
   * When the server last refused initialize to a session that preferred it (a 2026-07-28-only server): such sessions
   * go straight to 2026-07-28 for LEGACY_VERDICT_MS instead of asking again on every connect.
   */
  legacyRefusedAt?: number | undefined;
}

/** The outcome of the discover probe (the SDK's persistable verdict), and when it was learnt. */
export interface EraMemory {
  verdict: PriorDiscovery;
  at: number;
}

/**
 * A remembered 2025-11-25 verdict is trusted this long, then the server is probed again: an upgraded server keeps
 * answering initialize, so without a horizon it would stay on the old protocol forever. A stale 2026-07-28 verdict
 * needs no horizon: it fails at once, and the session probes again.
 */
export const LEGACY_VERDICT_MS = 24 * 60 * 60 * 1000;

/** Rounds of input_required one request may take before Lanyard gives up (a server asking forever is broken). */
export const MAX_INPUT_ROUNDS = 8;

export interface UpstreamSessionOptions {
  serverId: string;
  url: string;
  /** A fetch that adds the server's bearer token (TokenService.authorizedFetch). */
  fetch: FetchLike;
  /** The same, for raw exchanges on the session (`lane()`): a 2xx body may come back as a Node stream (nodeBodyOf). */
  rawFetch?: FetchLike;
  clientInfo: Implementation;
  capabilities: ClientCapabilities;
  /**
   * Speak 2025-11-25 (initialize) whenever the server offers it, even when it also speaks 2026-07-28: a 2025-11-25
   * IDE's bound session, so the server's own elicitation/sampling/roots requests, logging/setLevel and the raw lane
   * of the fast path work as with any 2025 server. Only a server that refuses initialize gets 2026-07-28 (and its
   * input_required rounds are answered through the same handlers). See docs/protocol.md, "Upstream era negotiation".
   */
  preferLegacy?: boolean;
  /** Registers handlers on each new SDK client, before it connects (they must survive a re-initialize). */
  setup?: (client: Client) => void;
  /** Runs after every successful connect, before any request uses the new client (restore log level, subscriptions). */
  onConnected?: (client: Client, reconnect: boolean) => Promise<void>;
  transportMemory: TransportMemory;
  /** While true, a lost connection is re-established in the background (with backoff) instead of on next use. */
  keepAlive?: () => boolean;
  onEvent?: (event: UpstreamSessionEvent) => void;
  /** Bound on initialize (default 30 s: a first token may need the IdP and the server's AS). */
  connectTimeoutMs?: number;
  backoff?: BackoffPolicy;
  log: Logger;
}

interface Connection {
  client: Client;
  transport: GuardedTransport;
  kind: UpstreamTransportKind;
  /** 'modern' (2026-07-28: no session, per-request `_meta`) or 'legacy' (initialize and a session). */
  era: 'modern' | 'legacy';
  /** Connected from a remembered verdict (no probe): if its first exchange fails, the verdict is forgotten. */
  fromPrior: boolean;
  /** Initialize chosen for a session that prefers 2025-11-25 (preferLegacy): says nothing of the era others should use. */
  preferred: boolean;
  /** An exchange succeeded on it (a remembered verdict that worked once is not doubted again). */
  proven: boolean;
  inflight: number;
  /** No new requests go here; closed when the last in-flight one finishes. */
  stale: boolean;
  /**
   * Its GET stream failed and that is not acted on yet: the connection was not in use (handled once it is), or no one
   * kept the session alive (handled on its next exchange once someone does; never for an IDE's plain bound session).
   */
  streamLost?: string | undefined;
  /** A GET stream opened on it: a later 404 on its GET means the server forgot the session, not "no stream here". */
  streamOpened?: boolean;
  /** Its GET stream's failure has been counted in streamFailures (once per connection, whatever the SDK retries). */
  streamCounted?: boolean;
  /** Kept without a GET stream after STREAM_FAILURE_LIMIT connections in a row could not open one: never lost for it. */
  streamless?: boolean;
}

/**
 * A connected Streamable HTTP session as a raw exchange sees it (the `/mcp` fast path): where to POST, with which
 * session headers, and the way back into the session's SDK client for the server→client traffic of that exchange.
 */
export interface UpstreamLane {
  url: string;
  fetch: FetchLike;
  sessionId: string | undefined;
  protocolVersion: string | undefined;
  /** Hands a message that arrived on a raw exchange to the session's SDK client (requests, notifications). */
  inject(message: JSONRPCMessage): void;
  /** Sends a notification on the session (e.g. notifications/cancelled for a raw request). */
  notify(notification: { method: string; params?: Record<string, unknown> }): Promise<void>;
  /** Keeps the connection open while the exchange runs; call the returned function when it is over. */
  hold(): () => void;
  /** The server answered: it is healthy. */
  succeeded(): void;
}

/** Streamable HTTP's own SSE reconnection: brief, because after it gives up the session is rebuilt with backoff. */
const STREAM_RECONNECTION = { initialReconnectionDelay: 500, maxReconnectionDelay: 2_000, reconnectionDelayGrowFactor: 2, maxRetries: 2 };

/**
 * Connections in a row whose requests work but whose GET stream fails to open (429, 5xx, the network) before a
 * keep-alive session stops setting up new ones for it: a server (or a gateway in front of it) that always fails the
 * GET would otherwise be re-initialized and re-listed forever. The session is then kept without a stream, as for a
 * server that answers 405, and list_changed comes only from the re-lists.
 */
export const STREAM_FAILURE_LIMIT = 3;

/**
 * One MCP session with one remote server, through the SDK v2 Client, created on first use:
 *   - Streamable HTTP first; when its initialize answers 404 or 405 (a 2024-11-05 server), the legacy HTTP+SSE
 *     transport, and the transport that worked is remembered for the server. Any other failure is reported as it is
 *     (falling back on every error would hide the real problem; see the backwards-compatibility section of
 *     https://modelcontextprotocol.io/specification/2025-11-25/basic/transports);
 *   - when the server forgets the session (404 on a request with our Mcp-Session-Id: restart, token rotation, idle
 *     expiry), a new session is initialized and the request retried once, transparently (the transports spec's
 *     session management: a 404 means "start a new session");
 *   - on a transport failure the connection is dropped; the next request reconnects at once, and a keep-alive
 *     session (the catalog, or one with subscriptions) reconnects in the background with exponential backoff and
 *     jitter (0.5 s → 30 s);
 *   - every error leaving `run` is a LanyardError (or the server's own JSON-RPC error), built from codes and the
 *     server id only, so no token can reach a message.
 */
export class UpstreamSession {
  readonly serverId: string;
  private current: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private everConnected = false;
  private closed = false;
  private attempt = 0;
  /** Connections in a row whose GET stream failed (see watchStream); reset when a stream opens. */
  private streamFailures = 0;
  /** The "kept without a GET stream" warning was logged (once until a stream opens again). */
  private streamlessLogged = false;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: UpstreamSessionOptions) {
    this.serverId = options.serverId;
  }

  /** True while a usable connection exists (no connect needed for the next request). */
  get connected(): boolean {
    return Boolean(this.current && !this.current.stale);
  }

  get transportKind(): UpstreamTransportKind | undefined {
    return this.current?.kind;
  }

  /** The protocol era of the live connection (undefined before the first connect). */
  get era(): 'modern' | 'legacy' | undefined {
    return this.current?.era;
  }

  /**
   * The live connection for a raw exchange, or undefined when there is none yet (or it is legacy SSE, or being
   * replaced): the caller then goes through `run`, which connects, retries and classifies.
   */
  lane(): UpstreamLane | undefined {
    const conn = this.current;
    const rawFetch = this.options.rawFetch;
    // A 2026-07-28 connection has no raw lane: its requests need the per-request `_meta` envelope, body-derived and
    // Mcp-Param headers and input_required rounds, which the SDK client does (the caller goes through `run`).
    if (!conn || conn.stale || conn.kind !== 'streamable-http' || conn.era !== 'legacy' || !rawFetch || this.closed) return undefined;
    const inner = conn.transport.inner as StreamableHTTPClientTransport;
    return {
      url: this.options.url,
      fetch: rawFetch,
      sessionId: inner.sessionId,
      protocolVersion: inner.protocolVersion,
      inject: (message) => conn.transport.onmessage?.(message),
      notify: (notification) => conn.client.notification(notification as Parameters<Client['notification']>[0]),
      hold: () => {
        conn.inflight++;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          conn.inflight--;
          this.closeIfDone(conn);
        };
      },
      succeeded: () => this.emit({ type: 'succeeded' }),
    };
  }

  /** The connected client (connecting first if needed). */
  async client(): Promise<Client> {
    return (await this.connection()).client;
  }

  /**
   * Runs one exchange on the session. `signal` is the caller's cancellation: when it fired, the rejection is passed
   * through untouched (a cancel is not a failure of the server).
   */
  async run<T>(op: (client: Client) => Promise<T>, options: { signal?: AbortSignal | undefined } = {}): Promise<T> {
    let conn = await this.connection();
    for (let retried = false; ; retried = true) {
      conn.inflight++;
      try {
        const result = await op(conn.client);
        conn.proven = true;
        this.emit({ type: 'succeeded' });
        return result;
      } catch (e) {
        if (options.signal?.aborted) throw e;
        const failure = classifyUpstreamError(this.serverId, e);
        if (conn.fromPrior && !conn.proven && !retried && (failure.kind === 'session-gone' || failure.kind === 'transport')) {
          // The remembered era may be out of date (the server was upgraded or rolled back): probe again, once.
          this.options.log.info('the remembered protocol era did not work; probing the server again', { serverId: this.serverId });
          this.options.transportMemory.era = undefined;
          conn = await this.replace(conn);
          continue;
        }
        if (failure.kind === 'session-gone' && !retried) {
          this.options.log.info('the server forgot the session; initializing a new one', { serverId: this.serverId });
          conn = await this.replace(conn);
          continue;
        }
        switch (failure.kind) {
          case 'protocol':
            // The server answered: it is healthy, and its answer is the IDE's to see.
            this.emit({ type: 'succeeded' });
            throw failure.error;
          case 'session-gone':
            throw this.dropped(conn, unreachable(this.serverId, 'forgot the new session at once (HTTP 404 twice)'));
          case 'transport':
            throw this.dropped(conn, failure.error);
          case 'timeout':
          case 'auth':
            this.emit({ type: 'failed', error: failure.error });
            throw failure.error;
        }
      } finally {
        conn.inflight--;
        this.closeIfDone(conn);
      }
    }
  }

  /** Ends the session (DELETE at the server when supported) and stops any reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const conn = this.current;
    this.current = undefined;
    const pending = this.connecting;
    if (conn) await this.shutdown(conn, true);
    // A connect in flight finishes into a closed session; open() closes what it produced.
    await pending?.catch(() => undefined);
  }

  /** Asks for a background reconnect now (e.g. keepAlive just became true for a session that lost its connection). */
  ensureAlive(): void {
    if (!this.connected) this.scheduleReconnect();
  }

  private connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(unreachable(this.serverId, 'session was closed'));
    const conn = this.current;
    // A GET stream that failed while no one kept the session alive (the catalog before its first listing) is acted on
    // once someone does: its next exchange gets a new session, which opens a stream again.
    if (conn && !conn.stale && !(conn.streamLost && this.keptAlive() && this.streamGone(conn))) return Promise.resolve(conn);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private replace(conn: Connection): Promise<Connection> {
    if (this.current === conn) {
      this.current = undefined;
      conn.stale = true;
    }
    return this.connection();
  }

  private async open(): Promise<Connection> {
    const reconnect = this.everConnected;
    this.emit({ type: 'connecting' });
    let conn: Connection;
    try {
      // Outside any IDE call: the session's GET stream must not be attributed to the call that happened to open it.
      conn = await activeCall.exit(() => this.connectWithFallback());
    } catch (e) {
      const error = errorOf(this.serverId, e);
      this.emit({ type: 'failed', error });
      if (error.transient) this.scheduleReconnect();
      throw error;
    }
    if (this.closed) {
      await this.shutdown(conn, true);
      throw unreachable(this.serverId, 'session was closed');
    }
    this.current = conn;
    this.everConnected = true;
    this.attempt = 0;
    this.options.transportMemory.kind = conn.kind;
    this.rememberEra(conn);
    if (this.options.onConnected) {
      try {
        await activeCall.exit(() => this.options.onConnected!(conn.client, reconnect));
      } catch (e) {
        // Restoring state (log level, subscriptions) is best effort; the session itself works.
        this.options.log.warn('restoring session state failed', { serverId: this.serverId, error: e });
      }
    }
    this.emit({ type: 'connected', transport: conn.kind, reconnect });
    if (conn.streamLost && this.keptAlive()) this.streamGone(conn);
    return conn;
  }

  private async connectWithFallback(): Promise<Connection> {
    const preferred = this.options.transportMemory.kind ?? 'streamable-http';
    try {
      return await this.connectWith(preferred);
    } catch (first) {
      if (!wrongTransport(first)) throw first;
      const other: UpstreamTransportKind = preferred === 'streamable-http' ? 'sse' : 'streamable-http';
      this.options.log.info('initialize answered 404/405; trying the other MCP transport', {
        serverId: this.serverId,
        tried: preferred,
        next: other,
      });
      try {
        return await this.connectWith(other);
      } catch {
        // The second transport failing says nothing new; the first answer is the one worth showing.
        throw first;
      }
    }
  }

  /**
   * Connects on one transport. Streamable HTTP negotiates the era through the SDK ('auto': server/discover first,
   * initialize when the answer is not a discover result — the SDK decides on the shape of the answer, not on one
   * error code), starting from the remembered verdict when there is one. A discover answer the SDK cannot even read
   * (not JSON, not JSON-RPC) says nothing about 2026-07-28 either, so it gets the 2025 handshake too; when that fails
   * as well, the first failure is the one reported. Legacy HTTP+SSE predates discover: initialize only.
   */
  private async connectWith(kind: UpstreamTransportKind): Promise<Connection> {
    if (kind === 'sse') return this.connectOnce(kind, undefined);
    if (this.wantsLegacyFirst()) return this.connectLegacyFirst(kind);
    const prior = this.priorVerdict();
    try {
      return await this.connectOnce(kind, prior);
    } catch (first) {
      if (prior && !authFailure(first) && !classifyNetworkError(first)) {
        // A remembered verdict the server no longer accepts: forget it and negotiate afresh. (A server that cannot be
        // reached at all says nothing about its era: that failure is reported as it is.)
        this.options.transportMemory.era = undefined;
        return this.connectWith(kind);
      }
      if (prior || !unreadableDiscover(first)) throw first;
      this.options.log.info('server/discover answered with something unreadable; trying initialize', { serverId: this.serverId });
      // When initialize fails too, its failure is the one reported: it says precisely what is wrong with the answers
      // (malformed JSON, not JSON-RPC, not MCP), as for any 2025 server.
      return await this.connectOnce(kind, { kind: 'legacy' });
    }
  }

  /**
   * A 2025-11-25 IDE's session (preferLegacy) asks for initialize first, unless the server is already known to speak
   * 2025 (the remembered verdict is 'legacy': the usual path initializes anyway) or refused initialize recently.
   * A server's discover answer cannot tell: it lists only 2026-07-28 revisions even when the server serves both.
   */
  private wantsLegacyFirst(): boolean {
    const memory = this.options.transportMemory;
    if (!this.options.preferLegacy || this.priorVerdict()?.kind === 'legacy') return false;
    return memory.legacyRefusedAt === undefined || Date.now() - memory.legacyRefusedAt > LEGACY_VERDICT_MS;
  }

  /**
   * initialize (the SDK's legacy handshake, no probe); when the server answers it with a refusal (a 2026-07-28-only
   * server says "unsupported protocol version"), the usual negotiation, and a 2026-07-28 outcome is remembered. A
   * failure that says nothing about the era (no token, the network, a timeout, the wrong transport) is reported as is.
   */
  private async connectLegacyFirst(kind: UpstreamTransportKind): Promise<Connection> {
    const memory = this.options.transportMemory;
    try {
      const conn = await this.connectOnce(kind, { kind: 'legacy' }, true);
      memory.legacyRefusedAt = undefined;
      return conn;
    } catch (first) {
      if (first instanceof LanyardError || authFailure(first) || wrongTransport(first) || classifyNetworkError(first)) throw first;
      this.options.log.info('the server refused initialize; negotiating its protocol era', { serverId: this.serverId });
      const before = memory.legacyRefusedAt;
      memory.legacyRefusedAt = Date.now();
      try {
        return await this.connectWith(kind);
      } catch (e) {
        // Nothing learnt: the next connect asks for initialize first again.
        memory.legacyRefusedAt = before;
        throw e;
      }
    }
  }

  /** The remembered verdict, when it is still worth trusting (a 2025 one for LEGACY_VERDICT_MS). */
  private priorVerdict(): PriorDiscovery | undefined {
    const era = this.options.transportMemory.era;
    if (!era) return undefined;
    if (era.verdict.kind === 'legacy' && Date.now() - era.at > LEGACY_VERDICT_MS) return undefined;
    return era.verdict;
  }

  private rememberEra(conn: Connection): void {
    if (conn.kind !== 'streamable-http' || conn.fromPrior || conn.preferred) return;
    const discover = conn.era === 'modern' ? conn.client.getDiscoverResult() : undefined;
    this.options.transportMemory.era = {
      verdict: discover ? { kind: 'modern', discover } : { kind: 'legacy' },
      at: Date.now(),
    };
    if (!discover) this.options.transportMemory.legacyRefusedAt = undefined;
  }

  private async connectOnce(kind: UpstreamTransportKind, prior: PriorDiscovery | undefined, preferred = false): Promise<Connection> {
    const url = new URL(this.options.url);
    const inner: Transport =
      kind === 'streamable-http'
        ? new StreamableHTTPClientTransport(url, { fetch: this.watchStream(() => conn), reconnectionOptions: STREAM_RECONNECTION })
        : new SSEClientTransport(url, { fetch: this.options.fetch });
    const client = new Client(this.options.clientInfo, {
      capabilities: this.options.capabilities,
      ...(kind === 'streamable-http' ? { versionNegotiation: { mode: 'auto' as const } } : {}),
      // The SDK answers input_required rounds through the handlers `setup` registers (elicitation, sampling, roots):
      // the IDE is asked exactly as a 2025 server's request would ask it. A server that keeps asking is cut off.
      inputRequired: { maxRounds: MAX_INPUT_ROUNDS },
    });
    // SDK diagnostics (late progress, unknown ids) are not failures; they may quote messages, so debug level only.
    client.onerror = (error) => this.options.log.debug('upstream client notice', { serverId: this.serverId, error });
    this.options.setup?.(client);
    // A connection kept without a GET stream is not lost when that stream fails again: its requests still work (and a
    // request that fails drops it through run()).
    const transport = new GuardedTransport(inner, (reason) => {
      if (!conn.streamless) this.lost(conn, reason);
    });
    const conn: Connection = {
      client,
      transport,
      kind,
      era: 'legacy',
      fromPrior: prior !== undefined && !preferred,
      preferred,
      proven: false,
      inflight: 0,
      stale: false,
    };
    const timeoutMs = this.options.connectTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      // The SSE transport's start() waits for the endpoint event without a bound of its own: race it.
      await Promise.race([
        client.connect(conn.transport, { timeout: timeoutMs, ...(prior ? { prior } : {}) }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(unreachable(this.serverId, `did not complete initialize within ${Math.round(timeoutMs / 1000)} s`)),
            timeoutMs,
          );
        }),
      ]);
      conn.era = client.getProtocolEra() === 'modern' ? 'modern' : 'legacy';
      return conn;
    } catch (e) {
      conn.stale = true;
      await conn.transport.close().catch(() => undefined);
      throw this.connectFailure(e, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * What a failed connect reports. The SDK wraps what went wrong during the discover probe in its own negotiation
   * error; when the cause is Lanyard's (the token service could not get a token: authorization needed, policy) or
   * the network's, that cause is the failure, exactly as it would be on initialize. A probe timeout is the connect
   * budget running out.
   */
  private connectFailure(e: unknown, timeoutMs: number): unknown {
    if (SdkError.isInstance(e) && e.code === SdkErrorCode.RequestTimeout)
      return unreachable(this.serverId, `did not complete initialize within ${Math.round(timeoutMs / 1000)} s`);
    if (!SdkError.isInstance(e) || e.code !== SdkErrorCode.EraNegotiationFailed) return e;
    let cause: unknown = (e as { cause?: unknown }).cause;
    for (let depth = 0; depth < 4 && cause !== undefined; depth++) {
      if (cause instanceof LanyardError || classifyNetworkError(cause)) return cause;
      cause = (cause as { cause?: unknown } | null)?.cause;
    }
    return e;
  }

  /**
   * The fetch of a Streamable HTTP connection, watching its GET requests: the standalone SSE stream, which carries
   * everything the server says on its own (list_changed, resources/updated, requests outside a call). The SDK opens it
   * once after initialize and, when that opening fails (the connection dropped, a stall released, a 5xx), only reports
   * the error: the session would go on working without ever hearing from the server again. For a keep-alive session
   * such a failure is a lost connection, as a stream the SDK could not re-open is (it is set up again in the
   * background), until STREAM_FAILURE_LIMIT connections in a row failed so. A 404 to a connection's first GET is a
   * server without a stream (many answer GET with a framework's default 404 instead of the transport spec's 405).
   */
  private watchStream(connOf: () => Connection): FetchLike {
    const fetch = this.options.fetch;
    return async (input, init) => {
      if ((init?.method ?? 'GET').toUpperCase() !== 'GET') return fetch(input, init);
      let response: Response;
      try {
        response = await fetch(input, init);
      } catch (e) {
        // Closing the transport aborts the stream: not a failure.
        if (!init?.signal?.aborted) this.streamFailed(connOf(), 'its GET stream could not be opened (network)');
        throw e;
      }
      // 404 once a stream was open: the server forgot the session; 5xx/429: a transient failure, as a dropped
      // connection is. A 404 before any stream opened, and any other refusal (405: the server offers no GET stream,
      // which the transport spec allows), is the server's choice: a new session would be refused the same way.
      const status = response.status;
      const conn = connOf();
      if (response.ok) {
        conn.streamOpened = true;
        this.streamFailures = 0;
        this.streamlessLogged = false;
      } else if ((status === 404 && conn.streamOpened) || status === 429 || status >= 500) {
        this.streamFailed(conn, `its GET stream failed (HTTP ${status})`);
      }
      return response;
    };
  }

  private keptAlive(): boolean {
    return this.options.keepAlive?.() ?? false;
  }

  private streamFailed(conn: Connection, reason: string): void {
    if (conn.stale || conn.streamless) return;
    if (!conn.streamCounted) {
      conn.streamCounted = true;
      this.streamFailures++;
    }
    conn.streamLost = reason;
    // A session no one keeps alive (an IDE's bound session without subscriptions) has no one listening between calls:
    // setting it up again would only cost the server its session state (a new Mcp-Session-Id) on the next call.
    if (this.keptAlive() && this.current === conn) this.streamGone(conn);
  }

  /**
   * Acts on the GET stream failure of a keep-alive session's connection: a lost connection, unless
   * STREAM_FAILURE_LIMIT connections in a row failed so (then it is kept without a stream, and the fact logged once).
   * True when the connection was given up.
   */
  private streamGone(conn: Connection): boolean {
    const reason = conn.streamLost;
    conn.streamLost = undefined;
    if (reason === undefined) return false;
    if (this.streamFailures >= STREAM_FAILURE_LIMIT) {
      conn.streamless = true;
      if (!this.streamlessLogged) {
        this.streamlessLogged = true;
        this.options.log.warn('the server keeps failing its GET stream; keeping the session without it (changes arrive with re-lists)', {
          serverId: this.serverId,
          reason,
          connections: this.streamFailures,
        });
      }
      return false;
    }
    // Each new session opens fine (which resets the backoff) when only its GET stream fails: the backoff goes on
    // growing with the stream's failures instead, so such a server is not re-initialized twice a second.
    this.attempt = Math.max(this.attempt, this.streamFailures - 1);
    this.lost(conn, reason);
    return true;
  }

  /** The SDK reported the connection gone while idle (GET stream could not be re-opened, SSE stream closed). */
  private lost(conn: Connection, reason: string): void {
    if (this.current !== conn || this.closed) return;
    this.options.log.info('upstream connection lost', { serverId: this.serverId, reason });
    this.current = undefined;
    conn.stale = true;
    this.closeIfDone(conn);
    this.emit({ type: 'lost', error: unreachable(this.serverId, 'lost its connection') });
    this.scheduleReconnect();
  }

  private dropped(conn: Connection, error: LanyardError): LanyardError {
    if (this.current === conn) {
      this.current = undefined;
      conn.stale = true;
    }
    this.emit({ type: 'failed', error });
    this.scheduleReconnect();
    return error;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer || !(this.options.keepAlive?.() ?? false)) return;
    const delay = backoffDelay(this.attempt++, this.options.backoff ?? DEFAULT_BACKOFF);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed || this.connected) return;
      // A failure reschedules itself from open().
      this.connection().catch(() => undefined);
    }, delay);
    this.reconnectTimer.unref?.();
  }

  private closeIfDone(conn: Connection): void {
    if (conn.stale && conn.inflight === 0 && this.current !== conn) void this.shutdown(conn, false);
  }

  private async shutdown(conn: Connection, terminate: boolean): Promise<void> {
    conn.stale = true;
    if (terminate && conn.kind === 'streamable-http') {
      // Tell the server it can free the session; bounded, because a dead server must not hold up shutdown.
      await Promise.race([conn.transport.terminateSession().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref?.())]);
    }
    await conn.client.close().catch(() => undefined);
  }

  private emit(event: UpstreamSessionEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch (e) {
      this.options.log.error('session event listener failed', { serverId: this.serverId, error: e });
    }
  }
}

/** Credentials failed: negotiating again would not help (and would ask the AS twice). */
function authFailure(e: unknown): boolean {
  if (e instanceof LanyardError) return !e.transient;
  return SdkHttpError.isInstance(e) && (e.status === 401 || e.status === 403);
}

/**
 * The SDK could not use the discover answer at all (a body that is not JSON, not JSON-RPC, a connection closed on
 * it): its verdict is an error, but a broken answer to an unknown method is also what some 2025 servers give, so
 * initialize gets its turn. Failures that would meet initialize the same way never get here: connectFailure has
 * already turned a token or network failure into that failure, and a 5xx is an SdkHttpError.
 */
function unreadableDiscover(e: unknown): boolean {
  return SdkError.isInstance(e) && e.code === SdkErrorCode.EraNegotiationFailed && !SdkHttpError.isInstance(e);
}

/** 404/405 to initialize: the URL does not speak Streamable HTTP (or, the other way round, legacy SSE). */
function wrongTransport(e: unknown): boolean {
  if (SdkHttpError.isInstance(e)) return e.status === 404 || e.status === 405;
  const code = (e as { code?: unknown } | null)?.code;
  return code === 404 || code === 405;
}

function errorOf(serverId: string, e: unknown): LanyardError {
  const failure = classifyUpstreamError(serverId, e);
  if (failure.kind === 'session-gone') {
    return new LanyardError(
      ErrorCodes.SERVER_UNREACHABLE,
      `Server "${serverId}" answered HTTP 404 at its MCP URL.`,
      "Check the server URL in Lanyard's settings (it must be the MCP endpoint itself, e.g. https://mcp.example.com/mcp).",
      { serverId },
    );
  }
  return failure.kind === 'protocol' ? unreachable(serverId, 'refused to initialize', e) : failure.error;
}
