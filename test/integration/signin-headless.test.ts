/**
 * Sign-in where the broker has no browser, against the real sandbox IdP (oidc-provider): the redirect address pasted
 * back from a browser on another machine, and device authorization (RFC 8628), each ending in the same session as the
 * browser sign-in (refresh token stored, ID token good for the ID-JAG exchange) — and the bad inputs of both.
 * The sessions here live in an in-memory store; the CLI test (cli-signin-headless.test.ts) covers the keychain.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanyardError } from '../../electron/broker/errors';
import { IdentitySession } from '../../electron/broker/identity/identity-session';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { IDP_SECRET_KEYS } from '../../electron/broker/identity/idp-client';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { approveDeviceCode } from '../helpers/device-login';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';

const failure = async (p: Promise<unknown>): Promise<LanyardError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof LanyardError)) throw new Error(`expected a LanyardError, got ${String(e)}`);
  return e;
};

/** The error as the user and the logs see it: nothing of the pasted code or the state may be in there. */
const shown = (e: LanyardError) => `${e.message} ${e.fix} ${JSON.stringify(e.toInfo())}`;

describe('sign-in without a browser on this machine', () => {
  let sandbox: Sandbox;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600, deviceCodeTtlSeconds: 60 } });
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await sandbox?.stop();
  });

  async function engine(): Promise<EngineHarness> {
    const { home, cleanup } = await tempHome();
    const e = await createEngine(sandbox, { home, secrets: new MemorySecretStore() });
    cleanups.push(cleanup);
    return e;
  }

  /** The link of a paste attempt, and where the browser on the other machine ends after signing in (not requested). */
  async function pasteAttempt(e: EngineHarness, username = 'alice'): Promise<{ authorizeUrl: string; redirect: string }> {
    const prompt = await e.identity.beginSignIn({ mode: 'paste' });
    if (prompt.mode === 'device') throw new Error('expected a link');
    return { authorizeUrl: prompt.authorizeUrl, redirect: await sandbox.idp.completeLogin(prompt.authorizeUrl, username) };
  }

  it('paste-back: no browser is opened; the pasted redirect signs in, with a refresh token, and the ID token gets an ID-JAG', async () => {
    const e = await engine();
    const { authorizeUrl, redirect } = await pasteAttempt(e);
    expect(e.opened).toEqual([]);
    expect(e.identity.state).toMatchObject({ status: 'signing_in', mode: 'paste', authorizeUrl });
    expect(new URL(redirect).searchParams.get('code')).toBeTruthy();
    const user = await e.identity.submitRedirect(`  ${redirect}\n`);
    expect(user).toMatchObject({ email: 'alice@example.com' });
    expect(e.identity.state.status).toBe('signed_in');
    expect(JSON.parse((await e.secrets.get(IDP_SECRET_KEYS.session))!)).toMatchObject({ refreshToken: expect.any(String) });
    // The same session as a browser sign-in: leg 1 and leg 2 of cross-app access work with it.
    expect(await e.tokens.getToken('todo')).toMatchObject({ accessToken: expect.any(String) });
    // A forced refresh works too (the refresh token is real).
    expect(await e.identity.getIdToken({ forceRefresh: true })).toEqual(expect.any(String));
  });

  it('paste-back with just the code=…&state=… part of the address', async () => {
    const e = await engine();
    const { redirect } = await pasteAttempt(e);
    const url = new URL(redirect);
    const bare = `code=${url.searchParams.get('code')}&state=${url.searchParams.get('state')}`;
    await expect(e.identity.submitRedirect(bare)).resolves.toMatchObject({ email: 'alice@example.com' });
  });

  it('garbage, the sign-in link itself, another attempt’s address and another issuer are refused, and the attempt stays open', async () => {
    const e = await engine();
    const { authorizeUrl, redirect } = await pasteAttempt(e);
    const code = new URL(redirect).searchParams.get('code')!;

    const garbage = await failure(e.identity.submitRedirect('hello there'));
    expect(garbage.message).toMatch(/not the address the browser ended on/);
    expect(await failure(e.identity.submitRedirect(authorizeUrl))).toMatchObject({
      message: expect.stringMatching(/the sign-in link itself/),
    });

    const otherState = new URL(redirect);
    otherState.searchParams.set('state', 'an-older-attempt');
    const wrongState = await failure(e.identity.submitRedirect(otherState.href));
    expect(wrongState.message).toMatch(/another sign-in attempt/);
    expect(shown(wrongState)).not.toContain(code);

    const otherIssuer = new URL(redirect);
    otherIssuer.searchParams.set('iss', 'https://evil.example.com');
    expect((await failure(e.identity.submitRedirect(otherIssuer.href))).message).toMatch(/another identity provider/);

    // None of that touched the attempt: the right paste still signs in.
    expect(e.identity.state.status).toBe('signing_in');
    await expect(e.identity.submitRedirect(redirect)).resolves.toMatchObject({ email: 'alice@example.com' });
  });

  it('a code the IdP refuses (mistyped, expired) leaves the attempt open; the same link gives a new code that works', async () => {
    const e = await engine();
    const { authorizeUrl, redirect } = await pasteAttempt(e);
    const mistyped = new URL(redirect);
    mistyped.searchParams.set('code', `${mistyped.searchParams.get('code')!.slice(0, -4)}xxxx`);
    const refused = await failure(e.identity.submitRedirect(mistyped.href));
    expect(refused.message).toMatch(/did not accept that sign-in code \(invalid_grant\)/);
    expect(refused.fix).toMatch(/Open the same sign-in link again/);
    expect(shown(refused)).not.toContain(mistyped.searchParams.get('code'));
    // The browser on the other machine opens the link again; the IdP's session makes it one step.
    const again = await sandbox.idp.completeLogin(authorizeUrl, 'alice');
    await expect(e.identity.submitRedirect(again)).resolves.toMatchObject({ email: 'alice@example.com' });
  });

  it('a replayed address (a code works once) and a paste with no sign-in waiting are refused clearly', async () => {
    const e = await engine();
    const first = await pasteAttempt(e);
    await e.identity.submitRedirect(first.redirect);
    expect((await failure(e.identity.submitRedirect(first.redirect))).message).toMatch(/No sign-in is waiting/);
    // A new attempt: the old address is a replay, named as such; the new attempt goes on.
    await pasteAttempt(e);
    const replay = await failure(e.identity.submitRedirect(first.redirect));
    expect(replay.message).toMatch(/already finished; a sign-in code works only once/);
    expect(e.identity.state.status).toBe('signing_in');
  });

  it('an error redirect (access_denied) ends the attempt with the IdP’s answer and its fix; the session is unchanged', async () => {
    const e = await engine();
    const { authorizeUrl } = await pasteAttempt(e);
    const sent = new URL(authorizeUrl).searchParams;
    const denied = new URL(sent.get('redirect_uri')!);
    denied.search = new URLSearchParams({
      error: 'access_denied',
      error_description: 'User is not assigned to the client application.',
      state: sent.get('state')!,
      iss: sandbox.idp.issuer,
    }).toString();
    const error = await failure(e.identity.submitRedirect(denied.href));
    expect(error.message).toMatch(/refused the sign-in \(access_denied: User is not assigned/);
    expect(error.fix).toMatch(/assign you to the Lanyard app/);
    await expect(e.identity.waitForSignIn()).rejects.toThrow(/No sign-in is waiting/);
    expect(e.identity.state.status).toBe('signed_out');
  });

  it('device authorization: the code approved at the IdP’s /activate page signs in, with a refresh token and an ID-JAG', async () => {
    const e = await engine();
    const prompt = await e.identity.beginSignIn({ mode: 'device' });
    if (prompt.mode !== 'device') throw new Error('expected a device prompt');
    expect(prompt.device).toMatchObject({
      verificationUri: `${new URL(sandbox.idp.issuer).origin}/activate`,
      userCode: expect.any(String),
    });
    expect(e.identity.state).toMatchObject({ status: 'signing_in', mode: 'device', device: { userCode: prompt.device.userCode } });
    expect(JSON.stringify(e.identity.state)).not.toMatch(/device_code/);
    expect(await approveDeviceCode(prompt.device.verificationUri, prompt.device.userCode)).toMatch(/Lanyard is signed in/);
    await expect(e.identity.waitForSignIn()).resolves.toMatchObject({ email: 'alice@example.com' });
    expect(JSON.parse((await e.secrets.get(IDP_SECRET_KEYS.session))!)).toMatchObject({ refreshToken: expect.any(String) });
    expect(await e.tokens.getToken('todo')).toMatchObject({ accessToken: expect.any(String) });
    expect(await e.identity.getIdToken({ forceRefresh: true })).toEqual(expect.any(String));
  }, 30_000);

  it('device authorization denied at the IdP: a clear error, signed out', async () => {
    const e = await engine();
    const prompt = await e.identity.beginSignIn({ mode: 'device' });
    if (prompt.mode !== 'device') throw new Error('expected a device prompt');
    const done = e.identity.waitForSignIn();
    await approveDeviceCode(prompt.device.verificationUri, prompt.device.userCode, { deny: true });
    const error = await failure(done);
    expect(error.message).toMatch(/device sign-in was denied/);
    expect(e.identity.state.status).toBe('signed_out');
  }, 30_000);

  it('an expired device code ends the attempt with the fix; an IdP without the endpoint names --no-browser', async () => {
    const short = await startSandbox({ idp: { deviceCodeTtlSeconds: 2 } });
    const none = await startSandbox({ idp: { deviceFlow: false } });
    try {
      for (const s of [short, none]) {
        const { home, cleanup } = await tempHome();
        cleanups.push(cleanup);
        const e = await createEngine(s, { home, secrets: new MemorySecretStore() });
        const started = Date.now();
        const error = await failure(e.identity.beginSignIn({ mode: 'device' }).then(() => e.identity.waitForSignIn()));
        if (s === short) {
          expect(error.message).toMatch(/device code expired/);
          expect(error.fix).toMatch(/lanyard login --device/);
          expect(Date.now() - started).toBeLessThan(5_000);
        } else {
          expect(error.message).toMatch(/does not offer device sign-in/);
          expect(error.fix).toMatch(/lanyard login --no-browser/);
        }
        expect(e.identity.state.status).toBe('signed_out');
      }
    } finally {
      await short.stop();
      await none.stop();
    }
  }, 30_000);
});

describe('device authorization against an IdP that answers slow_down to every poll', () => {
  it('backs off as told (no storm of polls) and ends when the code expires', async () => {
    let polls = 0;
    const server = http.createServer((req, res) => {
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      req.resume();
      if (req.url === '/.well-known/openid-configuration')
        return json(200, {
          issuer: origin,
          authorization_endpoint: `${origin}/authorize`,
          token_endpoint: `${origin}/token`,
          device_authorization_endpoint: `${origin}/device`,
          response_types_supported: ['code'],
        });
      if (req.url === '/device')
        return json(200, {
          device_code: 'dc-secret-value-1234',
          user_code: 'WDJB-MJHT',
          verification_uri: `${origin}/activate`,
          expires_in: 4,
          interval: 1,
        });
      if (req.url === '/token') {
        polls++;
        return json(400, { error: 'slow_down' });
      }
      json(404, {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const identity = new IdentitySession({
        settings: { issuer, clientId: 'lanyard', clientAuth: { method: 'none' }, scopes: ['openid', 'offline_access'] },
        secrets: new MemorySecretStore(),
        openUrl: () => {},
      });
      await identity.beginSignIn({ mode: 'device' });
      const error = await failure(identity.waitForSignIn());
      expect(error.message).toMatch(/device code expired/);
      expect(shown(error)).not.toContain('dc-secret-value-1234');
      // First poll after 1 s, then the interval grows by 5 s per slow_down (RFC 8628 §3.5): one poll before expiry.
      expect(polls).toBe(1);
    } finally {
      server.close();
    }
  }, 15_000);
});
