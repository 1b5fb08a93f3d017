import type { IncomingMessage } from 'node:http';
import { isPending, outcomeOf, type Admission, type CallGuard, type CallOutcome } from './call-guard';

/**
 * The relay `/mcp/<id>` side of the CallGuard seam. The relay interprets nothing, so this reads the POSTed JSON-RPC
 * body once (it is complete before it is forwarded when a guard is set) and admits each request in it. The IDE's
 * clientInfo comes from its initialize (remembered per upstream session id once the server answered it), or from a
 * stateless request's `_meta`.
 */

/** Requests that are not governance's business: the transport's own. */
const UNRECORDED = new Set(['ping']);
const MAX_SESSIONS = 512;

type ClientInfo = { name: string; version?: string | undefined };

export class RelayClients {
  private readonly byUpstreamSession = new Map<string, ClientInfo>();
  /** A stateless server names no session: the IDE's connection (kept alive between its requests) stands in. */
  private readonly bySocket = new WeakMap<object, ClientInfo>();

  remember(sessionId: string | null, client: ClientInfo | undefined, req?: IncomingMessage): void {
    if (!client) return;
    if (req) this.bySocket.set(req.socket, client);
    if (!sessionId) return;
    this.byUpstreamSession.delete(sessionId);
    this.byUpstreamSession.set(sessionId, client);
    if (this.byUpstreamSession.size > MAX_SESSIONS) this.byUpstreamSession.delete(this.byUpstreamSession.keys().next().value!);
  }

  lookup(sessionId: string | undefined, req: IncomingMessage): ClientInfo | undefined {
    return (sessionId ? this.byUpstreamSession.get(sessionId) : undefined) ?? this.bySocket.get(req.socket);
  }
}

export interface RelayGuarding {
  admissions: Admission[];
  /** The clientInfo of an initialize in this body (remembered once the server names the session). */
  initializing?: { name: string; version?: string | undefined } | undefined;
  settle(outcome: CallOutcome): void;
}

/** Admits every request in the body; throws the guard's LanyardError when one is refused (nothing is forwarded). */
export async function guardRelayed(
  guard: CallGuard,
  clients: RelayClients,
  raw: Buffer | undefined,
  req: IncomingMessage,
  server: { id: string; url: string },
  endpoint: string,
): Promise<RelayGuarding | undefined> {
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined; // not JSON: the server answers it
  }
  const header = req.headers['mcp-session-id'];
  const sessionId = Array.isArray(header) ? header[0] : header;
  const admissions: Admission[] = [];
  let initializing: RelayGuarding['initializing'];
  const settleAll = (outcome: CallOutcome) => {
    for (const a of admissions.splice(0)) guard.settle(a, outcome);
  };
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    const msg = m as { id?: unknown; method?: unknown; params?: Record<string, unknown> } | null;
    if (typeof msg?.method !== 'string' || msg.id === undefined || UNRECORDED.has(msg.method)) continue;
    const params = msg.params && typeof msg.params === 'object' ? msg.params : {};
    if (msg.method === 'initialize') initializing = clientOf(params.clientInfo);
    const ide = clientOf(params.clientInfo) ?? clientOf(metaClient(params._meta)) ?? clients.lookup(sessionId, req) ?? { name: 'unknown' };
    const name = typeof params.name === 'string' ? params.name : typeof params.uri === 'string' ? params.uri : undefined;
    try {
      const admitted = guard.admit({
        ide,
        endpoint,
        serverId: server.id,
        serverUrl: server.url,
        method: msg.method,
        name,
        arguments: msg.method === 'tools/call' ? params.arguments : undefined,
      });
      admissions.push(isPending(admitted) ? await admitted : admitted);
    } catch (e) {
      // Nothing of this body is sent: the requests admitted before it did not reach the server either.
      settleAll({ kind: 'denied', code: (e as { code?: string }).code ?? 'denied' });
      throw e;
    }
  }
  if (!admissions.length && !initializing) return undefined;
  return { admissions, initializing, settle: (outcome) => settleAll(outcome) };
}

/** The outcome of a relayed exchange: its HTTP status (the JSON-RPC answers stream through unread). */
export function relayOutcome(status: number): CallOutcome {
  return status >= 200 && status < 300 ? { kind: 'ok' } : { kind: 'error', code: `http_${status}` };
}

export { outcomeOf };

function clientOf(value: unknown): { name: string; version?: string | undefined } | undefined {
  const v = value as { name?: unknown; version?: unknown } | null | undefined;
  if (typeof v?.name !== 'string') return undefined;
  return { name: v.name.slice(0, 100), ...(typeof v.version === 'string' ? { version: v.version.slice(0, 50) } : {}) };
}

/** A stateless request's clientInfo in `_meta` (any key ending in `clientInfo`, as the 2026 drafts carry it). */
function metaClient(meta: unknown): unknown {
  if (!meta || typeof meta !== 'object') return undefined;
  for (const [k, v] of Object.entries(meta)) if (k === 'clientInfo' || k.endsWith('/clientInfo')) return v;
  return undefined;
}
