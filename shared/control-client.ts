import { ControlMethods, type ControlApi, type ControlMethodName, type ControlResult } from './contract';
import { ErrorCodes, type ErrorInfo } from './errors';

/** An ErrorInfo that crossed a transport, as a throwable value (the UI and CLI show message + fix). */
export class ControlError extends Error {
  readonly info: ErrorInfo;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'ControlError';
    this.info = info;
  }
}

export interface HttpControlClientOptions {
  /** Origin of the broker's local endpoint, e.g. http://127.0.0.1:47821 ('' for same-origin in the dashboard). */
  baseUrl: string;
  /** Extra headers, e.g. the local token for the CLI (the browser dashboard adds its session header in its fetch). */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

/**
 * The HTTP transport of the control contract, client side: POST /api/<method> with the JSON input; the answer is a
 * ControlResult envelope, parsed with the method's output schema. Used by the headless dashboard and the CLI.
 */
export function createHttpControlClient(options: HttpControlClientOptions): ControlApi {
  const doFetch = options.fetch ?? fetch;
  const call = async (method: ControlMethodName, input: unknown): Promise<unknown> => {
    let response: Response;
    try {
      response = await doFetch(`${options.baseUrl}/api/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...options.headers },
        body: JSON.stringify(input ?? {}),
        credentials: 'same-origin',
      });
    } catch {
      throw new ControlError({
        code: ErrorCodes.BROKER_NOT_RUNNING,
        message: 'Lanyard is not running (its local endpoint did not answer).',
        fix: 'Start the Lanyard app, or run `lanyard serve`.',
      });
    }
    const body = (await response.json().catch(() => undefined)) as ControlResult<unknown> | undefined;
    if (!body || typeof body !== 'object' || !('ok' in body)) {
      throw new ControlError({
        code: ErrorCodes.INTERNAL,
        message: `Unexpected answer from Lanyard (HTTP ${response.status}).`,
        fix: 'Restart Lanyard; if it persists, run `lanyard doctor`.',
      });
    }
    if (!body.ok) throw new ControlError(body.error);
    return ControlMethods[method].output.parse(body.value);
  };
  const api = {} as Record<ControlMethodName, (input: unknown) => Promise<unknown>>;
  for (const method of Object.keys(ControlMethods) as ControlMethodName[]) api[method] = (input: unknown) => call(method, input);
  return api as unknown as ControlApi;
}
