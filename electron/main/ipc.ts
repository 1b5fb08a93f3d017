/**
 * The Electron IPC transport of the control contract, main side. Pure of 'electron' (it takes a structural `ipcMain`),
 * so test/unit/main-ipc.test.ts drives it with fakes.
 *
 * Main distrusts every message (docs/architecture.md "The control contract"):
 *   1. the sender must be one of our windows (a known webContents id) AND the message must come from that window's
 *      main frame while it shows our own page (file:// renderer, or the dev server in `electron-vite dev`) — a frame
 *      that navigated elsewhere, or a subframe, is refused;
 *   2. the payload is parsed with the method's zod input schema (unknown keys refused, as over HTTP);
 *   3. the answer is the contract's ControlResult envelope, with the output parsed once more so that nothing outside
 *      the schema (a stray field holding a secret) can ever reach the page.
 */
import { fileURLToPath } from 'node:url';
import {
  ControlMethods,
  type ControlApi,
  type ControlEventName,
  type ControlEventPayload,
  type ControlMethodName,
  type ControlResult,
  type Navigate,
} from '../../shared/contract';
import { ErrorCodes, type ErrorInfo } from '../../shared/errors';
import { toErrorInfo } from '../broker/errors';
import { CONTROL_METHODS, controlChannel, EVENT_CHANNEL } from '../preload/channels';

/** The parts of Electron's IpcMainInvokeEvent the sender check reads. */
export interface IpcInvokeEvent {
  sender: { id: number };
  senderFrame: { url: string; parent: unknown } | null;
}

/** The part of Electron's `ipcMain` used here. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcInvokeEvent, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

export interface SenderPolicy {
  /** webContents ids of Lanyard's own windows, read on every call (windows come and go). */
  trustedContents(): ReadonlySet<number>;
  /** True when `url` is our renderer page. */
  isAppUrl(url: string): boolean;
}

/**
 * Our renderer page: the built `index.html` as a file:// URL (any hash or query: the router uses the hash), or the
 * dev server's origin in `electron-vite dev`.
 */
export function appUrlPolicy(options: { rendererFile: string; devServerUrl?: string | undefined }): (url: string) => boolean {
  const devOrigin = options.devServerUrl === undefined ? undefined : new URL(options.devServerUrl).origin;
  return (raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return false;
    }
    if (devOrigin !== undefined) return url.origin === devOrigin;
    if (url.protocol !== 'file:' || (url.host !== '' && url.host !== 'localhost')) return false;
    try {
      return fileURLToPath(url) === options.rendererFile;
    } catch {
      return false;
    }
  };
}

export function isTrustedSender(event: IpcInvokeEvent, policy: SenderPolicy): boolean {
  if (!policy.trustedContents().has(event.sender.id)) return false;
  const frame = event.senderFrame;
  // null: the frame was destroyed or navigated since it sent the message; parent set: an iframe.
  if (frame === null || frame.parent !== null) return false;
  return policy.isAppUrl(frame.url);
}

const untrusted: ErrorInfo = {
  code: ErrorCodes.LOCAL_AUTH_FAILED,
  message: 'This window may not control Lanyard.',
  fix: 'Use the Lanyard dashboard window (tray menu → Open Dashboard).',
};

/** Handles one invoke of `method`: the checks above, then the ControlService. Exported for the tests. */
export async function handleControlCall(
  method: ControlMethodName,
  event: IpcInvokeEvent,
  raw: unknown,
  control: ControlApi,
  policy: SenderPolicy,
): Promise<ControlResult<unknown>> {
  if (!isTrustedSender(event, policy)) return { ok: false, error: untrusted };
  const spec = ControlMethods[method];
  const parsed = spec.input.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
    return {
      ok: false,
      error: {
        code: ErrorCodes.CONFIG_INVALID,
        message: `Invalid input for ${method}: ${issues}.`,
        fix: 'Correct the fields named above.',
      },
    };
  }
  let value: unknown;
  try {
    const call = control[method] as (input: unknown) => Promise<unknown>;
    value = await call.call(control, parsed.data);
  } catch (e) {
    return { ok: false, error: toErrorInfo(e) };
  }
  const output = spec.output.safeParse(value);
  if (!output.success) {
    // A broker bug, not user input: say so plainly (zod's issue list would mean nothing to the user).
    return {
      ok: false,
      error: {
        code: ErrorCodes.INTERNAL,
        message: `Lanyard answered ${method} in an unexpected form.`,
        fix: 'Restart Lanyard; if it persists, run `lanyard doctor` and report it.',
      },
    };
  }
  return { ok: true, value: output.data };
}

/** Registers one handler per control method; returns the function that removes them all. */
export function registerControlIpc(ipc: IpcMainLike, control: ControlApi, policy: SenderPolicy): () => void {
  for (const method of CONTROL_METHODS) {
    ipc.handle(controlChannel(method), (event, raw) => handleControlCall(method, event, raw, control, policy));
  }
  return () => {
    for (const method of CONTROL_METHODS) ipc.removeHandler(controlChannel(method));
  };
}

/** The part of a WebContents that events are sent through. */
export interface EventTarget {
  send(channel: string, message: unknown): void;
  isDestroyed(): boolean;
}

export type ShellEvent =
  { [E in ControlEventName]: { name: E; payload: ControlEventPayload<E> } }[ControlEventName] | { name: 'navigate'; payload: Navigate };

/** The only way main pushes to a window: typed, on the one event channel, never to a destroyed window. */
export function sendEvent(target: EventTarget, event: ShellEvent): void {
  if (target.isDestroyed()) return;
  target.send(EVENT_CHANNEL, event);
}
