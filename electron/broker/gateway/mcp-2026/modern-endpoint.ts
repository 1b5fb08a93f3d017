import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type * as NodeSdk from '@modelcontextprotocol/node';
import { ProtocolError, ProtocolErrorCode, type ClientCapabilities, type Progress } from '@modelcontextprotocol/client';
import type * as ServerSdk from '@modelcontextprotocol/server';
import type {
  CallToolResult,
  GetPromptResult,
  InputRequiredResult,
  ReadResourceResult,
  McpHttpHandler,
  McpServer,
  RequestStateCodec,
  ServerContext,
} from '@modelcontextprotocol/server';
import { sendJsonRpcError } from '../http-util';
import { outcomeOf } from '../../governance/call-guard';
import type { AggregatorCore } from '../aggregate/core';
import { notSignedInError, toolErrorResult, toProtocolError } from '../aggregate/errors';
import { mirrorCapabilities, type BoundPeer, type ForwardedMethod, type TaskMethod } from '../upstream/bound-peer';
import { MAX_INPUT_ROUNDS, ParkedCalls, type ParkedCall } from './input-rounds';
import { mergeCacheHints } from './cache-hints';
import { forwardParams } from '../aggregate/forward-params';
import { taskHandleOf, TASKS_EXTENSION } from './task-handles';
import { declaresTasks, TaskRoutes, withTasksExtension } from './tasks';
import { ideMcpPath, type ProfileId, type ProfileView, type ToolCallParams } from '../../governance/profiles';

/**
 * `/mcp` for MCP 2026-07-28 clients (no initialize, no session; every request carries its protocol version, client info
 * and capabilities in `_meta`). The SDK does the protocol: `createMcpHandler` classifies the request, validates the
 * envelope and the `Mcp-Method` / `Mcp-Name` headers (with the spec's error codes), answers `server/discover` from the
 * capabilities declared here, serves `subscriptions/listen`, fills `ttlMs` / `cacheScope`, and seals `requestState`
 * (createRequestStateCodec, HMAC with a key that lives only in this process). Lanyard adds what a gateway needs on top:
 * the merged lists, routing to the server that owns a name, relaying `input_required` rounds to the exact upstream call
 * that asked (input-rounds.ts), and merged caching hints. See docs/protocol.md, "Two protocol eras on /mcp".
 *
 * Lanyard's 2026-07-28 serving layer lives in this folder only; it shrinks as the SDK learns to proxy (relaying input
 * requests and caching hints across a gateway is not something it does yet).
 */

let sdk: Promise<[typeof ServerSdk, typeof NodeSdk]> | undefined;
function loadSdk() {
  sdk ??= Promise.all([import('@modelcontextprotocol/server'), import('@modelcontextprotocol/node')]);
  return sdk;
}

const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
const CLIENT_INFO_META_KEY = 'io.modelcontextprotocol/clientInfo';
const CLIENT_CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';
/** Upstream sessions kept for 2026-07-28 IDEs (one per IDE name and capability set). */
const MAX_MODERN_PEERS = 32;
/** The frozen error the SDK answers for a refused requestState; used for one that names no parked call. */
const INVALID_STATE = 'Invalid or expired requestState';
/** MissingRequiredClientCapabilityError's JSON-RPC code (2026-07-28). */
const MISSING_CAPABILITY = -32021;

/**
 * What Lanyard's requestState carries, sealed: either the id of a parked call (a 2025-11-25 server asked through a
 * server→client request, input-rounds.ts), or — for a 2026-07-28 server's own `input_required` — the server it came
 * from, the server's own requestState (opaque to Lanyard, handed back only to that server) and the round count.
 */
type SealedState = { c: string } | { s: string; u?: string; r: number };
type Resumed =
  { kind: 'parked'; call: ParkedCall<unknown> } | { kind: 'upstream'; serverId: string; upstreamState?: string; round: number };
type InputRequiredLike = { resultType: 'input_required'; inputRequests?: Record<string, unknown>; requestState?: string };

/** How deeply a 2026-07-28 message may nest (objects and arrays); far beyond any real request. */
const MAX_MESSAGE_DEPTH = 128;

/** Whether a parsed JSON value nests deeper than `limit`, found without recursion (the value may be hostile). */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [item, depth] = stack.pop()!;
    if (!item || typeof item !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item as Record<string, unknown>)) {
      if (child && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

function isInputRequired(value: unknown): value is InputRequiredLike {
  return typeof value === 'object' && value !== null && (value as { resultType?: unknown }).resultType === 'input_required';
}

/** The IDE a 2026-07-28 request comes from, as far as a stateless request says: its name and the endpoint it used. */
function ideKey(ctx: ServerContext, scope: string): string {
  const info = ctx.mcpReq.envelope?.[CLIENT_INFO_META_KEY as keyof typeof ctx.mcpReq.envelope] as { name?: unknown } | undefined;
  const name = typeof info?.name === 'string' ? info.name.slice(0, 100) : '';
  return `${scope}\0${name}`;
}

function clientName(ctx: ServerContext): string {
  const info = ctx.mcpReq.envelope?.[CLIENT_INFO_META_KEY as keyof typeof ctx.mcpReq.envelope] as { name?: unknown } | undefined;
  return typeof info?.name === 'string' ? info.name.slice(0, 100) : 'a 2026-07-28 client';
}

function clientCapabilities(ctx: ServerContext): ClientCapabilities {
  const caps = ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY as keyof typeof ctx.mcpReq.envelope];
  return caps && typeof caps === 'object' ? (caps as ClientCapabilities) : {};
}

export class ModernEndpoint {
  private handler:
    Promise<{ http: McpHttpHandler; node: NodeSdk.NodeMcpRequestHandler; codec: RequestStateCodec<SealedState> }> | undefined;
  private readonly parked = new ParkedCalls();
  private readonly peers = new Map<string, BoundPeer>();
  private readonly scope: string;
  /**
   * What the per-request server the SDK builds needs to know of the request it serves: the IDE profile of the endpoint
   * it came in on (`/ide/<ide>/mcp`) and the tool a `tools/call` names. The factory and every handler run inside
   * `handle`'s async context.
   */
  private readonly request = new AsyncLocalStorage<{ profile?: ProfileId | undefined; tool?: string | undefined }>();
  /** Lanyard's task ids, each mapped to a server's task and bound to the IDE that got it (tasks.ts). */
  private readonly tasks: TaskRoutes;

  constructor(private readonly core: AggregatorCore) {
    this.scope = core.scope ?? 'mcp';
    this.tasks = new TaskRoutes(core.now);
  }

  /** The endpoint path the request being served came in on (`/mcp`, `/ide/<ide>/mcp`, `/mcp/only/<id>`). */
  private endpointPath(): string {
    const profile = this.request.getStore()?.profile;
    if (profile !== undefined && profile !== 'default') return ideMcpPath(profile);
    return this.scope === 'mcp' ? '/mcp' : `/mcp/${this.scope}`;
  }

  /** The profile of the request being served (plain `/mcp`: the default profile). */
  private profile(): ProfileView {
    return this.core.profileView(this.request.getStore()?.profile);
  }

  /**
   * Where the IDE of the request being served is: the endpoint, and the IDE profile when it came in on
   * `/ide/<ide>/mcp` (a requestState or a parked call minted on one IDE's endpoint is not valid on another's).
   */
  private ideScope(): string {
    const profile = this.request.getStore()?.profile;
    return profile === undefined || profile === 'default' ? this.scope : `${this.scope}\0ide/${profile}`;
  }

  /**
   * Whether a request is 2026-07-28 traffic, by the SDK's own classification (the one `createMcpHandler` routes by).
   * A request with a session id, a GET or a DELETE is 2025-11-25 without asking.
   */
  async claims(req: IncomingMessage, body: unknown): Promise<boolean> {
    if (req.method !== 'POST' || req.headers['mcp-session-id'] !== undefined) return false;
    // Cheap pre-check: an initialize, or a body with no envelope and no modern header, is 2025-11-25.
    const header = req.headers['mcp-protocol-version'];
    const envelope = (Array.isArray(body) ? (body as unknown[]) : [body]).some((m) => {
      const meta = m && typeof m === 'object' ? (m as { params?: { _meta?: unknown } }).params?._meta : undefined;
      return !!meta && typeof meta === 'object' && Object.keys(meta).some((k) => k.startsWith('io.modelcontextprotocol/'));
    });
    if (!envelope && (header === undefined || header < '2026')) return false;
    // The SDK's classification parses the body with recursive schemas: a hostile depth is the modern path's to refuse.
    if (nestedDeeperThan(body, MAX_MESSAGE_DEPTH)) return true;
    const [{ isLegacyRequest }] = await loadSdk();
    // Headers and the parsed body are all the classification reads (a body is never encoded again here: a deeply
    // nested one would overflow JSON.stringify's recursion).
    let probe: Request;
    try {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      probe = new Request('http://127.0.0.1/mcp', { method: 'POST', headers });
    } catch {
      return true; // headers no Request can carry: the modern path refuses the request
    }
    return !(await isLegacyRequest(probe, body));
  }

  async handle(req: IncomingMessage, res: ServerResponse, body: unknown, profile?: ProfileId): Promise<void> {
    // The SDK encodes the parsed body again and validates `_meta` (capabilities, extensions) with recursive schemas:
    // a message nested deeper than any real one overflows the stack there (an uncaught RangeError, HTTP 500), so it is
    // refused here first, as JSON-RPC.
    if (nestedDeeperThan(body, MAX_MESSAGE_DEPTH)) {
      req.resume();
      sendJsonRpcError(res, 400, ProtocolErrorCode.InvalidRequest, 'Invalid request: the message is nested too deeply.');
      return;
    }
    // server/discover advertises the tasks extension when a server has it: the catalogs must be known to say so.
    if ((body as { method?: unknown } | undefined)?.method === 'server/discover') await this.core.listToolsForIde().catch(() => undefined);
    const { node } = await this.load();
    const params = (body as { method?: unknown; params?: { name?: unknown } } | undefined)?.params;
    const tool =
      (body as { method?: unknown } | undefined)?.method === 'tools/call' && typeof params?.name === 'string' ? params.name : undefined;
    await this.request.run({ profile, tool }, () => node(req as NodeSdk.NodeIncomingMessageLike, res, body));
  }

  /** A list changed: open `subscriptions/listen` streams that asked for it are told. */
  listChanged(kinds: readonly ('tools' | 'prompts' | 'resources')[]): void {
    if (!this.handler) return;
    void this.handler.then(({ http }) => {
      for (const kind of kinds) {
        if (kind === 'tools') http.notify.toolsChanged();
        else if (kind === 'prompts') http.notify.promptsChanged();
        else http.notify.resourcesChanged();
      }
    });
  }

  /** Calls waiting for an IDE's answers (tests, diagnostics). */
  get parkedCalls(): number {
    return this.parked.size;
  }

  async close(): Promise<void> {
    this.parked.close();
    const peers = [...this.peers.values()];
    this.peers.clear();
    await Promise.all(peers.map((p) => p.close().catch(() => undefined)));
    if (this.handler) await (await this.handler).http.close().catch(() => undefined);
  }

  private load() {
    this.handler ??= (async () => {
      const [server, node] = await loadSdk();
      const codec = server.createRequestStateCodec<SealedState>({
        // Held in memory only: a requestState never outlives the broker that minted it (nor does the parked call).
        key: randomBytes(32),
        ttlSeconds: 600,
        // Bound to the method and the IDE that got it: another IDE's (or another method's) state is refused.
        bind: (ctx) => `${ctx.mcpReq.method}\0${ideKey(ctx, this.ideScope())}`,
      });
      const http = server.createMcpHandler(() => this.createServer(server, codec), {
        legacy: 'reject',
        onerror: (e) => this.core.log.debug('2026-07-28 request refused', { error: e }),
      });
      return { http, node: node.toNodeHandler(http), codec };
    })();
    return this.handler;
  }

  private createServer(sdkServer: typeof ServerSdk, codec: RequestStateCodec<SealedState>): McpServer {
    const core = this.core;
    // An McpServer whose low-level server carries Lanyard's handlers (set below, replacing McpServer's own).
    const mcp = new sdkServer.McpServer(
      { name: 'lanyard', title: 'Lanyard', version: core.version },
      {
        capabilities: {
          tools: { listChanged: true },
          prompts: { listChanged: true },
          resources: { listChanged: true },
          completions: {},
          // Task-augmented tool calls (tasks.ts), offered when a server offers them.
          ...(this.tasksOffered() ? { extensions: { [TASKS_EXTENSION]: {} } } : {}),
        },
        instructions: core.onlyServer
          ? `Lanyard's diagnostic endpoint for server "${core.onlyServer}" alone, with its own names.`
          : `Lanyard connects you to your company's MCP servers with your own identity. Tools and prompts are named <server>${core.separator}<name>; resources keep their servers' URIs.`,
        requestState: { verify: (state, ctx) => codec.verify(state, ctx) },
        // Lanyard relays rounds itself; the SDK's 2025 shim never runs here (this server only serves 2026-07-28).
        inputRequired: { legacyShim: false },
      },
    );
    // The HTTP entry runs its SEP-2243 `Mcp-Param-*` check against the input schema of the registered tool a
    // `tools/call` names. So the upstream tool the name routes to is registered, with its own JSON Schema, on this
    // per-request server (its callback never runs: Lanyard's tools/call handler replaces McpServer's).
    const routed = this.request.getStore()?.tool;
    const schema = routed === undefined ? undefined : this.toolSchema(routed);
    if (routed !== undefined && schema && typeof schema === 'object') {
      try {
        mcp.registerTool(
          routed,
          { inputSchema: sdkServer.fromJsonSchema(schema as Parameters<typeof sdkServer.fromJsonSchema>[0]) },
          () => {
            throw new ProtocolError(ProtocolErrorCode.InternalError, 'Not routed through Lanyard.');
          },
        );
      } catch (e) {
        // A name or schema the SDK will not register: the upstream still checks its own headers.
        core.log.debug('Mcp-Param check skipped for a tool', { tool: routed.slice(0, 200), error: e });
      }
    }
    const server = mcp.server;
    this.tasks.register(mcp, (ctx) => ({
      ideKey: ideKey(ctx, this.ideScope()),
      declared: declaresTasks(clientCapabilities(ctx)),
      capabilities: mirrorCapabilities(clientCapabilities(ctx)),
      peer: () => this.peer(ctx),
      assertCanServe: (serverId) => this.assertCanServe(serverId),
      guarded: (serverId, method, send) => this.guarded(ctx, serverId, method, {}, send),
    }));

    // The IDE profile of the endpoint (`/ide/<ide>/mcp`): its tool budget, short names and meta-tools, as for a
    // 2025-11-25 session there (governance/profiles). Plain `/mcp` is the default profile: the merged list as is.
    const profile = this.profile();
    server.setRequestHandler('tools/list', async () => {
      const result = profile.shape(await core.listToolsForIde());
      return { ...result, ...mergeCacheHints(this.catalogs(), 'tools', core.now()) };
    });
    server.setRequestHandler('prompts/list', async () => ({
      prompts: await core.listPrompts(),
      ...mergeCacheHints(this.catalogs(), 'prompts', core.now()),
    }));
    server.setRequestHandler('resources/list', async () => ({
      resources: (await core.listResources()).resources,
      ...mergeCacheHints(this.catalogs(), 'resources', core.now()),
    }));
    server.setRequestHandler('resources/templates/list', async () => ({
      resourceTemplates: (await core.listResources()).resourceTemplates,
      ...mergeCacheHints(this.catalogs(), 'resources', core.now()),
    }));

    server.setRequestHandler('tools/call', async (request, ctx) => {
      const resumed = await this.resume(ctx);
      if (resumed?.kind === 'parked') return this.finishTool(resumed.call as ParkedCall<CallToolResult>, ctx, { at: core.now(), name: '' });
      // An IDE profile resolves its own names (and unwraps lanyard_call_tool to the real tool); else as plain /mcp.
      const routed = await profile.route(request.params as ToolCallParams);
      if (routed?.kind === 'result') return routed.result;
      const params = (routed?.kind === 'tool' ? routed.params : request.params) as { name: string; _meta?: Record<string, unknown> };
      const origin = routed ? (routed.kind === 'tool' ? routed.origin : undefined) : await core.resolveName('tools', params.name);
      // A profile resolves names itself: a tool held back for review is refused here as resolveName refuses it on /mcp.
      if (routed?.kind === 'tool') {
        await core.admitToolCall(routed.origin.serverId, routed.origin.originalName);
      }
      if (!origin) {
        const builtin = core.builtinTool(params.name);
        if (builtin) return builtin;
        throw new ProtocolError(
          ProtocolErrorCode.InvalidParams,
          `Unknown tool: ${params.name.slice(0, 200)}. List the tools again; the server may have removed it.`,
        );
      }
      if (!core.canServe(origin.serverId)) return core.builtinTool('lanyard_sign_in')!;
      const forwarded = forwardParams(params, { name: origin.originalName, ...this.retry(resumed, origin.serverId, ctx) });
      // An IDE that declared the tasks extension lets the server answer with a task (tasks.ts); the upstream request
      // declares it too, on top of what the bound session declares. Without it, no server may create one.
      if (declaresTasks(clientCapabilities(ctx)))
        forwarded._meta = {
          ...(forwarded._meta as object | undefined),
          ...withTasksExtension(mirrorCapabilities(clientCapabilities(ctx))),
        };
      const call = this.start<CallToolResult>(
        ctx,
        origin.serverId,
        'tools/call',
        forwarded,
        params,
        resumed?.kind === 'upstream' ? resumed.round : 0,
      );
      return this.finishTool(call, ctx, { at: core.now(), name: origin.originalName });
    });

    server.setRequestHandler('prompts/get', async (request, ctx) => {
      const resumed = await this.resume(ctx);
      if (resumed?.kind === 'parked') return this.finish(resumed.call as ParkedCall<GetPromptResult>, ctx);
      const origin = await core.resolveName('prompts', request.params.name);
      if (!origin) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt: ${request.params.name.slice(0, 200)}`);
      this.assertCanServe(origin.serverId);
      return this.finish(
        this.start<GetPromptResult>(
          ctx,
          origin.serverId,
          'prompts/get',
          forwardParams(request.params, { name: origin.originalName, ...this.retry(resumed, origin.serverId, ctx) }),
          undefined,
          resumed?.kind === 'upstream' ? resumed.round : 0,
        ),
        ctx,
      );
    });

    server.setRequestHandler('resources/read', async (request, ctx) => {
      const resumed = await this.resume(ctx);
      if (resumed?.kind === 'parked') return this.finish(resumed.call as ParkedCall<ReadResourceResult>, ctx);
      const serverId = await core.serverForUri(request.params.uri);
      if (!serverId)
        throw new ProtocolError(-32002, `Resource not found: ${request.params.uri.slice(0, 200)}`, { uri: request.params.uri });
      this.assertCanServe(serverId);
      const params = forwardParams(request.params, this.retry(resumed, serverId, ctx));
      const round = resumed?.kind === 'upstream' ? resumed.round : 0;
      return this.finish(this.start<ReadResourceResult>(ctx, serverId, 'resources/read', params, undefined, round), ctx);
    });

    server.setRequestHandler('completion/complete', async (request, ctx) => {
      const ref = request.params.ref;
      let serverId: string | undefined;
      let params = forwardParams(request.params);
      if (ref.type === 'ref/prompt') {
        const origin = await core.resolveName('prompts', ref.name);
        if (!origin) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt: ${ref.name.slice(0, 200)}`);
        serverId = origin.serverId;
        params = forwardParams(request.params, { ref: { ...ref, name: origin.originalName } });
      } else serverId = await core.serverForUri(ref.uri, true);
      if (!serverId) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Unknown completion reference.');
      this.assertCanServe(serverId);
      try {
        return await this.peer(ctx).request(serverId, 'completion/complete', params, {
          signal: ctx.mcpReq.signal,
          target: this.noInput(ctx),
        });
      } catch (e) {
        throw toProtocolError(serverId, e);
      }
    });
    return mcp;
  }

  /** The input schema of the upstream tool an exposed name routes to (only names this run handed out). */
  private toolSchema(name: string): unknown {
    const origin = this.core.knownName('tools', name);
    if (!origin) return undefined;
    return this.core.pool.catalog(origin.serverId)?.tools.find((t) => t.name === origin.originalName)?.inputSchema;
  }

  /** Whether a server behind this endpoint offers the tasks extension (its discover or initialize capabilities). */
  private tasksOffered(): boolean {
    return this.catalogs().some((c) => {
      const extensions = (c?.capabilities as { extensions?: Record<string, unknown> } | undefined)?.extensions;
      return !!extensions && typeof extensions === 'object' && extensions[TASKS_EXTENSION] !== undefined;
    });
  }

  private catalogs() {
    const ids = this.core.onlyServer ? [this.core.onlyServer] : this.core.pool.serverIds().filter((id) => this.core.canServe(id));
    return ids.map((id) => this.core.pool.catalog(id));
  }

  private assertCanServe(serverId: string): void {
    if (!this.core.canServe(serverId)) throw notSignedInError(serverId, this.core.signInHint());
  }

  /** The upstream sessions a 2026-07-28 IDE's calls go through: one set per IDE name and capability set. */
  private peer(ctx: ServerContext): BoundPeer {
    const capabilities = mirrorCapabilities(clientCapabilities(ctx));
    const key = `${ideKey(ctx, this.ideScope())}\0${JSON.stringify(capabilities)}`;
    const known = this.peers.get(key);
    if (known) {
      // Most recently used last: the first one is the one to end when there are too many.
      this.peers.delete(key);
      this.peers.set(key, known);
      return known;
    }
    const noChannel = () => Promise.reject(new Error('A 2026-07-28 client has no channel for requests outside a call.'));
    const bound = this.core.pool.attach({
      id: `2026:${clientName(ctx)}`,
      clientName: clientName(ctx),
      capabilities,
      era: 'modern',
      elicit: noChannel,
      sample: noChannel,
      listRoots: noChannel,
      // Nothing outside a call reaches a 2026-07-28 IDE except through subscriptions/listen (list changes).
      notify: async () => undefined,
    });
    this.peers.set(key, bound);
    if (this.peers.size > MAX_MODERN_PEERS) {
      const [oldestKey, oldest] = this.peers.entries().next().value!;
      this.peers.delete(oldestKey);
      void oldest.close().catch(() => undefined);
    }
    return bound;
  }

  /** A request that cannot ask the IDE anything (completion): only its progress and log messages pass. */
  private noInput(ctx: ServerContext) {
    const refuse = () => Promise.reject(new ProtocolError(ProtocolErrorCode.InvalidRequest, 'No input can be requested here.'));
    return {
      elicit: refuse,
      sample: refuse,
      listRoots: refuse,
      notify: (n: Parameters<ServerContext['mcpReq']['notify']>[0]) => ctx.mcpReq.notify(n),
    };
  }

  /** Sends a request upstream as a call that may ask the IDE for input (tools/call, prompts/get, resources/read). */
  private start<T>(
    ctx: ServerContext,
    serverId: string,
    method: ForwardedMethod,
    params: Record<string, unknown>,
    ideParams?: { _meta?: Record<string, unknown> },
    upstreamRounds = 0,
  ): ParkedCall<T> {
    const call = this.parked.create<T>(serverId, ideKey(ctx, this.ideScope()));
    call.rounds = upstreamRounds;
    call.notify = (n) => ctx.mcpReq.notify(n);
    const progressToken = ideParams?._meta?.progressToken as string | number | undefined;
    const bound = this.peer(ctx);
    const send = () =>
      bound.request(serverId, method, params, {
        signal: call.signal,
        target: call.target(),
        allowInputRequired: true,
        onprogress:
          progressToken === undefined
            ? undefined
            : (progress: Progress) => call.notify({ method: 'notifications/progress', params: { ...progress, progressToken } }),
      }) as Promise<T>;
    call.run(this.guarded(ctx, serverId, method, params, send));
    return call;
  }

  /**
   * Governance's seam (governance/call-guard.ts) around one upstream request, as on the 2025-11-25 paths: admitted
   * before it leaves (the secret scan may refuse it; the refusal becomes the IDE's answer), settled when answered.
   */
  private async guarded<T>(
    ctx: ServerContext,
    serverId: string,
    method: ForwardedMethod | TaskMethod,
    params: Record<string, unknown>,
    send: () => Promise<T>,
  ): Promise<T> {
    const info = ctx.mcpReq.envelope?.[CLIENT_INFO_META_KEY as keyof typeof ctx.mcpReq.envelope] as
      { name?: unknown; version?: unknown } | undefined;
    const name = method === 'resources/read' ? params.uri : params.name;
    const admission = await this.core.guard.admit({
      ide: { name: clientName(ctx), ...(typeof info?.version === 'string' ? { version: info.version.slice(0, 100) } : {}) },
      endpoint: this.endpointPath(),
      ...(this.request.getStore()?.profile !== undefined ? { profileId: this.request.getStore()?.profile } : {}),
      serverId,
      method,
      name: typeof name === 'string' ? name : undefined,
      ...(method === 'tools/call' ? { arguments: params.arguments } : {}),
    });
    try {
      const result = await send();
      this.core.guard.settle(admission, { kind: 'ok' });
      return result;
    } catch (e) {
      this.core.guard.settle(admission, outcomeOf(e));
      throw e;
    }
  }

  /**
   * A retried request: the parked call its (verified) requestState names gets the IDE's answers. Anything else — a
   * state for no parked call (replayed, expired, from before a restart), or one parked for another IDE — is refused
   * with the error the SDK gives a state that fails verification.
   */
  private async resume(ctx: ServerContext): Promise<Resumed | undefined> {
    const state = ctx.mcpReq.requestState<SealedState>();
    if (state === undefined) return undefined;
    if (typeof state === 'object' && state && 's' in state && typeof state.s === 'string') {
      return {
        kind: 'upstream',
        serverId: state.s,
        round: typeof state.r === 'number' ? state.r : MAX_INPUT_ROUNDS,
        ...(typeof state.u === 'string' ? { upstreamState: state.u } : {}),
      };
    }
    const call = typeof state === 'object' && state && 'c' in state && typeof state.c === 'string' ? this.parked.take(state.c) : undefined;
    if (!call || call.ideKey !== ideKey(ctx, this.ideScope())) {
      if (call) this.parked.park(call);
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, INVALID_STATE, { reason: 'invalid_request_state' });
    }
    call.notify = (n) => ctx.mcpReq.notify(n);
    call.answer(ctx.mcpReq.inputResponses ?? {});
    return { kind: 'parked', call };
  }

  /**
   * The retry of a 2026-07-28 server's own round: the IDE's answers and the server's requestState, sent only to the
   * server that minted it (a request naming another server's tool with this state is refused).
   */
  private retry(resumed: Resumed | undefined, serverId: string, ctx: ServerContext): Record<string, unknown> {
    // Answers sent without a requestState are the IDE's own: passed on for the server to use or ignore, as it would
    // directly (the multi-round-trip spec lets a server accept them without a state).
    if (resumed === undefined) return ctx.mcpReq.inputResponses ? { inputResponses: ctx.mcpReq.inputResponses } : {};
    if (resumed.kind !== 'upstream') return {};
    if (resumed.serverId !== serverId)
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, INVALID_STATE, { reason: 'invalid_request_state' });
    return {
      ...(ctx.mcpReq.inputResponses ? { inputResponses: ctx.mcpReq.inputResponses } : {}),
      ...(resumed.upstreamState !== undefined ? { requestState: resumed.upstreamState } : {}),
    };
  }

  /** The next step of a call: its result, or an `input_required` result naming the questions and the parked call. */
  private async step<T>(call: ParkedCall<T>, ctx: ServerContext): Promise<{ done: T } | { input: InputRequiredLike } | { error: unknown }> {
    const outcome = await call.next();
    if (outcome.kind === 'failed') return { error: outcome.error };
    if (outcome.kind === 'done') {
      const result = outcome.result as InputRequiredLike | T;
      if (!isInputRequired(result)) return { done: outcome.result };
      // A 2026-07-28 server's own round: its questions go to the IDE as they are (same keys), its state stays sealed.
      const round = call.rounds + 1;
      if (round > MAX_INPUT_ROUNDS) return { error: this.tooManyRounds(call.serverId) };
      const { codec } = await this.load();
      const state: SealedState = { s: call.serverId, r: round, ...(result.requestState !== undefined ? { u: result.requestState } : {}) };
      const requestState = await codec.mint(state, ctx);
      return {
        input: { resultType: 'input_required', ...(result.inputRequests ? { inputRequests: result.inputRequests } : {}), requestState },
      };
    }
    if (call.rounds > MAX_INPUT_ROUNDS) {
      call.cancel('too many input rounds');
      return { error: this.tooManyRounds(call.serverId) };
    }
    this.parked.park(call as ParkedCall<unknown>);
    const { codec } = await this.load();
    const requestState = await codec.mint({ c: call.id }, ctx);
    return { input: { resultType: 'input_required', inputRequests: outcome.inputRequests, requestState } };
  }

  private tooManyRounds(serverId: string): ProtocolError {
    return new ProtocolError(
      ProtocolErrorCode.InternalError,
      `Server "${serverId}" kept asking for input (more than ${MAX_INPUT_ROUNDS} rounds); Lanyard stopped the call.`,
      { reason: 'too_many_input_rounds' },
    );
  }

  private async finish<T>(call: ParkedCall<T>, ctx: ServerContext): Promise<T | InputRequiredResult> {
    const next = await this.step(call, ctx);
    if ('done' in next) return next.done;
    if ('input' in next) return next.input as InputRequiredResult;
    if (ctx.mcpReq.signal.aborted) throw next.error;
    throw next.error instanceof ProtocolError ? next.error : toProtocolError(call.serverId, next.error);
  }

  private async finishTool(call: ParkedCall<CallToolResult>, ctx: ServerContext, started: { at: number; name: string }) {
    const next = await this.step(call, ctx);
    if ('input' in next) return next.input as unknown as CallToolResult;
    const name = started.name ? ` › ${started.name}` : '';
    const task = 'done' in next ? taskHandleOf(next.done) : undefined;
    if (task) {
      this.core.activity({
        kind: 'tool_call',
        serverId: call.serverId,
        summary: `${clientName(ctx)} called ${call.serverId}${name}: running as a task`,
        outcome: 'ok',
        durationMs: this.core.now() - started.at,
      });
      // Only an IDE that declared the extension may get a task; a server that sends one anyway has answered wrongly.
      if (!declaresTasks(clientCapabilities(ctx)))
        return toolErrorResult(call.serverId, new Error('the server answered with a task, which this client did not ask for')).result;
      return this.tasks.created(call.serverId, task, ideKey(ctx, this.ideScope())) as unknown as CallToolResult;
    }
    if ('done' in next) {
      this.core.activity({
        kind: 'tool_call',
        serverId: call.serverId,
        summary: `${clientName(ctx)} called ${call.serverId}${name}`,
        outcome: next.done.isError ? 'error' : 'ok',
        durationMs: this.core.now() - started.at,
      });
      return next.done;
    }
    if (next.error instanceof ProtocolError && (next.error.data as { reason?: string } | undefined)?.reason === 'too_many_input_rounds')
      return { content: [{ type: 'text' as const, text: next.error.message }], isError: true };
    // The server needs a capability the IDE did not declare (bound sessions declare exactly the IDE's): the IDE gets
    // the spec's error (-32021, HTTP 400) as it would from the server itself, not a failed tool result.
    if (next.error instanceof ProtocolError && next.error.code === MISSING_CAPABILITY)
      throw new ProtocolError(MISSING_CAPABILITY, next.error.message, next.error.data);
    const { result, error } = toolErrorResult(call.serverId, next.error);
    this.core.activity({
      kind: 'tool_call',
      serverId: call.serverId,
      summary: `${clientName(ctx)} called ${call.serverId}${name}: failed`,
      outcome: 'error',
      durationMs: this.core.now() - started.at,
      error,
    });
    return result;
  }
}

export { PROTOCOL_VERSION_META_KEY };
