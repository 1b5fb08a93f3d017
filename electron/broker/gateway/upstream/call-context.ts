import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  CreateMessageRequest,
  ElicitRequest,
  ElicitResult,
  ListRootsResult,
  Notification,
  ResultTypeMap,
} from '@modelcontextprotocol/client';

/**
 * Where server→client traffic from an upstream session goes: the IDE session (as a whole), or one IDE request in it.
 * Elicitation and sampling can take a person minutes, so implementations use human-paced timeouts.
 */
export interface DownstreamTarget {
  elicit(params: ElicitRequest['params'], signal: AbortSignal): Promise<ElicitResult>;
  sample(params: CreateMessageRequest['params'], signal: AbortSignal): Promise<ResultTypeMap['sampling/createMessage']>;
  listRoots(signal: AbortSignal): Promise<ListRootsResult>;
  notify(notification: Notification): Promise<void>;
}

/**
 * A deadline that restarts on progress and stops while the server waits for the IDE (elicitation, sampling, roots):
 * the 60 s budget is for the server's own work, not for the person answering a question.
 */
export class Deadline {
  /** Made when someone asks for the signal: the fast path takes `onExpire` instead (one controller per call, not two). */
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private paused = 0;
  private done = false;
  expired = false;

  constructor(
    private readonly ms: number,
    private readonly onExpire?: (reason: Error) => void,
  ) {
    this.arm();
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.expired) this.controller.abort(new Error('deadline expired'));
    }
    return this.controller.signal;
  }

  /** Progress arrived: the server is alive, start the budget again. */
  reset(): void {
    if (this.paused === 0) this.arm();
  }

  pause(): void {
    this.paused++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    if (this.paused > 0 && --this.paused === 0) this.arm();
  }

  clear(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.done) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.expired = true;
      this.done = true;
      const reason = new Error('deadline expired');
      this.controller?.abort(reason);
      this.onExpire?.(reason);
    }, this.ms);
    this.timer.unref?.();
  }
}

/** One IDE request being served by an upstream call: where its related traffic goes, and its deadline. */
export interface ActiveCall {
  target: DownstreamTarget;
  deadline: Deadline;
  /**
   * Notifications being forwarded for this call (progress, log messages). The result is sent only after they are
   * out, so the IDE sees them on the call's stream before the response closes it.
   */
  pending: Set<Promise<unknown>>;
}

/** Keeps track of a send made for a call until it is done; never rejects. */
export function track(call: ActiveCall | undefined, send: Promise<unknown> | void): void {
  if (!send) return;
  const settled = send.catch(() => undefined);
  if (!call) return;
  call.pending.add(settled);
  void settled.finally(() => call.pending.delete(settled));
}

/** Forwards a notification on the call's stream (or to the session when there is no call), tracked for the call. */
export function forwardFor(call: ActiveCall | undefined, fallback: DownstreamTarget, notification: Notification): void {
  track(call, (call?.target ?? fallback).notify(notification));
}

/**
 * The IDE request an upstream exchange is running for. The SDK delivers a server→client request (or a notification)
 * from inside the async chain of the POST whose response stream carried it, and that chain began inside
 * `activeCall.run(call, ...)` — so a handler reading the store knows exactly which IDE request caused it, and sends
 * its own request on that IDE request's stream. Traffic that arrives on the session's GET stream has no store (the
 * session was connected outside any call) and goes to the IDE session as a whole.
 */
export const activeCall = new AsyncLocalStorage<ActiveCall>();
