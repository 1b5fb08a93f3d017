import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from '@modelcontextprotocol/client';
import { ErrorCodes, isNetworkErrorCode } from '../../../../shared/errors';
import { LanyardError, redactText } from '../../errors';
import { classifyNetworkError, type NetworkErrorKind } from '../../util/network-errors';

/**
 * Upstream failures, sorted into what the gateway does about them. Messages are built from the server id, HTTP
 * status and error codes only: an upstream body or SDK message may quote a request, and a request may carry a token.
 */
export type UpstreamFailure =
  /** The server answered with a JSON-RPC error: it is healthy, the answer goes back to the IDE as it is. */
  | { kind: 'protocol'; error: ProtocolError }
  /** The server no longer knows our Mcp-Session-Id (404): initialize a new session and retry once. */
  | { kind: 'session-gone' }
  /** The connection failed (refused, reset, 5xx, stream cut): drop the connection, reconnect with backoff. */
  | { kind: 'transport'; error: LanyardError }
  /** No answer in time: the connection may be fine, the server is slow. */
  | { kind: 'timeout'; error: LanyardError }
  /** Credentials (token engine errors, 401/403 after re-mint and step-up): reconnecting does not help. */
  | { kind: 'auth'; error: LanyardError };

/** JSON-RPC error data marking the answer Lanyard synthesises when a response stream ends without a response. */
export const STREAM_ENDED_MARK = 'lanyard:stream_ended';

const TRANSIENT_FIX = 'Lanyard retries by itself; if it persists, check that the server is up (`lanyard doctor` tests every hop).';

export function unreachable(serverId: string, what: string, cause?: unknown): LanyardError {
  return new LanyardError(ErrorCodes.SERVER_UNREACHABLE, `Server "${serverId}" ${what}.`, TRANSIENT_FIX, {
    serverId,
    transient: true,
    cause,
  });
}

/** What the network failure kinds mean for an upstream server, said about the server ("Server "x" <words>."). */
const NETWORK_WORDS: Partial<Record<NetworkErrorKind, string>> = {
  refused: 'refused the connection (is it running?)',
  reset: 'closed the connection',
  timeout: 'did not answer in time',
  dns: 'has a host name that does not resolve',
};

/**
 * The network's own error (an untrusted certificate, the proxy, its PAC file, the IdP or AS unreachable) behind `e`:
 * the SDK wraps what its fetch threw (SendFailed, ConnectionClosed), and that error says more than "closed the connection".
 */
function networkCause(e: unknown): LanyardError | undefined {
  let current: unknown = e;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (current instanceof LanyardError)
      return current.code !== ErrorCodes.SERVER_UNREACHABLE && isNetworkErrorCode(current.code) ? current : undefined;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Classifies anything an upstream exchange threw. `serverId` names the server in every message. */
export function classifyUpstreamError(serverId: string, e: unknown): UpstreamFailure {
  const onTheWay = networkCause(e);
  if (onTheWay) return { kind: 'transport', error: onTheWay };
  if (e instanceof LanyardError) {
    if (e.transient && e.code === ErrorCodes.SERVER_UNREACHABLE) return { kind: 'transport', error: e };
    // The network failing on the way to a token (the IdP or authorization server unreachable, an untrusted
    // certificate, the proxy or its PAC file) is the server being unreachable, not its credentials being refused.
    return e.code !== ErrorCodes.SERVER_UNREACHABLE && isNetworkErrorCode(e.code)
      ? { kind: 'transport', error: e }
      : { kind: 'auth', error: e };
  }
  if (ProtocolError.isInstance(e)) {
    const data = e.data as { lanyard?: unknown } | undefined;
    if (data?.lanyard === STREAM_ENDED_MARK)
      return { kind: 'transport', error: unreachable(serverId, 'closed the response stream before answering (did it restart?)') };
    return { kind: 'protocol', error: e };
  }
  if (SdkHttpError.isInstance(e)) {
    const status = e.status;
    if (status === 404) return { kind: 'session-gone' };
    if (status === 401) {
      return {
        kind: 'auth',
        error: new LanyardError(
          ErrorCodes.AS_GRANT_REJECTED,
          `Server "${serverId}" refused the access token its authorization server issued (HTTP 401, even after a fresh token).`,
          "The server and its authorization server disagree about the token (audience or resource). Ask your admin to check the server's resource settings; `lanyard doctor` shows each step.",
          { serverId },
        ),
      };
    }
    if (status === 403) {
      return {
        kind: 'auth',
        error: new LanyardError(
          ErrorCodes.INSUFFICIENT_SCOPE,
          `Server "${serverId}" refused access (HTTP 403).`,
          'Ask your IdP admin to grant you access to this server (its scopes) in the resource connection.',
          { serverId },
        ),
      };
    }
    if (status === 429) return { kind: 'transport', error: unreachable(serverId, 'is rate-limiting Lanyard (HTTP 429)', e) };
    if (status >= 500) return { kind: 'transport', error: unreachable(serverId, `failed with HTTP ${status}`, e) };
    return {
      kind: 'transport',
      error: new LanyardError(
        ErrorCodes.SERVER_UNREACHABLE,
        `Server "${serverId}" answered HTTP ${status}, which is not a valid MCP response.`,
        "Check the server URL in Lanyard's settings (it must be the MCP endpoint itself, e.g. https://mcp.example.com/mcp).",
        { serverId, cause: e },
      ),
    };
  }
  if (SdkError.isInstance(e)) {
    switch (e.code) {
      case SdkErrorCode.RequestTimeout:
        return { kind: 'timeout', error: unreachable(serverId, 'did not answer in time', e) };
      case SdkErrorCode.ConnectionClosed:
      case SdkErrorCode.NotConnected:
      case SdkErrorCode.SendFailed:
        return { kind: 'transport', error: unreachable(serverId, 'closed the connection', e) };
      case SdkErrorCode.InputRequiredRoundsExceeded:
        // The server answered every round (it is reachable); its answers just never end. The IDE gets an error for
        // this one call, and the connection stays.
        return {
          kind: 'protocol',
          error: new ProtocolError(
            -32603,
            `Server "${serverId}" kept asking for more input (input_required) beyond Lanyard's limit of rounds for one request; the request was stopped.`,
          ),
        };
      case SdkErrorCode.InvalidResult:
        return {
          kind: 'transport',
          error: new LanyardError(
            ErrorCodes.SERVER_UNREACHABLE,
            `Server "${serverId}" answered with a result that is not valid MCP.`,
            'The server is broken or speaks another protocol revision than it announced; contact its owner (`lanyard doctor` shows each step).',
            { serverId, transient: true, cause: e },
          ),
        };
      case SdkErrorCode.EraNegotiationFailed:
        return {
          kind: 'transport',
          error: new LanyardError(
            ErrorCodes.SERVER_UNREACHABLE,
            `Server "${serverId}" could not agree on an MCP protocol version with Lanyard (neither server/discover nor initialize worked).`,
            "Check the server URL in Lanyard's settings (it must be the MCP endpoint itself); Lanyard speaks MCP 2025-11-25 and 2026-07-28.",
            { serverId, transient: true, cause: e },
          ),
        };
      case SdkErrorCode.ClientHttpUnexpectedContent:
        return {
          kind: 'transport',
          error: new LanyardError(
            ErrorCodes.SERVER_UNREACHABLE,
            `Server "${serverId}" answered with something that is not MCP.`,
            "Check the server URL in Lanyard's settings (it must be the MCP endpoint itself).",
            { serverId, cause: e },
          ),
        };
      default:
        return { kind: 'transport', error: unreachable(serverId, `failed (${e.code})`, e) };
    }
  }
  const network = classifyNetworkError(e);
  if (network) {
    const words = NETWORK_WORDS[network.kind] ?? `could not be reached (${network.summary})`;
    return { kind: 'transport', error: unreachable(serverId, words, e) };
  }
  // The SDK's schema check (zod) or JSON parser refused what the server sent: say so, not the validator's issue dump.
  if (e instanceof SyntaxError || (e instanceof Error && e.name === 'ZodError')) {
    return {
      kind: 'transport',
      error: new LanyardError(
        ErrorCodes.SERVER_UNREACHABLE,
        `Server "${serverId}" answered with a message that is not valid MCP (${e instanceof SyntaxError ? 'malformed JSON' : 'not a well-formed JSON-RPC message'}).`,
        "The server is broken or is not an MCP endpoint; check its URL in Lanyard's settings, or contact its owner.",
        { serverId, transient: true, cause: e },
      ),
    };
  }
  const message = e instanceof Error ? redactText(e.message).slice(0, 200) : 'unknown error';
  return { kind: 'transport', error: unreachable(serverId, `failed: ${message}`, e) };
}

/** True for the AbortError a cancelled fetch or request rejects with. */
export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError');
}
