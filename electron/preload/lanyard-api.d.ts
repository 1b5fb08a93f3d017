/**
 * The API the preload exposes to the renderer as `window.lanyard`. It is the renderer's only way into the app; in a
 * plain browser (the dashboard served by `lanyard serve`) it is absent and the renderer uses HTTP instead.
 *
 * Placeholder: the real surface is the control contract in shared/ (methods, events, zod schemas), added with the
 * dashboard. Never expose ipcRenderer or a generic invoke(channel, ...) here.
 */
export interface LanyardApi {
  /** The app version, e.g. "0.1.0". */
  readonly version: string;
}

declare global {
  interface Window {
    readonly lanyard?: LanyardApi;
  }
}
