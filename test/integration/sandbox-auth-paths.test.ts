/**
 * The sandbox's servers for the oauth, header and none paths, driven by an independent client: the MCP SDK's own
 * `auth()` (not Lanyard's engine) against the OAuth-only authorization server, and plain MCP clients against the
 * protected, API-key and open MCP servers. Proves the sandbox is a faithful counterpart before Lanyard is tested
 * against it.
 */
import {
  auth,
  AuthorizationServerMismatchError,
  Client,
  StreamableHTTPClientTransport,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
} from '@modelcontextprotocol/client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { toOAuthPathError } from '../../electron/broker/oauth/errors';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';

type Tokens = Awaited<ReturnType<OAuthClientProvider['tokens']>>;
type ClientInfo = Awaited<ReturnType<OAuthClientProvider['clientInformation']>>;

/**
 * The smallest OAuthClientProvider: everything in memory; the authorization URL is captured instead of opened. Like
 * Lanyard's own provider it keeps the SDK's SEP-2352 binding active: the discovery recorded at redirect time is kept
 * with the verifier (the callback leg is checked against it), and every client and token goes back to the SDK with its
 * `issuer` stamp (a pre-registered client is given the issuer it is registered at).
 */
class MemoryProvider implements OAuthClientProvider {
  info: ClientInfo;
  saved: Tokens;
  verifier = '';
  discovery: OAuthDiscoveryState | undefined;
  authorizationUrl: URL | undefined;
  clientMetadataUrl?: string;
  constructor(
    readonly opts: {
      clientMetadataUrl?: string;
      client?: { client_id: string; client_secret?: string; issuer: string };
      authMethod?: string;
    } = {},
  ) {
    this.info = opts.client;
    if (opts.clientMetadataUrl) this.clientMetadataUrl = opts.clientMetadataUrl;
  }
  state() {
    return crypto.randomUUID();
  }
  get redirectUrl() {
    return 'http://127.0.0.1:45999/callback';
  }
  get clientMetadata() {
    return {
      client_name: 'SDK test client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: this.opts.authMethod ?? 'none',
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: NonNullable<ClientInfo>) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: NonNullable<Tokens>) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery;
  }
}

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ authPaths: true });
}, 60_000);
afterAll(async () => {
  await sandbox?.stop();
});

const paths = () => sandbox.paths!;

/** A client pre-registered at the sandbox's OAuth-only AS, stamped with that AS's issuer (SEP-2352). */
const preRegistered = (client_id: string, client_secret?: string) => ({
  client_id,
  ...(client_secret !== undefined ? { client_secret } : {}),
  issuer: paths().oauthAs.issuer,
});

// The SDK says on the console when its SEP-2352 authorization-server binding is inactive (an unstamped credential, a
// provider without discovery state). None of these flows may leave it inactive.
let warn: MockInstance<typeof console.warn>;
beforeEach(() => {
  warn = vi.spyOn(console, 'warn');
});
afterEach(() => {
  const sep2352 = warn.mock.calls.map((args) => args.map(String).join(' ')).filter((line) => /SEP-2352/.test(line));
  warn.mockRestore();
  expect(sep2352).toEqual([]);
});

/** One full authorization through the consent page; returns the provider holding the tokens. */
async function authorize(provider: MemoryProvider, username = 'alice', scope?: string): Promise<URL> {
  const serverUrl = paths().oauth.mcp.url;
  expect(await auth(provider, { serverUrl, ...(scope ? { scope } : {}) })).toBe('REDIRECT');
  const callback = new URL(await paths().oauthAs.completeConsent(provider.authorizationUrl!.href, username));
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code: ${callback.search}`);
  expect(await auth(provider, { serverUrl, authorizationCode: code, iss: callback.searchParams.get('iss') ?? '' })).toBe('AUTHORIZED');
  return callback;
}

async function connect(url: string, init: RequestInit): Promise<Client> {
  const client = new Client({ name: 'sandbox-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: init }));
  return client;
}

async function whoami(client: Client): Promise<{ sub: string; scopes: string[] }> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  return JSON.parse((result.content as Array<{ text: string }>)[0]!.text) as { sub: string; scopes: string[] };
}

describe('OAuth-only authorization server', () => {
  it('publishes RFC 8414 metadata with PKCE S256, iss in responses, CIMD, DCR and revocation; the MCP server its PRM', async () => {
    const meta = (await (await fetch(paths().oauthAs.metadataUrl)).json()) as Record<string, unknown>;
    expect(meta.issuer).toBe(paths().oauthAs.issuer);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    expect(meta.client_id_metadata_document_supported).toBe(true);
    expect(meta.registration_endpoint).toBe(paths().oauthAs.registrationEndpoint);
    expect(meta.revocation_endpoint).toBe(paths().oauthAs.revocationEndpoint);
    expect(meta.scopes_supported).toEqual(expect.arrayContaining(['calendar:read', 'calendar:write', 'offline_access']));
    const prm = (await (await fetch(paths().oauth.mcp.prmUrl)).json()) as Record<string, unknown>;
    expect(prm.authorization_servers).toEqual([paths().oauthAs.issuer]);
    const challenge = await fetch(paths().oauth.mcp.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toContain(`resource_metadata="${paths().oauth.mcp.prmUrl}"`);
  });

  it('CIMD: the AS fetches Lanyard-style https client metadata; consent → code → tokens the MCP server accepts', async () => {
    const fetchesBefore = paths().clientMetadata.counters.fetches;
    const provider = new MemoryProvider({ clientMetadataUrl: paths().clientMetadata.url });
    const callback = await authorize(provider, 'alice', 'calendar:read');
    expect(callback.searchParams.get('iss')).toBe(paths().oauthAs.issuer);
    expect(provider.info?.client_id).toBe(paths().clientMetadata.url);
    expect(paths().clientMetadata.counters.fetches).toBeGreaterThan(fetchesBefore);
    expect(provider.saved?.refresh_token).toBeTruthy();
    const client = await connect(paths().oauth.mcp.url, { headers: { authorization: `Bearer ${provider.saved!.access_token}` } });
    expect(await whoami(client)).toMatchObject({ sub: '00u-alice', scopes: ['calendar:read'] });
    // A tool that needs more than was granted: 403 insufficient_scope naming the scopes.
    const raw = await fetch(paths().oauth.mcp.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${provider.saved!.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'create_event', arguments: {} } }),
    });
    expect(raw.status).toBe(403);
    expect(raw.headers.get('www-authenticate')).toMatch(/error="insufficient_scope".*scope="calendar:read calendar:write"/);
    await client.close();
  });

  it('DCR and pre-registered clients (public and client_secret_basic) both complete the flow', async () => {
    const before = paths().oauthAs.counters.registrations;
    const dcr = new MemoryProvider();
    await authorize(dcr, 'bob');
    expect(paths().oauthAs.counters.registrations).toBe(before + 1);
    const pre = paths().preRegistered.confidential;
    const confidential = new MemoryProvider({
      client: preRegistered(pre.clientId, pre.clientSecret),
      authMethod: 'client_secret_basic',
    });
    await authorize(confidential);
    expect(confidential.saved?.access_token).toBeTruthy();
    const wrong = new MemoryProvider({
      client: preRegistered(pre.clientId, 'not-the-secret'),
      authMethod: 'client_secret_basic',
    });
    await expect(authorize(wrong)).rejects.toThrow(/invalid_client|client authentication/i);
  });

  it('rotates refresh tokens; a used one presented again revokes the whole grant', async () => {
    const provider = new MemoryProvider({ client: preRegistered(paths().preRegistered.public.clientId) });
    await authorize(provider);
    const first = provider.saved!.refresh_token!;
    const refresh = (token: string) =>
      fetch(paths().oauthAs.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: paths().preRegistered.public.clientId }),
      });
    const rotated = await refresh(first);
    expect(rotated.status).toBe(200);
    const second = ((await rotated.json()) as { refresh_token: string }).refresh_token;
    expect(second).toBeTruthy();
    expect(second).not.toBe(first);
    const reuse = await refresh(first);
    expect(reuse.status).toBe(400);
    expect(((await reuse.json()) as { error: string }).error).toBe('invalid_grant');
    expect(paths().oauthAs.counters.refreshReuse).toBeGreaterThanOrEqual(1);
    // The family is gone: the rotated token no longer works either.
    expect((await refresh(second)).status).toBe(400);
  });

  it('revokeRefreshTokens(user) ends that user’s grants only', async () => {
    const alice = new MemoryProvider({ client: preRegistered(paths().preRegistered.public.clientId) });
    await authorize(alice, 'alice');
    const bob = new MemoryProvider({ client: preRegistered(paths().preRegistered.public.clientId) });
    await authorize(bob, 'bob');
    expect(paths().oauthAs.grantCount('bob')).toBeGreaterThanOrEqual(1);
    paths().oauthAs.revokeRefreshTokens('alice');
    expect(paths().oauthAs.grantCount('alice')).toBe(0);
    expect(paths().oauthAs.grantCount('bob')).toBeGreaterThanOrEqual(1);
    const serverUrl = paths().oauth.mcp.url;
    // Alice's access token is refused by the MCP server now; her refresh with invalid_grant; bob's still works.
    const aliceToken = alice.saved!.access_token;
    expect(await paths().oauthAs.verifyAccessToken(aliceToken)).not.toBeNull();
    await paths().oauthAs.revokeAccessTokens('alice');
    expect(await paths().oauthAs.verifyAccessToken(aliceToken)).toBeNull();
    expect(await paths().oauthAs.verifyAccessToken(bob.saved!.access_token)).not.toBeNull();
    await expect(auth(alice, { serverUrl })).rejects.toMatchObject({ code: 'invalid_grant' });
    await expect(auth(bob, { serverUrl })).resolves.toBe('AUTHORIZED');
  });

  it('refuses a token without resource binding, and Deny ends in access_denied', async () => {
    const provider = new MemoryProvider({ client: preRegistered(paths().preRegistered.public.clientId) });
    await auth(provider, { serverUrl: paths().oauth.mcp.url });
    const url = provider.authorizationUrl!;
    const denied = new URL(await paths().oauthAs.completeConsent(url.href, 'alice', { decision: 'deny' }));
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('iss')).toBe(paths().oauthAs.issuer);
  });

  it('faults: iss mismatch, wrong state and PKCE dropped from metadata', async () => {
    const as = paths().oauthAs;
    const provider = new MemoryProvider({ client: preRegistered(paths().preRegistered.public.clientId) });
    await auth(provider, { serverUrl: paths().oauth.mcp.url });
    const sentState = provider.authorizationUrl!.searchParams.get('state');
    as.faults.issMismatch = true;
    as.faults.wrongState = true;
    try {
      const cb = new URL(await as.completeConsent(provider.authorizationUrl!.href, 'alice'));
      expect(cb.searchParams.get('iss')).not.toBe(as.issuer);
      expect(cb.searchParams.get('state')).not.toBe(sentState);
      await expect(
        auth(provider, {
          serverUrl: paths().oauth.mcp.url,
          authorizationCode: cb.searchParams.get('code')!,
          iss: cb.searchParams.get('iss')!,
        }),
      ).rejects.toThrow(/iss/i);
    } finally {
      as.faults.issMismatch = false;
      as.faults.wrongState = false;
    }
    as.faults.dropPkce = true;
    try {
      const meta = (await (await fetch(as.metadataUrl)).json()) as Record<string, unknown>;
      expect(meta.code_challenge_methods_supported).toBeUndefined();
    } finally {
      as.faults.dropPkce = false;
    }
  });

  it('SEP-2352: a callback leg at another authorization server than the one recorded at redirect is refused, unredeemed', async () => {
    const as = paths().oauthAs;
    const serverUrl = paths().oauth.mcp.url;
    const provider = new MemoryProvider({ client: preRegistered(paths().preRegistered.public.clientId) });
    expect(await auth(provider, { serverUrl })).toBe('REDIRECT');
    const recorded = provider.discovery?.authorizationServerUrl;
    expect(provider.discovery?.authorizationServerMetadata?.issuer).toBe(as.issuer);
    const callback = new URL(await as.completeConsent(provider.authorizationUrl!.href, 'alice'));
    // Between the redirect and the callback the authorization server at the recorded address turned into another one (a
    // mix-up, or a redeployment): its metadata now names another issuer. The provider kept only the address, so the
    // callback leg fetches the metadata again and the SDK compares its issuer with the one recorded at redirect time.
    provider.discovery = { authorizationServerUrl: recorded! };
    const other = 'https://other-as.example';
    const swapped = async (input: string | URL, init?: RequestInit): Promise<Response> => {
      const response = await fetch(input, init);
      if (!response.ok || !(response.headers.get('content-type') ?? '').includes('json')) return response;
      const body = (await response.clone().json()) as Record<string, unknown>;
      return body.issuer === as.issuer ? Response.json({ ...body, issuer: other }) : response;
    };
    const error: unknown = await auth(provider, {
      serverUrl,
      authorizationCode: callback.searchParams.get('code')!,
      iss: callback.searchParams.get('iss') ?? '',
      fetchFn: swapped,
      skipIssuerMetadataValidation: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthorizationServerMismatchError);
    expect(error).toMatchObject({ recordedIssuer: recorded, currentIssuer: other });
    expect(provider.saved).toBeUndefined();
    // What Lanyard's engine makes of it: the one clear "authorize again", naming neither authorization server.
    const shown = toOAuthPathError(error, 'calendar', 'authorize');
    expect(shown.code).toBe(ErrorCodes.AUTHORIZATION_FAILED);
    expect(shown.message).toMatch(/another authorization server/);
    expect(shown.fix).toMatch(/Authorize/);
    expect(`${shown.message} ${shown.fix}`).not.toContain(other);
  });
});

describe('API-key and open MCP servers', () => {
  it('the API-key server wants its generated key in its header: 401 without, 401 wrong, tools with it', async () => {
    const { mcp, apiKey } = paths().header;
    expect(apiKey.header).toBe('X-API-Key');
    expect(apiKey.value).toMatch(/^sk-sandbox-.{20,}/);
    const post = (headers: Record<string, string>) =>
      fetch(mcp.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    const none = await post({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBeNull();
    expect((await post({ 'X-API-Key': 'wrong' })).status).toBe(401);
    expect((await fetch(mcp.prmUrl)).status).toBe(404);
    const client = await connect(mcp.url, { headers: { [apiKey.header]: apiKey.value } });
    expect(await whoami(client)).toMatchObject({ sub: 'api-key-holder' });
    await client.close();
  });

  it('the open server serves anyone and publishes no PRM', async () => {
    const { mcp } = paths().none;
    expect((await fetch(mcp.prmUrl)).status).toBe(404);
    const client = await connect(mcp.url, {});
    expect(await whoami(client)).toMatchObject({ sub: 'anonymous' });
    await client.close();
  });

  it('pathsConfig() names each server with its path and Lanyard’s CIMD URL, and never the key', () => {
    const config = sandbox.pathsConfig();
    expect(config.oauth.clientMetadataUrl).toBe(paths().clientMetadata.url);
    expect(config.servers.map((s) => [s.id, s.authPath])).toEqual([
      ['calendar', 'oauth'],
      ['search', 'header'],
      ['weather', 'none'],
    ]);
    expect(JSON.stringify(config)).not.toContain(paths().header.apiKey.value);
  });
});
