import path from 'node:path';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';

/**
 * An identity profile's name: it becomes a directory under `<home>/identities/` and a path segment of `/p/<name>/`, so
 * only lower-case letters, digits, `-` and `_` (no dots, no slashes: nothing that could leave the directory).
 */
export const IDENTITY_PROFILE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** The name itself when it is allowed; a LanyardError saying what is allowed otherwise. */
export function checkIdentityProfileName(name: string): string {
  if (IDENTITY_PROFILE_PATTERN.test(name)) return name;
  throw new LanyardError(
    ErrorCodes.IDENTITY_PROFILE_INVALID,
    `"${name.slice(0, 40)}" is not a valid identity profile name.`,
    'Use 1 to 32 lower-case letters, digits, "-" or "_", starting with a letter or digit (for example "work" or "contractor").',
  );
}

/** Where an identity profile keeps its own config, activity, audit ledger and tool pins (and so its keychain namespace). */
export function identityProfileHome(rootHome: string, name: string): string {
  return path.join(rootHome, 'identities', checkIdentityProfileName(name));
}

/** The endpoint path prefix of an identity profile: `/p/<name>`. */
export function identityPathPrefix(name: string): string {
  return `/p/${checkIdentityProfileName(name)}`;
}

/**
 * Splits `/p/<name>/<rest>` into the profile name (not yet checked) and the path it addresses inside that profile
 * (`/mcp`, `/mcp/<id>`, `/ide/<ide>/mcp`, `/api/…`); undefined for any other path.
 */
export function splitIdentityPath(pathname: string): { name: string; rest: string } | undefined {
  if (!pathname.startsWith('/p/')) return undefined;
  const tail = pathname.slice(3);
  const slash = tail.indexOf('/');
  const name = decodeSegment(slash < 0 ? tail : tail.slice(0, slash));
  return { name, rest: slash < 0 ? '/' : tail.slice(slash) };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
