/**
 * The Electron main process: the composition root of the tray app. It wires Electron to Lanyard and holds no product
 * logic (that is electron/broker, plain Node). Kept thin on purpose: the Electron binary cannot run in CI, so
 * everything with behaviour worth testing lives in modules that take injected fakes (security.ts, deep-link.ts).
 *
 * Lifecycle: one instance per user (a second launch, or a `lanyard://` link, focuses the first); the dashboard
 * window starts hidden and closing it only hides it; the app quits from the tray's Quit item (or the OS), not when its
 * last window closes.
 */
import { app, BrowserWindow, session, shell } from 'electron';
import { join, resolve } from 'node:path';
import { DEEP_LINK_SCHEME, findDeepLinkArg, parseDeepLink } from './deep-link';
import { buildCsp, guardWebContents, hardenSession, secureWebPreferences } from './security';

/** Set by `electron-vite dev` to the renderer dev server; never set in a packaged app. */
const devServerUrl = app.isPackaged ? undefined : process.env['ELECTRON_RENDERER_URL'];

/** React Fast Refresh's inline preamble hash, defined by electron.vite.config.ts for `electron-vite dev` only. */
declare const __LANYARD_DEV_SCRIPT_HASHES__: readonly string[];

let dashboard: BrowserWindow | null = null;
let quitting = false;

function main(): void {
  // Every renderer sandboxed, whatever a future window's options say.
  app.enableSandbox();

  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  registerProtocolClient();

  app.on('web-contents-created', (_event, contents) => guardWebContents(contents, (url) => shell.openExternal(url)));
  app.on('second-instance', (_event, argv) => {
    const link = findDeepLinkArg(argv);
    if (link === undefined) showDashboard();
    else handleDeepLink(link);
  });
  // macOS delivers deep links as events, possibly before 'ready'; handleDeepLink waits for the window.
  app.on('open-url', (event, url) => {
    event.preventDefault();
    handleDeepLink(url);
  });
  // A tray app keeps running with no window open.
  app.on('window-all-closed', () => undefined);
  app.on('before-quit', () => {
    quitting = true;
  });
  app.on('activate', () => showDashboard());

  app
    .whenReady()
    .then(() => {
      if (process.platform === 'darwin') app.dock?.hide();
      const csp = buildCsp(devServerUrl === undefined ? {} : { dev: { scriptHashes: __LANYARD_DEV_SCRIPT_HASHES__ } });
      hardenSession(session.defaultSession, csp);
      dashboard = createDashboardWindow();
      // Windows and Linux start a cold app with the link as an argument.
      const link = findDeepLinkArg(process.argv);
      if (link !== undefined) handleDeepLink(link);
    })
    .catch((error: unknown) => {
      console.error('Lanyard could not start:', error);
      app.exit(1);
    });
}

/** Makes the OS send `lanyard://` links to this app (in development: to this Electron binary and entry script). */
function registerProtocolClient(): void {
  const entry = process.argv[1];
  if (process.defaultApp && entry !== undefined) {
    app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME, process.execPath, [resolve(entry)]);
  } else {
    app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME);
  }
}

function createDashboardWindow(): BrowserWindow {
  const win = new BrowserWindow({
    show: false,
    width: 980,
    height: 700,
    minWidth: 720,
    minHeight: 480,
    title: 'Lanyard',
    autoHideMenuBar: true,
    webPreferences: secureWebPreferences(join(import.meta.dirname, '../preload/index.cjs')),
  });
  // Closing the dashboard hides it; the tray (and a second launch) bring it back.
  win.on('close', (event) => {
    if (quitting) return;
    event.preventDefault();
    win.hide();
  });
  win.on('closed', () => {
    if (dashboard === win) dashboard = null;
  });
  if (devServerUrl !== undefined) {
    win.once('ready-to-show', () => win.show());
    void win.loadURL(devServerUrl);
  } else {
    void win.loadFile(join(import.meta.dirname, '../renderer/index.html'));
  }
  return win;
}

function showDashboard(): void {
  if (!app.isReady()) return;
  dashboard ??= createDashboardWindow();
  if (dashboard.isMinimized()) dashboard.restore();
  dashboard.show();
  dashboard.focus();
}

function handleDeepLink(raw: string): void {
  if (!app.isReady()) {
    // Runs after main()'s own whenReady step (registered first), so the window exists by then.
    void app.whenReady().then(() => handleDeepLink(raw));
    return;
  }
  const link = parseDeepLink(raw);
  if (link === null) return;
  // The page is routed to the renderer once the IPC contract exists; until then every link opens the dashboard.
  showDashboard();
}

main();
