/**
 * What the preload exposes to the renderer as `window.lanyard`: the control contract (shared/contract.ts), one
 * function per method, plus `onEvent`. It is the renderer's only way into the app; in a plain browser (the dashboard
 * served by the local endpoint) it is absent and the renderer uses the HTTP client and server-sent events instead.
 *
 * Each method resolves with the contract's result envelope rather than throwing: Electron's contextBridge copies only
 * an Error's message across worlds, and the renderer needs the error's code and fix line. It never rejects for an
 * expected failure. Never expose ipcRenderer or a generic invoke(channel, ...) here.
 */
import type {
  ControlEventName,
  ControlEventPayload,
  ControlInput,
  ControlMethodName,
  ControlOutput,
  ControlResult,
  Navigate,
} from '../../shared/contract';

/** Events the bridge delivers: the contract's events, plus the desktop shell's `navigate` (deep links, tray). */
export type BridgeEventName = ControlEventName | 'navigate';
export type BridgeEventPayload<E extends BridgeEventName> = E extends ControlEventName ? ControlEventPayload<E> : Navigate;

export type LanyardBridgeMethods = {
  readonly [M in ControlMethodName]: (input: ControlInput<M>) => Promise<ControlResult<ControlOutput<M>>>;
};

export interface LanyardBridge extends LanyardBridgeMethods {
  /** Calls `listener` with each event's data (never the IPC event object). Returns the unsubscribe function. */
  onEvent<E extends BridgeEventName>(name: E, listener: (payload: BridgeEventPayload<E>) => void): () => void;
}

declare global {
  interface Window {
    readonly lanyard?: LanyardBridge;
  }
}
