/**
 * On the remote side (WSL, an SSH host, a dev container): whether each laptop this side is paired with answers and still
 * accepts its remote token — one MCP ping per pairing, the token never printed. `lanyard remote status` prints these;
 * `lanyard doctor` adds them as its remote-link hops. See README "Remote development".
 */
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { readRemoteCredentials } from './credentials';
import { parseRemoteEndpoint, remoteRequest, unreachableText, type RemoteEndpoint } from './endpoint';

export interface PairingCheck {
  endpoint: string;
  deviceId: string;
  label: string;
  ok: boolean;
  message: string;
  fix?: string;
  /** Why it failed, as a stable code: the token was refused, or the laptop could not be reached. */
  code?: typeof ErrorCodes.REMOTE_TOKEN_REFUSED | typeof ErrorCodes.REMOTE_UNREACHABLE;
}

export async function checkPairings(home: string): Promise<PairingCheck[]> {
  const checks: PairingCheck[] = [];
  for (const [origin, credential] of Object.entries(await readRemoteCredentials(home))) {
    const base = { endpoint: origin, deviceId: credential.deviceId, label: credential.label };
    let endpoint: RemoteEndpoint;
    try {
      endpoint = parseRemoteEndpoint(origin);
    } catch {
      continue;
    }
    try {
      const answer = await remoteRequest(
        endpoint,
        'POST',
        '/mcp',
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        { token: credential.token, timeoutMs: 5_000 },
      );
      const error = (answer.body as { error?: { message?: string } } | undefined)?.error;
      if (answer.status === 401 || answer.status === 403 || answer.status === 421)
        checks.push({
          ...base,
          ok: false,
          message: error?.message ?? `refused (HTTP ${answer.status})`,
          fix: `lanyard remote pair ${origin}`,
          code: ErrorCodes.REMOTE_TOKEN_REFUSED,
        });
      else checks.push({ ...base, ok: true, message: "the laptop's Lanyard answers and accepts this side's token" });
    } catch (e) {
      const { message, fix } = unreachableText(endpoint, e);
      checks.push({ ...base, ok: false, message, fix, code: ErrorCodes.REMOTE_UNREACHABLE });
    }
  }
  return checks;
}

/** A pairing check as one of `lanyard doctor`'s hops. */
export function pairingHop(check: PairingCheck): { id: string; hop: string; ok: boolean; detail: string; error?: ErrorInfo } {
  const hop = `Laptop ${check.endpoint}`;
  const id = `remote.${check.deviceId}`;
  const detail = `paired as "${check.label}": ${check.message}`;
  if (check.ok) return { id, hop, ok: true, detail };
  return {
    id,
    hop,
    ok: false,
    detail,
    error: {
      code: check.code ?? ErrorCodes.REMOTE_UNREACHABLE,
      message: check.message,
      fix: check.fix ?? `lanyard remote pair ${check.endpoint}`,
    },
  };
}
