import type {
  Client,
  ClientCapabilities,
  Implementation,
  LoggingLevel,
  McpSubscription,
  Progress,
  ResultTypeMap,
  StandardSchemaV1,
  Tool,
} from '@modelcontextprotocol/client';
import type { Logger } from '../../util/log';
import { activeCall, Deadline, forwardFor, track, type ActiveCall, type DownstreamTarget } from './call-context';
import { CATALOG_KINDS, type CatalogKind } from './catalog';
import { unreachable } from './errors';
import type { UpstreamLane, UpstreamSession } from './session';

/** Requests an IDE session can send to one server through its bound session. */
export type ForwardedMethod =
  'tools/call' | 'prompts/get' | 'resources/read' | 'completion/complete' | 'resources/subscribe' | 'resources/unsubscribe';

/**
 * The tasks extension's requests (2026-07-28, `io.modelcontextprotocol/tasks`), sent with a result schema: the SDK
 * has no typed surface for them (gateway/mcp-2026/tasks.ts).
 */
export type TaskMethod = 'tasks/get' | 'tasks/update' | 'tasks/cancel';

/** An IDE session as the upstream side sees it: where its unsolicited traffic goes, and what it can answer. */
export interface DownstreamPeer extends DownstreamTarget {
  readonly id: string;
  /** The IDE's capabilities from its initialize: bound sessions declare exactly these (never more). */
  readonly capabilities: ClientCapabilities;
  readonly clientName: string;
  /**
   * The era the IDE itself speaks. A 2025-11-25 IDE (absent) gets 2025-11-25 bound sessions whenever the server
   * offers it; a 2026-07-28 IDE ('modern') gets whatever the server negotiates (2026-07-28 when offered).
   */
  readonly era?: 'modern' | undefined;
}

/** How a session to one server is set up: what it declares, and the hooks its owner needs. */
export interface SessionSpec {
  capabilities: ClientCapabilities;
  clientInfo?: Implementation;
  /** initialize whenever the server offers it (UpstreamSessionOptions.preferLegacy). */
  preferLegacy?: boolean;
  setup?: (client: Client) => void;
  onConnected?: (client: Client, reconnect: boolean) => Promise<void>;
  keepAlive?: () => boolean;
}

/**
 * The part of the pool a BoundPeer uses (the pool passes its own): sessions to configured servers, carrying the
 * server's token, and the place to report a list_changed. Nothing else of the pool is reachable from an IDE session.
 */
export interface BoundSessionFactory {
  /** Throws SERVER_UNKNOWN when the server is not (or no longer) configured. */
  createSession(serverId: string, spec: SessionSpec): UpstreamSession;
  listChanged(serverId: string, kind: CatalogKind): void;
  /** The server's tool as last listed (a 2026-07-28 call mirrors its `x-mcp-header` arguments into Mcp-Param headers). */
  tool?(serverId: string, name: string): Tool | undefined;
  warn: Logger['warn'];
}

interface RequestOptions {
  signal: AbortSignal;
  target: DownstreamTarget;
  onprogress?: ((progress: Progress) => Promise<void> | void) | undefined;
  /**
   * A 2026-07-28 server's `input_required` result comes back as is instead of being fulfilled here (the 2026-07-28
   * IDE endpoint relays it to the IDE: gateway/mcp-2026). No effect on a 2025-11-25 session.
   */
  allowInputRequired?: boolean;
}

/** The SDK's own per-request timer is replaced by Deadline (it cannot pause while the IDE answers). */
const NO_SDK_TIMEOUT = 24 * 60 * 60 * 1000;

/** What a bound session declares: the IDE's own capabilities for server→client requests, and nothing else. */
export function mirrorCapabilities(ide: ClientCapabilities): ClientCapabilities {
  return {
    ...(ide.elicitation ? { elicitation: ide.elicitation } : {}),
    ...(ide.sampling ? { sampling: ide.sampling } : {}),
    ...(ide.roots ? { roots: ide.roots } : {}),
  };
}

/** `<server>/<logger>`: the IDE can tell which server a log message came from. */
export function prefixLogger(serverId: string, logger: string | undefined): string {
  return logger ? `${serverId}/${logger}` : serverId;
}

/**
 * One IDE session's view of the pool: its bound upstream sessions (one per server, created on first use), its log
 * level and its resource subscriptions, which are restored on every new upstream session.
 */
export class BoundPeer {
  private readonly sessions = new Map<string, UpstreamSession>();
  /** Calls in flight per server: the fallback route for traffic that arrives outside any call's stream. */
  private readonly inflight = new Map<string, Set<ActiveCall>>();
  /** Per server: fast-path calls connecting its bound session (connectLane), which keep it from being closed as idle. */
  private readonly connecting = new Map<string, number>();
  private readonly subscriptions = new Map<string, Set<string>>();
  /** Per server on a 2026-07-28 connection: the subscriptions/listen stream carrying this IDE session's resource URIs. */
  private readonly listens = new Map<string, McpSubscription>();
  /** When each server's bound session was last used (for closing idle ones). */
  private readonly lastUsed = new Map<string, number>();
  private logLevel: LoggingLevel | undefined;
  private closed = false;

  constructor(
    private readonly factory: BoundSessionFactory,
    readonly peer: DownstreamPeer,
    private readonly options: { clientInfo: Implementation; requestTimeoutMs: number; now: () => number; onClosed: () => void },
  ) {}

  /**
   * Sends one request to a server on this IDE session's bound session. `target` is the IDE request it serves (where
   * related server→client traffic goes); `onprogress` receives the server's progress.
   */
  async request<M extends ForwardedMethod>(
    serverId: string,
    method: M,
    params: Record<string, unknown>,
    options: RequestOptions,
  ): Promise<ResultTypeMap[M]>;
  async request(
    serverId: string,
    method: TaskMethod,
    params: Record<string, unknown>,
    options: RequestOptions & { resultSchema: StandardSchemaV1<unknown, Record<string, unknown>> },
  ): Promise<Record<string, unknown>>;
  async request(
    serverId: string,
    method: ForwardedMethod | TaskMethod,
    params: Record<string, unknown>,
    options: RequestOptions & { resultSchema?: StandardSchemaV1<unknown, Record<string, unknown>> },
  ): Promise<unknown> {
    const session = this.session(serverId);
    const deadline = new Deadline(this.options.requestTimeoutMs);
    const call: ActiveCall = { target: options.target, deadline, pending: new Set() };
    const signal = AbortSignal.any([options.signal, deadline.signal]);
    let calls = this.inflight.get(serverId);
    if (!calls) this.inflight.set(serverId, (calls = new Set()));
    calls.add(call);
    this.lastUsed.set(serverId, this.options.now());
    try {
      const result = await activeCall.run(call, () =>
        session.run(
          (client) => {
            const requestOptions = {
              signal,
              timeout: NO_SDK_TIMEOUT,
              ...(options.allowInputRequired ? { allowInputRequired: true } : {}),
              // Always asked for: progress is what restarts the deadline of a long-running call.
              onprogress: (progress: Progress) => {
                deadline.reset();
                track(call, options.onprogress?.(progress));
              },
            };
            if (method === 'tools/call' && client.getProtocolEra() === 'modern') {
              // callTool, not a bare request: on 2026-07-28 it adds the Mcp-Param headers the tool's schema declares.
              const name = typeof params.name === 'string' ? params.name : '';
              const toolDefinition = this.factory.tool?.(serverId, name);
              return client.callTool(params as Parameters<Client['callTool']>[0], {
                ...requestOptions,
                ...(toolDefinition ? { toolDefinition } : {}),
              });
            }
            if (options.resultSchema) return client.request({ method, params }, options.resultSchema, requestOptions);
            return client.request({ method: method as ForwardedMethod, params }, requestOptions);
          },
          { signal },
        ),
      );
      // Progress and log messages the server sent before its answer go out first, on the same stream.
      await Promise.allSettled([...call.pending]);
      return result;
    } catch (e) {
      if (deadline.expired && !options.signal.aborted) {
        throw unreachable(
          serverId,
          `did not answer ${method} within ${Math.round(this.options.requestTimeoutMs / 1000)} s (without progress)`,
        );
      }
      throw e;
    } finally {
      deadline.clear();
      calls.delete(call);
      this.lastUsed.set(serverId, this.options.now());
    }
  }

  /**
   * `lane`, for a server whose bound session was never connected: connects it first (so the first call of an IDE
   * session takes the fast path too). Undefined when the session is connected already without a lane (2026-07-28,
   * legacy SSE: connecting again would not change that) or the connection has none.
   */
  async connectLane(serverId: string): Promise<ReturnType<BoundPeer['lane']>> {
    if (this.closed || this.sessions.get(serverId)?.connected) return this.lane(serverId);
    const session = this.session(serverId);
    // In use while it connects: closing idle sessions must not take it away meanwhile.
    this.connecting.set(serverId, (this.connecting.get(serverId) ?? 0) + 1);
    try {
      await session.client();
    } finally {
      this.connecting.set(serverId, this.connecting.get(serverId)! - 1);
      this.lastUsed.set(serverId, this.options.now());
    }
    return this.lane(serverId);
  }

  /** The budget of one call without progress (the fast path applies it as `request` does). */
  get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }

  /**
   * The server's bound session as a raw lane, when it is connected (else undefined: `request` connects first), and
   * `track`, which counts a raw call as in flight — for routing, idle closing and keeping its connection — until the
   * function it returns is called.
   */
  lane(serverId: string): { lane: UpstreamLane; track(call: ActiveCall): () => void } | undefined {
    if (this.closed) return undefined;
    const lane = this.sessions.get(serverId)?.lane();
    if (!lane) return undefined;
    return {
      lane,
      track: (call) => {
        let calls = this.inflight.get(serverId);
        if (!calls) this.inflight.set(serverId, (calls = new Set()));
        const set = calls;
        set.add(call);
        this.lastUsed.set(serverId, this.options.now());
        const release = lane.hold();
        return () => {
          set.delete(call);
          this.lastUsed.set(serverId, this.options.now());
          release();
        };
      },
    };
  }

  /** Closes bound sessions unused for `idleMs` that hold no subscription and no call; they come back on next use. */
  async closeIdle(idleMs: number, now: number): Promise<void> {
    const idle = [...this.sessions.keys()].filter(
      (id) =>
        now - (this.lastUsed.get(id) ?? 0) >= idleMs &&
        !this.inflight.get(id)?.size &&
        !this.subscriptions.get(id)?.size &&
        !this.connecting.get(id),
    );
    await Promise.all(
      idle.map((id) => {
        const session = this.sessions.get(id);
        this.sessions.delete(id);
        return session?.close();
      }),
    );
  }

  /** logging/setLevel from the IDE: applied to every bound session now, and to each new one when it connects. */
  async setLogLevel(level: LoggingLevel): Promise<void> {
    this.logLevel = level;
    await Promise.all(
      [...this.sessions.values()]
        .filter((s) => s.connected)
        .map((s) =>
          s
            .run(async (client) => {
              if (client.getProtocolEra() !== 'modern' && client.getServerCapabilities()?.logging) await client.setLoggingLevel(level);
            })
            .catch((e: unknown) => this.factory.warn('setting the log level upstream failed', { serverId: s.serverId, error: e })),
        ),
    );
  }

  /** resources/subscribe: remembered so it can be restored on a new upstream session. */
  async subscribe(serverId: string, uri: string, signal: AbortSignal, target: DownstreamTarget): Promise<void> {
    let uris = this.subscriptions.get(serverId);
    if (!uris) this.subscriptions.set(serverId, (uris = new Set()));
    uris.add(uri);
    try {
      if ((await this.eraOf(serverId)) === 'modern') await this.session(serverId).run((client) => this.listenResources(serverId, client));
      else await this.request(serverId, 'resources/subscribe', { uri }, { signal, target });
    } catch (e) {
      uris.delete(uri);
      throw e;
    }
    // With a subscription, a lost connection must come back by itself, or updates would silently stop.
    this.sessions.get(serverId)?.ensureAlive();
  }

  async unsubscribe(serverId: string, uri: string, signal: AbortSignal, target: DownstreamTarget): Promise<void> {
    this.subscriptions.get(serverId)?.delete(uri);
    if ((await this.eraOf(serverId)) === 'modern') await this.session(serverId).run((client) => this.listenResources(serverId, client));
    else await this.request(serverId, 'resources/unsubscribe', { uri }, { signal, target });
  }

  /** The era of the server's bound session, connecting it first. */
  private async eraOf(serverId: string): Promise<'modern' | 'legacy'> {
    const client = await this.session(serverId).client();
    return client.getProtocolEra() === 'modern' ? 'modern' : 'legacy';
  }

  /**
   * 2026-07-28 has no resources/subscribe: resource updates come on a subscriptions/listen stream naming the URIs.
   * The stream is replaced whenever this IDE session's set of URIs at the server changes (closed when it is empty).
   */
  private async listenResources(serverId: string, client: Client): Promise<void> {
    const uris = [...(this.subscriptions.get(serverId) ?? [])];
    const previous = this.listens.get(serverId);
    this.listens.delete(serverId);
    await previous?.close().catch(() => undefined);
    if (!uris.length || this.closed) return;
    const subscription = await client.listen({ resourceSubscriptions: uris });
    this.listens.set(serverId, subscription);
    void subscription.closed.then((how) => {
      if (this.listens.get(serverId) !== subscription) return;
      this.listens.delete(serverId);
      // The server or the network ended it: open it again (the session reconnects first when it has to).
      if (how !== 'local' && !this.closed)
        void this.session(serverId)
          .run((c) => this.listenResources(serverId, c))
          .catch((e: unknown) => this.factory.warn('re-opening resource subscriptions failed', { serverId, error: e }));
    });
  }

  isSubscribed(serverId: string, uri: string): boolean {
    return this.subscriptions.get(serverId)?.has(uri) ?? false;
  }

  /** notifications/roots/list_changed from the IDE, passed to every connected bound session. */
  rootsChanged(): void {
    for (const session of this.sessions.values()) {
      if (!session.connected) continue;
      void session
        .client()
        .then((c) => c.sendRootsListChanged())
        .catch(() => undefined);
    }
  }

  /** The server was removed or its URL changed. */
  async closeServer(serverId: string): Promise<void> {
    const session = this.sessions.get(serverId);
    this.sessions.delete(serverId);
    this.subscriptions.delete(serverId);
    const listen = this.listens.get(serverId);
    this.listens.delete(serverId);
    await listen?.close().catch(() => undefined);
    await session?.close();
  }

  /** Closes the bound sessions but keeps the peer usable (sign-out: new sessions come with the next user's tokens). */
  async closeAll(): Promise<void> {
    const sessions = [...this.sessions.values()];
    const listens = [...this.listens.values()];
    this.sessions.clear();
    this.subscriptions.clear();
    this.listens.clear();
    await Promise.all(listens.map((l) => l.close().catch(() => undefined)));
    await Promise.all(sessions.map((s) => s.close()));
  }

  /** The IDE session ended. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeAll();
    this.options.onClosed();
  }

  private session(serverId: string): UpstreamSession {
    if (this.closed) throw unreachable(serverId, 'session was closed (the IDE disconnected)');
    let session = this.sessions.get(serverId);
    if (session) return session;
    const capabilities = mirrorCapabilities(this.peer.capabilities);
    session = this.factory.createSession(serverId, {
      capabilities,
      clientInfo: { ...this.options.clientInfo, title: `Lanyard for ${this.peer.clientName}`.slice(0, 100) },
      preferLegacy: this.peer.era !== 'modern',
      setup: (client) => this.setup(serverId, client, capabilities),
      onConnected: async (client) => {
        if (client.getProtocolEra() === 'modern') {
          // No log level to restore (logging/setLevel is a 2025 request); resource URIs go on a listen stream.
          if (this.subscriptions.get(serverId)?.size) await this.listenResources(serverId, client);
          return;
        }
        const caps = client.getServerCapabilities() ?? {};
        if (this.logLevel && caps.logging) await client.setLoggingLevel(this.logLevel);
        for (const uri of this.subscriptions.get(serverId) ?? []) {
          await client.subscribeResource({ uri }).catch((e: unknown) => this.factory.warn('re-subscribing failed', { serverId, error: e }));
        }
      },
      keepAlive: () => !this.closed && (this.subscriptions.get(serverId)?.size ?? 0) > 0,
    });
    this.sessions.set(serverId, session);
    return session;
  }

  /** Where traffic of this server goes when it arrived outside a call's context: the only call in flight, else the session. */
  private route(serverId: string): ActiveCall | undefined {
    const store = activeCall.getStore();
    if (store) return store;
    const calls = this.inflight.get(serverId);
    return calls?.size === 1 ? calls.values().next().value : undefined;
  }

  private setup(serverId: string, client: Client, capabilities: ClientCapabilities): void {
    // Handlers exist only for what was declared (the SDK refuses others): a server cannot ask the IDE for more than
    // the IDE offered.
    const paused = async <T>(run: (target: DownstreamTarget) => Promise<T>): Promise<T> => {
      const call = this.route(serverId);
      call?.deadline.pause();
      try {
        return await run(call?.target ?? this.peer);
      } finally {
        call?.deadline.resume();
      }
    };
    if (capabilities.elicitation)
      client.setRequestHandler('elicitation/create', (request, ctx) => paused((t) => t.elicit(request.params, ctx.mcpReq.signal)));
    if (capabilities.sampling)
      client.setRequestHandler('sampling/createMessage', (request, ctx) => paused((t) => t.sample(request.params, ctx.mcpReq.signal)));
    if (capabilities.roots) client.setRequestHandler('roots/list', (_request, ctx) => paused((t) => t.listRoots(ctx.mcpReq.signal)));
    client.setNotificationHandler('notifications/message', (notification) => {
      const params = { ...notification.params, logger: prefixLogger(serverId, notification.params.logger) };
      forwardFor(this.route(serverId), this.peer, { method: 'notifications/message', params });
    });
    if (capabilities.elicitation?.url) {
      // URL-mode elicitation finishes out of band; the IDE that opened the URL learns it here.
      client.setNotificationHandler('notifications/elicitation/complete', (notification) => {
        forwardFor(this.route(serverId), this.peer, { method: 'notifications/elicitation/complete', params: notification.params });
      });
    }
    client.setNotificationHandler('notifications/resources/updated', (notification) => {
      // Only what this IDE session subscribed to (a server may notify more than it was asked for).
      if (this.isSubscribed(serverId, notification.params.uri))
        void this.peer.notify({ method: 'notifications/resources/updated', params: notification.params }).catch(() => undefined);
    });
    for (const kind of CATALOG_KINDS) {
      client.setNotificationHandler(`notifications/${kind}/list_changed`, () => this.factory.listChanged(serverId, kind));
    }
  }
}
