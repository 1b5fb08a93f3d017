/**
 * What a signed-out IDE of an identity profile is told (identities/sign-in.ts): the profile's own `lanyard login
 * --profile <name>`, never the default profile's `lanyard login`, which would sign the wrong identity in.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { forIdentityProfile, profileSignInErrors, signInHint } from '../../electron/broker/identities/sign-in';

describe('identity-profile sign-in messages', () => {
  it('the sign-in hint names the profile’s command; the default profile’s is unchanged', () => {
    expect(signInHint(undefined, true)).toContain('run `lanyard login`.');
    expect(signInHint('work', true)).toContain('`lanyard login --profile work`');
    expect(signInHint('work', false)).toContain('`lanyard login --profile work --issuer <url> --client-id <id>`');
  });

  it('rewrites the fix of "not signed in" and "expired" only, keeping code, message and server', async () => {
    const notSignedIn = new LanyardError(ErrorCodes.NOT_SIGNED_IN, 'You are not signed in.', 'Run `lanyard login`.', { serverId: 'todo' });
    const rewritten = forIdentityProfile(notSignedIn, 'work') as LanyardError;
    expect(rewritten).toMatchObject({ code: ErrorCodes.NOT_SIGNED_IN, message: 'You are not signed in.', serverId: 'todo' });
    expect(rewritten.fix).toContain('`lanyard login --profile work`');
    expect(rewritten.fix).not.toMatch(/`lanyard login`/);
    const other = new LanyardError(ErrorCodes.SERVER_UNREACHABLE, 'down', 'Retry.');
    expect(forIdentityProfile(other, 'work')).toBe(other);

    const expired = new LanyardError(ErrorCodes.SESSION_EXPIRED, 'Your sign-in has expired.', 'Run `lanyard login`.');
    const fetch = profileSignInErrors(() => Promise.reject(expired), 'work');
    await expect(fetch('http://127.0.0.1/mcp')).rejects.toMatchObject({
      code: ErrorCodes.SESSION_EXPIRED,
      fix: expect.stringContaining('--profile work'),
    });
  });
});
