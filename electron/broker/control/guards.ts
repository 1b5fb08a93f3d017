import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';

/** What the control methods that need an identity provider throw when none is configured. */
export function notConfigured(): LanyardError {
  return new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    'No identity provider is configured.',
    "Set your company's IdP in Settings (issuer URL and client id), or run `npm run demo` for the sandbox.",
  );
}

/** Which parts of the config an administrator's managed configuration locks (config/managed.ts). */
export interface ManagedLocks {
  /** Locked config fields, e.g. 'idp', 'servers'. */
  locked: () => string[];
  /** Servers the managed configuration defines: the user can neither change nor remove them. */
  managedServerIds: () => string[];
}

/** Refuses a change to a field, or to one server, that the administrator manages. */
export function assertUnlocked(
  locks: Pick<ManagedLocks, 'locked'> & Partial<Pick<ManagedLocks, 'managedServerIds'>>,
  field: 'idp' | 'servers',
  serverId?: string,
): void {
  if (locks.locked().includes(field) || (serverId && locks.managedServerIds?.().includes(serverId))) {
    throw new LanyardError(
      ErrorCodes.MANAGED_LOCKED,
      `${field === 'idp' ? 'The identity provider' : serverId ? `Server "${serverId}"` : 'The server list'} is managed by your administrator.`,
      'Ask your IT team to change it in the managed configuration.',
    );
  }
}
