/**
 * electron/main/shell.ts with a fake of every Electron API it touches: single instance, the hidden window and its
 * security settings, events to the window and the tray, tray actions, deep links, start at login.
 */
import { describe, expect, it } from 'vitest';
import { AppShell, WINDOW_BACKGROUND } from '../../electron/main/shell';
import { buildCsp, type NavigationEvent } from '../../electron/main/security';
import { fakeControl, fakePlatform } from './main-fakes';
import { server, signedOut, status } from './renderer-fixtures';

const RENDERER = '/app/out/renderer/index.html';
const PRELOAD = '/app/out/preload/index.cjs';
const options = { rendererFile: RENDERER, preloadFile: PRELOAD, csp: buildCsp() };
const flush = () => new Promise((r) => setTimeout(r, 0));

async function started(opts: Parameters<typeof fakePlatform>[0] = {}, control = fakeControl()) {
  const fake = fakePlatform(opts);
  const shell = new AppShell(fake.platform, options);
  expect(shell.claim()).toBe(true);
  await shell.attach(control, { startAtLogin: false });
  return { ...fake, shell, control, window: fake.windows[0]! };
}

describe('single instance', () => {
  it('a second instance quits without touching anything', () => {
    const fake = fakePlatform({ lock: false });
    const shell = new AppShell(fake.platform, options);
    expect(shell.claim()).toBe(false);
    expect(fake.app.registerProtocolClient).not.toHaveBeenCalled();
    expect(fake.app.secondInstance).toHaveLength(0);
  });

  it('the first instance registers lanyard:// and shows itself when launched again', async () => {
    const { app, window } = await started();
    expect(app.registerProtocolClient).toHaveBeenCalledOnce();
    expect(window.visible).toBe(false);
    app.secondInstance[0]!(['/opt/Lanyard/lanyard']);
    expect(window.visible).toBe(true);
    expect(window.focused).toBe(true);
  });
});

describe('the dashboard window', () => {
  it('is created hidden, with the secure webPreferences and the built renderer', async () => {
    const { windows, window } = await started();
    expect(windows).toHaveLength(1);
    expect(window.visible).toBe(false);
    expect(window.options).toMatchObject({ show: false, title: 'Lanyard', backgroundColor: WINDOW_BACKGROUND.light });
    expect(window.options.webPreferences).toMatchObject({
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
    });
    expect(window.loaded).toEqual({ file: RENDERER });
  });

  it('closing only hides it; quitting really closes it', async () => {
    const { shell, window, app } = await started();
    shell.showDashboard();
    expect(window.close()).toBe(false);
    expect(window.visible).toBe(false);
    shell.quit();
    expect(app.quit).toHaveBeenCalledOnce();
    expect(window.close()).toBe(true);
  });

  it('a window closed for good is recreated on demand', async () => {
    const { shell, window, windows } = await started();
    shell.quit();
    window.close();
    shell.showDashboard();
    expect(windows).toHaveLength(2);
    expect(windows[1]!.visible).toBe(true);
  });

  it('hardens the session: every permission denied, the CSP on every response', async () => {
    const { session } = await started();
    let granted: boolean | undefined;
    session.permissionRequest?.({}, 'notifications', (g) => (granted = g));
    expect(granted).toBe(false);
    expect(session.permissionCheck?.({}, 'clipboard-read')).toBe(false);
    let headers: Record<string, string | string[]> | undefined;
    session.headers?.({ responseHeaders: { 'content-security-policy': ['default-src *'] } }, (r) => (headers = r.responseHeaders));
    expect(headers).toEqual({ 'Content-Security-Policy': [buildCsp()] });
  });

  it('guards every webContents: no navigation, no new windows', async () => {
    const { app } = await started();
    const listeners = new Map<string, (e: NavigationEvent) => void>();
    let openHandler: ((d: { url: string }) => { action: 'deny' }) | undefined;
    app.webContentsCreated[0]!({
      setWindowOpenHandler: (h: (d: { url: string }) => { action: 'deny' }) => (openHandler = h),
      on: (event: string, l: (e: NavigationEvent) => void) => listeners.set(event, l),
    } as never);
    let prevented = false;
    listeners.get('will-navigate')?.({ preventDefault: () => (prevented = true), url: 'https://evil.example.com' });
    expect(prevented).toBe(true);
    expect(openHandler?.({ url: 'https://docs.example.com' })).toEqual({ action: 'deny' });
  });

  it('in dark mode starts with the dark background (no white flash)', async () => {
    const fake = fakePlatform();
    fake.platform.prefersDark = () => true;
    const shell = new AppShell(fake.platform, options);
    shell.claim();
    await shell.attach(fakeControl(), { startAtLogin: false });
    expect(fake.windows[0]!.options.backgroundColor).toBe(WINDOW_BACKGROUND.dark);
  });
});

describe('IPC and events', () => {
  it('serves the contract to our window only', async () => {
    const { ipc, window, control } = await started();
    const fromWindow = { sender: { id: window.webContents.id }, senderFrame: { url: `file://${RENDERER}`, parent: null } };
    expect(await ipc.invoke('lanyard:signOut', fromWindow, {})).toEqual({ ok: true, value: { ok: true } });
    expect(control.signOut).toHaveBeenCalledOnce();
    const fromOther = { sender: { id: window.webContents.id + 100 }, senderFrame: { url: `file://${RENDERER}`, parent: null } };
    expect(await ipc.invoke('lanyard:signOut', fromOther, {})).toMatchObject({ ok: false, error: { code: 'local_auth_failed' } });
    expect(control.signOut).toHaveBeenCalledOnce();
  });

  it('a secret the scan let through (policy warn) is a desktop notification that opens Activity; other events are not', async () => {
    const { control, notifications, window } = await started();
    control.emit('activity', { id: 1, at: 1, kind: 'token', summary: 'New token for wiki', outcome: 'ok' });
    control.emit('activity', {
      id: 2,
      at: 2,
      kind: 'tool_call',
      serverId: 'wiki',
      summary: 'Secret sent to wiki › save: a private key at arguments.body',
      outcome: 'error',
      error: { code: 'secret_sent', message: 'A tool call to server "wiki" carried a private key.', fix: 'Rotate that secret.' },
    });
    expect(notifications.map((n) => [n.title, n.body])).toEqual([
      ['Lanyard: a secret was sent to a server', 'Secret sent to wiki › save: a private key at arguments.body'],
    ]);
    window.webContents.finishLoading();
    window.webContents.sent.length = 0;
    notifications[0]!.onClick();
    expect(window.visible).toBe(true);
    expect(window.webContents.sent).toContainEqual({
      channel: 'lanyard:event',
      message: { name: 'navigate', payload: { page: 'activity' } },
    });
  });

  it('pushes status and activity to the window, and status to the tray', async () => {
    const { window, control, shell } = await started();
    const s = status({ servers: [server({ health: 'error' })] });
    control.emit('status', s);
    control.emit('activity', { id: 1, at: 1, kind: 'token', summary: 'New token for wiki', outcome: 'ok' });
    expect(window.webContents.sent).toEqual([
      { channel: 'lanyard:event', message: { name: 'status', payload: s } },
      {
        channel: 'lanyard:event',
        message: { name: 'activity', payload: { id: 1, at: 1, kind: 'token', summary: 'New token for wiki', outcome: 'ok' } },
      },
    ]);
    expect(shell.trayView?.icon).toBe('attention');
  });

  it('the tray shows the broker status right after start', async () => {
    const { tray } = await started({}, fakeControl(signedOut()));
    expect(tray.trays[0]!.item('sign-in').label).toBe('Sign In…');
  });

  it('dispose removes the IPC handlers, the event listener and the tray', async () => {
    const { shell, ipc, control, tray } = await started();
    shell.dispose();
    expect(ipc.handlers.size).toBe(0);
    expect(control.listenerCount()).toBe(0);
    expect(tray.trays[0]!.destroyed).toBe(true);
  });
});

describe('tray actions', () => {
  it('Sign In starts the browser sign-in; Sign Out signs out; Quit quits', async () => {
    const { tray, control, app } = await started({}, fakeControl(signedOut()));
    tray.trays[0]!.item('sign-in').click?.();
    expect(control.signIn).toHaveBeenCalledOnce();
    control.emit('status', status());
    tray.trays[0]!.item('sign-out').click?.();
    expect(control.signOut).toHaveBeenCalledOnce();
    tray.trays[0]!.item('quit').click?.();
    expect(app.quit).toHaveBeenCalledOnce();
  });

  it("Authorize… on a server waiting for consent asks the broker to open that server's authorization (once per click)", async () => {
    const waiting = status({
      servers: [server({ id: 'cal', name: 'Calendar', authPath: 'oauth', authState: 'authorization_required', action: 'authorize' })],
    });
    const { tray, control } = await started({}, fakeControl(waiting));
    tray.trays[0]!.item('server:cal').click?.();
    expect(control.authorizeServer).toHaveBeenCalledExactlyOnceWith({ id: 'cal' });
  });

  it('a failed tray sign-in opens the dashboard where the sign-in page explains', async () => {
    const control = fakeControl(signedOut());
    control.signIn.mockRejectedValueOnce(new Error('timed out'));
    const { tray, window } = await started({}, control);
    tray.trays[0]!.item('sign-in').click?.();
    await flush();
    expect(window.visible).toBe(true);
  });

  it('Open Dashboard and a server item show the window on the right page once it loaded', async () => {
    const { tray, window } = await started();
    tray.trays[0]!.item('server:wiki').click?.();
    expect(window.visible).toBe(true);
    expect(window.webContents.sent).toEqual([]);
    window.webContents.finishLoading();
    expect(window.webContents.sent).toEqual([{ channel: 'lanyard:event', message: { name: 'navigate', payload: { page: 'servers' } } }]);
    tray.trays[0]!.item('open').click?.();
    expect(window.webContents.sent.at(-1)).toEqual({ channel: 'lanyard:event', message: { name: 'navigate', payload: { page: 'home' } } });
  });
});

describe('deep links', () => {
  const addLink = `lanyard://add-server?url=${encodeURIComponent('https://mcp.linear.app/mcp')}&client_id=abc`;

  it('an add-server link opens the prefilled form and adds nothing', async () => {
    const { app, window, control } = await started();
    window.webContents.finishLoading();
    app.openUrl[0]!(addLink);
    expect(window.visible).toBe(true);
    expect(window.webContents.sent).toEqual([
      {
        channel: 'lanyard:event',
        message: { name: 'navigate', payload: { page: 'add-server', addServer: { url: 'https://mcp.linear.app/mcp', clientId: 'abc' } } },
      },
    ]);
    expect(control.addServer).not.toHaveBeenCalled();
  });

  it('a link from a second instance (Windows, Linux) works the same', async () => {
    const { app, window } = await started();
    window.webContents.finishLoading();
    app.secondInstance[0]!(['/opt/Lanyard/lanyard', 'lanyard://open/activity']);
    expect(window.webContents.sent.at(-1)).toEqual({
      channel: 'lanyard:event',
      message: { name: 'navigate', payload: { page: 'activity' } },
    });
  });

  it('an invalid link is ignored: no window, no message', async () => {
    const { app, window, control } = await started();
    app.openUrl[0]!('lanyard://add-server?url=javascript:alert(1)');
    app.openUrl[0]!('lanyard://sign-out');
    expect(window.visible).toBe(false);
    expect(window.webContents.sent).toEqual([]);
    expect(control.signOut).not.toHaveBeenCalled();
  });

  it('a link that arrives before the app is ready is delivered once the window exists', async () => {
    const fake = fakePlatform();
    const shell = new AppShell(fake.platform, options);
    shell.claim();
    fake.app.openUrl[0]!('lanyard://open/connect');
    expect(fake.windows).toHaveLength(0);
    await shell.attach(fakeControl(), { startAtLogin: false });
    fake.windows[0]!.webContents.finishLoading();
    expect(fake.windows[0]!.webContents.sent).toEqual([
      { channel: 'lanyard:event', message: { name: 'navigate', payload: { page: 'connect' } } },
    ]);
  });

  it('a cold start from a link (argv) opens it', async () => {
    const { window } = await started({ argv: ['/opt/Lanyard/lanyard', 'lanyard://open/settings'] });
    expect(window.visible).toBe(true);
    window.webContents.finishLoading();
    expect(window.webContents.sent).toEqual([{ channel: 'lanyard:event', message: { name: 'navigate', payload: { page: 'settings' } } }]);
  });
});

describe('start at login (opt-in)', () => {
  it('is left alone when off, set when turned on, cleared when turned off', async () => {
    const { shell, app } = await started();
    expect(app.setOpenAtLogin).not.toHaveBeenCalled();
    shell.applyStartAtLogin(true);
    expect(app.setOpenAtLogin).toHaveBeenLastCalledWith(true);
    shell.applyStartAtLogin(true);
    expect(app.setOpenAtLogin).toHaveBeenCalledOnce();
    shell.applyStartAtLogin(false);
    expect(app.setOpenAtLogin).toHaveBeenLastCalledWith(false);
  });

  it('applies the saved setting at start', async () => {
    const fake = fakePlatform();
    const shell = new AppShell(fake.platform, options);
    shell.claim();
    await shell.attach(fakeControl(), { startAtLogin: true });
    expect(fake.app.setOpenAtLogin).toHaveBeenCalledWith(true);
  });

  it('macOS: no Dock icon (a menu-bar app)', async () => {
    const { app } = await started({ platform: 'darwin' });
    expect(app.hideDock).toHaveBeenCalledOnce();
  });
});
