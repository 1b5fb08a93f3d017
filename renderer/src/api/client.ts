/**
 * How the renderer reaches Lanyard, picked at run time: in the desktop app the preload's `window.lanyard` (IPC); in
 * a browser (the dashboard served on 127.0.0.1) the HTTP client for `POST /api/<method>`, authenticated by the
 * dashboard session this page holds (sent as a header, never a cookie: cookies reach every port on 127.0.0.1), plus
 * server-sent events from `GET /api/events`, opened with a single-use ticket. The rest of the UI sees only this.
 */
import {
  controlMethodNames,
  ControlEvents,
  NavigateSchema,
  type ControlApi,
  type ControlEventName,
  type ControlEventPayload,
  type Navigate,
} from '../../../shared/contract';
import { createHttpControlClient } from '../../../shared/control-client';
import { Emitter } from '../../../shared/emitter';
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

/** Where this tab keeps its dashboard session: sessionStorage of this exact origin, gone when the tab closes. */
const SESSION_KEY = 'lanyard.dashboard.session';
const SESSION_HEADER = 'X-Lanyard-Session';

/**
 * The page's dashboard session. A one-time link puts its code in the fragment (`/#code=…`, never sent to a server):
 * it is taken out of the address bar at once and exchanged, from this origin, for a session kept in sessionStorage.
 */
function dashboardSession(): Promise<string | undefined> {
  const match = /^#code=([A-Za-z0-9_-]{43})$/.exec(window.location.hash);
  if (match === null) return Promise.resolve(window.sessionStorage.getItem(SESSION_KEY) ?? undefined);
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}`);
  return window
    .fetch('/dashboard/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: match[1] }),
      credentials: 'omit',
    })
    .then(async (res) => {
      const body = res.ok ? ((await res.json()) as { session?: unknown }) : undefined;
      if (typeof body?.session !== 'string') return window.sessionStorage.getItem(SESSION_KEY) ?? undefined;
      window.sessionStorage.setItem(SESSION_KEY, body.session);
      return body.session;
    })
    .catch(() => undefined);
}

function browserClient(): LanyardClient {
  const session = dashboardSession();
  const withSession: typeof fetch = async (input, init) => {
    const id = await session;
    const headers = new Headers(init?.headers);
    if (id !== undefined) headers.set(SESSION_HEADER, id);
    return window.fetch(input, { ...init, headers, credentials: 'omit' });
  };
  /** `/api/events` with a fresh single-use ticket (EventSource cannot send the session header). */
  // The identity profile this tab shows: its control API and events are under /p/<name>/ ('' = the default profile).
  let base = '';
  const eventsUrl = async (): Promise<string> => {
    const res = await withSession('/dashboard/ticket', { method: 'POST' }).catch(() => undefined);
    const ticket = res?.ok ? ((await res.json()) as { ticket?: unknown }).ticket : undefined;
    return typeof ticket === 'string' ? `${base}/api/events?ticket=${encodeURIComponent(ticket)}` : `${base}/api/events`;
  };
  const rootApi = createHttpControlClient({ baseUrl: '', fetch: authAwareFetch(withSession) });
  const profileApis = new Map<string, ControlApi>([['', rootApi]]);
  const current = (): ControlApi => {
    let api = profileApis.get(base);
    if (api === undefined) profileApis.set(base, (api = createHttpControlClient({ baseUrl: base, fetch: authAwareFetch(withSession) })));
    return api;
  };
  const api = Object.fromEntries(
    controlMethodNames.map((method) => [method, (input: never) => (current()[method] as (i: never) => unknown)(input)]),
  ) as unknown as ControlApi;
  // Switching is this tab's own: the broker checks the name, then this tab addresses that profile's endpoints.
  api.selectIdentityProfile = async (input) => {
    const profiles = await rootApi.selectIdentityProfile(input);
    base = input.name === null ? '' : `/p/${encodeURIComponent(input.name)}`;
    source?.close();
    source = undefined;
    if ([...events.values()].some((e) => e.size > 0)) void openSource();
    return profiles;
  };
  api.listIdentityProfiles = async () => {
    const name = base === '' ? null : decodeURIComponent(base.slice(3));
    return (await rootApi.listIdentityProfiles({})).map((p) => ({ ...p, current: p.name === name }));
  };
  // Guarded: a view whose listener throws is logged and the other views still update.
  const reportListenerError = (error: unknown) => console.error('Lanyard: an event listener failed', error);
  const events = new Map<ClientEventName, Emitter<unknown>>();
  const eventsOf = (name: ClientEventName): Emitter<unknown> => {
    let emitter = events.get(name);
    if (emitter === undefined) events.set(name, (emitter = new Emitter<unknown>(reportListenerError)));
    return emitter;
  };
  const liveStates = new Emitter<LiveState>(reportListenerError);
  let live: LiveState = 'connecting';
  let source: EventSource | undefined;
  const setLive = (state: LiveState) => {
    live = state;
    liveStates.emit(state);
  };
  const dispatch = (name: ClientEventName, data: unknown) => {
    events.get(name)?.emit(data);
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
  // One stream for the whole page, opened on first use. Its ticket works once, so after a drop the stream is opened
  // again with a new one (EventSource's own retry would reuse the spent ticket).
  let opening = false;
  let retryMs = 500;
  const openSource = async () => {
    opening = true;
    const url = await eventsUrl();
    const next = new EventSource(url);
    source = next;
    opening = false;
    next.onopen = () => {
      const reconnected = live === 'reconnecting';
      retryMs = 500;
      setLive('live');
      if (reconnected && (events.get('activity')?.size ?? 0) > 0) void catchUp();
    };
    next.onerror = () => {
      setLive('reconnecting');
      next.close();
      if (source !== next) return;
      setTimeout(() => void openSource(), retryMs);
      retryMs = Math.min(retryMs * 2, 10_000);
    };
    for (const name of Object.keys(ControlEvents) as ControlEventName[]) {
      next.addEventListener(name, (event) => {
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
  const ensureSource = () => {
    if (source !== undefined || opening) return;
    void openSource();
  };
  return {
    kind: 'browser',
    api,
    on(name, listener) {
      if (name === 'navigate') return () => undefined;
      ensureSource();
      return eventsOf(name).on(listener as (payload: unknown) => void);
    },
    onLiveState(listener) {
      const off = liveStates.on(listener);
      listener(live);
      return off;
    },
  };
}

export function createLanyardClient(): LanyardClient {
  return window.lanyard !== undefined ? appClient(window.lanyard) : browserClient();
}
