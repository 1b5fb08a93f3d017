/**
 * The seam between the gateway and governance (docs/architecture.md, "Governance"): every MCP request that reaches
 * an upstream — tools/call, resources/read, prompts/get and the other forwarded methods, on `/mcp` (fast path and SDK
 * path) and on the relay `/mcp/<id>` — passes `admit` before it leaves and `settle` after it is answered. Governance
 * services (the audit ledger, the outbound secret scan, tool pinning) sit behind it; the gateway knows only this.
 */

/** Who and what one upstream request is: names, ids and hashes only — never a token, and arguments only to scan. */
export interface GuardedCall {
  /** The IDE's clientInfo (initialize, or `_meta` for a stateless request); `unknown` when it never said. */
  ide: { name: string; version?: string | undefined };
  /** The IDE connection: the endpoint path it came in on (`/mcp`, `/mcp/<id>`). */
  endpoint: string;
  /** The IDE's profile, when per-IDE profiles name one. */
  profileId?: string | undefined;
  serverId: string;
  /** The server's configured URL (filled in by governance when the gateway does not know it). */
  serverUrl?: string | undefined;
  /** The JSON-RPC method (tools/call, resources/read, prompts/get, completion/complete, …). */
  method: string;
  /** The tool or prompt name (the server's own), or the resource URI. */
  name?: string | undefined;
  /**
   * tools/call arguments, for the secret scan before they leave. Governance never stores, logs or records them (the
   * ledger keeps at most a salted hash, off by default).
   */
  arguments?: unknown;
}

/** How the upstream answered: ok, an error (its code), or refused before it left (denied by a policy). */
export type CallOutcome = { kind: 'ok' } | { kind: 'error'; code?: string | undefined } | { kind: 'denied'; code: string };

/** What `admit` decided; passed back to `settle` (it carries what the ledger records about the scan). */
export interface Admission {
  readonly call: GuardedCall;
  /** When the call started (performance.now()): `settle` measures the duration from here when not given. */
  readonly started: number;
  /** Set by governance (e.g. the secret kinds a warn policy let through); opaque to the gateway. */
  notes?: Record<string, unknown> | undefined;
}

export interface CallGuard {
  /**
   * Before the request leaves. Returns the admission (synchronously in the common case, so an ordinary call pays no
   * extra turn), or throws / rejects with a LanyardError the gateway turns into the IDE's answer (a tool result with
   * isError for tools/call, a JSON-RPC error otherwise); a refused call is settled by governance itself.
   */
  admit(call: GuardedCall): Admission | Promise<Admission>;
  /** After the answer (or failure). Never throws and never waits: recording is buffered. */
  settle(admission: Admission, outcome: CallOutcome, durationMs?: number): void;
}

/** A guard that admits everything and records nothing (tests, and the gateway before governance is wired). */
export const openCallGuard: CallGuard = {
  admit: (call) => ({ call, started: performance.now() }),
  settle: () => undefined,
};

/** Admits a call only when it is a Promise (the secret scan's slow path): the common case costs no await. */
export function isPending(a: Admission | Promise<Admission>): a is Promise<Admission> {
  return typeof (a as Promise<Admission>).then === 'function';
}

/** The outcome of a call that failed: a Lanyard error's stable code, a JSON-RPC error's number, or `internal`. */
export function outcomeOf(e: unknown): CallOutcome {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'policy_blocked') return { kind: 'denied', code };
  return { kind: 'error', code: typeof code === 'string' ? code : typeof code === 'number' ? `jsonrpc_${code}` : 'internal' };
}
