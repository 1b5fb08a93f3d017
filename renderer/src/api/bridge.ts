/**
 * The transport-independent half of the renderer's connection to Lanyard: turning the preload bridge's result
 * envelopes into a ControlApi that throws ControlError (like the HTTP client does), and making the HTTP client's
 * failures specific. Pure of DOM types, so the renderer's unit tests run it under Node with fakes.
 */
import {
  ControlMethods,
  type ControlApi,
  type ControlInput,
  type ControlMethodName,
  type ControlOutput,
  type ControlResult,
} from '../../../shared/contract';
import { ControlError } from '../../../shared/control-client';
import { ErrorCodes, isErrorCode, type ErrorInfo } from '../../../shared/errors';

/** The methods of `window.lanyard` (electron/preload/lanyard-api.d.ts), structurally. */
export type BridgeMethods = { readonly [M in ControlMethodName]: (input: ControlInput<M>) => Promise<ControlResult<ControlOutput<M>>> };

const methodNames = Object.keys(ControlMethods) as ControlMethodName[];

/** A ControlApi over the preload bridge: an `{ ok: false }` envelope becomes a thrown ControlError with code and fix. */
export function controlApiFromBridge(bridge: BridgeMethods): ControlApi {
  const api = {} as Record<ControlMethodName, (input: unknown) => Promise<unknown>>;
  for (const method of methodNames) {
    api[method] = async (input: unknown) => {
      const call = bridge[method] as (input: unknown) => Promise<ControlResult<unknown>>;
      let result: ControlResult<unknown>;
      try {
        result = await call(input ?? {});
      } catch {
        throw new ControlError({
          code: ErrorCodes.BROKER_NOT_RUNNING,
          message: 'Lanyard’s background service did not answer.',
          fix: 'Quit Lanyard from the tray and start it again.',
        });
      }
      if (result.ok) return result.value;
      throw new ControlError(result.error);
    };
  }
  return api as unknown as ControlApi;
}

/** Whatever was thrown, as the ErrorInfo the UI shows (message + fix), never a stack. */
export function errorInfoOf(e: unknown): ErrorInfo {
  if (e instanceof ControlError) return e.info;
  if (typeof e === 'object' && e !== null && 'info' in e) {
    const info = (e as { info: Partial<ErrorInfo> }).info;
    if (isErrorCode(info.code) && typeof info.message === 'string') return { code: info.code, message: info.message, fix: info.fix ?? '' };
  }
  return {
    code: ErrorCodes.INTERNAL,
    message: e instanceof Error ? e.message : 'Something unexpected happened.',
    fix: 'Try again; if it keeps happening, run `lanyard doctor`.',
  };
}

const notSignedInToDashboard: ErrorInfo = {
  code: ErrorCodes.LOCAL_AUTH_FAILED,
  message: 'This browser is not signed in to the Lanyard dashboard.',
  fix: 'Open the one-time link `lanyard serve` printed. Links work once, for two minutes: for a new one, stop `lanyard serve` (Ctrl+C) and start it again.',
};

/**
 * fetch for the HTTP control client in the browser: the local endpoint's front door answers 401/403 before the
 * control API sees the request, in its own format; turn that into the contract's envelope so the UI can say exactly
 * what to do instead of "unexpected answer".
 */
export function authAwareFetch(base: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const response = await base(input, init);
    if (response.status !== 401 && response.status !== 403) return response;
    const body = (await response
      .clone()
      .json()
      .catch(() => undefined)) as { ok?: unknown } | undefined;
    if (body !== undefined && typeof body === 'object' && body !== null && 'ok' in body) return response;
    return new Response(JSON.stringify({ ok: false, error: notSignedInToDashboard }), {
      status: response.status,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof fetch;
}
