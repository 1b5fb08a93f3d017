/**
 * Fakes of the few Electron APIs the shell uses (ipcMain, BrowserWindow, Tray, Menu, app), and a ControlApi fake,
 * for the main-*.test.ts files. They record what the shell did so tests can assert it.
 */
import { vi } from 'vitest';
import { controlMethodNames, type ControlApi, type ControlEventName, type ControlEventPayload, type Status } from '../../shared/contract';
import type { IpcInvokeEvent, IpcMainLike } from '../../electron/main/ipc';
import type { GuardableContents, HardenableSession } from '../../electron/main/security';
import type { ShellControl, ShellPlatform, WindowLike, WindowOptions } from '../../electron/main/shell';
import type { MenuTemplateItem, TrayLike, TrayPlatform } from '../../electron/main/tray';
import { status as makeStatus } from './renderer-fixtures';

export class FakeIpcMain implements IpcMainLike {
  readonly handlers = new Map<string, (event: IpcInvokeEvent, ...args: unknown[]) => unknown>();
  handle(channel: string, listener: (event: IpcInvokeEvent, ...args: unknown[]) => unknown): void {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  invoke(channel: string, event: IpcInvokeEvent, payload: unknown): Promise<unknown> {
    const handler = this.handlers.get(channel);
    if (!handler) throw new Error(`no handler for ${channel}`);
    return Promise.resolve(handler(event, payload));
  }
}

/** A ControlApi whose every method is a vi.fn; status() answers the given status. */
export function fakeControl(initial: Status = makeStatus()) {
  let current = initial;
  const listeners = new Set<(name: ControlEventName, payload: unknown) => void>();
  const api = Object.fromEntries(controlMethodNames.map((m) => [m, vi.fn(async () => ({ ok: true }))])) as unknown as {
    [K in keyof ControlApi]: ControlApi[K] & ReturnType<typeof vi.fn>;
  };
  api.status.mockImplementation(async () => current);
  const control = Object.assign(api, {
    onEvent(listener: <E extends ControlEventName>(event: E, payload: ControlEventPayload<E>) => void) {
      const l = listener as (name: ControlEventName, payload: unknown) => void;
      listeners.add(l);
      return () => listeners.delete(l);
    },
    /** Pushes an event as the broker would. */
    emit<E extends ControlEventName>(name: E, payload: ControlEventPayload<E>) {
      if (name === 'status') current = payload as Status;
      for (const l of listeners) l(name, payload);
    },
    listenerCount: () => listeners.size,
  });
  return control as typeof control & ShellControl;
}

export class FakeWebContents {
  static nextId = 1;
  readonly id = FakeWebContents.nextId++;
  readonly sent: Array<{ channel: string; message: unknown }> = [];
  loading = true;
  destroyed = false;
  private finishLoad: Array<() => void> = [];
  send(channel: string, message: unknown): void {
    this.sent.push({ channel, message });
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  isLoading(): boolean {
    return this.loading;
  }
  once(_event: 'did-finish-load', listener: () => void): void {
    this.finishLoad.push(listener);
  }
  finishLoading(): void {
    this.loading = false;
    for (const l of this.finishLoad.splice(0)) l();
  }
}

export class FakeWindow implements WindowLike {
  readonly webContents = new FakeWebContents();
  visible = false;
  focused = false;
  minimized = false;
  destroyed = false;
  loaded: { file?: string; url?: string } = {};
  private readonly listeners = new Map<string, Array<(event: { preventDefault(): void }) => void>>();
  constructor(readonly options: WindowOptions) {}
  show(): void {
    this.visible = true;
  }
  hide(): void {
    this.visible = false;
  }
  focus(): void {
    this.focused = true;
  }
  isMinimized(): boolean {
    return this.minimized;
  }
  restore(): void {
    this.minimized = false;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  on(event: string, listener: (event: { preventDefault(): void }) => void): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
  }
  async loadFile(path: string): Promise<void> {
    this.loaded = { file: path };
  }
  async loadURL(url: string): Promise<void> {
    this.loaded = { url };
  }
  /** The user clicks the close button: true when the window really closed. */
  close(): boolean {
    let prevented = false;
    for (const l of this.listeners.get('close') ?? []) l({ preventDefault: () => (prevented = true) });
    if (prevented) return false;
    this.destroyed = true;
    this.webContents.destroyed = true;
    for (const l of this.listeners.get('closed') ?? []) l({ preventDefault: () => undefined });
    return true;
  }
}

export class FakeTray implements TrayLike {
  image: unknown;
  tooltip = '';
  menu: { template: MenuTemplateItem[] } | undefined;
  clickListeners: Array<() => void> = [];
  destroyed = false;
  setImages: unknown[] = [];
  constructor(image: unknown) {
    this.image = image;
  }
  setImage(image: never): void {
    this.image = image;
    this.setImages.push(image);
  }
  setToolTip(text: string): void {
    this.tooltip = text;
  }
  setContextMenu(menu: never): void {
    this.menu = menu as { template: MenuTemplateItem[] };
  }
  on(_event: 'click', listener: () => void): void {
    this.clickListeners.push(listener);
  }
  destroy(): void {
    this.destroyed = true;
  }
  /** The menu item with this id. */
  item(id: string): MenuTemplateItem {
    const found = this.menu?.template.find((i) => i.id === id);
    if (!found) throw new Error(`no menu item ${id}: ${JSON.stringify(this.menu?.template.map((i) => i.id))}`);
    return found;
  }
}

export function fakeTrayPlatform() {
  const trays: FakeTray[] = [];
  const platform: TrayPlatform & { trays: FakeTray[]; menusBuilt: number } = {
    trays,
    menusBuilt: 0,
    createTray(image) {
      const tray = new FakeTray(image);
      trays.push(tray);
      return tray;
    },
    buildMenu(template) {
      platform.menusBuilt += 1;
      return { template };
    },
    icon: (variant) => `icon:${variant}`,
    dot: (tone) => `dot:${tone}`,
  };
  return platform;
}

export function fakeSession() {
  const s = {
    permissionRequest: undefined as undefined | ((wc: unknown, permission: string, cb: (granted: boolean) => void) => void),
    permissionCheck: undefined as undefined | ((wc: unknown, permission: string) => boolean),
    headers: undefined as
      | undefined
      | ((
          details: { responseHeaders?: Record<string, string | string[]> },
          cb: (r: { responseHeaders?: Record<string, string | string[]> }) => void,
        ) => void),
  };
  const session: HardenableSession = {
    setPermissionRequestHandler: (h) => void (s.permissionRequest = h ?? undefined),
    setPermissionCheckHandler: (h) => void (s.permissionCheck = h ?? undefined),
    setDevicePermissionHandler: () => undefined,
    webRequest: { onHeadersReceived: (l) => void (s.headers = l ?? undefined) },
  };
  return { session, recorded: s };
}

/** The whole platform, with handles on everything the shell touched. */
export function fakePlatform(options: { lock?: boolean; argv?: string[]; platform?: NodeJS.Platform; openAtLogin?: boolean } = {}) {
  const windows: FakeWindow[] = [];
  const notifications: Array<{ title: string; body: string; onClick: () => void }> = [];
  const app = {
    secondInstance: [] as Array<(argv: readonly string[]) => void>,
    openUrl: [] as Array<(url: string) => void>,
    activate: [] as Array<() => void>,
    beforeQuit: [] as Array<() => void>,
    webContentsCreated: [] as Array<(c: GuardableContents) => void>,
    quit: vi.fn(),
    hideDock: vi.fn(),
    registerProtocolClient: vi.fn(),
    openAtLogin: options.openAtLogin ?? false,
    setOpenAtLogin: vi.fn(),
    openExternal: vi.fn(async () => undefined),
  };
  const tray = fakeTrayPlatform();
  const ipc = new FakeIpcMain();
  const { session, recorded } = fakeSession();
  const platform: ShellPlatform = {
    platform: options.platform ?? 'linux',
    argv: options.argv ?? ['/opt/Lanyard/lanyard'],
    requestSingleInstanceLock: () => options.lock ?? true,
    registerProtocolClient: app.registerProtocolClient,
    onSecondInstance: (l) => void app.secondInstance.push(l),
    onOpenUrl: (l) => void app.openUrl.push(l),
    onActivate: (l) => void app.activate.push(l),
    onBeforeQuit: (l) => void app.beforeQuit.push(l),
    onWebContentsCreated: (l) => void app.webContentsCreated.push(l),
    quit: () => {
      for (const l of app.beforeQuit) l();
      app.quit();
    },
    hideDock: app.hideDock,
    createWindow: (o) => {
      const w = new FakeWindow(o);
      windows.push(w);
      return w;
    },
    defaultSession: session,
    ipc,
    tray,
    openExternal: app.openExternal,
    getOpenAtLogin: () => app.openAtLogin,
    setOpenAtLogin: (v) => {
      app.openAtLogin = v;
      app.setOpenAtLogin(v);
    },
    prefersDark: () => false,
    notify: (title: string, body: string, onClick: () => void) => void notifications.push({ title, body, onClick }),
  };
  return { platform, app, windows, tray, ipc, session: recorded, notifications };
}
