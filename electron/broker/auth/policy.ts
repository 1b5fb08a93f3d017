import { AUTH_PATH_LABELS, AUTH_PATHS, type AuthPath } from '../../../shared/auth-paths';
import { ErrorCodes } from '../../../shared/errors';
import type { ManagedConfig } from '../config/managed';
import type { ServerConfig } from '../config/schema';
import { LanyardError } from '../errors';

/**
 * What the administrator allows for one server's auth path (docs/architecture.md, "Auth paths"):
 *   - a managed server's `authPath` pins it: no other path is ever tried;
 *   - `fallback: false` (on the server, or at the managed configuration's top level) allows Cross-App Access, or no
 *     authentication for a server that needs none — never an interactive or API-key fallback;
 *   - `lock: ["authPaths"]` refuses every user change of a path (MANAGED_LOCKED).
 */
export interface ServerAuthPolicy {
  /** The paths the server may use, in the fixed order. */
  allowed: AuthPath[];
  /** Set when the managed configuration pins the path. */
  pinned?: AuthPath | undefined;
  /** True when the administrator pins the path or forbids falling back from it (what status shows as authPathPinned). */
  restricted: boolean;
  /** The rule in plain words, for POLICY_BLOCKED messages. */
  rule?: string | undefined;
  /** `authPaths` is locked: the user may not change this server's path. */
  locked: boolean;
}

export interface AuthPolicyInput {
  /** The merged (managed over user) config entry. */
  server: Pick<ServerConfig, 'id' | 'authPath' | 'fallback'>;
  /** The managed configuration when one is in force (state ok); undefined otherwise. */
  managed?: ManagedConfig | undefined;
  /** The locked fields (an invalid managed file locks everything). */
  locked: readonly string[];
}

export function serverAuthPolicy(input: AuthPolicyInput): ServerAuthPolicy {
  const { server, managed } = input;
  const locked = input.locked.includes('authPaths');
  const managedEntry = managed?.servers?.find((s) => s.id === server.id);
  if (managedEntry?.authPath) {
    return {
      allowed: [managedEntry.authPath],
      pinned: managedEntry.authPath,
      restricted: true,
      rule: `your administrator pins server "${server.id}" to ${AUTH_PATH_LABELS[managedEntry.authPath]}`,
      locked,
    };
  }
  const serverNoFallback = (managedEntry ?? server).fallback === false;
  if (serverNoFallback || managed?.fallback === false) {
    const by =
      managedEntry?.fallback === false || managed?.fallback === false ? 'your administrator allows' : 'this server is set to allow';
    return {
      allowed: ['xaa', 'none'],
      restricted: managedEntry?.fallback === false || managed?.fallback === false,
      rule: `${by} only Cross-App Access (or no authentication) for server "${server.id}" (fallback: false)`,
      locked,
    };
  }
  return { allowed: [...AUTH_PATHS], restricted: false, locked };
}

/** POLICY_BLOCKED naming the rule, when `path` is not allowed for the server. */
export function assertPathAllowed(policy: ServerAuthPolicy, serverId: string, path: AuthPath): void {
  if (policy.allowed.includes(path)) return;
  throw policyBlocked(
    serverId,
    `Server "${serverId}" would need ${AUTH_PATH_LABELS[path]}, but ${policy.rule ?? 'your administrator does not allow it'}.`,
    policy.pinned
      ? 'Ask your IT team to check the path set for this server in the managed configuration.'
      : 'Ask your IT team to enable Cross-App Access for this server at your identity provider, or to allow a fallback for it.',
  );
}

/** A user change of a server's path while the administrator locks them. */
export function assertPathsUnlocked(policy: ServerAuthPolicy, serverId: string): void {
  if (!policy.locked) return;
  throw new LanyardError(
    ErrorCodes.MANAGED_LOCKED,
    `The auth path of server "${serverId}" is managed by your administrator.`,
    'Ask your IT team to change it in the managed configuration.',
    { serverId },
  );
}

export function policyBlocked(serverId: string, message: string, fix: string, cause?: unknown): LanyardError {
  return new LanyardError(ErrorCodes.POLICY_BLOCKED, message, fix, { serverId, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * The IdP's refusals that are policy decisions (RFC 8693 / RFC 6749 error codes): for a server on the Cross-App Access
 * path they end in POLICY_BLOCKED — never in a fallback to an interactive flow or a key, which would route around
 * the administrator's decision.
 */
export const IDP_POLICY_ERRORS = ['access_denied', 'invalid_target', 'unauthorized_client', 'invalid_scope', 'consent_required'] as const;

/** The error the user sees when the IdP refused the exchange by policy; undefined for any other error. */
export function idpPolicyBlock(serverId: string, e: unknown): LanyardError | undefined {
  if (!(e instanceof LanyardError) || e.code !== ErrorCodes.EXCHANGE_DENIED) return undefined;
  const error = e.oauth?.error;
  if (!error || !(IDP_POLICY_ERRORS as readonly string[]).includes(error)) return undefined;
  const reason = e.oauth?.description ? `${error}: ${e.oauth.description}` : error;
  return policyBlocked(
    serverId,
    `Access to server "${serverId}" is blocked by your administrator: your identity provider refused it (${reason}).`,
    'Ask your IT team for access to this server at your identity provider; Lanyard does not fall back to another way of signing in to it.',
    e,
  );
}
