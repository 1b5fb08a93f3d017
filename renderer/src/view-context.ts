/**
 * What the dashboard shell hands every view. It lives in its own module, not in App.tsx, so the views depend on the
 * shape of the context and never on the shell that renders them (App imports the views; the views import only this).
 */
import type { Status } from '../../shared/contract';
import type { LanyardClient } from './api/client';
import type { Page } from './model/router';

export interface Toast {
  id: number;
  tone: 'ok' | 'error' | 'info';
  text: string;
}

/** What every view gets: the API, the latest status, the clock for relative times, and a way to say something. */
export interface ViewContext {
  client: LanyardClient;
  status: Status;
  now: number;
  notify: (tone: Toast['tone'], text: string) => void;
  go: (page: Page) => void;
  /** Re-reads status now (after an action whose effect the broker may not push, e.g. a tool list loaded). */
  refresh: () => void;
}
