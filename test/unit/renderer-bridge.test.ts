/** renderer/src/api/bridge.ts: the IPC bridge's envelopes become a ControlApi; HTTP 401s become a clear error. */
import { describe, expect, it, vi } from 'vitest';
import { controlMethodNames } from '../../shared/contract';
import { ControlError } from '../../shared/control-client';
import { authAwareFetch, controlApiFromBridge, errorInfoOf, type BridgeMethods } from '../../renderer/src/api/bridge';
import { status } from './renderer-fixtures';

function fakeBridge(answer: (method: string, input: unknown) => unknown): BridgeMethods {
  return Object.fromEntries(
    controlMethodNames.map((m) => [m, vi.fn(async (input: unknown) => answer(m, input))]),
  ) as unknown as BridgeMethods;
}

describe('controlApiFromBridge', () => {
  it('has every contract method and unwraps ok envelopes', async () => {
    const s = status();
    const bridge = fakeBridge((m) => (m === 'status' ? { ok: true, value: s } : { ok: true, value: { ok: true } }));
    const api = controlApiFromBridge(bridge);
    expect(Object.keys(api).sort()).toEqual([...controlMethodNames].sort());
    await expect(api.status({})).resolves.toEqual(s);
    await api.setServerEnabled({ id: 'wiki', enabled: false });
    expect(bridge.setServerEnabled).toHaveBeenCalledWith({ id: 'wiki', enabled: false });
  });

  it('throws a ControlError carrying the code and the fix', async () => {
    const api = controlApiFromBridge(
      fakeBridge(() => ({
        ok: false,
        error: { code: 'internal', message: 'Not available in this build.', fix: 'Copy the configuration.' },
      })),
    );
    const error = await api.connectIde({ ide: 'cursor' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ControlError);
    expect(errorInfoOf(error)).toEqual({ code: 'internal', message: 'Not available in this build.', fix: 'Copy the configuration.' });
  });

  it('a bridge that throws (main gone) reads as "not running"', async () => {
    const api = controlApiFromBridge(fakeBridge(() => Promise.reject(new Error('boom'))));
    expect(errorInfoOf(await api.status({}).catch((e: unknown) => e)).code).toBe('broker_not_running');
  });

  it('anything else thrown becomes an internal error without a stack', () => {
    expect(errorInfoOf(new Error('x'))).toMatchObject({ code: 'internal', message: 'x' });
    expect(errorInfoOf('weird')).toMatchObject({ code: 'internal' });
  });
});

describe('authAwareFetch', () => {
  it("turns the front door's 401 into the contract's LOCAL_AUTH_FAILED envelope", async () => {
    const f = authAwareFetch(async () => new Response('{"jsonrpc":"2.0","error":{"code":-32001}}', { status: 401 }));
    const body = (await (await f('/api/status')).json()) as { ok: boolean; error: { code: string; fix: string } };
    expect(body.ok).toBe(false);
    expect(body.error.code).toBe('local_auth_failed');
    expect(body.error.fix).toMatch(/one-time link/);
  });

  it('passes envelopes and successes through untouched', async () => {
    const envelope = { ok: false, error: { code: 'managed_locked', message: 'm', fix: 'f' } };
    const f = authAwareFetch(async () => new Response(JSON.stringify(envelope), { status: 403 }));
    expect(await (await f('/api/x')).json()).toEqual(envelope);
    const g = authAwareFetch(async () => new Response('{"ok":true,"value":1}', { status: 200 }));
    expect(await (await g('/api/x')).json()).toEqual({ ok: true, value: 1 });
  });
});
