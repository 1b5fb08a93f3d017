import type { IdentityProfile, Status } from '../../../shared/contract';

/** One identity profile's line in the switcher and the tray, from that profile's status: the user, never a token. */
export function identityProfileOf(name: string | null, status: Status, options: { managed: boolean; current: boolean }): IdentityProfile {
  const session = status.session;
  const user = session.status === 'signed_in' || session.status === 'expired' ? (session.user.email ?? session.user.sub) : undefined;
  return {
    name,
    status: session.status,
    ...(user ? { user } : {}),
    ...(status.idp ? { issuer: status.idp.issuer } : {}),
    managed: options.managed,
    current: options.current,
  };
}

/** The default profile alone (a broker without identity profiles). */
export function defaultIdentityProfile(status: Status): IdentityProfile {
  return identityProfileOf(null, status, { managed: false, current: true });
}
