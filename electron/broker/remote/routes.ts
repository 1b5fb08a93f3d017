import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, toErrorInfo } from '../errors';
import type { GatewayRoute } from '../gateway/http-server';
import { BodyTooLargeError, readJsonBody, refuseTooLarge, sendJson } from '../gateway/http-util';
import type { PairingService } from './pairing';

/** Where the remote side asks for a pairing and collects its token (no credential: it has none yet). */
export const PAIRING_PATH = '/remote/pair';
export const CLAIM_PATH = '/remote/pair/claim';
/** How often the remote side asks whether its code was approved. */
export const CLAIM_POLL_MS = 1_000;

const MAX_BODY = 1024;

/**
 * The pairing routes on the local endpoint. They need no token — the remote side has none yet — but pass the front
 * door's Host and Origin checks like every route (a forwarded port arrives at the laptop as a loopback connection, see
 * docs/architecture.md "Remote development"), so a web page cannot reach them. Answers are JSON with `no-store`; the
 * token appears only in the single answer that hands it over.
 */
export function pairingRoutes(pairing: () => PairingService | undefined): GatewayRoute[] {
  return [{ prefix: PAIRING_PATH, auth: 'none', handler: (req, res) => handlePairing(pairing(), req, res) }];
}

async function handlePairing(service: PairingService | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname.replace(/\/$/, '');
  const headers = { 'cache-control': 'no-store' };
  if (req.method !== 'POST' || (path !== PAIRING_PATH && path !== CLAIM_PATH)) {
    req.resume();
    return sendJson(res, path === PAIRING_PATH || path === CLAIM_PATH ? 405 : 404, errorBody(notHere()), headers);
  }
  if (!service) {
    req.resume();
    return sendJson(
      res,
      503,
      errorBody(
        new LanyardError(
          ErrorCodes.REMOTE_PAIRING_FAILED,
          'Remote pairing is not available yet: the broker is still starting.',
          'Try again in a few seconds.',
        ),
      ),
      headers,
    );
  }
  let body: Record<string, unknown>;
  try {
    const value = await readJsonBody(req, MAX_BODY, { allowEmpty: true });
    body = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch (e) {
    if (e instanceof BodyTooLargeError) return refuseTooLarge(req, res, MAX_BODY);
    return sendJson(
      res,
      400,
      errorBody(new LanyardError(ErrorCodes.CONFIG_INVALID, 'The pairing request is not JSON.', 'Use `lanyard remote pair`.')),
      headers,
    );
  }
  try {
    if (path === PAIRING_PATH) {
      const started = service.request(body.label);
      return sendJson(res, 201, { ...started, pollMs: CLAIM_POLL_MS }, headers);
    }
    const claim = service.claim(body.pairing);
    if (claim.state === 'pending') return sendJson(res, 202, { state: 'pending', expiresAt: claim.expiresAt }, headers);
    if (claim.state === 'refused') return sendJson(res, 410, errorBody(claim.error), headers);
    return sendJson(res, 200, { state: 'approved', token: claim.token, device: claim.device }, headers);
  } catch (e) {
    return sendJson(res, 429, errorBody(e), headers);
  }
}

function notHere(): LanyardError {
  return new LanyardError(ErrorCodes.REMOTE_PAIRING_FAILED, 'Not a pairing endpoint.', 'Use `lanyard remote pair <laptop endpoint>`.');
}

function errorBody(e: unknown): { error: ReturnType<typeof toErrorInfo> } {
  return { error: toErrorInfo(e) };
}
