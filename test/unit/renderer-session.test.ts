/** renderer/src/model/session.ts and router.ts: the sign-in page's states and where "home" goes. */
import { describe, expect, it } from 'vitest';
import { hashOf, homePage, pageTitle, parseHash, resolvePage } from '../../renderer/src/model/router';
import { signInModel, userLabel } from '../../renderer/src/model/session';
import { expired, signedOut, status } from './renderer-fixtures';

describe('signInModel', () => {
  it('signed out: one button naming the IdP host', () => {
    const model = signInModel(signedOut(), false);
    expect(model).toMatchObject({ state: 'signed_out', button: 'Sign in with acme.okta.com', idpHost: 'acme.okta.com' });
  });

  it('waiting for the browser: no button, says where to finish', () => {
    const model = signInModel(signedOut(), true);
    expect(model.state).toBe('waiting');
    expect(model.button).toBeUndefined();
    expect(model.message).toContain('acme.okta.com');
    expect(signInModel(status({ session: { status: 'signing_in' } }), false).state).toBe('waiting');
    expect(signInModel(status({ session: { status: 'signing_in' } }), false).link).toBeUndefined();
  });

  it('waiting, with the IdP link for a user whose browser did not open (SSH, WSL)', () => {
    const link = 'https://acme.okta.com/oauth2/v1/authorize?client_id=x&state=y';
    expect(signInModel(status({ session: { status: 'signing_in', authorizeUrl: link } }), false)).toMatchObject({ state: 'waiting', link });
  });

  it('a device sign-in in progress: the code to enter and where, no link to paste from', () => {
    const device = { verificationUri: 'https://acme.okta.com/activate', userCode: 'WDJB-MJHT', expiresAt: 1 };
    const model = signInModel(status({ session: { status: 'signing_in', mode: 'device', device } }), false);
    expect(model).toMatchObject({ state: 'waiting', title: 'Enter the code to sign in' });
    expect(model.message).toContain('https://acme.okta.com/activate');
    expect(model.message).toContain('WDJB-MJHT');
    expect(model.link).toBeUndefined();
  });

  it('expired: "Sign in again", with the account and the error', () => {
    const model = signInModel(expired(), false);
    expect(model).toMatchObject({ state: 'expired', button: 'Sign in again', user: 'alice@example.com' });
    expect(model.error?.code).toBe('session_expired');
  });

  it('no IdP configured: points to Settings', () => {
    const model = signInModel(status({ session: { status: 'not_configured' }, idp: undefined }), false);
    expect(model).toMatchObject({ state: 'not_configured', button: 'Open Settings' });
  });

  it('signed in', () => {
    expect(signInModel(status(), false)).toMatchObject({ state: 'signed_in', user: 'alice@example.com' });
  });

  it('labels a user by email, then name, then subject', () => {
    expect(userLabel({ sub: 's', email: 'e@x', name: 'N' })).toBe('e@x');
    expect(userLabel({ sub: 's', name: 'N' })).toBe('N');
    expect(userLabel({ sub: 's' })).toBe('s');
  });
});

describe('router', () => {
  it('parses and builds hashes', () => {
    expect(parseHash('#/servers')).toBe('servers');
    expect(parseHash('#/add-server?x=1')).toBe('add-server');
    expect(parseHash('#servers')).toBe('servers');
    expect(parseHash('')).toBeUndefined();
    expect(parseHash('#/nope')).toBeUndefined();
    expect(parseHash('#/home')).toBeUndefined();
    expect(hashOf('connect')).toBe('#/connect');
    expect(pageTitle('connect')).toBe('Connect an IDE');
  });

  it('home is sign-in until signed in, the server list after', () => {
    expect(homePage({ status: 'signed_in' })).toBe('servers');
    expect(homePage({ status: 'signed_out' })).toBe('sign-in');
    expect(homePage({ status: 'expired' })).toBe('sign-in');
    expect(homePage({ status: 'not_configured' })).toBe('sign-in');
    expect(resolvePage('home', { status: 'signed_in' })).toBe('servers');
    expect(resolvePage('activity', { status: 'signed_out' })).toBe('activity');
  });
});
