import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type * as NodeSdk from '@modelcontextprotocol/node';
import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import {
  isInitializeRequest,
  ProtocolError,
  ProtocolErrorCode,
  type CallToolResult,
  type ClientCapabilities,
  type LoggingLevel,
} from '@modelcontextprotocol/client';
import type * as ServerSdk from '@modelcontextprotocol/server';
import type { Server, ServerContext } from '@modelcontextprotocol/server';
import { outcomeOf, type Admission, type GuardedCall } from '../../governance/call-guard';
import { ideMcpPath, type ProfileId, type ProfileView } from '../../governance/profiles';
import { BodyTooLargeError, DEFAULT_MAX_BODY_BYTES, readJsonBody, refuseTooLarge, sendJsonRpcError } from '../http-util';
import type { DownstreamTarget } from '../upstream/call-context';
import type { CatalogKind } from '../upstream/catalog';
import type { BoundPeer, DownstreamPeer } from '../upstream/bound-peer';
import type { AggregatorCore, IdeSessionInfo } from './core';
import { notSignedInError, toolErrorResult, toProtocolError } from './errors';
import { FastPath, fastSessionState, type FastSession } from './fast-path';
import { forwardParams } from './forward-params';
import { SessionEventStore, SSE_RETRY_MS } from './sse-event-store';
import { resumeFastStream } from './sse-stream';

/**
 * The SDK server and its Node HTTP transport, loaded with the first IDE session rather than at broker start (a broker
 * nobody has connected to yet does not hold them, about 6 MB). The client package, loaded at start anyway, supplies the
 * shared protocol helpers.
 */
let sdkServer: Promise<[typeof ServerSdk, typeof NodeSdk]> | undefined;
function loadSdkServer() {
  sdkServer ??= Promise.all([import('@modelcontextprotocol/server'), import('@modelcontextprotocol/node')]);
  return sdkServer;
}

/** A person answering a form or reviewing a sampling request takes minutes, not the SDK's default 60 s. */
const HUMAN_TIMEOUT_MS = 10 * 60_000;
const ROOTS_TIMEOUT_MS = 60_000;
/**
 * IDE sessions kept at once. An IDE that crashes or is killed never sends DELETE, so its session would otherwise stay
 * forever (about 20 KB each, and an entry in "connected IDEs"); past the cap the least recently seen one is ended (its
 * IDE, if it ever comes back, gets 404 and initializes again, as Streamable HTTP prescribes). Far above what one
 * machine's IDE windows use.
 */
export const MAX_IDE_SESSIONS = 256;

interface IdeSession {
  id: string | undefined;
  clientName: string;
  clientVersion: string | undefined;
  connectedAt: number;
  lastSeenAt: number;
  server: Server;
  transport: NodeStreamableHTTPServerTransport;
  bound: BoundPeer | undefined;
  /** The session as the fast path sees it (fast-path.ts). */
  fast: FastSession;
  /** The catalog version each list was last served at: list_changed goes only to sessions holding an older list. */
  listed: Partial<Record<CatalogKind, number>>;
  closed: boolean;
  /** The IDE profile of the endpoint it initialized on (governance/profiles). */
  profile: ProfileView;
}

type ToolCallParams = { name: string; arguments?: Record<string, unknown> | undefined; _meta?: Record<string, unknown> | undefined };

/**
 * The IDE sessions of `/mcp`: one low-level SDK `Server` on a stateful Streamable HTTP transport per session, with
 * handlers that merge (lists) or route (everything else) through the aggregator core and the IDE session's bound
 * upstream sessions.
 */
export class IdeSessions {
  private readonly sessions = new Map<string, IdeSession>();
  private readonly fastPath: FastPath;

  constructor(private readonly core: AggregatorCore) {
    this.fastPath = new FastPath(core, { humanTimeoutMs: HUMAN_TIMEOUT_MS, rootsTimeoutMs: ROOTS_TIMEOUT_MS });
  }

  list(): IdeSessionInfo[] {
    return [...this.sessions.values()].map((s) => this.info(s));
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, parsedBody: unknown, closed: boolean, profile?: ProfileId): Promise<void> {
    if (closed) {
      req.resume();
      sendJsonRpcError(res, 503, -32000, 'Lanyard is shutting down.');
      return;
    }
    let body = parsedBody;
    if (req.method === 'POST' && body === undefined) {
      try {
        body = await readJsonBody(req, DEFAULT_MAX_BODY_BYTES);
      } catch (e) {
        if (e instanceof BodyTooLargeError) refuseTooLarge(req, res, e.limit);
        else sendJsonRpcError(res, 400, ProtocolErrorCode.ParseError, 'Parse error: the request body is not valid JSON.');
        return;
      }
    }
    const header = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(header) ? header[0] : header;
    if (sessionId !== undefined) {
      const session = this.sessions.get(sessionId);
      if (!session) {
        req.resume();
        // 404 tells the IDE to initialize a new session (Streamable HTTP, session management).
        sendJsonRpcError(res, 404, -32001, 'Session not found: Lanyard restarted or the session ended. Initialize a new session.');
        return;
      }
      session.lastSeenAt = this.core.now();
      if (req.method === 'POST' && (await this.fastPath.handle(session.fast, req, res, body))) return;
      if (req.method === 'GET' && resumeFastStream(session.fast.fast.events, sessionId, req, res)) return;
      await session.transport.handleRequest(req, res, body);
      return;
    }
    const messages = Array.isArray(body) ? (body as unknown[]) : [body];
    const initialize = req.method === 'POST' ? messages.find((m) => isInitializeRequest(m)) : undefined;
    if (!initialize || !isInitializeRequest(initialize)) {
      req.resume();
      sendJsonRpcError(res, 400, -32000, 'Bad Request: an Mcp-Session-Id header is required (send initialize first).');
      return;
    }
    const info = initialize.params.clientInfo;
    const session = await this.create(info.name, info.version, profile);
    await session.transport.handleRequest(req, res, body);
    // An initialize the SDK refused (bad protocol version, malformed) leaves a session that never got an id.
    if (session.id === undefined) await session.server.close().catch(() => undefined);
  }

  /** Sends `notifications/<kind>/list_changed` to every session whose last list of that kind is out of date. */
  broadcastListChanged(kinds: readonly CatalogKind[]): void {
    const versions = this.core.versions();
    for (const session of this.sessions.values()) {
      for (const kind of kinds) {
        const listed = session.listed[kind];
        if (listed === undefined || listed >= versions[kind]) continue;
        const send =
          kind === 'tools'
            ? session.server.sendToolListChanged()
            : kind === 'prompts'
              ? session.server.sendPromptListChanged()
              : session.server.sendResourceListChanged();
        send.catch((e: unknown) => this.core.log.debug('list_changed not delivered', { error: e }));
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => this.end(s)));
  }

  private info(s: IdeSession): IdeSessionInfo {
    return {
      id: s.id ?? '',
      clientName: s.clientName,
      clientVersion: s.clientVersion,
      transport: 'http',
      endpoint: s.profile.id === 'default' ? '/mcp' : ideMcpPath(s.profile.id),
      connectedAt: s.connectedAt,
      lastSeenAt: s.lastSeenAt,
    };
  }

  private async create(clientName: string, clientVersion: string | undefined, profile: ProfileId | undefined): Promise<IdeSession> {
    const [{ Server }, { NodeStreamableHTTPServerTransport }] = await loadSdkServer();
    // One event store for the session's SSE streams, the SDK transport's and the fast path's (resumability).
    const events = new SessionEventStore();
    const server = new Server(
      { name: 'lanyard', title: 'Lanyard', version: this.core.version },
      {
        capabilities: {
          tools: { listChanged: true },
          prompts: { listChanged: true },
          resources: { subscribe: true, listChanged: true },
          logging: {},
          completions: {},
        },
        instructions: `Lanyard connects you to your company's MCP servers with your own identity. Tools and prompts are named <server>${this.core.separator}<name>; resources keep their servers' URIs.`,
      },
    );
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: events,
      retryInterval: SSE_RETRY_MS,
      onsessioninitialized: (id) => {
        session.id = id;
        this.sessions.set(id, session);
        if (this.sessions.size > MAX_IDE_SESSIONS) this.evictLeastRecentlySeen(session);
        // Reported through onIdeSession only (the composition root records it), never twice in the activity view.
        this.core.ideSession({ type: 'connected', session: this.info(session) });
        this.core.warmInBackground();
      },
      onsessionclosed: () => {
        void this.end(session);
      },
    });
    const now = this.core.now();
    const session: IdeSession = {
      id: undefined,
      clientName: clientName.slice(0, 100),
      clientVersion: clientVersion?.slice(0, 50),
      connectedAt: now,
      lastSeenAt: now,
      server,
      transport,
      bound: undefined,
      fast: {
        get id() {
          return session.id;
        },
        clientName: clientName.slice(0, 100),
        clientVersion: clientVersion?.slice(0, 50),
        fast: fastSessionState(events),
        bound: () => this.bound(session),
        listedTools: () => {
          session.listed.tools = this.core.versions().tools;
        },
        get profile() {
          return session.profile;
        },
        get endpoint() {
          return session.profile.id === 'default' ? '/mcp' : ideMcpPath(session.profile.id);
        },
      },
      listed: {},
      closed: false,
      profile: this.core.profileView(profile),
    };
    // Set before connect: the SDK chains its own close handling after ours.
    transport.onclose = () => {
      void this.end(session);
    };
    this.register(session);
    await server.connect(session.transport);
    return session;
  }

  private evictLeastRecentlySeen(keep: IdeSession): void {
    let oldest: IdeSession | undefined;
    for (const s of this.sessions.values()) if (s !== keep && (!oldest || s.lastSeenAt < oldest.lastSeenAt)) oldest = s;
    if (!oldest) return;
    this.core.log.warn('too many IDE sessions; ending the least recently seen', { max: MAX_IDE_SESSIONS, clientName: oldest.clientName });
    void this.end(oldest);
  }

  private async end(session: IdeSession): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    if (session.id !== undefined) {
      this.sessions.delete(session.id);
      this.core.ideSession({ type: 'closed', session: this.info(session) });
    }
    await session.bound?.close().catch(() => undefined);
    await session.server.close().catch(() => undefined);
    session.fast.fast.events.clear();
  }

  /** The IDE session as upstream sessions see it; created with the first request that needs a server. */
  private bound(session: IdeSession): BoundPeer {
    if (session.bound) return session.bound;
    const server = session.server;
    const peer: DownstreamPeer = {
      id: session.id ?? '',
      clientName: session.clientName,
      capabilities: server.getClientCapabilities() ?? ({} as ClientCapabilities),
      elicit: (params, signal) => server.request({ method: 'elicitation/create', params }, { signal, timeout: HUMAN_TIMEOUT_MS }),
      sample: (params, signal) => server.request({ method: 'sampling/createMessage', params }, { signal, timeout: HUMAN_TIMEOUT_MS }),
      listRoots: (signal) => server.request({ method: 'roots/list' }, { signal, timeout: ROOTS_TIMEOUT_MS }),
      notify: (notification) => server.notification(notification),
    };
    session.bound = this.core.pool.attach(peer);
    return session.bound;
  }

  /** Server→client traffic of one IDE request goes on that request's stream (relatedRequestId), so it cannot stray. */
  private callTarget(ctx: ServerContext): DownstreamTarget {
    return {
      elicit: (params, signal) => ctx.mcpReq.send({ method: 'elicitation/create', params }, { signal, timeout: HUMAN_TIMEOUT_MS }),
      sample: (params, signal) => ctx.mcpReq.send({ method: 'sampling/createMessage', params }, { signal, timeout: HUMAN_TIMEOUT_MS }),
      listRoots: (signal) => ctx.mcpReq.send({ method: 'roots/list' }, { signal, timeout: ROOTS_TIMEOUT_MS }),
      notify: (notification) => ctx.mcpReq.notify(notification),
    };
  }

  private register(session: IdeSession): void {
    const { server, core } = { server: session.server, core: this.core };

    server.setRequestHandler('tools/list', async () => {
      const result = await core.listToolsForIde();
      session.listed.tools = core.versions().tools;
      return session.profile.shape(result);
    });

    server.setRequestHandler('tools/call', (request, ctx) => this.callTool(session, request.params as ToolCallParams, ctx));

    server.setRequestHandler('prompts/list', async () => {
      const prompts = await core.listPrompts();
      session.listed.prompts = core.versions().prompts;
      return { prompts };
    });

    server.setRequestHandler('prompts/get', async (request, ctx) => {
      const origin = await core.resolveName('prompts', request.params.name);
      if (!origin) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt: ${request.params.name.slice(0, 200)}`);
      return this.forward(session, ctx, origin.serverId, 'prompts/get', forwardParams(request.params, { name: origin.originalName }));
    });

    server.setRequestHandler('resources/list', async () => {
      const index = await core.listResources();
      session.listed.resources = core.versions().resources;
      return { resources: index.resources };
    });

    server.setRequestHandler('resources/templates/list', async () => {
      const index = await core.listResources();
      session.listed.resources = core.versions().resources;
      return { resourceTemplates: index.resourceTemplates };
    });

    server.setRequestHandler('resources/read', async (request, ctx) => {
      const serverId = await this.resourceServer(request.params.uri);
      return this.forward(session, ctx, serverId, 'resources/read', forwardParams(request.params));
    });

    server.setRequestHandler('resources/subscribe', async (request, ctx) => {
      const serverId = await this.resourceServer(request.params.uri);
      try {
        await this.bound(session).subscribe(serverId, request.params.uri, ctx.mcpReq.signal, this.callTarget(ctx));
      } catch (e) {
        throw toProtocolError(serverId, e);
      }
      return {};
    });

    server.setRequestHandler('resources/unsubscribe', async (request, ctx) => {
      const serverId = await this.resourceServer(request.params.uri);
      try {
        await this.bound(session).unsubscribe(serverId, request.params.uri, ctx.mcpReq.signal, this.callTarget(ctx));
      } catch (e) {
        throw toProtocolError(serverId, e);
      }
      return {};
    });

    server.setRequestHandler('completion/complete', async (request, ctx) => {
      const ref = request.params.ref;
      if (ref.type === 'ref/prompt') {
        const origin = await core.resolveName('prompts', ref.name);
        if (!origin) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt: ${ref.name.slice(0, 200)}`);
        return this.forward(
          session,
          ctx,
          origin.serverId,
          'completion/complete',
          forwardParams(request.params, { ref: { ...ref, name: origin.originalName } }),
        );
      }
      const serverId = await core.serverForUri(ref.uri, true);
      if (!serverId) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown resource template: ${ref.uri.slice(0, 200)}`);
      return this.forward(session, ctx, serverId, 'completion/complete', forwardParams(request.params));
    });

    // Replaces the SDK's built-in handler: the level belongs to the servers, which filter their own messages.
    server.setRequestHandler('logging/setLevel', async (request) => {
      await this.bound(session).setLogLevel(request.params.level as LoggingLevel);
      return {};
    });

    server.setNotificationHandler('notifications/roots/list_changed', () => {
      session.bound?.rootsChanged();
    });
  }

  private async resourceServer(uri: string): Promise<string> {
    const serverId = await this.core.serverForUri(uri);
    if (!serverId) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown resource: ${uri.slice(0, 200)}`, { uri });
    return serverId;
  }

  private async forward<M extends 'prompts/get' | 'resources/read' | 'completion/complete'>(
    session: IdeSession,
    ctx: ServerContext,
    serverId: string,
    method: M,
    params: Record<string, unknown>,
  ) {
    if (!this.core.canServe(serverId)) throw notSignedInError(serverId, this.core.signInHint());
    let admission: Admission | undefined;
    try {
      const name = method === 'resources/read' ? params.uri : method === 'prompts/get' ? params.name : undefined;
      admission = await this.core.guard.admit(this.guardCall(session, serverId, method, name));
      const result = await this.bound(session).request(serverId, method, params, {
        signal: ctx.mcpReq.signal,
        target: this.callTarget(ctx),
      });
      this.core.guard.settle(admission, { kind: 'ok' });
      return result;
    } catch (e) {
      if (admission) this.core.guard.settle(admission, ctx.mcpReq.signal.aborted ? { kind: 'error', code: 'cancelled' } : outcomeOf(e));
      if (ctx.mcpReq.signal.aborted) throw e;
      throw toProtocolError(serverId, e);
    }
  }

  /** What governance is told about a request this session sends upstream. */
  private guardCall(session: IdeSession, serverId: string, method: string, name: unknown, args?: unknown): GuardedCall {
    return {
      ide: { name: session.clientName, version: session.clientVersion },
      endpoint: session.profile.id === 'default' ? '/mcp' : ideMcpPath(session.profile.id),
      profileId: session.profile.id,
      serverId,
      method,
      name: typeof name === 'string' ? name : undefined,
      arguments: args,
    };
  }

  private async callTool(session: IdeSession, ideParams: ToolCallParams, ctx: ServerContext): Promise<CallToolResult> {
    const started = this.core.now();
    // An IDE profile resolves its own names (and unwraps lanyard_call_tool to the real tool); else as plain /mcp.
    const routed = await session.profile.route(ideParams);
    if (routed?.kind === 'result') return routed.result;
    const params = routed?.kind === 'tool' ? routed.params : ideParams;
    const origin = routed ? (routed.kind === 'tool' ? routed.origin : undefined) : await this.core.resolveName('tools', params.name);
    // A profile resolves names itself: a tool held back for review is refused here as resolveName refuses it on /mcp.
    if (routed?.kind === 'tool') {
      await this.core.admitToolCall(routed.origin.serverId, routed.origin.originalName);
    }
    if (!origin) {
      const builtin = this.core.builtinTool(params.name);
      if (builtin) return builtin;
      throw new ProtocolError(
        ProtocolErrorCode.InvalidParams,
        `Unknown tool: ${params.name.slice(0, 200)}. List the tools again; the server may have removed it.`,
      );
    }
    const { serverId, originalName } = origin;
    if (!this.core.canServe(serverId)) {
      return this.core.builtinTool('lanyard_sign_in')!;
    }
    const progressToken = params._meta?.progressToken as string | number | undefined;
    let admission: Admission | undefined;
    try {
      admission = await this.core.guard.admit(this.guardCall(session, serverId, 'tools/call', originalName, params.arguments));
      const result = await this.bound(session).request(serverId, 'tools/call', forwardParams(params, { name: originalName }), {
        signal: ctx.mcpReq.signal,
        target: this.callTarget(ctx),
        onprogress:
          progressToken === undefined
            ? undefined
            : (progress) => ctx.mcpReq.notify({ method: 'notifications/progress', params: { ...progress, progressToken } }),
      });
      this.core.activity({
        kind: 'tool_call',
        serverId,
        summary: `${session.clientName} called ${serverId} › ${originalName}`,
        outcome: result.isError ? 'error' : 'ok',
        durationMs: this.core.now() - started,
      });
      this.core.guard.settle(admission, result.isError ? { kind: 'error', code: 'tool_error' } : { kind: 'ok' });
      return result as CallToolResult;
    } catch (e) {
      if (admission) this.core.guard.settle(admission, ctx.mcpReq.signal.aborted ? { kind: 'error', code: 'cancelled' } : outcomeOf(e));
      // Cancelled by the IDE: no response is sent for a cancelled request, whatever is returned here.
      if (ctx.mcpReq.signal.aborted) throw e;
      const { result, error } = toolErrorResult(serverId, e);
      this.core.activity({
        kind: 'tool_call',
        serverId,
        summary: `${session.clientName} called ${serverId} › ${originalName}: failed`,
        outcome: 'error',
        durationMs: this.core.now() - started,
        error,
      });
      return result;
    }
  }
}
