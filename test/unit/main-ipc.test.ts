/**
 * electron/main/ipc.ts: every IPC message is distrusted — the sender must be our window's main frame showing our
 * page, the payload is parsed with the method's zod schema, and the answer is a ControlResult envelope.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlMethodNames } from '../../shared/contract';
import { ActivityLog } from '../../electron/broker/activity/activity-log';
import { ConfigStore, type ConfigBackend } from '../../electron/broker/config/store';
import { ControlService } from '../../electron/broker/control/control-service';
import { LanyardError } from '../../electron/broker/errors';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import {
  appUrlPolicy,
  handleControlCall,
  isTrustedSender,
  registerControlIpc,
  sendEvent,
  type IpcInvokeEvent,
  type SenderPolicy,
} from '../../electron/main/ipc';
import { CONTROL_METHODS, controlChannel, EVENT_CHANNEL } from '../../electron/preload/channels';
import { FakeIpcMain, fakeControl } from './main-fakes';
import { status } from './renderer-fixtures';

const RENDERER = '/opt/Lanyard/resources/app.asar/out/renderer/index.html';
const policy: SenderPolicy = { trustedContents: () => new Set([7]), isAppUrl: appUrlPolicy({ rendererFile: RENDERER }) };
const fromApp = (overrides: Partial<IpcInvokeEvent> = {}): IpcInvokeEvent => ({
  sender: { id: 7 },
  senderFrame: { url: `file://${RENDERER}#/servers`, parent: null },
  ...overrides,
});

describe('channels', () => {
  it('list every contract method exactly once, with the app prefix', () => {
    expect([...CONTROL_METHODS].sort()).toEqual([...controlMethodNames].sort());
    expect(controlChannel('status')).toBe('lanyard:status');
    expect(EVENT_CHANNEL).toBe('lanyard:event');
  });
});

describe('isTrustedSender', () => {
  it('accepts our window main frame on our page', () => {
    expect(isTrustedSender(fromApp(), policy)).toBe(true);
    expect(isTrustedSender(fromApp({ senderFrame: { url: `file://${RENDERER}`, parent: null } }), policy)).toBe(true);
  });

  it.each([
    ['an unknown webContents', fromApp({ sender: { id: 8 } })],
    ['a subframe', fromApp({ senderFrame: { url: `file://${RENDERER}`, parent: {} } })],
    ['a destroyed frame', fromApp({ senderFrame: null })],
    ['another file', fromApp({ senderFrame: { url: 'file:///tmp/evil.html', parent: null } })],
    ['a web page', fromApp({ senderFrame: { url: 'https://evil.example.com/', parent: null } })],
    ['a remote file host', fromApp({ senderFrame: { url: `file://evil.example.com${RENDERER}`, parent: null } })],
    ['garbage', fromApp({ senderFrame: { url: 'not a url', parent: null } })],
  ])('refuses %s', (_why, event) => {
    expect(isTrustedSender(event, policy)).toBe(false);
  });

  it('in development accepts the dev server origin only', () => {
    const dev = appUrlPolicy({ rendererFile: RENDERER, devServerUrl: 'http://localhost:5173/' });
    expect(dev('http://localhost:5173/#/activity')).toBe(true);
    expect(dev('http://localhost:5174/')).toBe(false);
    expect(dev(`file://${RENDERER}`)).toBe(false);
  });
});

describe('handleControlCall', () => {
  it('a wrong sender is refused before the service is called', async () => {
    const control = fakeControl();
    const result = await handleControlCall('signOut', fromApp({ sender: { id: 99 } }), {}, control, policy);
    expect(result).toEqual({ ok: false, error: expect.objectContaining({ code: 'local_auth_failed' }) });
    expect(control.signOut).not.toHaveBeenCalled();
  });

  it.each([
    ['setServerEnabled', { id: 'wiki' }],
    ['setServerEnabled', { id: 'wiki', enabled: 'yes' }],
    ['removeServer', { id: 'wiki', extra: 1 }],
    ['status', { anything: true }],
    ['recentActivity', { limit: 10_000 }],
    ['addServer', { url: '' }],
    ['connectIde', { ide: 'notepad' }],
    ['probeUrl', 'https://x'],
  ] as const)('a malformed %s payload is refused with CONFIG_INVALID', async (method, payload) => {
    const control = fakeControl();
    const result = await handleControlCall(method, fromApp(), payload, control, policy);
    expect(result).toMatchObject({ ok: false, error: { code: 'config_invalid' } });
    expect((result as { error: { message: string } }).error.message).toMatch(new RegExp(`Invalid input for ${method}`));
    expect(control[method]).not.toHaveBeenCalled();
  });

  it('a valid call reaches the service with the parsed input and returns its value', async () => {
    const control = fakeControl();
    const s = status();
    control.status.mockResolvedValueOnce(s);
    expect(await handleControlCall('status', fromApp(), undefined, control, policy)).toEqual({ ok: true, value: s });
    await handleControlCall('setServerEnabled', fromApp(), { id: 'wiki', enabled: false }, control, policy);
    expect(control.setServerEnabled).toHaveBeenCalledWith({ id: 'wiki', enabled: false });
  });

  it("a service failure becomes the error's envelope (code, message, fix), never a throw", async () => {
    const control = fakeControl();
    control.signIn.mockRejectedValueOnce(
      new LanyardError('sign_in_failed', 'The browser sign-in timed out.', 'Click Sign in and finish in the browser.'),
    );
    expect(await handleControlCall('signIn', fromApp(), {}, control, policy)).toEqual({
      ok: false,
      error: { code: 'sign_in_failed', message: 'The browser sign-in timed out.', fix: 'Click Sign in and finish in the browser.' },
    });
  });

  it('an answer of the wrong shape is a plain internal error', async () => {
    const control = fakeControl();
    control.listServers.mockResolvedValueOnce({ not: 'a list' } as never);
    expect(await handleControlCall('listServers', fromApp(), {}, control, policy)).toMatchObject({
      ok: false,
      error: { code: 'internal', message: 'Lanyard answered listServers in an unexpected form.' },
    });
  });

  it('strips anything outside the output schema before it reaches the page', async () => {
    const control = fakeControl();
    control.signOut.mockResolvedValueOnce({ ok: true, refreshToken: 'rt-SECRET' } as never);
    expect(await handleControlCall('signOut', fromApp(), {}, control, policy)).toEqual({ ok: true, value: { ok: true } });
  });
});

describe('registerControlIpc', () => {
  it('registers one channel per method and removes them all', async () => {
    const ipc = new FakeIpcMain();
    const control = fakeControl();
    control.listServers.mockResolvedValue([]);
    const off = registerControlIpc(ipc, control, policy);
    expect([...ipc.handlers.keys()].sort()).toEqual(controlMethodNames.map((m) => `lanyard:${m}`).sort());
    expect(await ipc.invoke('lanyard:listServers', fromApp(), {})).toEqual({ ok: true, value: [] });
    off();
    expect(ipc.handlers.size).toBe(0);
  });

  describe('with the real ControlService', () => {
    let home: string;
    let service: ControlService;
    beforeAll(async () => {
      home = await mkdtemp(join(tmpdir(), 'lanyard-ipc-'));
      let doc: unknown;
      const backend: ConfigBackend = { path: join(home, 'config.json'), read: () => doc, write: (v) => void (doc = structuredClone(v)) };
      service = new ControlService({
        version: '0.1.0',
        config: new ConfigStore(backend),
        secrets: new MemorySecretStore(),
        activity: new ActivityLog(),
        engine: () => undefined,
        gateway: () => undefined,
        reconfigure: async () => undefined,
      });
    });
    afterAll(async () => {
      await rm(home, { recursive: true, force: true });
    });

    it('adds, toggles and lists a server through the IPC handlers', async () => {
      const ipc = new FakeIpcMain();
      registerControlIpc(ipc, service, policy);
      const added = await ipc.invoke('lanyard:addServer', fromApp(), {
        url: 'https://mcp.wiki.example.com/mcp',
        name: 'Wiki',
        clientId: 'lanyard-at-wiki',
      });
      expect(added).toMatchObject({ ok: true, value: { id: 'wiki', name: 'Wiki', enabled: true, clientId: 'lanyard-at-wiki' } });
      expect(await ipc.invoke('lanyard:setServerEnabled', fromApp(), { id: 'wiki', enabled: false })).toMatchObject({
        ok: true,
        value: { enabled: false, health: 'disabled' },
      });
      expect(await ipc.invoke('lanyard:removeServer', fromApp(), { id: 'nope' })).toMatchObject({
        ok: false,
        error: { code: 'server_unknown' },
      });
      expect(await ipc.invoke('lanyard:listServers', fromApp({ sender: { id: 1 } }), {})).toMatchObject({
        ok: false,
        error: { code: 'local_auth_failed' },
      });
    });
  });
});

describe('sendEvent', () => {
  it('sends on the one event channel, and never to a destroyed window', () => {
    const sent: unknown[] = [];
    const target = {
      destroyed: false,
      send: (channel: string, message: unknown) => sent.push([channel, message]),
      isDestroyed() {
        return this.destroyed;
      },
    };
    sendEvent(target, { name: 'navigate', payload: { page: 'activity' } });
    target.destroyed = true;
    sendEvent(target, { name: 'navigate', payload: { page: 'servers' } });
    expect(sent).toEqual([['lanyard:event', { name: 'navigate', payload: { page: 'activity' } }]]);
  });
});
