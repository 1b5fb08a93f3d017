import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import type { FetchLike } from '../util/http';

/** The command that signs in to an identity profile: `lanyard login`, or `lanyard login --profile <name>` for another one. */
export function loginCommandFor(profile: string | undefined): string {
  return profile === undefined ? 'lanyard login' : `lanyard login --profile ${profile}`;
}

/**
 * The one sentence `/mcp` shows a signed-out IDE (the `lanyard_sign_in` tool, a call's error): how to sign in to this
 * profile, or, with no IdP configured yet, how to set one.
 */
export function signInHint(profile: string | undefined, idpConfigured: boolean): string {
  if (profile === undefined)
    return idpConfigured
      ? 'Sign in to your company\'s identity provider: click "Sign in" in the Lanyard tray or dashboard, or run `lanyard login`.'
      : 'Lanyard has no identity provider configured yet: open the Lanyard dashboard (Settings) or run `lanyard login` after setting the IdP.';
  const login = loginCommandFor(profile);
  return idpConfigured
    ? `Sign in to identity profile "${profile}": select it in the Lanyard tray or dashboard and click "Sign in", or run \`${login}\`.`
    : `Identity profile "${profile}" has no identity provider configured yet: run \`${login} --issuer <url> --client-id <id>\`, or set it in the Lanyard dashboard (Settings) with that profile selected.`;
}

/**
 * An identity profile's "sign in" errors with the fix for that profile. The identity session and token service say
 * `lanyard login`, which signs in to the default profile: an IDE of another profile would be sent to the wrong one.
 * Anything else is left as it is.
 */
export function forIdentityProfile(e: unknown, profile: string): unknown {
  if (!(e instanceof LanyardError) || (e.code !== ErrorCodes.NOT_SIGNED_IN && e.code !== ErrorCodes.SESSION_EXPIRED)) return e;
  return new LanyardError(
    e.code,
    e.message,
    `Sign in to identity profile "${profile}": run \`${loginCommandFor(profile)}\`, or select it in the Lanyard dashboard and click "Sign in".`,
    { cause: e.cause, serverId: e.serverId, transient: e.transient, oauth: e.oauth },
  );
}

/** `fetch` (a server's authorized fetch) whose failures pass through `forIdentityProfile`. */
export function profileSignInErrors(fetch: FetchLike, profile: string): FetchLike {
  return (input, init) =>
    fetch(input, init).catch((e: unknown) => {
      throw forIdentityProfile(e, profile);
    });
}
