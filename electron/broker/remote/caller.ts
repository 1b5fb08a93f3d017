import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';

/**
 * Who a request came from when it carried a remote device's token (docs/architecture.md, "Remote development"): the
 * front door marks the request, and everything the request causes — the audit record of its tool calls, its activity
 * entries — runs inside that caller's context, so they can name the device without every layer passing it along.
 * Names only: never the token.
 */
export interface RemoteCaller {
  deviceId: string;
  label: string;
}

const marks = new WeakMap<Pick<IncomingMessage, 'headers'>, RemoteCaller>();
const context = new AsyncLocalStorage<RemoteCaller | undefined>();

/** Set by the local-auth guard when a remote token let the request in. */
export function markRemoteCaller(req: Pick<IncomingMessage, 'headers'>, caller: RemoteCaller): void {
  marks.set(req, caller);
}

export function remoteCallerOf(req: Pick<IncomingMessage, 'headers'>): RemoteCaller | undefined {
  return marks.get(req);
}

/**
 * The front door calls this once a request is let in: a remote request's handling (the rest of the async handler and
 * everything it awaits) runs as that caller. `enterWith` rather than `run` keeps the front door's handler unchanged.
 * The requests of one kept-alive connection run in that connection's async context, so the caller is set for every
 * request — cleared for one that is not a device's — or a device's name would carry over to the next request.
 */
export function enterRemoteCaller(req: Pick<IncomingMessage, 'headers'>): void {
  const caller = marks.get(req);
  if (caller !== context.getStore()) context.enterWith(caller);
}

/** The remote device the current request came from; undefined for the laptop's own IDEs. */
export function currentRemoteCaller(): RemoteCaller | undefined {
  return context.getStore();
}

/** Runs `fn` as `caller` (tests and callers that own the whole call). */
export function runAsRemoteCaller<T>(caller: RemoteCaller, fn: () => T): T {
  return context.run(caller, fn);
}
