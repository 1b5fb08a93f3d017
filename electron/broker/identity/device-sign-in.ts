import * as oidc from 'openid-client';
import type { LanyardError } from '../errors';
import {
  deviceCodeExpiredError,
  deviceDeniedError,
  deviceFlowUnsupportedError,
  signInCancelledError,
  signInError,
} from './identity-errors';

/** What the user is shown for a device sign-in (RFC 8628 §3.3): where to go, the code to enter, until when. */
export interface DevicePrompt {
  verificationUri: string;
  /** The address with the code filled in, when the IdP offers one (RFC 8628 §3.3.1). */
  verificationUriComplete?: string | undefined;
  userCode: string;
  /** Milliseconds since the epoch (local clock) when the code stops working. */
  expiresAt: number;
}

export interface DeviceAuthorization {
  prompt: DevicePrompt;
  /** Resolves with the token response once the user approves; rejects with a LanyardError saying what happened. */
  tokens: Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers>;
}

/**
 * Device authorization (RFC 8628) for a broker on a machine without a browser: the IdP hands out a user code, the user
 * enters it on any device, and Lanyard polls the token endpoint until it is approved, denied or expired. openid-client
 * does the protocol (initiateDeviceAuthorization, pollDeviceAuthorizationGrant: the `interval`, +5 s on every
 * slow_down, authorization_pending, Retry-After on 503); this adds the expiry, cancellation and errors that say what to
 * do. The device_code never leaves this function's closure: not in the prompt, a log or an error.
 */
export async function startDeviceAuthorization(
  config: oidc.Configuration,
  options: { issuer: string; scopes: string[]; now: () => number; signal?: AbortSignal | undefined },
): Promise<DeviceAuthorization> {
  if (!config.serverMetadata().device_authorization_endpoint) throw deviceFlowUnsupportedError(options.issuer);
  let response: oidc.DeviceAuthorizationResponse;
  try {
    response = await oidc.initiateDeviceAuthorization(config, { scope: options.scopes.join(' ') });
  } catch (e) {
    throw signInError(options.issuer, e);
  }
  const lifetimeMs = Math.max(1, response.expires_in) * 1000;
  const prompt: DevicePrompt = {
    verificationUri: response.verification_uri,
    ...(response.verification_uri_complete ? { verificationUriComplete: response.verification_uri_complete } : {}),
    userCode: response.user_code,
    expiresAt: options.now() + lifetimeMs,
  };

  // One signal ends the polling: the code's expiry (wall clock, as the IdP counts it) or the caller's cancel.
  const stop = new AbortController();
  let expired = false;
  const expiry = setTimeout(() => {
    expired = true;
    stop.abort();
  }, lifetimeMs);
  expiry.unref?.();
  const onCancel = () => stop.abort();
  if (options.signal?.aborted) stop.abort();
  options.signal?.addEventListener('abort', onCancel, { once: true });

  const polling = oidc.pollDeviceAuthorizationGrant(config, response, undefined, { signal: stop.signal });
  polling.catch(() => {});
  // openid-client notices an abort only between its waits (up to 5 s): end the attempt the moment it is stopped.
  const stopped = new Promise<never>((_resolve, reject) =>
    stop.signal.addEventListener('abort', () => reject(new Error('device authorization stopped')), { once: true }),
  );
  const tokens = Promise.race([polling, stopped])
    .catch((e: unknown): never => {
      if (expired) throw deviceCodeExpiredError();
      if (stop.signal.aborted) throw signInCancelledError();
      throw deviceError(options.issuer, e);
    })
    .finally(() => {
      clearTimeout(expiry);
      options.signal?.removeEventListener('abort', onCancel);
    });
  tokens.catch(() => {});
  return { prompt, tokens };
}

/** The IdP's final answer to the polling (RFC 8628 §3.5), as the error the user sees. */
function deviceError(issuer: string, e: unknown): LanyardError {
  if (e instanceof oidc.ResponseBodyError) {
    if (e.error === 'expired_token') return deviceCodeExpiredError();
    if (e.error === 'access_denied') return deviceDeniedError();
  }
  return signInError(issuer, e);
}
