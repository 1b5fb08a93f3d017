/**
 * The sign-in page's model: which of its states to show and what the one button says. Pure.
 */
import type { Status } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import { issuerLabel } from './format';

export type SignInState = 'not_configured' | 'signed_out' | 'waiting' | 'expired' | 'signed_in';

export interface SignInModel {
  state: SignInState;
  /** The IdP as the user knows it: its host (`acme.okta.com`). */
  idpHost?: string;
  idpIssuer?: string;
  title: string;
  message: string;
  /** The one button; absent while waiting or when there is nothing to click. */
  button?: string;
  user?: string;
  error?: ErrorInfo;
  /** While waiting: the IdP link, in case no browser opened (Lanyard on a server, in WSL, over SSH). */
  link?: string;
}

export function idpHostOf(issuer: string): string {
  try {
    return new URL(issuer).host;
  } catch {
    return issuer;
  }
}

export function userLabel(user: { email?: string | undefined; name?: string | undefined; sub: string }): string {
  return user.email ?? user.name ?? user.sub;
}

/** `waiting` is true from the click until signIn() settles (the broker's own `signing_in` also counts). */
export function signInModel(status: Pick<Status, 'session' | 'idp'>, waiting: boolean): SignInModel {
  const session = status.session;
  if (session.status === 'not_configured' || status.idp === undefined) {
    return {
      state: 'not_configured',
      title: 'Set up your identity provider',
      message:
        'Lanyard signs you in through your company’s identity provider. Enter its issuer URL and client ID in Settings — or ask your IT team for a managed configuration.',
      button: 'Open Settings',
    };
  }
  const idpHost = idpHostOf(status.idp.issuer);
  const base = { idpHost, idpIssuer: issuerLabel(status.idp.issuer) };
  if (session.status === 'signing_in' && session.device) {
    // Device authorization (started with `lanyard login --device`): the code to enter, and where.
    return {
      ...base,
      state: 'waiting',
      title: 'Enter the code to sign in',
      message: `Open ${session.device.verificationUri} on any device and enter ${session.device.userCode}. This page updates by itself.`,
    };
  }
  if (waiting || session.status === 'signing_in') {
    return {
      ...base,
      state: 'waiting',
      title: 'Waiting for your browser…',
      message: `Finish signing in to ${idpHost} in the browser window that just opened. This page updates by itself.`,
      ...(session.status === 'signing_in' && session.authorizeUrl ? { link: session.authorizeUrl } : {}),
    };
  }
  switch (session.status) {
    case 'expired':
      return {
        ...base,
        state: 'expired',
        title: 'Your sign-in has expired',
        message: `${idpHost} no longer accepts this session, so no server can get new tokens. Sign in again to continue where you left off.`,
        button: 'Sign in again',
        user: userLabel(session.user),
        error: session.error,
      };
    case 'signed_in':
      return { ...base, state: 'signed_in', title: 'Signed in', message: `Signed in with ${idpHost}.`, user: userLabel(session.user) };
    default:
      return {
        ...base,
        state: 'signed_out',
        title: 'Sign in to Lanyard',
        message:
          'Sign in once with your company account. Every IDE on this machine then reaches every MCP server your company allows — no API keys, no per-server consent.',
        button: `Sign in with ${idpHost}`,
      };
  }
}
