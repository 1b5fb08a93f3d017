/**
 * A stored client credential goes only to the party it belongs to: the IdP client secret only to the IdP (issuer and
 * client id) it was entered for, a server's client secret only to the authorization server (issuer and client id) it
 * was first used with.
 *
 * The attacks: Lanyard signed in at the sandbox IdP with a confidential client (client_secret_post, then
 * client_secret_basic); then the identity provider is switched to a recording fake IdP — through Settings, through an
 * accepted `lanyard://configure` link, and by editing the config file behind Lanyard's back — and Lanyard is asked to
 * sign in there. And a server whose protected-resource metadata starts naming another authorization server, one the
 * IdP would even issue ID-JAGs for. Each fake party records every byte it receives (bodies, and Authorization headers
 * decoded), which is searched for the credentials; the user must be signed out and told which secret to enter.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/security/credential-binding.test.ts`
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { Broker } from '../../electron/broker/broker';
import { applyConfigProposal, encodeConfigLink, parseConfigLink, summarizeProposal, unmanaged } from '../../electron/broker/config/managed';
import { LanyardError } from '../../electron/broker/errors';
import { createSecretStore } from '../../electron/broker/secrets';
import { silentLogger } from '../../electron/broker/util/log';
import { secretKeys, unsealCredential, type SecretStore } from '../../electron/broker/secrets/secret-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { tempHome } from '../helpers/engine';
import { prepareHome } from '../reliability/harness';
import { asMetadata, isMetadataRead, json, startFake, type FakeParty } from './fakes';

/** Everything a fake party received, with Basic credentials decoded (they travel base64- and form-encoded). */
function receivedBytes(party: FakeParty): string {
  const decoded = party.received.flatMap((r) => {
    const auth = typeof r.headers.authorization === 'string' ? r.headers.authorization : '';
    if (!auth.toLowerCase().startsWith('basic ')) return [];
    const plain = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    return [
      plain,
      plain
        .split(':')
        .map((p) => decodeURIComponent(p.replace(/\+/g, ' ')))
        .join(':'),
    ];
  });
  const bodies = party.received.map((r) => {
    try {
      return decodeURIComponent(r.body.replace(/\+/g, ' '));
    } catch {
      return r.body;
    }
  });
  return [party.text(), ...decoded, ...bodies].join('\n');
}

/**
 * An OpenID provider that answers discovery, sends the browser straight back with a code, and records what reaches
 * its token endpoint (where it refuses everything).
 */
async function startRecordingIdp(): Promise<FakeParty> {
  const idp: FakeParty = await startFake((r, res) => {
    const origin = idp.origin;
    const url = new URL(r.url, origin);
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        jwks_uri: `${origin}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        grant_types_supported: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      });
    }
    if (url.pathname === '/jwks') return json(res, 200, { keys: [] });
    if (url.pathname === '/authorize') {
      const back = new URL(url.searchParams.get('redirect_uri') ?? 'http://127.0.0.1:1/');
      back.searchParams.set('code', 'code-from-the-new-idp');
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { Location: back.href }).end();
      return;
    }
    return json(res, 401, { error: 'invalid_client', error_description: 'recorded' });
  });
  return idp;
}

/** The real keychain store of a home, noting which keys exist (the stores cannot list). */
function trackingStore(inner: SecretStore): SecretStore & { keys: Set<string> } {
  const keys = new Set<string>();
  return {
    keys,
    get kind() {
      return inner.kind;
    },
    get description() {
      return inner.description;
    },
    get: (k) => inner.get(k),
    async set(k, v) {
      await inner.set(k, v);
      keys.add(k);
    },
    async delete(k) {
      await inner.delete(k);
      keys.delete(k);
    },
    async deleteAll(prefix) {
      await inner.deleteAll(prefix);
      for (const k of [...keys]) if (!prefix || k.startsWith(prefix)) keys.delete(k);
    },
  };
}

interface Lanyard {
  broker: Broker;
  secrets: SecretStore & { keys: Set<string> };
  dispose(): Promise<void>;
}

/** Lanyard's broker on the sandbox (real keychain, fresh home), its client secrets provisioned bare as by an admin. */
async function startLanyard(sandbox: Sandbox, options: Parameters<typeof prepareHome>[2] = {}): Promise<Lanyard> {
  const { home, cleanup } = await tempHome();
  const provisioned = await prepareHome(sandbox, home, options);
  const secrets = trackingStore(createSecretStore({ home }));
  for (const key of Object.keys({ ...sandbox.lanyardSecrets(), ...options.secrets })) secrets.keys.add(key);
  const broker = await Broker.create({
    version: 'test',
    home,
    secrets,
    managed: unmanaged,
    log: silentLogger,
    openUrl: async (url) => {
      // The browser: the sandbox's sign-in page as alice; any other IdP sends the browser straight back.
      if (url.startsWith(sandbox.idp.issuer)) {
        await fetch(await sandbox.idp.completeLogin(url, 'alice'));
      } else {
        const authorize = await fetch(url, { redirect: 'manual' });
        await fetch(authorize.headers.get('location')!);
      }
    },
  });
  return {
    broker,
    secrets,
    async dispose() {
      await broker.close();
      await provisioned.deleteAll().catch(() => undefined);
      await cleanup();
    },
  };
}

async function errorOf(p: Promise<unknown>): Promise<LanyardError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LanyardError) return e;
    throw e;
  }
  throw new Error('expected a LanyardError');
}

describe.each(['client_secret_post', 'client_secret_basic'] as const)('the IdP client secret (%s) stays with its IdP', (method) => {
  let sandbox: Sandbox;
  let idpSecret: string;
  let newIdp: FakeParty;
  let lanyard: Lanyard | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { clientAuth: method } });
    idpSecret = sandbox.idp.client.clientSecret!;
  });
  afterAll(async () => {
    await sandbox.stop();
  });
  afterEach(async () => {
    await lanyard?.dispose();
    lanyard = undefined;
    await newIdp?.stop();
  });

  /** Signed in as alice at the sandbox, with a token for the todo server cached. */
  async function signedIn(): Promise<Lanyard> {
    lanyard = await startLanyard(sandbox);
    newIdp = await startRecordingIdp();
    const engine = lanyard.broker.getEngine()!;
    await engine.identity.signIn({ timeoutMs: 10_000 });
    await engine.tokens.getToken('todo');
    expect([...lanyard.secrets.keys].some((k) => k.startsWith('token:'))).toBe(true);
    // The provisioned (bare) secret was bound at its first use to the IdP configured then.
    const stored = unsealCredential((await lanyard.secrets.get(secretKeys.idpClientSecret))!);
    expect(stored).toEqual({ value: idpSecret, boundTo: { issuer: sandbox.idp.issuer, clientId: sandbox.idp.client.clientId } });
    return lanyard;
  }

  /**
   * A sign-in at the new IdP: it must receive none of the old IdP's secret (first of all), the user must have been
   * signed out, and the error must ask for the new IdP's secret.
   */
  async function expectSignInRefusedWithoutLeak(l: Lanyard, why: RegExp): Promise<void> {
    const engine = l.broker.getEngine()!;
    const stateBefore = engine.identity.state.status;
    const error = await errorOf(engine.identity.signIn({ timeoutMs: 10_000 }));
    const bytes = receivedBytes(newIdp);
    expect(bytes).not.toContain(idpSecret);
    expect(bytes).not.toContain(idpSecret.slice(0, 16));
    expect(newIdp.received.filter((r) => r.url.startsWith('/token'))).toEqual([]);
    expect(engine.identity.issuer).toBe(newIdp.origin);
    expect(stateBefore).toBe('signed_out');
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toMatch(why);
    expect(error.fix).toContain(`Enter the client secret for ${newIdp.origin}`);
    expect(`${error.message} ${error.fix}`).not.toContain(idpSecret);
  }

  it('Settings: switching the issuer signs out, wipes the old credentials, and sends the new IdP nothing', async () => {
    const l = await signedIn();
    const revocations = sandbox.idp.counters.revocations;
    await l.broker.control.updateSettings({
      idp: { issuer: newIdp.origin, clientId: sandbox.idp.client.clientId, clientAuthMethod: method },
    });

    await expectSignInRefusedWithoutLeak(l, new RegExp(`${newIdp.origin.replace(/[.]/g, '\\.')} needs Lanyard's client secret`));

    // Signed out at the old IdP (its refresh token revoked there), the session and server tokens gone from the keychain.
    expect(sandbox.idp.counters.revocations).toBe(revocations + 1);
    expect(await l.secrets.get(secretKeys.idpSession)).toBeUndefined();
    expect([...l.secrets.keys].filter((k) => k.startsWith('token:'))).toEqual([]);
    expect(await l.secrets.get(secretKeys.idpClientSecret)).toBeUndefined();

    // The secret entered for the new IdP is the one it gets.
    await l.broker.control.updateSettings({
      idp: {
        issuer: newIdp.origin,
        clientId: sandbox.idp.client.clientId,
        clientAuthMethod: method,
        clientSecret: 'the-new-idps-own-secret',
      },
    });
    await expect(l.broker.getEngine()!.identity.signIn({ timeoutMs: 10_000 })).rejects.toThrow();
    expect(receivedBytes(newIdp)).toContain('the-new-idps-own-secret');
    expect(receivedBytes(newIdp)).not.toContain(idpSecret);
  });

  it('a configure link: says it changes the IdP and signs out, and the new IdP gets nothing', async () => {
    const l = await signedIn();
    const link = encodeConfigLink({ idp: { issuer: newIdp.origin, clientId: sandbox.idp.client.clientId, clientAuthMethod: method } });
    const { proposal } = parseConfigLink(link);
    const summary = summarizeProposal(proposal, { idp: (await l.broker.control.getSettings()).idp }).join('\n');
    expect(summary).toContain(`changes your identity provider from ${sandbox.idp.issuer}`);
    expect(summary).toContain(`you will be signed out and must enter ${newIdp.origin}'s client secret`);

    await applyConfigProposal(l.broker.control, proposal);
    await expectSignInRefusedWithoutLeak(l, /needs Lanyard's client secret/);
    expect(await l.secrets.get(secretKeys.idpSession)).toBeUndefined();
    expect([...l.secrets.keys].filter((k) => k.startsWith('token:'))).toEqual([]);
  });

  it('a config file edited behind Lanyard’s back: the secret bound to the old IdP is refused, naming both', async () => {
    const l = await signedIn();
    l.broker.config.update((draft) => {
      draft.idp!.issuer = newIdp.origin;
    });
    await l.broker.reconfigure();
    // The secret is still in the keychain, but bound to the sandbox IdP.
    expect(unsealCredential((await l.secrets.get(secretKeys.idpClientSecret))!).value).toBe(idpSecret);
    await expectSignInRefusedWithoutLeak(l, new RegExp(`stored client secret belongs to ${sandbox.idp.issuer.replace(/[.]/g, '\\.')}`));
  });
});

describe('a server’s client secret stays with its authorization server', () => {
  let sandbox: Sandbox;
  let lanyard: Lanyard;
  let front: FakeParty;
  let hostileAs: FakeParty;
  let todoSecret: string;
  /** The authorization server the server's protected-resource metadata names right now. */
  let namedAs: string;

  beforeAll(async () => {
    sandbox = await startSandbox();
    const todo = sandbox.server('todo');
    todoSecret = todo.asClient.clientSecret!;
    namedAs = todo.as.issuer;
    // A token endpoint that would take anything: whatever reaches it is recorded.
    hostileAs = await startFake((r, res) =>
      isMetadataRead(r)
        ? json(res, 200, asMetadata(hostileAs.origin))
        : json(res, 200, { access_token: 'from-the-hostile-as', token_type: 'Bearer', expires_in: 600 }),
    );
    // The MCP server "moving": its metadata names whichever authorization server `namedAs` says.
    front = await startFake((r, res) => {
      if (r.url.startsWith('/.well-known/oauth-protected-resource'))
        return json(res, 200, { resource: `${front.origin}/mcp`, authorization_servers: [namedAs], scopes_supported: ['todo:read'] });
      return json(
        res,
        401,
        { error: 'unauthorized' },
        { 'WWW-Authenticate': `Bearer resource_metadata="${front.origin}/.well-known/oauth-protected-resource/mcp", scope="todo:read"` },
      );
    });
    const resource = `${front.origin}/mcp`;
    todo.as.resources.push(resource);
    // The IdP would issue ID-JAGs for both: the only thing between the secret and the hostile AS is Lanyard.
    for (const audience of [todo.as.issuer, hostileAs.origin])
      sandbox.idp.policy.push({ user: 'alice', audience, resource, scopes: ['todo:read'], clientIdAtAs: todo.asClient.clientId });
    lanyard = await startLanyard(sandbox, {
      servers: [
        {
          id: 'moving',
          name: 'Moving',
          url: resource,
          enabled: true,
          asClient: { clientId: todo.asClient.clientId, method: 'client_secret_basic' },
        },
      ],
      secrets: { 'server:moving:client_secret': todoSecret },
    });
    await lanyard.broker.getEngine()!.identity.signIn({ timeoutMs: 10_000 });
  });
  afterAll(async () => {
    await lanyard?.dispose();
    await front?.stop();
    await hostileAs?.stop();
    await sandbox?.stop();
  });

  it('is refused for another authorization server, and that server receives nothing', async () => {
    const tokens = lanyard.broker.getEngine()!.tokens;
    const todo = sandbox.server('todo');
    expect(await tokens.getToken('moving')).toMatchObject({ accessToken: expect.any(String) });
    // Bound at its first use to the authorization server the server named then.
    expect(unsealCredential((await lanyard.secrets.get(secretKeys.serverClientSecret('moving')))!).boundTo).toEqual({
      issuer: todo.as.issuer,
      clientId: todo.asClient.clientId,
    });

    namedAs = hostileAs.origin;
    await tokens.discover('moving', { force: true });
    const outcome = await tokens.getToken('moving').then(
      () => undefined,
      (e: unknown) => e,
    );
    const bytes = receivedBytes(hostileAs);
    expect(bytes).not.toContain(todoSecret);
    expect(bytes).not.toContain(todoSecret.slice(0, 16));
    expect(hostileAs.received.filter((r) => !isMetadataRead(r))).toEqual([]);
    expect(outcome).toBeInstanceOf(LanyardError);
    const error = outcome as LanyardError;
    expect(error.code).toBe(ErrorCodes.SERVER_METADATA_INVALID);
    expect(error.message).toContain(`now names the authorization server ${hostileAs.origin}`);
    expect(error.message).toContain(`belongs to ${todo.as.issuer}`);
    expect(`${error.message} ${error.fix}`).not.toContain(todoSecret);

    // Back at its own authorization server, the server works again.
    namedAs = todo.as.issuer;
    await tokens.discover('moving', { force: true });
    expect(await tokens.getToken('moving')).toMatchObject({ accessToken: expect.any(String) });
  });
});
