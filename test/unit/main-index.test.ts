/**
 * electron/main/index.ts, the tray app's composition root, run under Node: `electron` is a recording fake (vitest module
 * mock), everything else is real — the Broker on a temporary LANYARD_HOME (file secret store), its gateway on a real
 * port, the AppShell, the IPC handlers, the runtime file.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Conf from 'conf';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { controlMethodNames } from '../../shared/contract';
import { openConfigStore } from '../../electron/broker/config/store';
import { readRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { readStartupFailure } from '../../electron/broker/startup-failure';
import { autostartDir, AUTOSTART_FILE_NAME, desktopEntry, linuxLoginItem } from '../../electron/main/autostart';
import { FakeIpcMain, FakeTray, FakeWindow, fakeSession } from './main-fakes';

const root = path.resolve(import.meta.dirname, '../..');

/** What the fake `electron` module saw; one per import of index.ts. */
function recorder() {
  const listeners = new Map<string, Array<(...args: unknown[]) => unknown>>();
  let ready!: () => void;
  const whenReady = new Promise<void>((r) => (ready = r));
  const rec = {
    listeners,
    ready,
    sandboxEnabled: false,
    protocolClients: [] as string[],
    windows: [] as FakeWindow[],
    trays: [] as FakeTray[],
    ipc: new FakeIpcMain(),
    session: fakeSession(),
    quitCalls: 0,
    exitCodes: [] as number[],
    loginItems: [] as unknown[],
    willQuitPrevented: 0,
    quitFinished: false,
    emit(event: string, ...args: unknown[]) {
      for (const l of listeners.get(event) ?? []) l(...args);
    },
  };
  const image = () => ({ addRepresentation: () => undefined, setTemplateImage: () => undefined });
  const app = {
    isPackaged: true,
    enableSandbox: () => void (rec.sandboxEnabled = true),
    requestSingleInstanceLock: () => true,
    setAsDefaultProtocolClient: (scheme: string) => void rec.protocolClients.push(scheme),
    on(event: string, listener: (...args: unknown[]) => unknown) {
      listeners.set(event, [...(listeners.get(event) ?? []), listener]);
      return app;
    },
    whenReady: () => whenReady,
    // As Electron: before-quit, then will-quit (which a listener may hold with preventDefault), then the end.
    quit() {
      rec.quitCalls++;
      rec.emit('before-quit');
      let prevented = false;
      rec.emit('will-quit', { preventDefault: () => ((prevented = true), rec.willQuitPrevented++) });
      if (!prevented) rec.quitFinished = true;
    },
    exit: (code: number) => void rec.exitCodes.push(code),
    getLoginItemSettings: () => ({ openAtLogin: false }),
    setLoginItemSettings: (s: unknown) => void rec.loginItems.push(s),
    dock: undefined,
  };
  const electron = {
    app,
    BrowserWindow: class {
      constructor(options: ConstructorParameters<typeof FakeWindow>[0]) {
        const w = new FakeWindow(options);
        rec.windows.push(w);
        return w;
      }
    },
    ipcMain: rec.ipc,
    Menu: { buildFromTemplate: (template: unknown) => ({ template }) },
    nativeImage: { createEmpty: image, createFromPath: (p: string) => ({ ...image(), path: p }) },
    nativeTheme: { shouldUseDarkColors: false },
    session: {
      defaultSession: rec.session.session,
      fromPartition: () => ({ fetch: (url: string, init?: RequestInit) => fetch(url, init) }),
    },
    shell: { openExternal: vi.fn(async () => undefined) },
    Tray: class {
      constructor(img: unknown) {
        const t = new FakeTray(img);
        rec.trays.push(t);
        return t;
      }
    },
  };
  return { rec, electron };
}

/** electron-store is electron + conf; the fake electron gives it nothing, so conf stands in (same file, same options). */
class FakeElectronStore {
  constructor(options: { name: string } & Record<string, unknown>) {
    const { name, ...rest } = options;
    return new Conf<Record<string, unknown>>({ ...rest, configName: name, projectName: 'lanyard' });
  }
}

const ASSETS = [
  'tray.png',
  'trayAttention.png',
  'trayTemplate.png',
  'trayTemplate@2x.png',
  'trayAttentionTemplate.png',
  'trayAttentionTemplate@2x.png',
  'dot-ok.png',
  'dot-ok@2x.png',
  'dot-busy.png',
  'dot-busy@2x.png',
  'dot-error.png',
  'dot-error@2x.png',
  'dot-off.png',
  'dot-off@2x.png',
];

let home: string;
let blocker: Server | undefined;
const savedEnv = { ...process.env };

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Imports index.ts afresh (its main() runs at import) with the fake electron, then fires 'ready'. */
async function startApp(port: number) {
  const config = openConfigStore(home);
  config.update(() => ({ version: 1, servers: [], gateway: { port } }));
  config.close();
  const { rec, electron } = recorder();
  vi.resetModules();
  vi.doMock('electron', () => ({ ...electron, default: electron }));
  vi.doMock('electron-store', () => ({ default: FakeElectronStore }));
  for (const asset of ASSETS) {
    vi.doMock(`../../resources/tray/${asset}?asset`, () => ({ default: path.join(root, 'resources/tray', asset) }));
  }
  await import('../../electron/main/index');
  rec.ready();
  // Ready: the broker is built and the shell attached once the tray exists and its first status is shown.
  await expect.poll(() => rec.trays[0]?.menu !== undefined || rec.exitCodes.length > 0, { timeout: 15_000 }).toBe(true);
  expect(rec.exitCodes).toEqual([]);
  return rec;
}

/** Quits as the tray's Quit item does, and waits for the app to finish. */
async function quit(rec: ReturnType<typeof recorder>['rec']) {
  rec.trays[0]!.item('quit').click!();
  await expect.poll(() => rec.quitFinished, { timeout: 10_000 }).toBe(true);
}

beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'lanyard-main-'));
  process.env.LANYARD_HOME = home;
  process.env.LANYARD_SECRET_STORE = 'file';
  // Start at login writes here on Linux; never into the real ~/.config.
  process.env.XDG_CONFIG_HOME = path.join(home, 'xdg');
});

afterEach(async () => {
  process.env = { ...savedEnv };
  if (blocker) await new Promise<void>((r) => blocker!.close(() => r()));
  blocker = undefined;
  vi.doUnmock('electron');
  vi.doUnmock('electron-store');
  await rm(home, { recursive: true, force: true });
});

describe('electron/main/index.ts', () => {
  it('on ready: starts the broker and its endpoint, hardens and creates the hidden window and the tray, serves every contract method over IPC, registers lanyard:// links; quit waits for the endpoint and the runtime file', async () => {
    const port = await freePort();
    const rec = await startApp(port);

    // Before ready: renderers sandboxed, links claimed (scheme + second instance + macOS open-url).
    expect(rec.sandboxEnabled).toBe(true);
    expect(rec.protocolClients).toEqual(['lanyard']);
    expect(rec.listeners.get('second-instance')).toHaveLength(1);
    expect(rec.listeners.get('open-url')).toHaveLength(1);
    expect(rec.listeners.get('web-contents-created')).toHaveLength(1);

    // The broker's gateway listens on the configured port, and its runtime file says so.
    const runtime = await readRuntimeFile(home);
    expect(runtime).toMatchObject({ state: 'running', info: { port, pid: process.pid } });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    // One hidden window with the security settings, loading the built renderer.
    expect(rec.windows).toHaveLength(1);
    const win = rec.windows[0]!;
    expect(win.options.show).toBe(false);
    expect(win.options.webPreferences).toMatchObject({ contextIsolation: true, nodeIntegration: false, sandbox: true, webSecurity: true });
    expect(win.options.webPreferences.preload).toMatch(/preload[/\\]index\.cjs$/);
    expect(win.loaded.file).toMatch(/renderer[/\\]index\.html$/);
    // The session: permissions refused, CSP on every response.
    expect(rec.session.recorded.permissionRequest).toBeDefined();
    expect(rec.session.recorded.headers).toBeDefined();

    // The tray, calm (the endpoint runs), and one IPC handler per contract method, answering from the real broker.
    expect(rec.trays).toHaveLength(1);
    expect(rec.trays[0]!.image).not.toMatchObject({ path: expect.stringContaining('trayAttention') as unknown });
    expect([...rec.ipc.handlers.keys()].sort()).toEqual(controlMethodNames.map((m) => `lanyard:${m}`).sort());
    const fromWindow = { sender: { id: win.webContents.id }, senderFrame: { url: `file://${win.loaded.file}`, parent: null } };
    const status = (await rec.ipc.invoke('lanyard:status', fromWindow, {})) as { ok: boolean; value: { gateway: { running: boolean } } };
    expect(status).toMatchObject({ ok: true, value: { gateway: { running: true, port } } });

    // A link from a second launch reaches the window.
    rec.emit('second-instance', {}, ['/opt/Lanyard/lanyard', 'lanyard://open/activity']);
    win.webContents.finishLoading();
    await expect.poll(() => win.webContents.sent.some((s) => JSON.stringify(s.message).includes('activity'))).toBe(true);
    expect(win.visible).toBe(true);

    // Quit: held until the endpoint is closed and the runtime file is gone.
    await quit(rec);
    expect(rec.willQuitPrevented).toBe(1);
    expect(rec.quitCalls).toBe(2);
    expect((await readRuntimeFile(home)).state).toBe('absent');
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('a taken port: the app still starts, the tray shows the attention state and the activity says why', async () => {
    blocker = createServer((_req, res) => res.end('someone else'));
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const rec = await startApp(port);

    expect(rec.exitCodes).toEqual([]);
    expect(rec.windows).toHaveLength(1);
    const tray = rec.trays[0]!;
    await expect.poll(() => (tray.image as { path?: string }).path ?? '').toMatch(/trayAttention\.png$/);
    expect(tray.tooltip).toMatch(/local endpoint stopped/);
    const fromWindow = {
      sender: { id: rec.windows[0]!.webContents.id },
      senderFrame: { url: `file://${rec.windows[0]!.loaded.file}`, parent: null },
    };
    const activity = (await rec.ipc.invoke('lanyard:recentActivity', fromWindow, { limit: 10 })) as {
      value: Array<{ summary: string; error?: { code: string; message: string } }>;
    };
    expect(activity.value).toContainEqual(
      expect.objectContaining({
        summary: 'The local MCP endpoint could not start',
        error: expect.objectContaining({ code: 'port_in_use' }) as unknown,
      }),
    );
    expect(activity.value.find((a) => a.error?.code === 'port_in_use')?.error).toMatchObject({
      message: expect.stringContaining(`Port ${port} on 127.0.0.1 is in use by another program (node, pid ${process.pid})`) as unknown,
    });
    expect((await readRuntimeFile(home)).state).toBe('absent');
    // `lanyard doctor` and `lanyard stdio` read why.
    expect(await readStartupFailure(home)).toMatchObject({ code: 'port_in_use' });
    await quit(rec);
  });

  it('start at login on Linux writes and removes an XDG autostart entry (through the app, from the config)', async () => {
    if (process.platform !== 'linux') return;
    const port = await freePort();
    const rec = await startApp(port);
    const file = path.join(home, 'xdg', 'autostart', AUTOSTART_FILE_NAME);
    expect(existsSync(file)).toBe(false);

    const fromWindow = {
      sender: { id: rec.windows[0]!.webContents.id },
      senderFrame: { url: `file://${rec.windows[0]!.loaded.file}`, parent: null },
    };
    const saved = await rec.ipc.invoke('lanyard:updateSettings', fromWindow, { startAtLogin: true });
    expect(saved).toMatchObject({ ok: true });
    await expect.poll(() => existsSync(file)).toBe(true);
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/^\[Desktop Entry\]$/m);
    expect(text).toMatch(/^Type=Application$/m);
    expect(text).toContain(`Exec=${process.execPath}`);
    // Electron's own login items are not used on Linux (they do nothing there).
    expect(rec.loginItems).toEqual([]);

    await rec.ipc.invoke('lanyard:updateSettings', fromWindow, { startAtLogin: false });
    await expect.poll(() => existsSync(file)).toBe(false);
    await quit(rec);
  });
});

describe('linuxLoginItem', () => {
  it('honours an absolute XDG_CONFIG_HOME, ignores a relative one, and quotes the Exec line', () => {
    expect(autostartDir({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/u' })).toBe('/x/cfg/autostart');
    expect(autostartDir({ XDG_CONFIG_HOME: 'rel', HOME: '/home/u' })).toBe('/home/u/.config/autostart');
    expect(autostartDir({ HOME: '/home/u' })).toBe('/home/u/.config/autostart');
    expect(desktopEntry({ executable: '/opt/My Apps/Lanyard.AppImage' })).toContain('Exec="/opt/My Apps/Lanyard.AppImage"\n');
  });

  it('get() follows the file, and a Hidden=true entry counts as off', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lanyard-xdg-'));
    try {
      const item = linuxLoginItem({ env: { XDG_CONFIG_HOME: dir }, executable: '/usr/bin/lanyard' });
      expect(item.get()).toBe(false);
      item.set(true);
      expect(item.get()).toBe(true);
      await import('node:fs/promises').then((fs) => fs.appendFile(item.file, 'Hidden=true\n'));
      expect(item.get()).toBe(false);
      item.set(false);
      item.set(false);
      expect(existsSync(item.file)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
