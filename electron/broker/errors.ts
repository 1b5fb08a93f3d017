import { ErrorCodes, type ErrorCode, type ErrorInfo } from '../../shared/errors';

/**
 * What an OAuth server answered, as fields (RFC 6749 §5.2): code branches on these, never on message text. Outside
 * text: `description` has been through `redactText` and is cut short before it is stored here.
 */
export interface OAuthErrorFields {
  /** The RFC 6749 `error` code (invalid_grant, invalid_client, ...). */
  error: string;
  /** The server's `error_description`, redacted. */
  description?: string | undefined;
  /** The HTTP status of the answer. */
  status?: number | undefined;
}

export interface LanyardErrorOptions {
  cause?: unknown;
  serverId?: string | undefined;
  transient?: boolean | undefined;
  /** The OAuth error behind this one, when a party answered with one. */
  oauth?: OAuthErrorFields | undefined;
}

/**
 * The one error class the broker throws for anything a user can meet. `code` is stable (shared/errors.ts), `message`
 * says what happened, `fix` says what to do. Messages are built from non-secret identifiers only; `cause` may hold
 * the underlying error for logs, which pass it through `redact()` first.
 */
export class LanyardError extends Error {
  override readonly name = 'LanyardError';
  readonly code: ErrorCode;
  readonly fix: string;
  readonly serverId: string | undefined;
  /** True when retrying later may succeed without the user doing anything (network, 5xx). */
  readonly transient: boolean;
  /** The OAuth error the IdP or an authorization server answered with, when that is what this error is about. */
  readonly oauth: OAuthErrorFields | undefined;

  constructor(code: ErrorCode, message: string, fix: string, options: LanyardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fix = fix;
    this.serverId = options.serverId;
    this.transient = options.transient ?? false;
    this.oauth = options.oauth;
  }

  toInfo(): ErrorInfo {
    const info: ErrorInfo = { code: this.code, message: this.message, fix: this.fix };
    if (this.serverId !== undefined) info.serverId = this.serverId;
    return info;
  }
}

export const isLanyardError = (e: unknown): e is LanyardError => e instanceof LanyardError;

/** Converts anything thrown into the boundary shape. Unknown errors keep only their message, never their cause. */
export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof LanyardError) return e.toInfo();
  const message = e instanceof Error ? e.message : String(e);
  return {
    code: ErrorCodes.INTERNAL,
    message: redactText(message),
    fix: 'This is unexpected. Run `lanyard doctor` and, if it persists, report it with that output.',
  };
}

const SECRET_FIELD =
  /\b(access_token|refresh_token|id_token|subject_token|assertion|client_assertion|client_secret|code|code_verifier|password|token)=([^&\s"]+)/gi;
const JWT_LIKE = /\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g;
/**
 * An opaque token on its own (most access and refresh tokens are random base64url): a run of 32 or more base64url
 * characters mixing upper case, lower case and digits. Identifiers people need to read (tool names, hex hashes, UUIDs)
 * lack one of the three and are kept.
 */
const OPAQUE_TOKEN =
  /(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-])/g;

/**
 * Removes anything token-shaped from free text (form fields, JWTs, Authorization values, opaque tokens). Used on every message that
 * came from outside before it reaches a log, the activity view or an error shown to the user.
 */
export function redactText(text: string): string {
  return text
    .replace(SECRET_FIELD, (_m, k: string) => `${k}=[redacted]`)
    .replace(JWT_LIKE, '[redacted-jwt]')
    .replace(BEARER, (_m, scheme: string) => `${scheme} [redacted]`)
    .replace(OPAQUE_TOKEN, '[redacted]');
}
