/**
 * The sandbox IdP over real HTTP: discovery in both Okta shapes, sign-in (auth code + PKCE) with each client
 * authentication method, refresh with rotation, revocation, the ID-JAG token exchange and its rejections, faults and
 * the sign-in page. The client side is openid-client (Lanyard's chosen library) or plain fetch where the exact wire
 * format is the point; no Lanyard code is involved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidcClient from 'openid-client';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose';
import type { CryptoKey } from 'jose';
import { randomUUID } from 'node:crypto';
import { ID_JAG_TOKEN_TYPE, ID_TOKEN_TOKEN_TYPE, SANDBOX_USERS, TOKEN_EXCHANGE_GRANT, startIdp } from '../fixtures/sandbox/idp';
import type { ClientAuthMethod, IdpOptions, PolicyRule, SandboxIdp } from '../fixtures/sandbox/idp';

const AS_LINEAR = 'https://as.linear.example';
const AS_ASANA = 'https://auth.asana.example';
const POLICY: PolicyRule[] = [
  {
    user: 'alice',
    audience: AS_LINEAR,
    resource: 'https://mcp.linear.example/mcp',
    scopes: ['read', 'write'],
    clientIdAtAs: 'lanyard-at-linear',
  },
  {
    user: 'alice',
    audience: AS_LINEAR,
    resource: 'https://mcp.linear.example/admin',
    scopes: ['admin'],
    clientIdAtAs: 'lanyard-at-linear',
  },
  { user: 'alice', audience: AS_ASANA, resource: 'https://mcp.asana.example/mcp', scopes: ['tasks:read'], clientIdAtAs: 'asana-client-7' },
];
const policy = () => POLICY.map((r) => ({ ...r, scopes: [...r.scopes] }));

const started: SandboxIdp[] = [];
async function idpFor(opts: IdpOptions = {}): Promise<SandboxIdp> {
  const idp = await startIdp({ policy: policy(), ...opts });
  started.push(idp);
  return idp;
}
afterAll(async () => {
  await Promise.all(started.map((idp) => idp.stop()));
});

// ---- client side helpers -------------------------------------------------------------------------------------

async function clientAuthFor(idp: SandboxIdp): Promise<oidcClient.ClientAuth> {
  switch (idp.client.authMethod) {
    case 'none':
      return oidcClient.None();
    case 'client_secret_basic':
      return oidcClient.ClientSecretBasic(idp.client.clientSecret);
    case 'client_secret_post':
      return oidcClient.ClientSecretPost(idp.client.clientSecret);
    case 'private_key_jwt': {
      const jwk = idp.client.privateJwk;
      if (!jwk?.kid) throw new Error('no private JWK');
      return oidcClient.PrivateKeyJwt({ key: (await importJWK(jwk, 'RS256')) as CryptoKey, kid: jwk.kid });
    }
  }
}

async function configFor(idp: SandboxIdp, auth?: oidcClient.ClientAuth): Promise<oidcClient.Configuration> {
  return oidcClient.discovery(new URL(idp.issuer), idp.client.clientId, undefined, auth ?? (await clientAuthFor(idp)), {
    execute: [oidcClient.allowInsecureRequests],
  });
}

/** Any loopback port: the client registered http://127.0.0.1/callback (RFC 8252 §7.3). */
const callbackOn = (port: number) => `http://127.0.0.1:${port}/callback`;
const randomPort = () => 20_000 + Math.floor(Math.random() * 40_000);

async function authorizeUrl(config: oidcClient.Configuration, extra: Record<string, string> = {}) {
  const verifier = oidcClient.randomPKCECodeVerifier();
  const state = oidcClient.randomState();
  const nonce = oidcClient.randomNonce();
  const redirectUri = callbackOn(randomPort());
  const url = oidcClient.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce, redirectUri };
}

async function signIn(idp: SandboxIdp, config: oidcClient.Configuration, username = 'alice') {
  const req = await authorizeUrl(config);
  const callback = new URL(await idp.completeLogin(req.url.href, username));
  const tokens = await oidcClient.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: req.verifier,
    expectedState: req.state,
    expectedNonce: req.nonce,
    idTokenExpected: true,
  });
  return { req, callback, tokens };
}

/** The token endpoint with hand-made client auth, so the exact status, headers and JSON can be asserted. */
async function postToken(idp: SandboxIdp, form: Record<string, string>, auth: { secret?: string; assertion?: string | null } = {}) {
  const body = new URLSearchParams(form);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const { clientId, authMethod, clientSecret } = idp.client;
  switch (authMethod) {
    case 'none':
      body.set('client_id', clientId);
      break;
    case 'client_secret_post':
      body.set('client_id', clientId);
      body.set('client_secret', auth.secret ?? clientSecret ?? '');
      break;
    case 'client_secret_basic':
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(auth.secret ?? clientSecret ?? '')}`).toString('base64')}`;
      break;
    case 'private_key_jwt': {
      body.set('client_id', clientId);
      const assertion = auth.assertion === undefined ? await clientAssertion(idp) : auth.assertion;
      if (assertion !== null) {
        body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
        body.set('client_assertion', assertion);
      }
      break;
    }
  }
  const res = await fetch(idp.tokenEndpoint, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** An Okta-style client assertion: iss = sub = client id, aud = token endpoint, single-use jti. */
async function clientAssertion(idp: SandboxIdp, key?: CryptoKey, kid?: string): Promise<string> {
  const jwk = idp.client.privateJwk;
  if (!jwk) throw new Error('no private JWK');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: kid ?? jwk.kid ?? '' })
    .setIssuer(idp.client.clientId)
    .setSubject(idp.client.clientId)
    .setAudience(idp.tokenEndpoint)
    .setIssuedAt()
    .setExpirationTime('2m')
    .setJti(randomUUID())
    .sign(key ?? ((await importJWK(jwk, 'RS256')) as CryptoKey));
}

const exchangeForm = (subjectToken: string, extra: Record<string, string> = {}): Record<string, string> => ({
  grant_type: TOKEN_EXCHANGE_GRANT,
  requested_token_type: ID_JAG_TOKEN_TYPE,
  subject_token: subjectToken,
  subject_token_type: ID_TOKEN_TOKEN_TYPE,
  audience: AS_LINEAR,
  resource: 'https://mcp.linear.example/mcp',
  ...extra,
});

async function expectOAuthError(promise: Promise<unknown>, error: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${error}`).toBeInstanceOf(oidcClient.ResponseBodyError);
  expect((err as oidcClient.ResponseBodyError).error).toBe(error);
}

// ---- 1. discovery --------------------------------------------------------------------------------------------

describe('discovery', () => {
  it('okta-org: root issuer, endpoints under /oauth2/v1, the same metadata at both well-known URLs', async () => {
    const idp = await idpFor();
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const oidcMeta = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    const oauthMeta = (await (await fetch(`${idp.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(oauthMeta).toEqual(oidcMeta);
    expect(oidcMeta.issuer).toBe(idp.issuer);
    for (const [name, path] of [
      ['authorization_endpoint', 'authorize'],
      ['token_endpoint', 'token'],
      ['jwks_uri', 'keys'],
      ['revocation_endpoint', 'revoke'],
      ['userinfo_endpoint', 'userinfo'],
      ['end_session_endpoint', 'logout'],
    ]) {
      expect(oidcMeta[name as string]).toBe(`${idp.issuer}/oauth2/v1/${path}`);
    }
    expect(idp.tokenEndpoint).toBe(oidcMeta.token_endpoint);
    expect(idp.authorizationEndpoint).toBe(oidcMeta.authorization_endpoint);
    expect(idp.jwksUri).toBe(oidcMeta.jwks_uri);
    expect(idp.revocationEndpoint).toBe(oidcMeta.revocation_endpoint);
    expect(oidcMeta.identity_chaining_requested_token_types_supported).toEqual([ID_JAG_TOKEN_TYPE]);
    expect(oidcMeta.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', TOKEN_EXCHANGE_GRANT]));
    expect(oidcMeta.code_challenge_methods_supported).toEqual(['S256']);
    expect(oidcMeta.authorization_response_iss_parameter_supported).toBe(true);
    expect(oidcMeta.scopes_supported).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'offline_access']));

    const config = await configFor(idp);
    expect(config.serverMetadata().issuer).toBe(idp.issuer);
  });

  it('path-issuer: /oauth2/default issuer, OIDC path-appended discovery, and nothing at the root', async () => {
    const idp = await idpFor({ shape: 'path-issuer' });
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth2\/default$/);
    expect(idp.discoveryUrl).toBe(`${idp.issuer}/.well-known/openid-configuration`);
    const meta = (await (await fetch(idp.discoveryUrl)).json()) as Record<string, unknown>;
    expect(meta.issuer).toBe(idp.issuer);
    expect(meta.token_endpoint).toBe(`${idp.issuer}/v1/token`);
    expect(meta.jwks_uri).toBe(`${idp.issuer}/v1/keys`);
    expect(meta.identity_chaining_requested_token_types_supported).toEqual([ID_JAG_TOKEN_TYPE]);
    // RFC 8414 path insertion serves the same document.
    const origin = new URL(idp.issuer).origin;
    const inserted = (await (await fetch(`${origin}/.well-known/oauth-authorization-server/oauth2/default`)).json()) as Record<
      string,
      unknown
    >;
    expect(inserted).toEqual(meta);
    expect((await fetch(`${origin}/.well-known/openid-configuration`)).status).toBe(404);

    const config = await configFor(idp);
    expect(config.serverMetadata().issuer).toBe(idp.issuer);
    // The JWKS is served under the prefix too.
    const jwks = (await (await fetch(idp.jwksUri)).json()) as { keys: { kid: string; d?: string }[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]?.d).toBeUndefined();
  });
});

// ---- 2. sign-in ------------------------------------------------------------------------------------------------

describe('sign-in (authorization code + PKCE)', () => {
  it.each<ClientAuthMethod>(['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'])(
    'with client auth %s: callback carries code, state, iss; the code yields a valid ID token and a refresh token',
    async (clientAuth) => {
      const idp = await idpFor({ clientAuth });
      expect(idp.client.authMethod).toBe(clientAuth);
      if (clientAuth.startsWith('client_secret')) expect(idp.client.clientSecret).toMatch(/^[\w-]{40,}$/);
      if (clientAuth === 'private_key_jwt')
        expect(idp.client.privateJwk).toMatchObject({ kty: 'RSA', alg: 'RS256', kid: expect.any(String), d: expect.any(String) });
      const config = await configFor(idp);
      const { req, callback, tokens } = await signIn(idp, config);

      expect(callback.origin + callback.pathname).toBe(req.redirectUri);
      expect(callback.searchParams.get('code')).toBeTruthy();
      expect(callback.searchParams.get('state')).toBe(req.state);
      expect(callback.searchParams.get('iss')).toBe(idp.issuer);

      expect(tokens.refresh_token).toBeTruthy();
      expect(tokens.scope?.split(' ').sort()).toEqual(['email', 'offline_access', 'openid', 'profile']);
      const { payload, protectedHeader } = await jwtVerify(tokens.id_token ?? '', createRemoteJWKSet(new URL(idp.jwksUri)), {
        issuer: idp.issuer,
        audience: idp.client.clientId,
      });
      expect(protectedHeader.alg).toBe('RS256');
      expect(payload).toMatchObject({ sub: '00u-alice', nonce: req.nonce, email: 'alice@example.com', name: 'Alice Example' });
      expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
      expect(idp.counters.logins).toBe(1);
    },
  );

  it('works on the path issuer and for bob; the ID token lifetime is configurable', async () => {
    const idp = await idpFor({ shape: 'path-issuer', idTokenTtlSeconds: 600 });
    const { tokens, callback } = await signIn(idp, await configFor(idp), 'bob');
    expect(callback.searchParams.get('iss')).toBe(idp.issuer);
    expect(tokens.refresh_token).toBeTruthy();
    const claims = tokens.claims();
    expect(claims?.sub).toBe('00u-bob');
    expect(claims?.iss).toBe(idp.issuer);
    expect((claims?.exp ?? 0) - (claims?.iat ?? 0)).toBe(600);
  });

  it('requires PKCE S256 (the error goes back to the app), and refuses a non-loopback redirect', async () => {
    const idp = await idpFor();
    const config = await configFor(idp);
    const noPkce = new URL(idp.authorizationEndpoint);
    noPkce.search = new URLSearchParams({
      client_id: idp.client.clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: callbackOn(randomPort()),
      state: 's1',
    }).toString();
    const denied = new URL(await idp.completeLogin(noPkce.href));
    expect(denied.searchParams.get('error')).toBe('invalid_request');
    expect(denied.searchParams.get('state')).toBe('s1');

    const plain = await authorizeUrl(config, { code_challenge_method: 'plain', code_challenge: 'a'.repeat(43) });
    expect(new URL(await idp.completeLogin(plain.url.href)).searchParams.get('error')).toBe('invalid_request');

    const foreign = await authorizeUrl(config, { redirect_uri: 'http://evil.example/callback' });
    await expect(idp.completeLogin(foreign.url.href)).rejects.toThrow(/redirect_uri/);
    expect(idp.counters.logins).toBe(0);
  });

  it('a second sign-in in the same browser session is silent (SSO), prompt=none included, and still yields a refresh token', async () => {
    const idp = await idpFor();
    const config = await configFor(idp);
    // A browser: one cookie jar across sign-ins (paths ignored; the flows here are sequential).
    const jar = new Map<string, string>();
    async function browse(start: URL, creds?: { username: string; password: string }): Promise<URL> {
      let url = start;
      let init: RequestInit = {};
      for (let hop = 0; hop < 10; hop++) {
        const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
        const res = await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), cookie }, redirect: 'manual' });
        for (const line of res.headers.getSetCookie()) {
          const [pair = ''] = line.split(';');
          const eq = pair.indexOf('=');
          if (pair.slice(eq + 1)) jar.set(pair.slice(0, eq), pair.slice(eq + 1));
          else jar.delete(pair.slice(0, eq));
        }
        if (res.status === 303) {
          const next = new URL(res.headers.get('location') ?? '', url);
          if (next.origin !== url.origin) return next;
          url = next;
          init = {};
          continue;
        }
        const html = await res.text();
        if (!creds) throw new Error(`expected no page, got ${res.status}`);
        url = new URL(/action="([^"]+)"/.exec(html)?.[1] ?? '', url);
        init = {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(creds).toString(),
        };
      }
      throw new Error('too many hops');
    }
    const alice = SANDBOX_USERS[0] ?? { username: '', password: '' };
    const first = await authorizeUrl(config);
    expect((await browse(first.url, alice)).searchParams.get('code')).toBeTruthy();

    const second = await authorizeUrl(config);
    const silent = await browse(second.url); // throws if a page is shown
    const tokens = await oidcClient.authorizationCodeGrant(config, silent, {
      pkceCodeVerifier: second.verifier,
      expectedState: second.state,
      expectedNonce: second.nonce,
    });
    expect(tokens.refresh_token).toBeTruthy();

    const none = await authorizeUrl(config, { prompt: 'none', scope: 'openid' });
    expect((await browse(none.url)).searchParams.get('code')).toBeTruthy();
  });

  it('completeLogin reports a wrong password', async () => {
    const idp = await idpFor();
    const req = await authorizeUrl(await configFor(idp));
    await expect(idp.completeLogin(req.url.href, 'alice', { password: 'wrong' })).rejects.toThrow(/Incorrect username or password/);
  });
});

// ---- 3. refresh and revocation ---------------------------------------------------------------------------------

describe('refresh and revocation', () => {
  it('refresh with scope "openid offline_access" returns a new ID token and rotates the refresh token; reuse fails', async () => {
    const idp = await idpFor();
    const config = await configFor(idp);
    const { tokens } = await signIn(idp, config);
    const first = tokens.refresh_token ?? '';

    const refreshed = await oidcClient.refreshTokenGrant(config, first, { scope: 'openid offline_access' });
    expect(refreshed.id_token).toBeTruthy();
    expect(refreshed.id_token).not.toBe(tokens.id_token);
    expect(refreshed.claims()?.sub).toBe('00u-alice');
    expect(refreshed.claims()?.aud).toBe(idp.client.clientId);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(first);
    expect(idp.counters.refreshes).toBe(1);

    // Reusing a rotated refresh token is refused (and, as at Okta, kills the chain).
    await expectOAuthError(oidcClient.refreshTokenGrant(config, first, { scope: 'openid offline_access' }), 'invalid_grant');
    expect(idp.counters.refreshes).toBe(1);
  });

  it('without rotation the same refresh token keeps working', async () => {
    const idp = await idpFor({ rotateRefreshTokens: false });
    const config = await configFor(idp);
    const { tokens } = await signIn(idp, config);
    const rt = tokens.refresh_token ?? '';
    const a = await oidcClient.refreshTokenGrant(config, rt, { scope: 'openid offline_access' });
    const b = await oidcClient.refreshTokenGrant(config, rt, { scope: 'openid offline_access' });
    expect(a.refresh_token ?? rt).toBe(rt);
    expect(b.id_token).toBeTruthy();
  });

  it('revokeRefreshTokens(user) makes that user’s refresh fail with invalid_grant, and only theirs', async () => {
    const idp = await idpFor();
    const config = await configFor(idp);
    const alice = await signIn(idp, config, 'alice');
    const bob = await signIn(idp, config, 'bob');
    await idp.revokeRefreshTokens('alice');
    await expectOAuthError(oidcClient.refreshTokenGrant(config, alice.tokens.refresh_token ?? ''), 'invalid_grant');
    const bobRefreshed = await oidcClient.refreshTokenGrant(config, bob.tokens.refresh_token ?? '', { scope: 'openid offline_access' });
    expect(bobRefreshed.claims()?.sub).toBe('00u-bob');

    await idp.revokeRefreshTokens();
    await expectOAuthError(oidcClient.refreshTokenGrant(config, bobRefreshed.refresh_token ?? ''), 'invalid_grant');
  });

  it('the revocation endpoint revokes a refresh token (client auth applies)', async () => {
    const idp = await idpFor({ clientAuth: 'private_key_jwt' });
    const config = await configFor(idp);
    const { tokens } = await signIn(idp, config);
    await oidcClient.tokenRevocation(config, tokens.refresh_token ?? '', { token_type_hint: 'refresh_token' });
    expect(idp.counters.revocations).toBe(1);
    await expectOAuthError(oidcClient.refreshTokenGrant(config, tokens.refresh_token ?? ''), 'invalid_grant');
  });
});

// ---- 4. token exchange -----------------------------------------------------------------------------------------

describe('token exchange (ID token → ID-JAG)', () => {
  let idp: SandboxIdp; // client_secret_post
  let idToken: string;

  beforeAll(async () => {
    idp = await idpFor({ clientAuth: 'client_secret_post' });
    idToken = (await signIn(idp, await configFor(idp))).tokens.id_token ?? '';
  });

  it('issues a signed ID-JAG shaped as SPEC.md says', async () => {
    const res = await postToken(idp, exchangeForm(idToken));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.json).toEqual({
      issued_token_type: ID_JAG_TOKEN_TYPE,
      access_token: expect.any(String),
      token_type: 'N_A',
      expires_in: 300,
      scope: 'read write',
    });
    const jag = res.json.access_token as string;
    const header = decodeProtectedHeader(jag);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'oauth-id-jag+jwt', kid: expect.any(String) });
    // A resource AS verifies it against the IdP's published JWKS.
    const { payload } = await jwtVerify(jag, createRemoteJWKSet(new URL(idp.jwksUri)), {
      issuer: idp.issuer,
      audience: AS_LINEAR,
      typ: 'oauth-id-jag+jwt',
    });
    expect(payload).toMatchObject({
      iss: idp.issuer,
      sub: '00u-alice',
      aud: AS_LINEAR,
      client_id: 'lanyard-at-linear',
      resource: 'https://mcp.linear.example/mcp',
      scope: 'read write',
      email: 'alice@example.com',
      jti: expect.any(String),
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(300);
    const again = await postToken(idp, exchangeForm(idToken));
    expect(decodeJwt(again.json.access_token as string).jti).not.toBe(payload.jti);
  });

  it('without resource, the audience alone selects the first rule; scope narrows to what the policy allows', async () => {
    const noResource = exchangeForm(idToken, { audience: AS_ASANA });
    delete noResource.resource;
    const a = await postToken(idp, noResource);
    expect(a.status).toBe(200);
    expect(decodeJwt(a.json.access_token as string)).toMatchObject({
      resource: 'https://mcp.asana.example/mcp',
      client_id: 'asana-client-7',
      scope: 'tasks:read',
    });

    const narrowed = await postToken(idp, exchangeForm(idToken, { scope: 'read admin delete' }));
    expect(narrowed.status).toBe(200);
    expect(narrowed.json.scope).toBe('read');
    expect(decodeJwt(narrowed.json.access_token as string).scope).toBe('read');

    const second = await postToken(idp, exchangeForm(idToken, { resource: 'https://mcp.linear.example/admin', scope: 'admin' }));
    expect(decodeJwt(second.json.access_token as string)).toMatchObject({ resource: 'https://mcp.linear.example/admin', scope: 'admin' });
  });

  it('rejects a disallowed scope with invalid_scope', async () => {
    const res = await postToken(idp, exchangeForm(idToken, { scope: 'delete' }));
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_scope');
    expect(res.json.error_description).toMatch(/delete/);
  });

  it('rejects audience/resource pairs outside the policy with invalid_target; policy edits apply at once', async () => {
    const unknownAs = await postToken(idp, exchangeForm(idToken, { audience: 'https://as.unknown.example' }));
    expect(unknownAs.status).toBe(400);
    expect(unknownAs.json).toMatchObject({ error: 'invalid_target', error_description: expect.stringMatching(/Resource mismatch/) });

    const wrongResource = await postToken(idp, exchangeForm(idToken, { resource: 'https://mcp.asana.example/mcp' }));
    expect(wrongResource.json.error).toBe('invalid_target');

    const bobToken = await idp.mintIdToken('bob');
    expect((await postToken(idp, exchangeForm(bobToken))).json.error).toBe('invalid_target');

    const removed = idp.policy.splice(0, 1);
    expect((await postToken(idp, exchangeForm(idToken))).json.error).toBe('invalid_target');
    idp.policy.unshift(...removed);
    expect((await postToken(idp, exchangeForm(idToken))).status).toBe(200);
  });

  it('rejects bad subject tokens with invalid_grant: expired, foreign key, other issuer, other client, an ID-JAG, garbage', async () => {
    const expired = await idp.mintIdToken('alice', { ttlSeconds: -30 });
    const { privateKey } = await generateKeyPair('RS256');
    const payload = decodeJwt(idToken);
    const forged = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: 'RS256', kid: decodeProtectedHeader(idToken).kid ?? 'x' })
      .sign(privateKey);
    const other = await idpFor();
    const otherIssuer = await other.mintIdToken('alice');
    const otherClient = await idp.mintIdToken('alice', { audience: 'some-other-app' });
    const jag = (await postToken(idp, exchangeForm(idToken))).json.access_token as string;

    for (const [label, token, description] of [
      ['expired', expired, /expired/],
      ['forged', forged, /signature/],
      ['other issuer', otherIssuer, /signature|iss/],
      ['other client', otherClient, /not issued to this client/],
      ['ID-JAG', jag, /.+/],
      ['garbage', 'not-a-jwt', /malformed|not a valid/],
    ] as const) {
      const res = await postToken(idp, exchangeForm(token));
      expect(res.status, label).toBe(400);
      expect(res.json.error, label).toBe('invalid_grant');
      expect(res.json.error_description, label).toMatch(description);
    }
    // A freshly minted token for the right client does work (the mint itself is sound).
    expect((await postToken(idp, exchangeForm(await idp.mintIdToken('alice')))).status).toBe(200);
  });

  it('rejects unsupported token types and missing parameters with invalid_request', async () => {
    const wrongType = await postToken(
      idp,
      exchangeForm(idToken, { requested_token_type: 'urn:ietf:params:oauth:token-type:access_token' }),
    );
    expect(wrongType.status).toBe(400);
    expect(wrongType.json).toMatchObject({
      error: 'invalid_request',
      error_description: expect.stringMatching(/requested_token_type not supported/),
    });

    const wrongSubjectType = await postToken(idp, exchangeForm(idToken, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }));
    expect(wrongSubjectType.json.error).toBe('invalid_request');

    const noAudience = exchangeForm(idToken);
    delete noAudience.audience;
    expect((await postToken(idp, noAudience)).json).toMatchObject({
      error: 'invalid_request',
      error_description: expect.stringMatching(/audience/),
    });
  });

  it('client_secret_post: a wrong or missing secret is invalid_client (401)', async () => {
    const wrong = await postToken(idp, exchangeForm(idToken), { secret: 'not-the-secret' });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('invalid_client');
    const missing = await postToken(idp, exchangeForm(idToken), { secret: '' });
    expect(missing.status).toBe(401);
    expect(missing.json.error).toBe('invalid_client');
  });

  it('counts exchanges and rejections by error code', () => {
    expect(idp.counters.exchanges).toBeGreaterThanOrEqual(8);
    expect(idp.counters.exchangeRejections).toMatchObject({
      invalid_scope: 1,
      invalid_target: 4,
      invalid_grant: 6,
      invalid_request: 3,
      invalid_client: 2,
    });
  });

  it('private_key_jwt: works through openid-client; no assertion or a foreign key is invalid_client (401)', async () => {
    const pk = await idpFor({ clientAuth: 'private_key_jwt' });
    const config = await configFor(pk);
    const token = (await signIn(pk, config)).tokens.id_token ?? '';
    const form = exchangeForm(token, { scope: 'read' });
    const { grant_type: _grantType, ...params } = form;
    const viaLibrary = await oidcClient.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, params);
    expect(viaLibrary.issued_token_type).toBe(ID_JAG_TOKEN_TYPE);
    expect(decodeJwt(viaLibrary.access_token).client_id).toBe('lanyard-at-linear');

    const none = await postToken(pk, form, { assertion: null });
    expect(none.status).toBe(401);
    expect(none.json.error).toBe('invalid_client');

    const { privateKey } = await generateKeyPair('RS256');
    const foreign = await postToken(pk, form, { assertion: await clientAssertion(pk, privateKey) });
    expect(foreign.status).toBe(401);
    expect(foreign.json.error).toBe('invalid_client');
    expect(pk.counters.exchangeRejections.invalid_client).toBe(2);
    expect(pk.counters.exchanges).toBe(1);
  });

  it('client_secret_basic and none both exchange too', async () => {
    for (const clientAuth of ['client_secret_basic', 'none'] as const) {
      const other = await idpFor({ clientAuth });
      const token = (await signIn(other, await configFor(other))).tokens.id_token ?? '';
      expect((await postToken(other, exchangeForm(token))).status, clientAuth).toBe(200);
      if (clientAuth === 'client_secret_basic') {
        expect((await postToken(other, exchangeForm(token), { secret: 'nope' })).status).toBe(401);
      }
    }
  });

  it('quirks: token_type Bearer and no resource claim, switchable at run time', async () => {
    const quirky = await idpFor({ quirks: { tokenTypeBearer: true, omitResourceClaim: true } });
    const token = await quirky.mintIdToken('alice');
    const res = await postToken(quirky, exchangeForm(token));
    expect(res.json.token_type).toBe('Bearer');
    expect(decodeJwt(res.json.access_token as string)).not.toHaveProperty('resource');

    quirky.quirks.tokenTypeBearer = false;
    quirky.quirks.omitResourceClaim = false;
    const normal = await postToken(quirky, exchangeForm(token));
    expect(normal.json.token_type).toBe('N_A');
    expect(decodeJwt(normal.json.access_token as string).resource).toBe('https://mcp.linear.example/mcp');
  });
});

// ---- 5. faults -------------------------------------------------------------------------------------------------

describe('fault injection', () => {
  it('5xx answers 503 JSON everywhere until cleared', async () => {
    const idp = await idpFor();
    await idp.setFault('5xx');
    const discovery = await fetch(idp.discoveryUrl);
    expect(discovery.status).toBe(503);
    expect(((await discovery.json()) as { error: string }).error).toBe('temporarily_unavailable');
    expect((await postToken(idp, exchangeForm('x'))).status).toBe(503);
    await idp.setFault(null);
    expect((await fetch(idp.discoveryUrl)).status).toBe(200);
  });

  it('down refuses connections, then recovers on the same port', async () => {
    const idp = await idpFor();
    const config = await configFor(idp);
    await idp.setFault('down');
    const err = await fetch(idp.discoveryUrl).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(((err as TypeError).cause as { code?: string }).code).toBe('ECONNREFUSED');
    await idp.setFault(null);
    expect((await fetch(idp.discoveryUrl)).status).toBe(200);
    // Sessions and keys survive: a sign-in against the same issuer still works.
    expect((await signIn(idp, config)).tokens.id_token).toBeTruthy();
  });

  it('stall never answers (the caller’s timeout fires), then recovers', async () => {
    const idp = await idpFor();
    await idp.setFault('stall');
    await expect(fetch(idp.discoveryUrl, { signal: AbortSignal.timeout(200) })).rejects.toThrow(/aborted|timeout/i);
    await idp.setFault(null);
    expect((await fetch(idp.discoveryUrl)).status).toBe(200);
  });
});

// ---- 6. the sign-in page ---------------------------------------------------------------------------------------

describe('sign-in page', () => {
  /** Follows the authorize redirect by hand to the sign-in page, keeping cookies, as a browser would. */
  async function openSignInPage(idp: SandboxIdp) {
    const req = await authorizeUrl(await configFor(idp));
    const cookies = new Map<string, string>();
    const keep = (res: Response) => {
      for (const line of res.headers.getSetCookie()) {
        const [pair = ''] = line.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
    };
    const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const start = await fetch(req.url, { redirect: 'manual' });
    keep(start);
    expect(start.status).toBe(303);
    const pageUrl = new URL(start.headers.get('location') ?? '', idp.issuer);
    const page = await fetch(pageUrl, { headers: { cookie: cookieHeader() } });
    return { req, pageUrl, page, html: await page.text(), cookieHeader, keep };
  }

  it('renders an accessible username/password form', async () => {
    const idp = await idpFor();
    const { page, html } = await openSignInPage(idp);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(html).toContain('<title>Sign in to Sandbox IdP</title>');
    expect(html).toContain('<h1>Sign in to Sandbox IdP</h1>');
    expect(html).toMatch(/<label for="username">/);
    expect(html).toMatch(/<input id="username" name="username"[^>]* autofocus/);
    expect(html).toMatch(/<label for="password">/);
    expect(html).toMatch(/<input id="password" name="password" type="password"/);
    expect(html).toMatch(/<button type="submit">Sign in<\/button>/);
    expect(html).toContain('lang="en"');
  });

  it('a wrong password re-renders the page with an error and keeps the username', async () => {
    const idp = await idpFor();
    const { pageUrl, html, cookieHeader } = await openSignInPage(idp);
    const action = /action="([^"]+)"/.exec(html)?.[1] ?? '';
    const res = await fetch(new URL(action, pageUrl), {
      method: 'POST',
      headers: { cookie: cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'alice', password: 'nope' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(200);
    const again = await res.text();
    expect(again).toMatch(/role="alert">Incorrect username or password\./);
    expect(again).toMatch(/name="username"[^>]*value="alice"/);
    expect(again).toMatch(/id="password"[^>]* autofocus/);
    expect(idp.counters.logins).toBe(0);

    // The right password on the same page then goes through.
    const ok = await fetch(new URL(action, pageUrl), {
      method: 'POST',
      headers: { cookie: cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'alice', password: SANDBOX_USERS[0]?.password ?? '' }),
      redirect: 'manual',
    });
    expect(ok.status).toBe(303);
  });

  it('Cancel ends the sign-in with access_denied at the app', async () => {
    const idp = await idpFor();
    const { pageUrl, html, cookieHeader, keep, req } = await openSignInPage(idp);
    const cancel = /class="cancel" href="([^"]+)"/.exec(html)?.[1] ?? '';
    let res = await fetch(new URL(cancel, pageUrl), { headers: { cookie: cookieHeader() }, redirect: 'manual' });
    keep(res);
    expect(res.status).toBe(303);
    res = await fetch(new URL(res.headers.get('location') ?? '', pageUrl), { headers: { cookie: cookieHeader() }, redirect: 'manual' });
    const back = new URL(res.headers.get('location') ?? '');
    expect(back.origin + back.pathname).toBe(req.redirectUri);
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('state')).toBe(req.state);
  });
});
