import { randomUUID } from 'node:crypto';
import type { ElicitResult, ListRootsResult, Notification, ResultTypeMap } from '@modelcontextprotocol/client';
import type { DownstreamTarget } from '../upstream/call-context';

/**
 * Multi-round-trip requests (MCP 2026-07-28, `input_required`) relayed between a 2026-07-28 IDE and the upstream
 * call that asked. See docs/protocol.md, "Two protocol eras on /mcp".
 *
 * Whatever era the upstream speaks, its questions reach Lanyard the same way: as `elicit` / `sample` / `listRoots` on
 * the call's DownstreamTarget (a 2025-11-25 server sends a server→client request; for a 2026-07-28 server the SDK
 * client fulfils its `input_required` result through the same handlers). A 2026-07-28 IDE has no channel for a
 * server→client request, so the call is parked here: the IDE gets an `input_required` result listing the questions,
 * and its retry (carrying `inputResponses` and the `requestState` Lanyard minted) answers them and waits for the
 * upstream's next step. The upstream call itself keeps running in the meantime, so nothing about it is handed to the
 * IDE; the `requestState` only names the parked call, sealed by the SDK's HMAC codec (modern-endpoint.ts).
 *
 * Part of Lanyard's 2026-07-28 serving layer: it goes when the SDK can relay input requests itself.
 */

/** Rounds one IDE call may take before Lanyard gives up on it (a server that never stops asking). */
export const MAX_INPUT_ROUNDS = 8;
/** How long a parked call waits for the IDE's retry (the same as the sealed requestState's lifetime). */
export const PARKED_CALL_TTL_MS = 10 * 60_000;
/** Questions an upstream asks together (the SDK fulfils them in parallel) are collected for this long. */
const GATHER_MS = 20;
/** Parked calls kept at once; past it the oldest is given up (its IDE gets an expired-state error). */
const MAX_PARKED = 256;

type InputMethod = 'elicitation/create' | 'sampling/createMessage' | 'roots/list';

interface Question {
  key: string;
  method: InputMethod;
  params: Record<string, unknown> | undefined;
  answer(value: unknown): void;
  fail(error: Error): void;
}

/** What a round ends with: the upstream's answer, or questions for the IDE. */
export type RoundOutcome<T> =
  | { kind: 'done'; result: T }
  | { kind: 'failed'; error: unknown }
  | { kind: 'input'; call: ParkedCall<T>; inputRequests: Record<string, { method: InputMethod; params?: Record<string, unknown> }> };

/** One upstream call waiting for a 2026-07-28 IDE's answers. */
export class ParkedCall<T> {
  readonly id = randomUUID();
  rounds = 0;
  private readonly abort = new AbortController();
  private readonly open = new Map<string, Question>();
  private waiting: (() => void) | undefined;
  private settled: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  private counter = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** The server that asked: a retry is only ever delivered to it. */
    readonly serverId: string,
    /** Who may answer: the IDE the questions went to (its binding, see modern-endpoint.ts). */
    readonly ideKey: string,
    private readonly onExpired: (call: ParkedCall<T>) => void,
  ) {}

  /** The call's own signal: the IDE's HTTP request ends with each round, the upstream call does not. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Where the upstream's progress and log messages go: the IDE request of the current round. */
  notify: (n: Notification) => Promise<void> = async () => undefined;

  /** Where the upstream's questions go while this call runs. */
  target(): DownstreamTarget {
    return {
      elicit: (params, signal) => this.ask<ElicitResult>('elicitation/create', params as Record<string, unknown>, signal),
      sample: (params, signal) =>
        this.ask<ResultTypeMap['sampling/createMessage']>('sampling/createMessage', params as Record<string, unknown>, signal),
      listRoots: (signal) => this.ask<ListRootsResult>('roots/list', undefined, signal),
      notify: (n) => this.notify(n),
    };
  }

  /** Starts the upstream call. */
  run(work: Promise<T>): void {
    work.then(
      (value) => this.settle({ ok: true, value }),
      (error: unknown) => this.settle({ ok: false, error }),
    );
  }

  /** Waits for the next step: the final answer, or the next questions (gathered for a moment). */
  async next(): Promise<RoundOutcome<T>> {
    if (!this.settled && !this.open.size) await new Promise<void>((resolve) => (this.waiting = resolve));
    if (!this.settled && this.open.size) await new Promise((resolve) => setTimeout(resolve, GATHER_MS));
    this.waiting = undefined;
    if (this.settled) {
      this.clearTimer();
      return this.settled.ok ? { kind: 'done', result: this.settled.value } : { kind: 'failed', error: this.settled.error };
    }
    this.rounds++;
    this.armTimer();
    const inputRequests: Record<string, { method: InputMethod; params?: Record<string, unknown> }> = {};
    for (const q of this.open.values()) inputRequests[q.key] = { method: q.method, ...(q.params ? { params: q.params } : {}) };
    return { kind: 'input', call: this, inputRequests };
  }

  /**
   * Delivers the IDE's answers to the questions they name; a question left unanswered is asked again in the next
   * round. Answers to keys that were not asked are ignored.
   */
  answer(responses: Record<string, unknown>): void {
    this.clearTimer();
    for (const [key, q] of [...this.open]) {
      if (!Object.hasOwn(responses, key)) continue;
      this.open.delete(key);
      q.answer(responses[key]);
    }
  }

  /** Gives the call up (too many rounds, expired, Lanyard closing): the upstream call is cancelled. */
  cancel(reason: string): void {
    this.clearTimer();
    for (const q of this.open.values()) q.fail(new Error(reason));
    this.open.clear();
    this.abort.abort(new Error(reason));
  }

  private ask<R>(method: InputMethod, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const key = `${method === 'elicitation/create' ? 'elicit' : method === 'roots/list' ? 'roots' : 'sample'}-${++this.counter}`;
      const onAbort = () => {
        this.open.delete(key);
        reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.open.set(key, {
        key,
        method,
        params,
        answer: (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value as R);
        },
        fail: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
      this.waiting?.();
    });
  }

  private settle(outcome: { ok: true; value: T } | { ok: false; error: unknown }): void {
    this.settled ??= outcome;
    this.waiting?.();
  }

  private armTimer(): void {
    this.clearTimer();
    this.timer = setTimeout(() => this.onExpired(this), PARKED_CALL_TTL_MS);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The parked calls of one endpoint, by id (the id is what the sealed requestState carries). */
export class ParkedCalls {
  private readonly calls = new Map<string, ParkedCall<unknown>>();

  create<T>(serverId: string, ideKey: string): ParkedCall<T> {
    const call = new ParkedCall<T>(serverId, ideKey, (c) => this.drop(c.id, 'The IDE did not answer in time.'));
    return call;
  }

  park(call: ParkedCall<unknown>): void {
    this.calls.set(call.id, call);
    if (this.calls.size > MAX_PARKED) {
      const oldest = this.calls.keys().next().value;
      if (oldest !== undefined) this.drop(oldest, 'Too many calls waiting for input.');
    }
  }

  /** Takes a parked call out (single use: a replayed requestState finds nothing). */
  take(id: string): ParkedCall<unknown> | undefined {
    const call = this.calls.get(id);
    if (call) this.calls.delete(id);
    return call;
  }

  get size(): number {
    return this.calls.size;
  }

  drop(id: string, reason: string): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    call.cancel(reason);
  }

  close(): void {
    for (const id of [...this.calls.keys()]) this.drop(id, 'Lanyard is shutting down.');
  }
}
