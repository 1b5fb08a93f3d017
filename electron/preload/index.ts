/**
 * The preload script: runs sandboxed (CommonJS, only 'electron' and a few built-ins can be required) in an isolated
 * world, and exposes exactly the control contract as `window.lanyard` (see lanyard-api.d.ts). Nothing else crosses
 * into the page: no ipcRenderer, no channel names chosen by the page, no IPC event objects.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { CONTROL_METHODS, controlChannel, EVENT_CHANNEL } from './channels';
import type { BridgeEventName, LanyardBridge } from './lanyard-api';

type Listener = (payload: unknown) => void;
const listeners = new Map<BridgeEventName, Set<Listener>>();

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
  const subscribers = listeners.get(name);
  if (name === 'navigate' && (subscribers === undefined || subscribers.size === 0)) {
    pendingNavigate = payload;
    return;
  }
  for (const listener of subscribers ?? []) listener(payload);
});

function onEvent(name: BridgeEventName, listener: Listener): () => void {
  if (typeof listener !== 'function') throw new TypeError('onEvent needs a function');
  let set = listeners.get(name);
  if (set === undefined) listeners.set(name, (set = new Set()));
  set.add(listener);
  if (name === 'navigate' && pendingNavigate !== undefined) {
    const payload = pendingNavigate;
    pendingNavigate = undefined;
    queueMicrotask(() => listener(payload));
  }
  return () => {
    set.delete(listener);
  };
}

const methods = Object.fromEntries(
  CONTROL_METHODS.map((method) => [method, (input: unknown) => ipcRenderer.invoke(controlChannel(method), input ?? {})]),
);

const api = Object.freeze({ ...methods, onEvent }) as unknown as LanyardBridge;

contextBridge.exposeInMainWorld('lanyard', api);
