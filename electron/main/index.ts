/**
 * The Electron main process: the composition root of the tray app. It adapts Electron's APIs to the small
 * ShellPlatform interface (shell.ts, where all behaviour lives and is unit-tested with a fake) and builds the Broker
 * (electron/broker, plain Node). Nothing here decides anything; keep it that way — the Electron binary cannot run in
 * CI, so this file runs there only under Node with a recording fake `electron` (test/unit/main-index.test.ts).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  app,
  BrowserWindow,
  ipcMain,
  Menu,
  nativeImage,
  nativeTheme,
  Notification,
  session,
  shell,
  Tray,
  type MenuItemConstructorOptions,
  type NativeImage,
} from 'electron';
import ElectronStore from 'electron-store';
import { version } from '../../package.json';
import { Broker } from '../broker/broker';
import { toErrorInfo } from '../broker/errors';
import { createSwitchingControl } from '../broker/identities/switching-control';
import { chromiumFetch } from '../broker/net/chromium';
import { resolveLanyardHome } from '../broker/paths';
import { clearStartupFailure, explainStartupError, recordStartupFailure } from '../broker/startup-failure';
import { linuxLoginItem } from './autostart';
import { createStoreBackend } from './config-backend';
import { DEEP_LINK_SCHEME } from './deep-link';
import { buildCsp, createSignInOpener } from './security';
import { AppShell, type ShellPlatform } from './shell';
import type { DotTone, TrayIconVariant } from './tray-presenter';
import trayPng from '../../resources/tray/tray.png?asset';
import trayAttentionPng from '../../resources/tray/trayAttention.png?asset';
import trayTemplatePng from '../../resources/tray/trayTemplate.png?asset';
import trayTemplate2xPng from '../../resources/tray/trayTemplate@2x.png?asset';
import trayAttentionTemplatePng from '../../resources/tray/trayAttentionTemplate.png?asset';
import trayAttentionTemplate2xPng from '../../resources/tray/trayAttentionTemplate@2x.png?asset';
import dotOkPng from '../../resources/tray/dot-ok.png?asset';
import dotOk2xPng from '../../resources/tray/dot-ok@2x.png?asset';
import dotBusyPng from '../../resources/tray/dot-busy.png?asset';
import dotBusy2xPng from '../../resources/tray/dot-busy@2x.png?asset';
import dotErrorPng from '../../resources/tray/dot-error.png?asset';
import dotError2xPng from '../../resources/tray/dot-error@2x.png?asset';
import dotOffPng from '../../resources/tray/dot-off.png?asset';
import dotOff2xPng from '../../resources/tray/dot-off@2x.png?asset';

/** Set by `electron-vite dev` to the renderer dev server; never set in a packaged app. */
const devServerUrl = app.isPackaged ? undefined : process.env['ELECTRON_RENDERER_URL'];

/** React Fast Refresh's inline preamble hash, defined by electron.vite.config.ts for `electron-vite dev` only. */
declare const __LANYARD_DEV_SCRIPT_HASHES__: readonly string[];

/** A 1x + 2x image (the OS picks per display). */
async function hiDpiImage(x1: string, x2: string, template: boolean): Promise<NativeImage> {
  const image = nativeImage.createEmpty();
  image.addRepresentation({ scaleFactor: 1, buffer: await readFile(x1) });
  image.addRepresentation({ scaleFactor: 2, buffer: await readFile(x2) });
  if (template) image.setTemplateImage(true);
  return image;
}

async function loadIcons(): Promise<{ tray: Record<TrayIconVariant, NativeImage>; dots: Record<DotTone, NativeImage> }> {
  // macOS menu bars want monochrome "template" images the OS tints; Windows and Linux trays show the coloured badge.
  const tray =
    process.platform === 'darwin'
      ? {
          normal: await hiDpiImage(trayTemplatePng, trayTemplate2xPng, true),
          attention: await hiDpiImage(trayAttentionTemplatePng, trayAttentionTemplate2xPng, true),
        }
      : { normal: nativeImage.createFromPath(trayPng), attention: nativeImage.createFromPath(trayAttentionPng) };
  return {
    tray,
    dots: {
      ok: await hiDpiImage(dotOkPng, dotOk2xPng, false),
      busy: await hiDpiImage(dotBusyPng, dotBusy2xPng, false),
      error: await hiDpiImage(dotErrorPng, dotError2xPng, false),
      off: await hiDpiImage(dotOffPng, dotOff2xPng, false),
    },
  };
}

/** Loaded once the app is ready (nativeImage needs it); the tray is created after that. */
let icons: Awaited<ReturnType<typeof loadIcons>> | undefined;

function electronPlatform(): ShellPlatform {
  const entry = process.argv[1];
  const linuxLogin =
    process.platform === 'linux'
      ? linuxLoginItem({
          // An AppImage is mounted at a new path every run: autostart must run the image itself.
          executable: process.env.APPIMAGE || process.execPath,
          ...(process.defaultApp && entry !== undefined ? { args: [resolve(entry)] } : {}),
        })
      : undefined;
  return {
    platform: process.platform,
    argv: process.argv,
    requestSingleInstanceLock: () => app.requestSingleInstanceLock(),
    registerProtocolClient: () => {
      // In development the OS must start this Electron binary with our entry script.
      if (process.defaultApp && entry !== undefined) app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME, process.execPath, [resolve(entry)]);
      else app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME);
    },
    onSecondInstance: (listener) => app.on('second-instance', (_event, argv) => listener(argv)),
    onOpenUrl: (listener) =>
      app.on('open-url', (event, url) => {
        event.preventDefault();
        listener(url);
      }),
    onActivate: (listener) => app.on('activate', () => listener()),
    onBeforeQuit: (listener) => app.on('before-quit', () => listener()),
    onWebContentsCreated: (listener) => app.on('web-contents-created', (_event, contents) => listener(contents)),
    quit: () => app.quit(),
    hideDock: () => app.dock?.hide(),
    createWindow: (options) => new BrowserWindow(options),
    defaultSession: session.defaultSession,
    ipc: ipcMain,
    tray: {
      createTray: (image) => new Tray(image as NativeImage),
      buildMenu: (template) => Menu.buildFromTemplate(template as MenuItemConstructorOptions[]),
      icon: (variant) => icons?.tray[variant] ?? nativeImage.createEmpty(),
      dot: (tone) => icons?.dots[tone],
    },
    openExternal: (url) => shell.openExternal(url),
    // The window starts hidden on every launch, so a login start shows nothing but the tray. Electron's login items
    // cover macOS and Windows only; Linux desktops read an XDG autostart entry (autostart.ts).
    getOpenAtLogin: () => (linuxLogin ? linuxLogin.get() : app.getLoginItemSettings().openAtLogin),
    setOpenAtLogin: (openAtLogin) => (linuxLogin ? linuxLogin.set(openAtLogin) : app.setLoginItemSettings({ openAtLogin })),
    prefersDark: () => nativeTheme.shouldUseDarkColors,
    notify: (title, body, onClick) => {
      if (!Notification.isSupported()) return;
      const notification = new Notification({ title, body });
      notification.on('click', onClick);
      notification.show();
    },
  };
}

function main(): void {
  // Every renderer sandboxed, whatever a future window's options say.
  app.enableSandbox();
  // claim() registers the listeners that must exist before 'ready' (second-instance, open-url).
  const shellApp = new AppShell(electronPlatform(), {
    rendererFile: join(import.meta.dirname, '../renderer/index.html'),
    preloadFile: join(import.meta.dirname, '../preload/index.cjs'),
    devServerUrl,
    csp: buildCsp(devServerUrl === undefined ? {} : { dev: { scriptHashes: __LANYARD_DEV_SCRIPT_HASHES__ } }),
    log: (message, error) => console.warn(`lanyard: ${message}`, error ?? ''),
  });
  if (!shellApp.claim()) {
    app.quit();
    return;
  }
  // A tray app keeps running with no window open.
  app.on('window-all-closed', () => undefined);

  let broker: Broker | undefined;
  app
    .whenReady()
    .then(async () => {
      icons = await loadIcons();
      const home = resolveLanyardHome(process.env);
      broker = await Broker.create({
        version,
        home,
        // Only the configured IdP's sign-in page, in the system browser (https, or loopback http for a local IdP).
        openUrl: createSignInOpener(
          () => broker?.config.load().idp?.issuer,
          (url) => shell.openExternal(url),
        ),
        // electron-store 11 over the same <home>/config.json the CLI's conf uses.
        configBackend: createStoreBackend(home, (options) => new ElectronStore(options)),
        // IdP and authorization-server calls on Chromium's network stack (system proxy, PAC, OS trust store), in an
        // in-memory session of their own so they never carry the browser's cookies.
        hopFetch: chromiumFetch((url, init) => session.fromPartition('lanyard-network').fetch(url, init)),
        // MCP traffic keeps the broker's agents, routed the way Chromium would route it (system settings, their PAC).
        systemProxy: (url) => session.fromPartition('lanyard-network').resolveProxy(url),
      });
      const started = broker;
      // The local MCP endpoint for every IDE. If it cannot start (the port is taken, e.g. by `lanyard serve`), the app
      // still runs: the tray shows the attention icon and "local endpoint stopped", and the error is in Activity.
      // The window talks over IPC, so the app's endpoint mounts no dashboard routes (nothing extra on the network).
      // The failure, with who holds the port, is also recorded for `lanyard doctor` and `lanyard stdio`.
      const gateway = await started.startGateway().then(
        async (running) => {
          await clearStartupFailure(home);
          return running;
        },
        async (error: unknown) => {
          const explained = await explainStartupError(error, { home });
          await recordStartupFailure(home, explained);
          started.activity.record({
            kind: 'server',
            summary: 'The local MCP endpoint could not start',
            outcome: 'error',
            error: toErrorInfo(explained),
          });
          return undefined;
        },
      );
      started.config.onChange((config) => shellApp.applyStartAtLogin(config.ui?.startAtLogin ?? false));
      // With identity profiles, the tray and dashboard act on the one the user picked (identities/switching-control.ts).
      const control = started.identities ? createSwitchingControl(started.control, started.identities, started.log) : started.control;
      await shellApp.attach(control, { startAtLogin: started.config.load().ui?.startAtLogin ?? false });
      // Quitting waits for the endpoint to close and the runtime file to go (the CLI must not find a dead broker).
      let cleanedUp = false;
      app.on('will-quit', (event) => {
        if (cleanedUp) return;
        event.preventDefault();
        shellApp.dispose();
        void (async () => {
          await gateway?.stop().catch(() => undefined);
          await started.close().catch(() => undefined);
          cleanedUp = true;
          app.quit();
        })();
      });
    })
    .catch((error: unknown) => {
      console.error('Lanyard could not start:', error);
      app.exit(1);
    });
}

main();
