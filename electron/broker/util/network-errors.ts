/**
 * The one place that decides whether an error means "no answer from the other side" (as opposed to an answer Lanyard
 * did not like), and says so in words a user can act on. Everything that talks to a party over the network (IdP,
 * authorization servers, MCP servers, `lanyard doctor`) asks this module instead of keeping its own list.
 *
 * It reads structure only — error codes and names along the `cause` chain — never message text: undici reports a
 * refused connection as `TypeError('fetch failed')` whose cause (sometimes an AggregateError, for happy-eyeballs
 * connection attempts) carries the system error code, and AbortSignal.timeout() rejects with a DOMException named
 * TimeoutError.
 */

export type NetworkErrorKind =
  /** Nothing listens at that address (ECONNREFUSED). */
  | 'refused'
  /** The connection was open and the other side dropped it (ECONNRESET, EPIPE, undici's socket errors). */
  | 'reset'
  /** The host name does not resolve (ENOTFOUND, EAI_AGAIN). */
  | 'dns'
  /** No answer in time: a connect, header or body timeout, or Lanyard's own request deadline. */
  | 'timeout'
  /** The request was cancelled on this side (an AbortSignal fired). */
  | 'aborted'
  /** No route to the host or network (EHOSTUNREACH, ENETUNREACH, ENETDOWN). */
  | 'unreachable'
  /** The TLS handshake failed (certificate expired, untrusted, wrong host name). */
  | 'tls'
  /** A fetch failure with a cause this module has no words for. */
  | 'other';

export interface NetworkFailure {
  kind: NetworkErrorKind;
  /** The system or undici code that decided it (ECONNREFUSED, UND_ERR_SOCKET, ...), when there was one. */
  code?: string;
  /** A short noun phrase for messages: "connection refused (ECONNREFUSED)". Never contains a URL or a token. */
  summary: string;
}

const KIND_BY_CODE: Record<string, NetworkErrorKind> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EAI_NONAME: 'dns',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  EHOSTUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETUNREACH: 'unreachable',
  ENETDOWN: 'unreachable',
  UND_ERR_ABORTED: 'aborted',
};

/** Node's and OpenSSL's codes for a failed certificate check (tls.TLSSocket `authorizationError`, ERR_TLS_*). */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$)/;

const WORDS: Record<NetworkErrorKind, string> = {
  refused: 'connection refused',
  reset: 'connection closed by the other side',
  dns: 'host name does not resolve',
  timeout: 'timed out',
  aborted: 'request cancelled',
  unreachable: 'no route to the host',
  tls: 'TLS certificate rejected',
  other: 'network error',
};

const MAX_DEPTH = 6;

/**
 * Classifies a thrown value as a network failure, or returns undefined when it is something else (an HTTP answer, a
 * protocol error, a bug). Looks at the error, its `cause` chain and an AggregateError's first member.
 */
export function classifyNetworkError(e: unknown): NetworkFailure | undefined {
  let sawFetchFailure = false;
  let current: unknown = e;
  for (let depth = 0; depth < MAX_DEPTH && isObject(current); depth++) {
    const name = typeof current.name === 'string' ? current.name : undefined;
    if (name === 'TimeoutError') return failure('timeout');
    if (name === 'AbortError') return failure('aborted');
    const code = typeof current.code === 'string' ? current.code : undefined;
    if (code) {
      const kind = KIND_BY_CODE[code] ?? (TLS_CODE.test(code) ? 'tls' : undefined);
      if (kind) return failure(kind, code);
      // Any other system error from a socket call (Node sets `syscall` on those): still the network, named by its code.
      if (typeof current.syscall === 'string') return failure('other', code);
    }
    // undici throws TypeError with the underlying failure as its cause; a TypeError without a cause is a bug, not the network.
    if (current instanceof TypeError && current.cause !== undefined) sawFetchFailure = true;
    const next: unknown = current.cause ?? (Array.isArray(current.errors) ? (current.errors as unknown[])[0] : undefined);
    current = next;
  }
  return sawFetchFailure ? failure('other') : undefined;
}

/** The summary of a network failure, or undefined when `e` is not one. */
export function describeNetworkError(e: unknown): string | undefined {
  return classifyNetworkError(e)?.summary;
}

function failure(kind: NetworkErrorKind, code?: string): NetworkFailure {
  const words = WORDS[kind];
  return code ? { kind, code, summary: `${words} (${code})` } : { kind, summary: words };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
