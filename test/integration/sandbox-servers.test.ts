/**
 * The sandbox's resource authorization servers and MCP servers, over real HTTP on 127.0.0.1.
 *
 * The real IdP (test/fixtures/sandbox/idp.ts) is exercised by its own tests and by the full-flow tests; here a tiny
 * stand-in serves a JWKS and signs ID-JAGs, so every AS rule can be triggered with exactly one thing wrong.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, InsufficientScopeError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpServer, type SandboxMcpServer } from '../fixtures/sandbox/mcp-servers';
import { startResourceAs, type SandboxResourceAs } from '../fixtures/sandbox/resource-as';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

// ---------- a minimal IdP stand-in: JWKS over HTTP + an ID-JAG signer ----------

interface TestIdp {
  issuer: string;
  jwksUri: string;
  signIdJag(claims?: Record<string, unknown>, opts?: { typ?: string; key?: SigningKey; omit?: string[] }): Promise<string>;
  stop(): Promise<void>;
}

async function startTestIdp(defaults: () => Record<string, unknown>): Promise<TestIdp> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
  const server: Server = createServer((req, res) => {
    if (req.url === '/oauth2/v1/keys') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksUri: `${issuer}/oauth2/v1/keys`,
    async signIdJag(claims = {}, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = { iss: issuer, jti: randomUUID(), iat: now, exp: now + 300, ...defaults(), ...claims };
      for (const k of opts.omit ?? []) delete payload[k];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', kid: 'idp-key-1', typ: opts.typ ?? 'oauth-id-jag+jwt' })
        .sign(opts.key ?? privateKey);
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------- HTTP helpers ----------

interface HttpResult {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function getJson(url: string): Promise<HttpResult> {
  const res = await fetch(url);
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, headers: res.headers, body };
}

async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<HttpResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, headers: res.headers, body };
}

const basic = (id: string, secret: string) => ({
  Authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
});

/** Parses `Bearer k="v", k2="v2"` into its scheme and parameters (RFC 7235 auth-params, quoted strings only). */
function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } {
  expect(header).toBeTruthy();
  const [, scheme, rest] = /^(\S+)\s*(.*)$/.exec(header!)!;
  const params: Record<string, string> = {};
  for (const m of rest!.matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) params[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  return { scheme: scheme!, params };
}

// ---------- fixtures ----------

let idp: TestIdp;
let as: SandboxResourceAs;
let jwtClientKey: SigningKey;
let mcpTodo: SandboxMcpServer;
let mcpDocs: SandboxMcpServer;
let mcpScale: SandboxMcpServer;

const SECRET = 's3cr:et+/ with spaces';

beforeAll(async () => {
  idp = await startTestIdp(() => ({
    sub: 'user-ada',
    aud: as.issuer,
    client_id: 'lanyard-basic',
    scope: 'todo.read todo.write docs.read',
    email: 'ada@example.com',
  }));
  const jwtKeys = await generateKeyPair('ES256');
  jwtClientKey = jwtKeys.privateKey;
  const publicJwk: JWK = { ...(await exportJWK(jwtKeys.publicKey)), alg: 'ES256' };
  as = await startResourceAs({
    name: 'saas-as',
    trustedIdp: { issuer: idp.issuer, jwksUri: idp.jwksUri },
    clients: [
      { clientId: 'lanyard-basic', authMethod: 'client_secret_basic', clientSecret: SECRET },
      { clientId: 'lanyard-post', authMethod: 'client_secret_post', clientSecret: 'post-secret' },
      { clientId: 'lanyard-jwt', authMethod: 'private_key_jwt', publicJwk },
      { clientId: 'lanyard-public', authMethod: 'none' },
    ],
    resources: [],
    scopes: ['todo.read', 'todo.write', 'todo.admin', 'docs.read'],
  });
  mcpTodo = await startMcpServer({
    id: 'todo',
    name: 'Todo',
    as,
    baseScopes: ['todo.read'],
    extraScopeTools: { admin_purge: ['todo.admin'] },
  });
  mcpDocs = await startMcpServer({ id: 'docs', name: 'Docs', as, baseScopes: ['docs.read'] });
  mcpScale = await startMcpServer({ id: 'scale', name: 'Scale', as, baseScopes: [], toolCount: 100 });
  as.resources.push(mcpTodo.url, mcpDocs.url, mcpScale.url);
});

afterAll(async () => {
  await Promise.all([mcpTodo?.stop(), mcpDocs?.stop(), mcpScale?.stop()]);
  await as?.stop();
  await idp?.stop();
});

/** Redeems a fresh ID-JAG for an access token at `as` as the Basic client (the path most tests need). */
async function accessToken(claims: Record<string, unknown> = {}, scope?: string): Promise<string> {
  const assertion = await idp.signIdJag(claims);
  const r = await postForm(
    as.tokenEndpoint,
    { grant_type: JWT_BEARER, assertion, ...(scope ? { scope } : {}) },
    basic('lanyard-basic', SECRET),
  );
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.access_token as string;
}

// ---------- resource AS ----------

describe('resource AS metadata', () => {
  it('serves RFC 8414 and OIDC metadata for a root issuer', async () => {
    const a = await getJson(`${as.issuer}/.well-known/oauth-authorization-server`);
    const o = await getJson(`${as.issuer}/.well-known/openid-configuration`);
    expect(a.status).toBe(200);
    expect(o.body).toEqual(a.body);
    expect(as.metadataUrl).toBe(`${as.issuer}/.well-known/oauth-authorization-server`);
    expect(a.body).toMatchObject({
      issuer: as.issuer,
      token_endpoint: as.tokenEndpoint,
      grant_types_supported: [JWT_BEARER, 'client_credentials'],
      authorization_grant_profiles_supported: [ID_JAG_PROFILE],
      scopes_supported: ['todo.read', 'todo.write', 'todo.admin', 'docs.read'],
      authorization_endpoint: `${as.issuer}/authorize`,
      response_types_supported: ['code'],
    });
    expect(new Set(a.body.token_endpoint_auth_methods_supported as string[])).toEqual(
      new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']),
    );
  });

  it('serves a path issuer at the inserted and appended well-known URLs only, and honours the advertise switches', async () => {
    const tenant = await startResourceAs({
      name: 'tenant-as',
      issuerPath: '/tenant1',
      trustedIdp: { issuer: idp.issuer, jwksUri: idp.jwksUri },
      clients: [{ clientId: 'lanyard-basic', authMethod: 'client_secret_basic', clientSecret: SECRET }],
      resources: [mcpTodo.url],
      scopes: ['todo.read'],
      advertise: { jwtBearer: false, idJagProfile: false },
    });
    try {
      const origin = new URL(tenant.issuer).origin;
      expect(tenant.issuer).toBe(`${origin}/tenant1`);
      expect(tenant.metadataUrl).toBe(`${origin}/.well-known/oauth-authorization-server/tenant1`);
      for (const u of [
        tenant.metadataUrl,
        `${origin}/.well-known/openid-configuration/tenant1`,
        `${tenant.issuer}/.well-known/openid-configuration`,
      ]) {
        const r = await getJson(u);
        expect(r.status, u).toBe(200);
        expect(r.body.issuer).toBe(tenant.issuer);
        expect(r.body.token_endpoint).toBe(`${tenant.issuer}/token`);
        expect(r.body.grant_types_supported).toEqual(['client_credentials']);
        expect(r.body).not.toHaveProperty('authorization_grant_profiles_supported');
      }
      expect((await getJson(`${origin}/.well-known/oauth-authorization-server`)).status).toBe(404);
      // Not advertised means not done.
      const assertion = await idp.signIdJag({ aud: tenant.issuer });
      const r = await postForm(tenant.tokenEndpoint, { grant_type: JWT_BEARER, assertion }, basic('lanyard-basic', SECRET));
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('unsupported_grant_type');
    } finally {
      await tenant.stop();
    }
  });

  it('publishes issuerOverride in metadata (hostile metadata)', async () => {
    const hostile = await startResourceAs({
      name: 'hostile-as',
      trustedIdp: { issuer: idp.issuer, jwksUri: idp.jwksUri },
      clients: [],
      resources: [],
      scopes: [],
      issuerOverride: 'https://evil.example.com',
      advertise: { idJagProfile: false },
    });
    try {
      const r = await getJson(hostile.metadataUrl);
      expect(r.body.issuer).toBe('https://evil.example.com');
      expect(r.body.grant_types_supported).toContain(JWT_BEARER);
      expect(r.body).not.toHaveProperty('authorization_grant_profiles_supported');
      expect(hostile.issuer).not.toBe('https://evil.example.com');
    } finally {
      await hostile.stop();
    }
  });
});

describe('resource AS jwt-bearer grant', () => {
  it('issues an opaque Bearer token with client_secret_basic, bound to sub, resource, scopes and email', async () => {
    const grantsBefore = as.counters.grants;
    const assertion = await idp.signIdJag({ resource: mcpTodo.url });
    const r = await postForm(as.tokenEndpoint, { grant_type: JWT_BEARER, assertion, scope: 'todo.read' }, basic('lanyard-basic', SECRET));
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'todo.read' });
    expect(r.body).not.toHaveProperty('refresh_token');
    const token = r.body.access_token as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(token.split('.')).toHaveLength(1); // opaque, not a JWT
    const info = as.verifyAccessToken(token)!;
    expect(info).toMatchObject({
      sub: 'user-ada',
      clientId: 'lanyard-basic',
      resource: mcpTodo.url,
      scopes: ['todo.read'],
      email: 'ada@example.com',
    });
    expect(info.exp).toBeGreaterThan(Date.now() / 1000 + 590);
    expect(as.counters.grants).toBe(grantsBefore + 1);
  });

  it('grants the ID-JAG scope when none is requested, and narrows a partly covered request', async () => {
    const all = await postForm(
      as.tokenEndpoint,
      { grant_type: JWT_BEARER, assertion: await idp.signIdJag({ scope: 'todo.read unknown.scope' }) },
      basic('lanyard-basic', SECRET),
    );
    expect(all.body.scope).toBe('todo.read');
    const narrowed = await postForm(
      as.tokenEndpoint,
      { grant_type: JWT_BEARER, assertion: await idp.signIdJag({ scope: 'todo.read' }), scope: 'todo.read todo.write' },
      basic('lanyard-basic', SECRET),
    );
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scope).toBe('todo.read');
  });

  it('authenticates client_secret_post, private_key_jwt and none (client id only)', async () => {
    const post = await postForm(as.tokenEndpoint, {
      grant_type: JWT_BEARER,
      assertion: await idp.signIdJag({ client_id: 'lanyard-post' }),
      client_id: 'lanyard-post',
      client_secret: 'post-secret',
    });
    expect(post.status, JSON.stringify(post.body)).toBe(200);
    expect(as.verifyAccessToken(post.body.access_token as string)?.clientId).toBe('lanyard-post');

    const clientAssertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('lanyard-jwt')
      .setSubject('lanyard-jwt')
      .setAudience(as.tokenEndpoint)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(jwtClientKey);
    const jwt = await postForm(as.tokenEndpoint, {
      grant_type: JWT_BEARER,
      assertion: await idp.signIdJag({ client_id: 'lanyard-jwt' }),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
    });
    expect(jwt.status, JSON.stringify(jwt.body)).toBe(200);
    expect(as.verifyAccessToken(jwt.body.access_token as string)?.clientId).toBe('lanyard-jwt');

    const none = await postForm(as.tokenEndpoint, {
      grant_type: JWT_BEARER,
      assertion: await idp.signIdJag({ client_id: 'lanyard-public' }),
      client_id: 'lanyard-public',
    });
    expect(none.status, JSON.stringify(none.body)).toBe(200);
    expect(as.verifyAccessToken(none.body.access_token as string)?.clientId).toBe('lanyard-public');
  });

  it('rejects a private_key_jwt assertion signed by another key, or with the wrong audience', async () => {
    const other = await generateKeyPair('ES256');
    const sign = (key: SigningKey, aud: string) =>
      new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('lanyard-jwt')
        .setSubject('lanyard-jwt')
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(key);
    for (const ca of [await sign(other.privateKey, as.issuer), await sign(jwtClientKey, 'https://elsewhere.example.com')]) {
      const r = await postForm(as.tokenEndpoint, {
        grant_type: JWT_BEARER,
        assertion: await idp.signIdJag({ client_id: 'lanyard-jwt' }),
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: ca,
      });
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('invalid_client');
    }
  });

  it('rejects a wrong client secret: 401 invalid_client, with a Basic challenge for Basic', async () => {
    const before = as.counters.rejections['invalid_client:bad_secret'] ?? 0;
    const r = await postForm(
      as.tokenEndpoint,
      { grant_type: JWT_BEARER, assertion: await idp.signIdJag() },
      basic('lanyard-basic', 'wrong'),
    );
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('invalid_client');
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic /);
    const p = await postForm(as.tokenEndpoint, {
      grant_type: JWT_BEARER,
      assertion: await idp.signIdJag({ client_id: 'lanyard-post' }),
      client_id: 'lanyard-post',
      client_secret: 'wrong',
    });
    expect(p.status).toBe(401);
    expect(p.body.error).toBe('invalid_client');
    // A confidential client may not fall back to "client id only".
    const n = await postForm(as.tokenEndpoint, { grant_type: JWT_BEARER, assertion: await idp.signIdJag(), client_id: 'lanyard-basic' });
    expect(n.status).toBe(401);
    expect(as.counters.rejections['invalid_client:bad_secret']).toBe(before + 2);
  });

  it('refuses malformed requests: missing assertion, unknown grant type, wrong content type', async () => {
    const missing = await postForm(as.tokenEndpoint, { grant_type: JWT_BEARER }, basic('lanyard-basic', SECRET));
    expect([missing.status, missing.body.error]).toEqual([400, 'invalid_request']);
    const grant = await postForm(as.tokenEndpoint, { grant_type: 'password' }, basic('lanyard-basic', SECRET));
    expect([grant.status, grant.body.error]).toEqual([400, 'unsupported_grant_type']);
    const json = await fetch(as.tokenEndpoint, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(400);
  });

  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<{ rule: string; make: () => Promise<Record<string, string>>; error: string; reason: string; description: RegExp }> = [
    {
      rule: 'bad signature',
      make: async () => ({ assertion: await idp.signIdJag({}, { key: (await generateKeyPair('RS256')).privateKey }) }),
      error: 'invalid_grant',
      reason: 'signature',
      description: /signature/,
    },
    {
      rule: 'wrong typ',
      make: async () => ({ assertion: await idp.signIdJag({}, { typ: 'JWT' }) }),
      error: 'invalid_grant',
      reason: 'typ',
      description: /typ/,
    },
    {
      rule: 'wrong iss',
      make: async () => ({ assertion: await idp.signIdJag({ iss: 'https://other-idp.example.com' }) }),
      error: 'invalid_grant',
      reason: 'iss',
      description: /issuer/,
    },
    {
      rule: 'wrong aud',
      make: async () => ({ assertion: await idp.signIdJag({ aud: 'https://other-as.example.com' }) }),
      error: 'invalid_grant',
      reason: 'aud',
      description: /audience/,
    },
    {
      rule: 'aud array with a second audience',
      make: async () => ({ assertion: await idp.signIdJag({ aud: [as.issuer, 'https://other-as.example.com'] }) }),
      error: 'invalid_grant',
      reason: 'aud',
      description: /audience/,
    },
    {
      rule: 'client_id mismatch',
      make: async () => ({ assertion: await idp.signIdJag({ client_id: 'lanyard-post' }) }),
      error: 'invalid_grant',
      reason: 'client_id',
      description: /client_id/,
    },
    {
      rule: 'unknown resource',
      make: async () => ({ assertion: await idp.signIdJag({ resource: 'http://127.0.0.1:1/not-served' }) }),
      error: 'invalid_grant',
      reason: 'resource',
      description: /resource/,
    },
    {
      rule: 'resource parameter not served',
      make: async () => ({ assertion: await idp.signIdJag(), resource: 'http://127.0.0.1:1/not-served' }),
      error: 'invalid_target',
      reason: 'resource',
      description: /resource/,
    },
    {
      rule: 'expired beyond skew',
      make: async () => ({ assertion: await idp.signIdJag({ iat: now() - 400, exp: now() - 45 }) }),
      error: 'invalid_grant',
      reason: 'expired',
      description: /expired/,
    },
    {
      rule: 'issued in the future beyond skew',
      make: async () => ({ assertion: await idp.signIdJag({ iat: now() + 120, exp: now() + 400 }) }),
      error: 'invalid_grant',
      reason: 'iat',
      description: /future/,
    },
    {
      rule: 'no jti',
      make: async () => ({ assertion: await idp.signIdJag({}, { omit: ['jti'] }) }),
      error: 'invalid_grant',
      reason: 'jti',
      description: /jti/,
    },
    {
      rule: 'scope beyond the ID-JAG',
      make: async () => ({ assertion: await idp.signIdJag({ scope: 'todo.read' }), scope: 'todo.admin' }),
      error: 'invalid_scope',
      reason: 'scope',
      description: /todo\.admin/,
    },
  ];

  it.each(cases)('rejects: $rule', async ({ make, error, reason, description }) => {
    const key = `${error}:${reason}`;
    const before = as.counters.rejections[key] ?? 0;
    const r = await postForm(as.tokenEndpoint, { grant_type: JWT_BEARER, ...(await make()) }, basic('lanyard-basic', SECRET));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe(error);
    expect(r.body.error_description).toMatch(description);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(as.counters.rejections[key]).toBe(before + 1);
  });

  it('accepts an ID-JAG expired within the clock skew', async () => {
    const r = await postForm(
      as.tokenEndpoint,
      { grant_type: JWT_BEARER, assertion: await idp.signIdJag({ iat: now() - 300, exp: now() - 10 }) },
      basic('lanyard-basic', SECRET),
    );
    expect(r.status).toBe(200);
  });

  it('rejects a replayed jti, but a refused attempt does not consume it', async () => {
    const assertion = await idp.signIdJag({ scope: 'todo.read' });
    const refused = await postForm(
      as.tokenEndpoint,
      { grant_type: JWT_BEARER, assertion, scope: 'todo.admin' },
      basic('lanyard-basic', SECRET),
    );
    expect(refused.body.error).toBe('invalid_scope');
    const first = await postForm(as.tokenEndpoint, { grant_type: JWT_BEARER, assertion }, basic('lanyard-basic', SECRET));
    expect(first.status).toBe(200);
    const before = as.counters.rejections['invalid_grant:replay'] ?? 0;
    const again = await postForm(as.tokenEndpoint, { grant_type: JWT_BEARER, assertion }, basic('lanyard-basic', SECRET));
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/jti already used/) });
    expect(as.counters.rejections['invalid_grant:replay']).toBe(before + 1);
  });

  it('strictScope refuses any requested scope outside the ID-JAG', async () => {
    const strict = await startResourceAs({
      name: 'strict-as',
      trustedIdp: { issuer: idp.issuer, jwksUri: idp.jwksUri },
      clients: [{ clientId: 'lanyard-basic', authMethod: 'client_secret_basic', clientSecret: SECRET }],
      resources: [],
      scopes: ['todo.read', 'todo.write'],
      strictScope: true,
    });
    try {
      const r = await postForm(
        strict.tokenEndpoint,
        {
          grant_type: JWT_BEARER,
          assertion: await idp.signIdJag({ aud: strict.issuer, scope: 'todo.read' }),
          scope: 'todo.read todo.write',
        },
        basic('lanyard-basic', SECRET),
      );
      expect(r.body).toMatchObject({ error: 'invalid_scope', error_description: expect.stringMatching(/todo\.write/) });
    } finally {
      await strict.stop();
    }
  });

  it('revokeAccessTokens invalidates issued tokens; short TTLs expire', async () => {
    const token = await accessToken();
    expect(as.verifyAccessToken(token)).not.toBeNull();
    as.revokeAccessTokens();
    expect(as.verifyAccessToken(token)).toBeNull();
    expect(as.verifyAccessToken('never-issued')).toBeNull();

    const short = await startResourceAs({
      name: 'short-as',
      trustedIdp: { issuer: idp.issuer, jwksUri: idp.jwksUri },
      clients: [{ clientId: 'lanyard-public', authMethod: 'none' }],
      resources: [],
      scopes: ['todo.read'],
      accessTokenTtlSeconds: 1,
    });
    try {
      const r = await postForm(short.tokenEndpoint, {
        grant_type: JWT_BEARER,
        client_id: 'lanyard-public',
        assertion: await idp.signIdJag({ aud: short.issuer, client_id: 'lanyard-public' }),
      });
      expect(r.body.expires_in).toBe(1);
      const t = r.body.access_token as string;
      expect(short.verifyAccessToken(t)).not.toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(short.verifyAccessToken(t)).toBeNull();
    } finally {
      await short.stop();
    }
  });

  it('answers 503 temporarily_unavailable when the IdP keys cannot be fetched', async () => {
    const blind = await startResourceAs({
      name: 'blind-as',
      // Port 1 on loopback: nothing listens there, so the JWKS fetch fails fast.
      trustedIdp: { issuer: idp.issuer, jwksUri: 'http://127.0.0.1:1/keys' },
      clients: [{ clientId: 'lanyard-public', authMethod: 'none' }],
      resources: [],
      scopes: ['todo.read'],
    });
    try {
      const r = await postForm(blind.tokenEndpoint, {
        grant_type: JWT_BEARER,
        client_id: 'lanyard-public',
        assertion: await idp.signIdJag({ aud: blind.issuer, client_id: 'lanyard-public' }),
      });
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('temporarily_unavailable');
      expect(blind.counters.rejections['temporarily_unavailable:jwks_unavailable']).toBe(1);
    } finally {
      await blind.stop();
    }
  });

  it('fault injection: 5xx, stall, and down/up on the same port', async () => {
    await as.setFault('5xx');
    expect((await getJson(as.metadataUrl)).status).toBe(503);
    await as.setFault('stall');
    await expect(fetch(as.metadataUrl, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
    await as.setFault('down');
    await expect(fetch(as.metadataUrl)).rejects.toThrow();
    await as.setFault(null);
    const r = await getJson(as.metadataUrl);
    expect(r.status).toBe(200);
    expect(r.body.issuer).toBe(as.issuer);
  });
});

// ---------- MCP servers ----------

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  notifications: Array<{ method: string; params?: unknown }>;
  /** WWW-Authenticate of the last non-2xx response the transport saw. */
  lastChallenge: () => string | null;
}

async function connect(server: SandboxMcpServer, token: string): Promise<Connected> {
  const notifications: Connected['notifications'] = [];
  let challenge: string | null = null;
  const client = new Client(
    { name: 'sandbox-test', version: '1.0.0' },
    { capabilities: { elicitation: { form: {} }, sampling: {}, roots: { listChanged: true } } },
  );
  client.setRequestHandler('elicitation/create', (request) => {
    expect(request.params.message).toBe('Favourite colour?');
    return { action: 'accept', content: { answer: 'teal' } };
  });
  client.setRequestHandler('sampling/createMessage', (request) => {
    const first = request.params.messages[0]!.content;
    const input = !Array.isArray(first) && first.type === 'text' ? first.text : '';
    return { role: 'assistant', model: 'test-model', content: { type: 'text', text: `summary of ${input.length} chars` } };
  });
  client.setRequestHandler('roots/list', () => ({ roots: [{ uri: 'file:///work/project', name: 'project' }] }));
  for (const method of ['notifications/message', 'notifications/resources/updated', 'notifications/tools/list_changed'] as const) {
    client.setNotificationHandler(method, (n) => {
      notifications.push({ method: n.method, params: n.params });
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(server.url), {
    authProvider: { token: async () => token },
    onInsufficientScope: 'throw',
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      if (!res.ok) challenge = res.headers.get('www-authenticate');
      return res;
    },
  });
  await client.connect(transport);
  return { client, transport, notifications, lastChallenge: () => challenge };
}

const textOf = (result: { content?: unknown }) => (result.content as Array<{ type: string; text: string }>)[0]!.text;

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('MCP server protection', () => {
  it('challenges a request without a token with 401 + resource_metadata + scope', async () => {
    const before = mcpTodo.counters.unauthorized;
    const res = await fetch(mcpTodo.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    const c = parseChallenge(res.headers.get('www-authenticate'));
    expect(c.scheme).toBe('Bearer');
    expect(c.params).toEqual({ resource_metadata: mcpTodo.prmUrl, scope: 'todo.read' });
    expect(mcpTodo.counters.unauthorized).toBe(before + 1);
  });

  it('treats a non-Bearer Authorization as no token', async () => {
    const res = await fetch(mcpTodo.url, {
      method: 'POST',
      headers: { Authorization: 'Basic Zm9vOmJhcg==', 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(401);
    expect(parseChallenge(res.headers.get('www-authenticate')).params).not.toHaveProperty('error');
  });

  it('answers an unknown token, and a token for another resource, with error="invalid_token"', async () => {
    for (const token of ['not-a-real-token', await accessToken({ resource: mcpDocs.url })]) {
      const res = await fetch(mcpTodo.url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(401);
      const c = parseChallenge(res.headers.get('www-authenticate'));
      expect(c.params).toMatchObject({ error: 'invalid_token', resource_metadata: mcpTodo.prmUrl, scope: 'todo.read' });
    }
    expect(mcpTodo.seenAuthorization.at(-1)).toMatch(/^Bearer /);
  });

  it('answers a token without the base scopes with 403 insufficient_scope', async () => {
    const token = await accessToken({ resource: mcpTodo.url }, 'todo.write');
    const res = await fetch(mcpTodo.url, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(parseChallenge(res.headers.get('www-authenticate')).params).toMatchObject({ error: 'insufficient_scope', scope: 'todo.read' });
  });

  it('serves protected-resource metadata at the path-specific and root well-known URLs', async () => {
    expect(mcpTodo.prmUrl).toBe(`${new URL(mcpTodo.url).origin}/.well-known/oauth-protected-resource/mcp`);
    for (const u of [mcpTodo.prmUrl, `${new URL(mcpTodo.url).origin}/.well-known/oauth-protected-resource`]) {
      const r = await getJson(u);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        resource: mcpTodo.url,
        authorization_servers: [as.issuer],
        scopes_supported: ['todo.read', 'todo.admin'],
        bearer_methods_supported: ['header'],
      });
    }
    expect(mcpTodo.resource).toBe(mcpTodo.url);
  });

  it('supports hostile PRM overrides and challenges without resource_metadata', async () => {
    const hostile = await startMcpServer({
      id: 'hostile',
      name: 'Hostile',
      as,
      baseScopes: ['todo.read'],
      prmOverride: { authorization_servers: ['https://evil.example.com'], resource: 'https://elsewhere.example.com/mcp' },
      challengeWithResourceMetadata: false,
    });
    try {
      const prm = await getJson(hostile.prmUrl);
      expect(prm.body).toMatchObject({
        authorization_servers: ['https://evil.example.com'],
        resource: 'https://elsewhere.example.com/mcp',
      });
      const res = await fetch(hostile.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      expect(parseChallenge(res.headers.get('www-authenticate')).params).toEqual({ scope: 'todo.read' });
    } finally {
      await hostile.stop();
    }
  });
});

describe('MCP server features over the SDK v2 client', () => {
  let ada: Connected;
  let token: string;

  beforeAll(async () => {
    token = await accessToken({ resource: mcpTodo.url }, 'todo.read todo.write');
    ada = await connect(mcpTodo, token);
  });
  afterAll(async () => {
    await ada?.client.close();
  });

  it('lists tools, resources, templates and prompts, and completes arguments', async () => {
    const tools = (await ada.client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(
      expect.arrayContaining(['whoami', 'echo', 'add', 'slow_count', 'log_demo', 'ask_user', 'summarize', 'list_roots', 'admin_purge']),
    );
    const resources = (await ada.client.listResources()).resources.map((r) => r.uri);
    expect(resources).toEqual(['sandbox://todo/readme', 'sandbox://todo/counter']);
    const templates = (await ada.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
    expect(templates).toEqual(['sandbox://todo/items/{itemId}']);
    const prompts = (await ada.client.listPrompts()).prompts;
    expect(prompts.map((p) => p.name)).toEqual(['greet']);

    const promptCompletion = await ada.client.complete({
      ref: { type: 'ref/prompt', name: 'greet' },
      argument: { name: 'name', value: 'a' },
    });
    expect(promptCompletion.completion.values).toEqual(['Ada', 'Alan']);
    const itemCompletion = await ada.client.complete({
      ref: { type: 'ref/resource', uri: 'sandbox://todo/items/{itemId}' },
      argument: { name: 'itemId', value: 'g' },
    });
    expect(itemCompletion.completion.values).toEqual(['gamma']);

    const prompt = await ada.client.getPrompt({ name: 'greet', arguments: { name: 'Grace' } });
    expect(prompt.messages[0]!.content).toMatchObject({ type: 'text', text: 'Please greet Grace warmly.' });
    const item = await ada.client.readResource({ uri: 'sandbox://todo/items/beta' });
    expect(JSON.parse((item.contents[0] as { text: string }).text)).toEqual({ id: 'beta', server: 'todo' });
    const caps = ada.client.getServerCapabilities();
    expect(caps).toMatchObject({
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      logging: {},
      completions: {},
    });
  });

  it('calls whoami (per-user identity from the token) and add', async () => {
    const me = JSON.parse(textOf(await ada.client.callTool({ name: 'whoami', arguments: {} })));
    expect(me).toEqual({
      server: 'todo',
      sub: 'user-ada',
      email: 'ada@example.com',
      scopes: ['todo.read', 'todo.write'],
      clientId: 'lanyard-basic',
    });
    expect(JSON.stringify(me)).not.toContain(token);
    expect(textOf(await ada.client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }))).toBe('42');

    const grace = await connect(mcpTodo, await accessToken({ sub: 'user-grace', email: 'grace@example.com', resource: mcpTodo.url }));
    try {
      expect(JSON.parse(textOf(await grace.client.callTool({ name: 'whoami', arguments: {} }))).sub).toBe('user-grace');
    } finally {
      await grace.client.close();
    }
  });

  it('refuses the extra-scope tool with 403 insufficient_scope naming every scope needed', async () => {
    const before = mcpTodo.counters.insufficientScope;
    const err = await ada.client.callTool({ name: 'admin_purge', arguments: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientScopeError);
    expect((err as InsufficientScopeError).requiredScope).toBe('todo.read todo.admin');
    expect(parseChallenge(ada.lastChallenge()).params).toEqual({
      error: 'insufficient_scope',
      error_description: 'tool admin_purge requires scope: todo.admin',
      resource_metadata: mcpTodo.prmUrl,
      scope: 'todo.read todo.admin',
    });
    expect(mcpTodo.counters.insufficientScope).toBe(before + 1);

    const admin = await connect(mcpTodo, await accessToken({ resource: mcpTodo.url, scope: 'todo.read todo.admin' }));
    try {
      expect(textOf(await admin.client.callTool({ name: 'admin_purge', arguments: {} }))).toBe('admin_purge done on todo');
    } finally {
      await admin.client.close();
    }
  });

  it('reports progress from slow_count and honours cancellation', async () => {
    const progress: number[] = [];
    const result = await ada.client.callTool(
      { name: 'slow_count', arguments: { steps: 4, delayMs: 5 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(textOf(result)).toBe('counted to 4');
    expect(progress).toEqual([1, 2, 3, 4]);

    const ac = new AbortController();
    const pending = ada.client.callTool(
      { name: 'slow_count', arguments: { steps: 50, delayMs: 20 } },
      { signal: ac.signal, onprogress: () => ac.abort() },
    );
    await expect(pending).rejects.toThrow();
    // The session is still healthy after a cancelled call.
    expect(textOf(await ada.client.callTool({ name: 'echo', arguments: { text: 'still here' } }))).toBe('echo: still here');
  });

  it('sends log messages at or above the level set with logging/setLevel', async () => {
    await ada.client.setLoggingLevel('warning');
    ada.notifications.length = 0;
    await ada.client.callTool({ name: 'log_demo', arguments: {} });
    const levels = ada.notifications.filter((n) => n.method === 'notifications/message').map((n) => (n.params as { level: string }).level);
    expect(levels).toEqual(['warning', 'error']);
  });

  it('round-trips elicitation, sampling and roots to the calling client', async () => {
    const ask = JSON.parse(textOf(await ada.client.callTool({ name: 'ask_user', arguments: { question: 'Favourite colour?' } })));
    expect(ask).toEqual({ action: 'accept', answer: 'teal' });
    expect(textOf(await ada.client.callTool({ name: 'summarize', arguments: { text: 'hello world' } }))).toBe('summary of 22 chars');
    expect(JSON.parse(textOf(await ada.client.callTool({ name: 'list_roots', arguments: {} })))).toEqual([
      { uri: 'file:///work/project', name: 'project' },
    ]);
  });

  it('notifies subscribers when the counter resource changes, and everyone when a tool is added', async () => {
    const uri = 'sandbox://todo/counter';
    const before = (await ada.client.readResource({ uri })).contents[0] as { text: string };
    await ada.client.subscribeResource({ uri });
    ada.notifications.length = 0;
    mcpTodo.touchResource();
    await waitFor(() => ada.notifications.some((n) => n.method === 'notifications/resources/updated'));
    expect(ada.notifications.find((n) => n.method === 'notifications/resources/updated')!.params).toMatchObject({ uri });
    const after = (await ada.client.readResource({ uri })).contents[0] as { text: string };
    expect(after.text).not.toBe(before.text);

    mcpTodo.addTool('late_tool');
    await waitFor(() => ada.notifications.some((n) => n.method === 'notifications/tools/list_changed'));
    expect((await ada.client.listTools()).tools.map((t) => t.name)).toContain('late_tool');
  });

  it('keeps sessions per user: another user cannot use a session id', async () => {
    const sid = ada.transport.sessionId!;
    const other = await accessToken({ sub: 'user-mallory', resource: mcpTodo.url });
    const res = await fetch(mcpTodo.url, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${other}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'Mcp-Session-Id': sid,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' }),
    });
    expect(res.status).toBe(404);
  });
});

describe('MCP server sessions and scale', () => {
  it('dropSessions makes an old session id answer 404; DELETE ends a session', async () => {
    const token = await accessToken({ resource: mcpDocs.url, scope: 'docs.read' });
    const c = await connect(mcpDocs, token);
    const sessionsBefore = mcpDocs.counters.sessions;
    const sid = c.transport.sessionId!;
    expect(sid).toBeTruthy();
    const post = (id: string) =>
      fetch(mcpDocs.url, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          'Mcp-Session-Id': id,
          'Mcp-Protocol-Version': c.client.getNegotiatedProtocolVersion()!,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' }),
      });
    const ok = await post(sid);
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    mcpDocs.dropSessions();
    expect((await post(sid)).status).toBe(404);
    await c.client.close().catch(() => undefined);

    const d = await connect(mcpDocs, token);
    expect(mcpDocs.counters.sessions).toBe(sessionsBefore + 1);
    const dsid = d.transport.sessionId!;
    await d.transport.terminateSession();
    expect((await post(dsid)).status).toBe(404);
    await d.client.close();
  });

  it('lists 100 generated tools (plus the built-ins) on a toolCount server', async () => {
    const c = await connect(mcpScale, await accessToken({ resource: mcpScale.url, scope: 'todo.read' }));
    try {
      const names = (await c.client.listTools()).tools.map((t) => t.name);
      expect(names.filter((n) => n.startsWith('tool_'))).toHaveLength(100);
      expect(names).toContain('tool_099');
      expect(names.length).toBeGreaterThanOrEqual(108);
      expect(textOf(await c.client.callTool({ name: 'tool_042', arguments: { text: 'x' } }))).toBe('tool_042: x');
      expect(mcpScale.counters.toolCalls).toBeGreaterThanOrEqual(1);
    } finally {
      await c.client.close();
    }
  });

  it('MCP fault injection: 5xx then down/up on the same port keeps the URL valid', async () => {
    await mcpDocs.setFault('5xx');
    expect((await fetch(mcpDocs.prmUrl)).status).toBe(503);
    await mcpDocs.setFault('down');
    await expect(fetch(mcpDocs.prmUrl)).rejects.toThrow();
    await mcpDocs.setFault(null);
    expect((await fetch(mcpDocs.prmUrl)).status).toBe(200);
  });
});
