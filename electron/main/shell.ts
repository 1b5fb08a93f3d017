/**
 * The tray app's behaviour, written against a small injected interface of the Electron APIs it uses (ShellPlatform),
 * so all of it is unit-tested under plain Node with a fake (test/unit/main-shell.test.ts) — the Electron binary
 * cannot run on CI machines. index.ts adapts the real `app`, `BrowserWindow`, `Tray`, `ipcMain`, ... to it and
 * composes the broker; nothing else happens there.
 *
 * Lifecycle: one instance per user (a second launch, or a `lanyard://` link, reaches the first); the dashboard window
 * is created hidden and closing it only hides it; the app quits from the tray's Quit item (or the OS).
 */
import type { ActivityEvent, ControlApi, ControlEventName, ControlEventPayload, Navigate, Status } from '../../shared/contract';
import { ErrorCodes } from '../../shared/errors';
import { findDeepLinkArg, navigationFor, parseDeepLink } from './deep-link';
import { appUrlPolicy, registerControlIpc, sendEvent, type IpcMainLike } from './ipc';
import {
  guardWebContents,
  hardenSession,
  secureWebPreferences,
  type GuardableContents,
  type HardenableSession,
  type OpenExternal,
} from './security';
import { TrayController, type TrayPlatform } from './tray';
import type { TrayAction } from './tray-presenter';
import type { WebPreferences } from 'electron';

/** BrowserWindow options the shell sets (a subset of BrowserWindowConstructorOptions). */
export interface WindowOptions {
  show: boolean;
  width: number;
  height: number;
  minWidth: number;
  minHeight: number;
  title: string;
  autoHideMenuBar: boolean;
  backgroundColor: string;
  webPreferences: WebPreferences;
}

export interface WindowLike {
  readonly webContents: {
    readonly id: number;
    send(channel: string, message: unknown): void;
    isDestroyed(): boolean;
    isLoading(): boolean;
    once(event: 'did-finish-load', listener: () => void): unknown;
  };
  show(): void;
  hide(): void;
  focus(): void;
  isMinimized(): boolean;
  restore(): void;
  isDestroyed(): boolean;
  on(event: 'close', listener: (event: { preventDefault(): void }) => void): unknown;
  on(event: 'closed', listener: () => void): unknown;
  loadFile(path: string): Promise<void>;
  loadURL(url: string): Promise<void>;
}

export interface ShellPlatform {
  platform: NodeJS.Platform;
  /** This process's command line (a cold start from a link carries it on Windows and Linux). */
  argv: readonly string[];
  requestSingleInstanceLock(): boolean;
  registerProtocolClient(): void;
  onSecondInstance(listener: (argv: readonly string[]) => void): void;
  /** macOS delivers links as an event, possibly before the app is ready. */
  onOpenUrl(listener: (url: string) => void): void;
  onActivate(listener: () => void): void;
  onBeforeQuit(listener: () => void): void;
  onWebContentsCreated(listener: (contents: GuardableContents) => void): void;
  quit(): void;
  hideDock(): void;
  createWindow(options: WindowOptions): WindowLike;
  defaultSession: HardenableSession;
  ipc: IpcMainLike;
  tray: TrayPlatform;
  openExternal: OpenExternal;
  getOpenAtLogin(): boolean;
  setOpenAtLogin(openAtLogin: boolean): void;
  /** The OS is in dark mode (nativeTheme.shouldUseDarkColors). */
  prefersDark(): boolean;
  /** A desktop notification (Electron's Notification), where the OS supports them; `onClick` when it is clicked. */
  notify?(title: string, body: string, onClick: () => void): void;
}

export interface ShellOptions {
  /** Absolute path of out/renderer/index.html. */
  rendererFile: string;
  /** Absolute path of out/preload/index.cjs. */
  preloadFile: string;
  /** `electron-vite dev` only. */
  devServerUrl?: string | undefined;
  /** The renderer's Content-Security-Policy header (security.ts buildCsp). */
  csp: string;
  log?: (message: string, error?: unknown) => void;
}

/** What the shell needs from the broker: the contract, plus its event stream. `broker.control` satisfies it. */
export type ShellControl = ControlApi & {
  onEvent(listener: <E extends ControlEventName>(event: E, payload: ControlEventPayload<E>) => void): () => void;
};

/** Must match `--bg` in renderer/src/styles.css. */
export const WINDOW_BACKGROUND = { light: '#f4f5f8', dark: '#15171d' } as const;

export class AppShell {
  private window: WindowLike | undefined;
  private tray: TrayController | undefined;
  private control: ShellControl | undefined;
  private quitting = false;
  private attached = false;
  /** Links that arrived before the window existed; replayed by attach(). */
  private readonly pending: Navigate[] = [];
  private readonly disposers: Array<() => void> = [];
  private readonly isAppUrl: (url: string) => boolean;
  private readonly log: (message: string, error?: unknown) => void;

  constructor(
    private readonly platform: ShellPlatform,
    private readonly options: ShellOptions,
  ) {
    this.isAppUrl = appUrlPolicy({ rendererFile: options.rendererFile, devServerUrl: options.devServerUrl });
    this.log = options.log ?? (() => undefined);
  }

  /**
   * Before 'ready': takes the single-instance lock and registers the app-wide listeners. Returns false when another
   * instance runs (it received our argv through 'second-instance'); this one must quit.
   */
  claim(): boolean {
    const p = this.platform;
    if (!p.requestSingleInstanceLock()) return false;
    p.registerProtocolClient();
    p.onWebContentsCreated((contents) => guardWebContents(contents, p.openExternal));
    p.onSecondInstance((argv) => {
      const link = findDeepLinkArg(argv);
      if (link === undefined) this.showDashboard();
      else this.handleDeepLink(link);
    });
    p.onOpenUrl((url) => this.handleDeepLink(url));
    p.onBeforeQuit(() => {
      this.quitting = true;
    });
    p.onActivate(() => this.showDashboard());
    return true;
  }

  /**
   * After 'ready', with the broker built: hardens the session, serves the contract over IPC, creates the (hidden)
   * dashboard window and the tray, and forwards broker events to both.
   */
  async attach(control: ShellControl, settings: { startAtLogin: boolean }): Promise<void> {
    const p = this.platform;
    this.control = control;
    if (p.platform === 'darwin') p.hideDock();
    hardenSession(p.defaultSession, this.options.csp);
    this.disposers.push(
      registerControlIpc(p.ipc, control, {
        trustedContents: () => new Set(this.window && !this.window.isDestroyed() ? [this.window.webContents.id] : []),
        isAppUrl: this.isAppUrl,
      }),
    );
    this.window = this.createWindow();
    this.tray = new TrayController(
      p.tray,
      (action) => this.onTrayAction(action),
      () => this.showDashboard(),
    );
    this.disposers.push(
      control.onEvent((name, payload) => {
        if (this.window && !this.window.isDestroyed()) sendEvent(this.window.webContents, { name, payload } as never);
        if (name === 'status') this.tray?.update(payload as Status);
        if (name === 'activity') this.notifyIfAlarming(payload as ActivityEvent);
      }),
    );
    this.applyStartAtLogin(settings.startAtLogin);
    this.attached = true;
    try {
      this.tray.update(await control.status({}));
    } catch (e) {
      this.log('status for the tray failed', e);
    }
    const link = findDeepLinkArg(p.argv);
    if (link !== undefined) this.handleDeepLink(link);
    for (const nav of this.pending.splice(0)) this.navigate(nav);
  }

  /** The tray's current view (tests, diagnostics). */
  get trayView() {
    return this.tray?.view;
  }

  /** Opt-in start at login: applied only when it differs from what the OS has, so nothing is written needlessly. */
  applyStartAtLogin(enabled: boolean): void {
    if (this.platform.getOpenAtLogin() !== enabled) this.platform.setOpenAtLogin(enabled);
  }

  /** A `lanyard://` link from anywhere: validated, then shown — never acted upon without the user. */
  handleDeepLink(raw: string): void {
    const link = parseDeepLink(raw);
    if (link === null) {
      this.log('ignored an invalid lanyard:// link');
      return;
    }
    this.navigate(navigationFor(link));
  }

  /** Shows the dashboard on `nav.page`; queued until the window exists. */
  /**
   * The secret scan let a call with a secret through (policy warn): the person should hear of it now, not the next
   * time they open the Activity view. Only these; every other event is the tray icon's and the dashboard's to show.
   */
  private notifyIfAlarming(event: ActivityEvent): void {
    if (event.error?.code !== ErrorCodes.SECRET_SENT) return;
    try {
      this.platform.notify?.('Lanyard: a secret was sent to a server', event.summary, () => this.navigate({ page: 'activity' }));
    } catch (e) {
      this.log('notification failed', e);
    }
  }

  navigate(nav: Navigate): void {
    if (!this.attached) {
      this.pending.push(nav);
      return;
    }
    const win = this.showDashboard();
    if (win === undefined) return;
    const contents = win.webContents;
    const send = () => sendEvent(contents, { name: 'navigate', payload: nav });
    if (contents.isLoading()) contents.once('did-finish-load', send);
    else send();
  }

  showDashboard(): WindowLike | undefined {
    if (!this.attached && this.window === undefined) return undefined;
    if (this.window === undefined || this.window.isDestroyed()) this.window = this.createWindow();
    const win = this.window;
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
    return win;
  }

  quit(): void {
    this.quitting = true;
    this.platform.quit();
  }

  dispose(): void {
    for (const off of this.disposers.splice(0)) off();
    this.tray?.destroy();
    this.tray = undefined;
  }

  private onTrayAction(action: TrayAction): void {
    const control = this.control;
    switch (action.type) {
      case 'open':
        this.navigate({ page: action.page });
        break;
      case 'sign-in':
        // The browser opens for the IdP; if sign-in fails, the dashboard's sign-in page says why and offers a retry.
        control?.signIn({}).catch((e: unknown) => {
          this.log('sign-in from the tray failed', e);
          this.navigate({ page: 'home' });
        });
        break;
      case 'sign-out':
        control?.signOut({}).catch((e: unknown) => this.log('sign-out failed', e));
        break;
      case 'authorize':
        // The broker opens the authorization server's page in the browser once; the card shows the link if it did not.
        control?.authorizeServer({ id: action.serverId }).catch((e: unknown) => {
          this.log('authorize from the tray failed', e);
          this.navigate({ page: 'servers' });
        });
        break;
      case 'identity':
        // The facade switches every surface of the app (electron/broker/identities/switching-control.ts).
        control?.selectIdentityProfile({ name: action.name }).catch((e: unknown) => this.log('switching identity profile failed', e));
        break;
      case 'quit':
        this.quit();
        break;
    }
  }

  private createWindow(): WindowLike {
    const win = this.platform.createWindow({
      show: false,
      width: 1120,
      height: 760,
      minWidth: 760,
      minHeight: 520,
      title: 'Lanyard',
      autoHideMenuBar: true,
      // The page's own background (renderer/src/styles.css --bg), so showing the window never flashes the wrong colour.
      backgroundColor: this.platform.prefersDark() ? WINDOW_BACKGROUND.dark : WINDOW_BACKGROUND.light,
      webPreferences: secureWebPreferences(this.options.preloadFile),
    });
    win.on('close', (event) => {
      if (this.quitting) return;
      event.preventDefault();
      win.hide();
    });
    win.on('closed', () => {
      if (this.window === win) this.window = undefined;
    });
    const loading =
      this.options.devServerUrl !== undefined ? win.loadURL(this.options.devServerUrl) : win.loadFile(this.options.rendererFile);
    loading.catch((e: unknown) => this.log('the dashboard page failed to load', e));
    return win;
  }
}
