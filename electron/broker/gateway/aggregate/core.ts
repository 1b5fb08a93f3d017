import type { CallToolResult, ListToolsResult, Prompt } from '@modelcontextprotocol/server';
import type { ActivityEvent } from '../../../../shared/contract';
import type { CallGuard } from '../../governance/call-guard';
import type { ProfileId, ProfileView } from '../../governance/profiles';
import type { Logger } from '../../util/log';
import type { NameOrigin } from '../tool-names';
import type { CatalogKind } from '../upstream/catalog';
import type { UpstreamPool } from '../upstream/pool';
import type { ResourceIndex } from './merged';

/**
 * The types the aggregator (aggregator.ts) and its IDE sessions (ide-sessions.ts) share, kept here so neither file
 * imports the other's types (the aggregator creates the sessions; the sessions call back through AggregatorCore).
 */

/** What the aggregator records for the activity view: names, codes and durations only. */
export type AggregatorActivity = Omit<ActivityEvent, 'id' | 'at'>;

/** An IDE connected to `/mcp`, for "which IDEs are connected, and since when". */
export interface IdeSessionInfo {
  id: string;
  clientName: string;
  clientVersion?: string | undefined;
  transport: 'http';
  /** `/mcp`, or the IDE's own `/ide/<ide>/mcp` (its profile). */
  endpoint: string;
  connectedAt: number;
  lastSeenAt: number;
}

export type IdeSessionEvent = { type: 'connected' | 'closed'; session: IdeSessionInfo };

/** The part of the aggregator the IDE sessions call into. */
export interface AggregatorCore {
  readonly pool: UpstreamPool;
  readonly log: Logger;
  readonly now: () => number;
  readonly version: string;
  readonly separator: string;
  /** Governance's seam: every request that reaches an upstream is admitted before and settled after. */
  readonly guard: CallGuard;
  /** `only/<id>` for the one-server diagnostic endpoint (aggregate/only-server.ts); absent for `/mcp`. */
  readonly scope?: string;
  /** The one server of `/mcp/only/<id>`. */
  readonly onlyServer?: string;
  signedIn(): boolean;
  /**
   * Whether calls may go to this server now: signed in, or the server does not need the IdP sign-in (OAuth, API-key
   * and open servers work signed out and with no IdP at all).
   */
  canServe(serverId: string): boolean;
  /** One sentence saying how to sign in (the fix of a not-signed-in error). */
  signInHint(): string;
  listToolsForIde(): Promise<ListToolsResult>;
  /** The same list serialized: the bytes are built once per catalog change and reused (a 50 × 100 list is ~1.3 MB). */
  listToolsJson(): Promise<Buffer>;
  listPrompts(): Promise<Prompt[]>;
  listResources(): Promise<ResourceIndex>;
  /** The server and original name of an exposed tool or prompt name (waiting for lists when it is not known yet). */
  resolveName(kind: 'tools' | 'prompts', exposed: string): Promise<NameOrigin | undefined>;
  /** Like resolveName, without waiting: only names this run handed out, of enabled servers (the fast path's test). */
  knownName(kind: 'tools' | 'prompts', exposed: string): NameOrigin | undefined;
  /** Like serverForUri, without waiting: undefined unless the resource lists are merged already. */
  knownServerForUri(uri: string): string | undefined;
  /** The server a resource URI (or template) belongs to. */
  serverForUri(uri: string, template?: boolean): Promise<string | undefined>;
  /** Why a tool is held back for review (tool pinning), or undefined when it may be called. */
  toolRefusal(serverId: string, tool: string): Error | undefined;
  /**
   * Admits a call of a tool, or throws the JSON-RPC error the IDE gets. A tool named by a restart's catalog snapshot
   * waits for the server's live listing first, so pinning judges the live definition (the server may have changed it
   * while Lanyard was off), and fails as a call to an unreachable server when that listing fails; a tool held back
   * for review is refused with what changed and how to review it.
   */
  admitToolCall(serverId: string, tool: string): Promise<void>;
  builtinTool(name: string): CallToolResult | undefined;
  versions(): Readonly<Record<CatalogKind, number>>;
  activity(event: AggregatorActivity): void;
  ideSession(event: IdeSessionEvent): void;
  warmInBackground(): void;
  /** The tool profile of a session on this endpoint (plain `/mcp`: the default profile). */
  profileView(id: ProfileId | undefined): ProfileView;
}
