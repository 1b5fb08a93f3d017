/**
 * How the renderer reaches Lanyard, picked at run time: in the desktop app the preload's `window.lanyard` (IPC); in
 * a browser (the dashboard served on 127.0.0.1) the HTTP client for `POST /api/<method>`, authenticated by the
 * dashboard's HttpOnly cookie, plus server-sent events from `GET /api/events`. The rest of the UI sees only this.
 */
import {
  ControlEvents,
  NavigateSchema,
  type ControlApi,
  type ControlEventName,
  type ControlEventPayload,
  type Navigate,
} from '../../../shared/contract';
import { createHttpControlClient } from '../../../shared/control-client';
import { authAwareFetch, controlApiFromBridge } from './bridge';

export type ClientEventName = ControlEventName | 'navigate';
export type ClientEventPayload<E extends ClientEventName> = E extends ControlEventName ? ControlEventPayload<E> : Navigate;
export type LiveState = 'connecting' | 'live' | 'reconnecting';

export interface LanyardClient {
  kind: 'app' | 'browser';
  api: ControlApi;
  on<E extends ClientEventName>(name: E, listener: (payload: ClientEventPayload<E>) => void): () => void;
  /** The live event stream's state (always 'live' over IPC). */
  onLiveState(listener: (state: LiveState) => void): () => void;
}

/** Drops an event that does not match the contract rather than rendering it. */
function parseEvent(name: ClientEventName, payload: unknown): unknown {
  const schema = name === 'navigate' ? NavigateSchema : ControlEvents[name];
  const parsed = schema.safeParse(payload);
  return parsed.success ? parsed.data : undefined;
}

function appClient(bridge: NonNullable<Window['lanyard']>): LanyardClient {
  return {
    kind: 'app',
    api: controlApiFromBridge(bridge),
    on(name, listener) {
      return bridge.onEvent(name, (payload: unknown) => {
        const data = parseEvent(name, payload);
        if (data !== undefined) listener(data as never);
      });
    },
    onLiveState(listener) {
      listener('live');
      return () => undefined;
    },
  };
}

function browserClient(): LanyardClient {
  const api = createHttpControlClient({ baseUrl: '', fetch: authAwareFetch(window.fetch.bind(window)) });
  const listeners = new Map<ClientEventName, Set<(payload: unknown) => void>>();
  const liveListeners = new Set<(state: LiveState) => void>();
  let live: LiveState = 'connecting';
  let source: EventSource | undefined;
  const setLive = (state: LiveState) => {
    live = state;
    for (const l of liveListeners) l(state);
  };
  const dispatch = (name: ClientEventName, data: unknown) => {
    for (const l of listeners.get(name) ?? []) l(data);
  };
  /**
   * After a drop the stream resumes with the current status (the broker sends it on every connect), but the activity
   * entries recorded while it was down were never sent: read them, so the list has no hole.
   */
  const catchUp = async () => {
    try {
      const recent = await api.recentActivity({ limit: 200 });
      for (const entry of [...recent].reverse()) dispatch('activity', entry);
    } catch {
      // The stream is back; a later event or a reload fills the list.
    }
  };
  // One stream for the whole page, opened on first use; EventSource reconnects by itself after a drop.
  const ensureSource = () => {
    if (source !== undefined) return;
    source = new EventSource('/api/events');
    source.onopen = () => {
      const reconnected = live === 'reconnecting';
      setLive('live');
      if (reconnected && (listeners.get('activity')?.size ?? 0) > 0) void catchUp();
    };
    source.onerror = () => setLive('reconnecting');
    for (const name of Object.keys(ControlEvents) as ControlEventName[]) {
      source.addEventListener(name, (event) => {
        let payload: unknown;
        try {
          payload = JSON.parse((event as MessageEvent<string>).data);
        } catch {
          return;
        }
        const data = parseEvent(name, payload);
        if (data === undefined) return;
        dispatch(name, data);
      });
    }
  };
  return {
    kind: 'browser',
    api,
    on(name, listener) {
      if (name === 'navigate') return () => undefined;
      ensureSource();
      let set = listeners.get(name);
      if (set === undefined) listeners.set(name, (set = new Set()));
      const l = listener as (payload: unknown) => void;
      set.add(l);
      return () => set.delete(l);
    },
    onLiveState(listener) {
      liveListeners.add(listener);
      listener(live);
      return () => liveListeners.delete(listener);
    },
  };
}

export function createLanyardClient(): LanyardClient {
  return window.lanyard !== undefined ? appClient(window.lanyard) : browserClient();
}
