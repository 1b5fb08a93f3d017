/**
 * electron/main/tray-presenter.ts and tray.ts: what the tray shows for each state (icon, tooltip, menu), driven
 * through a fake Tray/Menu.
 */
import { describe, expect, it, vi } from 'vitest';
import { TrayController } from '../../electron/main/tray';
import { needsAttention, presentTray, type TrayMenuItem } from '../../electron/main/tray-presenter';
import { fakeTrayPlatform } from './main-fakes';
import { expired, server, signedOut, status } from './renderer-fixtures';

type Item = Extract<TrayMenuItem, { type: 'item' }>;
const items = (view: ReturnType<typeof presentTray>) => view.items.filter((i): i is Item => i.type === 'item');
const byId = (view: ReturnType<typeof presentTray>, id: string) => items(view).find((i) => i.id === id);

describe('presentTray', () => {
  it('signed out: normal icon, "Not signed in", a Sign In item', () => {
    const view = presentTray(signedOut());
    expect(view.icon).toBe('normal');
    expect(byId(view, 'session')).toMatchObject({ label: 'Not signed in', enabled: false });
    expect(byId(view, 'sign-in')).toMatchObject({ label: 'Sign In…', enabled: true, action: { type: 'sign-in' } });
    expect(byId(view, 'sign-out')).toBeUndefined();
    expect(view.tooltip).toBe('Lanyard — not signed in · 1 server');
  });

  it('signed in, all servers ok: normal icon, the user, a green dot per server, Sign Out', () => {
    const view = presentTray(status({ servers: [server(), server({ id: 'todo', name: 'Todo', health: 'idle' })] }));
    expect(view.icon).toBe('normal');
    expect(byId(view, 'session')?.label).toBe('Signed in as alice@example.com');
    expect(byId(view, 'server:wiki')).toMatchObject({ label: 'Wiki — Ready', dot: 'ok', action: { type: 'open', page: 'servers' } });
    expect(byId(view, 'server:todo')).toMatchObject({ label: 'Todo — Idle', dot: 'ok' });
    expect(byId(view, 'sign-out')).toMatchObject({ label: 'Sign Out', action: { type: 'sign-out' } });
    expect(byId(view, 'open')).toMatchObject({ label: 'Open Dashboard', action: { type: 'open', page: 'home' } });
    expect(byId(view, 'quit')).toMatchObject({ label: 'Quit Lanyard', action: { type: 'quit' } });
    expect(view.tooltip).toBe('Lanyard — alice@example.com · 2 servers');
  });

  it('one server in error: attention icon, a red dot, the tooltip says so', () => {
    const view = presentTray(status({ servers: [server(), server({ id: 'todo', name: 'Todo', health: 'error' })] }));
    expect(view.icon).toBe('attention');
    expect(byId(view, 'server:todo')).toMatchObject({ label: 'Todo — Error', dot: 'error' });
    expect(view.tooltip).toBe('Lanyard — alice@example.com · 1 server needs attention');
  });

  it('a server waiting for the user: Authorize… (then "waiting"), Set Key…, blocked — and the attention icon for the first two', () => {
    const oauth = server({ id: 'cal', name: 'Calendar', authPath: 'oauth', authState: 'authorization_required', action: 'authorize' });
    const view = presentTray(status({ servers: [server(), oauth] }));
    expect(view.icon).toBe('attention');
    expect(byId(view, 'server:cal')).toMatchObject({ label: 'Calendar — Authorize…', action: { type: 'authorize', serverId: 'cal' } });
    const waiting = presentTray(status({ servers: [{ ...oauth, authState: 'authorizing' }] }));
    expect(byId(waiting, 'server:cal')).toMatchObject({
      label: 'Calendar — Waiting for You in the Browser…',
      action: { type: 'authorize' },
    });
    const key = presentTray(
      status({ servers: [server({ id: 's', name: 'Search', authPath: 'header', authState: 'key_required', action: 'set_key' })] }),
    );
    expect(key.icon).toBe('attention');
    expect(byId(key, 'server:s')).toMatchObject({ label: 'Search — Set Key…', action: { type: 'open', page: 'servers' } });
    const blocked = presentTray(status({ servers: [server({ authState: 'blocked' })] }));
    expect(byId(blocked, 'server:wiki')).toMatchObject({ label: 'Wiki — Blocked by Your Administrator', dot: 'off' });
    // A server disabled by the user asks nothing of them.
    expect(presentTray(status({ servers: [{ ...oauth, enabled: false, health: 'disabled' }] })).icon).toBe('normal');
  });

  it('a failing server that is disabled is not trouble', () => {
    expect(presentTray(status({ servers: [server({ enabled: false, health: 'disabled' })] })).icon).toBe('normal');
    expect(byId(presentTray(status({ servers: [server({ enabled: false, health: 'disabled' })] })), 'server:wiki')?.dot).toBe('off');
  });

  it('expired session: attention icon and "Sign In Again…"', () => {
    const view = presentTray(expired());
    expect(view.icon).toBe('attention');
    expect(byId(view, 'session')?.label).toBe('Sign-in expired (alice@example.com)');
    expect(byId(view, 'sign-in')).toMatchObject({ label: 'Sign In Again…', action: { type: 'sign-in' } });
    expect(view.tooltip).toContain('sign-in expired');
  });

  it('signing in: the sign-in item is disabled while the browser is out', () => {
    expect(byId(presentTray(status({ session: { status: 'signing_in' } })), 'sign-in')).toMatchObject({
      label: 'Signing In…',
      enabled: false,
    });
  });

  it('not configured: offers the settings page; no servers: says so and offers to add one', () => {
    const view = presentTray(status({ session: { status: 'not_configured' }, idp: undefined, servers: [] }));
    expect(byId(view, 'settings')).toMatchObject({ action: { type: 'open', page: 'settings' } });
    expect(byId(view, 'no-servers')).toMatchObject({ label: 'No servers yet', enabled: false });
    expect(byId(view, 'add-server')).toMatchObject({ action: { type: 'open', page: 'add-server' } });
  });

  it('the local endpoint down while signed in is trouble', () => {
    const s = status({ gateway: { url: 'http://127.0.0.1:47821/mcp', port: 47821, running: false } });
    expect(needsAttention(s)).toBe(true);
    expect(presentTray(s).tooltip).toContain('local endpoint stopped');
  });

  it('cuts long server names so the menu stays one line per item', () => {
    const label = byId(presentTray(status({ servers: [server({ name: 'A'.repeat(60) })] })), 'server:wiki')?.label ?? '';
    expect(label).toBe(`${'A'.repeat(39)}… — Ready`);
  });
});

describe('TrayController', () => {
  it('shows a usable menu before the first status, then the live one', () => {
    const platform = fakeTrayPlatform();
    const onAction = vi.fn();
    const controller = new TrayController(platform, onAction, () => undefined);
    const tray = platform.trays[0]!;
    expect(tray.tooltip).toBe('Lanyard — starting…');
    expect(tray.item('quit').enabled).toBe(true);
    controller.update(signedOut());
    tray.item('sign-in').click?.();
    expect(onAction).toHaveBeenCalledWith({ type: 'sign-in' });
  });

  it('switches to the attention icon when a server fails, and back', () => {
    const platform = fakeTrayPlatform();
    const controller = new TrayController(
      platform,
      () => undefined,
      () => undefined,
    );
    const tray = platform.trays[0]!;
    controller.update(status());
    expect(tray.image).toBe('icon:normal');
    controller.update(status({ servers: [server({ health: 'error' })] }));
    expect(tray.image).toBe('icon:attention');
    expect(tray.item('server:wiki').icon).toBe('dot:error');
    controller.update(status());
    expect(tray.image).toBe('icon:normal');
  });

  it('does not rebuild the menu for an identical status (pushes are frequent)', () => {
    const platform = fakeTrayPlatform();
    const controller = new TrayController(
      platform,
      () => undefined,
      () => undefined,
    );
    controller.update(status());
    const built = platform.menusBuilt;
    controller.update(status());
    controller.update(status());
    expect(platform.menusBuilt).toBe(built);
  });

  it('a click on the icon opens the dashboard; destroy removes the tray', () => {
    const platform = fakeTrayPlatform();
    const onClick = vi.fn();
    const controller = new TrayController(platform, () => undefined, onClick);
    platform.trays[0]!.clickListeners.forEach((l) => l());
    expect(onClick).toHaveBeenCalledOnce();
    controller.destroy();
    expect(platform.trays[0]!.destroyed).toBe(true);
  });
});
