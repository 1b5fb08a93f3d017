import type { IncomingMessage, ServerResponse } from 'node:http';
import { ControlMethods, type ControlMethodName, type ControlResult } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, toErrorInfo } from '../errors';
import { BodyTooLargeError, readJsonBody } from '../gateway/http-util';
import type { ControlService } from './control-service';

const MAX_BODY = 256 * 1024;

/**
 * The HTTP transport of the control contract, broker side: `POST /api/<method>` (JSON in, ControlResult out) and
 * `GET /api/events` (server-sent events: `status`, `activity`). Every input is parsed with the method's zod schema;
 * expected failures travel as `{ ok: false, error }` with the error's code, message and fix — never a stack or a token.
 * Authentication happens in front of this handler (the local token, or the dashboard session the page sends as a header; see dashboard.ts).
 */
export function createControlHttpHandler(control: ControlService) {
  return async function handleControl(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const name = url.pathname.replace(/^\/api\//, '');
    if (name === 'events') {
      if (req.method !== 'GET')
        return send(res, 405, fail(new LanyardError(ErrorCodes.CONFIG_INVALID, 'Use GET for /api/events.', 'Open it with EventSource.')));
      return streamEvents(control, req, res);
    }
    if (!Object.hasOwn(ControlMethods, name)) {
      return send(
        res,
        404,
        fail(
          new LanyardError(
            ErrorCodes.CONFIG_INVALID,
            `Unknown control method "${name.slice(0, 40)}".`,
            'Update the Lanyard CLI or dashboard to match the running broker.',
          ),
        ),
      );
    }
    if (req.method !== 'POST')
      return send(res, 405, fail(new LanyardError(ErrorCodes.CONFIG_INVALID, `Use POST for /api/${name}.`, 'Send a JSON body.')));
    const method = name as ControlMethodName;
    let raw: unknown;
    try {
      raw = await readJsonBody(req, MAX_BODY, { allowEmpty: true });
    } catch (e) {
      if (e instanceof BodyTooLargeError) {
        // Not read to its end: the connection closes once the answer is out.
        res.on('finish', () => req.destroy());
        return send(
          res,
          413,
          fail(new LanyardError(ErrorCodes.CONFIG_INVALID, `Request body too large (limit ${e.limit} bytes).`, 'Send a smaller request.')),
          { connection: 'close' },
        );
      }
      return send(
        res,
        400,
        fail(new LanyardError(ErrorCodes.CONFIG_INVALID, 'The request body is not valid JSON.', 'Send a JSON object.')),
      );
    }
    const parsed = ControlMethods[method].input.safeParse(raw ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
      return send(
        res,
        400,
        fail(new LanyardError(ErrorCodes.CONFIG_INVALID, `Invalid input for ${method}: ${issues}.`, 'Correct the fields named above.')),
      );
    }
    try {
      const handler = control[method] as (input: unknown) => Promise<unknown>;
      const value = await handler.call(control, parsed.data);
      send(res, 200, { ok: true, value });
    } catch (e) {
      send(res, 200, fail(e));
    }
  };
}

function fail(e: unknown): ControlResult<never> {
  return { ok: false, error: toErrorInfo(e) };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function streamEvents(control: ControlService, req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const write = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const off = control.onEvent((event, payload) => write(event, payload));
  void control.status().then(
    (s) => write('status', s),
    () => {},
  );
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  heartbeat.unref();
  const close = () => {
    clearInterval(heartbeat);
    off();
  };
  req.on('close', close);
  res.on('error', close);
}
