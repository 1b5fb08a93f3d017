/**
 * The preload script: runs sandboxed (CommonJS, only 'electron' and a few built-ins can be required) in an isolated
 * world, and exposes exactly the control contract as `window.lanyard` (see lanyard-api.d.ts). Nothing else crosses
 * into the page: no ipcRenderer, no channel names chosen by the page, no IPC event objects.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { Emitter } from '../../shared/emitter';
import { CONTROL_METHODS, controlChannel, EVENT_CHANNEL } from './channels';
import type { BridgeEventName, LanyardBridge } from './lanyard-api';

type Listener = (payload: unknown) => void;
// shared/emitter.ts has no imports of its own, so the bundler inlines it into this sandboxed CommonJS preload.
// Guarded: a page listener that throws is logged and the others still hear the event.
const emitters: Record<BridgeEventName, Emitter<unknown>> = {
  status: new Emitter(reportListenerError),
  activity: new Emitter(reportListenerError),
  navigate: new Emitter(reportListenerError),
};

function reportListenerError(error: unknown): void {
  console.error('Lanyard: an event listener failed', error);
}

/**
 * The last `navigate` that arrived before the page subscribed. A cold start from a `lanyard://` link sends it while
 * React is still mounting; keeping it here (instead of dropping it) means the link is never lost.
 */
let pendingNavigate: unknown;

// Registered once, at preload time, before any page script runs.
ipcRenderer.on(EVENT_CHANNEL, (_event, message: unknown) => {
  if (typeof message !== 'object' || message === null) return;
  const { name, payload } = message as { name?: unknown; payload?: unknown };
  if (name !== 'status' && name !== 'activity' && name !== 'navigate') return;
  if (name === 'navigate' && emitters.navigate.size === 0) {
    pendingNavigate = payload;
    return;
  }
  emitters[name].emit(payload);
});

function onEvent(name: BridgeEventName, listener: Listener): () => void {
  if (typeof listener !== 'function') throw new TypeError('onEvent needs a function');
  if (!Object.hasOwn(emitters, name)) throw new TypeError(`onEvent: unknown event ${String(name)}`);
  const off = emitters[name].on(listener);
  if (name === 'navigate' && pendingNavigate !== undefined) {
    const payload = pendingNavigate;
    pendingNavigate = undefined;
    queueMicrotask(() => listener(payload));
  }
  return off;
}

const methods = Object.fromEntries(
  CONTROL_METHODS.map((method) => [method, (input: unknown) => ipcRenderer.invoke(controlChannel(method), input ?? {})]),
);

const api = Object.freeze({ ...methods, onEvent }) as unknown as LanyardBridge;

contextBridge.exposeInMainWorld('lanyard', api);
