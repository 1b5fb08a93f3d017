/**
 * Client credentials bound to their party (secrets/secret-store.ts): the sealed keychain form, the one-time binding of
 * bare (older) entries, the readers' refusals, and what changing the IdP in Settings does to the keychain. The attacks
 * end to end are in test/security/credential-binding.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActivityLog } from '../../electron/broker/activity/activity-log';
import { encodeConfigLink, parseConfigLink, summarizeProposal } from '../../electron/broker/config/managed';
import { ConfigStore, createConfBackend } from '../../electron/broker/config/store';
import { ControlService } from '../../electron/broker/control/control-service';
import { LanyardError } from '../../electron/broker/errors';
import { loadAsCredentials } from '../../electron/broker/exchange/as-client-auth';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { readBoundCredential, sealCredential, secretKeys, unsealCredential } from '../../electron/broker/secrets/secret-store';
import { ErrorCodes } from '../../shared/errors';

const acme = { issuer: 'https://acme.okta.com', clientId: '0oaLANYARD' };
const evil = { issuer: 'https://idp.evil.example', clientId: '0oaLANYARD' };
const SECRET = 'acme-client-secret-value-1234567890';

async function errorOf(p: Promise<unknown>): Promise<LanyardError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LanyardError) return e;
    throw e;
  }
  throw new Error('expected a LanyardError');
}

describe('the sealed form', () => {
  it('round-trips the value with its party', () => {
    expect(unsealCredential(sealCredential(SECRET, acme))).toEqual({ value: SECRET, boundTo: acme });
    expect(unsealCredential(sealCredential(SECRET, { clientId: 'c' }))).toEqual({ value: SECRET, boundTo: { clientId: 'c' } });
  });

  it.each([
    ['a bare secret', SECRET],
    ['a bare JWK (private_key_jwt)', JSON.stringify({ kty: 'RSA', n: 'abc', e: 'AQAB', d: 'xyz', kid: 'k1' })],
    ['a secret that starts with "{"', '{not json'],
    ['JSON that only looks similar', JSON.stringify({ v: 1, value: SECRET, boundTo: 'acme' })],
  ])('reads %s as unbound, value unchanged', (_what, raw) => {
    expect(unsealCredential(raw)).toEqual({ value: raw });
  });
});

describe('readBoundCredential', () => {
  it('hands the value out only for its own issuer and client id', async () => {
    const store = new MemorySecretStore({ k: sealCredential(SECRET, acme) });
    expect(await readBoundCredential(store, 'k', acme)).toEqual({ state: 'ok', value: SECRET });
    expect(await readBoundCredential(store, 'k', evil)).toEqual({ state: 'foreign', boundTo: acme });
    expect(await readBoundCredential(store, 'k', { ...acme, clientId: 'other' })).toEqual({ state: 'foreign', boundTo: acme });
    expect(await readBoundCredential(store, 'missing', acme)).toEqual({ state: 'missing' });
  });

  it('binds a bare (older) entry once, to the party configured at its first read', async () => {
    const store = new MemorySecretStore({ k: SECRET });
    expect(await readBoundCredential(store, 'k', acme)).toEqual({ state: 'ok', value: SECRET });
    expect(unsealCredential((await store.get('k'))!)).toEqual({ value: SECRET, boundTo: acme });
    // From then on another party is refused: the migration happens once, not at every read.
    expect(await readBoundCredential(store, 'k', evil)).toMatchObject({ state: 'foreign' });
    expect(unsealCredential((await store.get('k'))!).boundTo).toEqual(acme);
  });

  it('fixes the issuer of a credential stored before it was known, for the same client id only', async () => {
    const store = new MemorySecretStore({
      a: sealCredential(SECRET, { clientId: 'lanyard-at-todo' }),
      b: sealCredential(SECRET, { clientId: 'x' }),
    });
    const todoAs = { issuer: 'https://as.todo.example', clientId: 'lanyard-at-todo' };
    expect(await readBoundCredential(store, 'a', todoAs)).toEqual({ state: 'ok', value: SECRET });
    expect(unsealCredential((await store.get('a'))!).boundTo).toEqual(todoAs);
    expect(await readBoundCredential(store, 'a', { ...todoAs, issuer: 'https://as.evil.example' })).toMatchObject({ state: 'foreign' });
    expect(await readBoundCredential(store, 'b', todoAs)).toEqual({ state: 'foreign', boundTo: { clientId: 'x' } });
    expect(unsealCredential((await store.get('b'))!).boundTo).toEqual({ clientId: 'x' });
  });
});

describe('loadAsCredentials', () => {
  const server = { id: 'todo', asClient: { clientId: 'lanyard-at-todo', method: 'client_secret_basic' as const } };

  it('refuses a secret bound to another authorization server, naming both and never the value', async () => {
    const store = new MemorySecretStore({
      [secretKeys.serverClientSecret('todo')]: sealCredential(SECRET, { issuer: 'https://as.todo.example', clientId: 'lanyard-at-todo' }),
    });
    expect((await loadAsCredentials(store, server, 'https://as.todo.example')).clientSecret).toBe(SECRET);
    const error = await errorOf(loadAsCredentials(store, server, 'https://as.evil.example'));
    expect(error.code).toBe(ErrorCodes.SERVER_METADATA_INVALID);
    expect(error.message).toContain('now names the authorization server https://as.evil.example');
    expect(error.message).toContain('belongs to https://as.todo.example');
    expect(`${error.message} ${error.fix}`).not.toContain(SECRET);
  });

  it('binds a bare private key at its first use and refuses it for another client id', async () => {
    const jwk = {
      kty: 'OKP',
      crv: 'Ed25519',
      x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
      d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A',
      alg: 'EdDSA',
    };
    const store = new MemorySecretStore({ [secretKeys.serverPrivateKey('todo')]: JSON.stringify(jwk) });
    const keyServer = { id: 'todo', asClient: { clientId: 'lanyard-at-todo', method: 'private_key_jwt' as const } };
    expect((await loadAsCredentials(store, keyServer, 'https://as.todo.example')).privateJwk).toEqual(jwk);
    const error = await errorOf(
      loadAsCredentials(store, { id: 'todo', asClient: { ...keyServer.asClient, clientId: 'someone-else' } }, 'https://as.todo.example'),
    );
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toContain('belongs to https://as.todo.example (client id lanyard-at-todo)');
    expect(`${error.message} ${error.fix}`).not.toContain(jwk.d);
  });

  it('says which secret is missing and for whom', async () => {
    const error = await errorOf(loadAsCredentials(new MemorySecretStore(), server, 'https://as.todo.example'));
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toContain('https://as.todo.example');
  });
});

describe('Settings and the stored IdP credentials', () => {
  let home: string;
  let store: MemorySecretStore;
  let control: ControlService;
  let reconfigured = 0;

  beforeEach(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'lanyard-binding-'));
    const config = new ConfigStore(createConfBackend(home));
    config.update((draft) => {
      draft.idp = { ...acme, clientAuth: { method: 'client_secret_post' }, scopes: ['openid'] };
    });
    store = new MemorySecretStore({
      [secretKeys.idpClientSecret]: SECRET,
      [secretKeys.idpPrivateKey]: '{"kty":"RSA"}',
      [secretKeys.idpSession]: '{"v":1}',
      'token:abc': '{}',
      [secretKeys.serverClientSecret('todo')]: 'todo-secret',
    });
    reconfigured = 0;
    control = new ControlService({
      version: 'test',
      config,
      secrets: store,
      activity: new ActivityLog(),
      engine: () => undefined,
      gateway: () => undefined,
      reconfigure: async () => {
        reconfigured++;
      },
    });
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('a new issuer signs out and removes the old IdP’s credentials; servers keep theirs', async () => {
    await control.updateSettings({ idp: { ...evil, clientAuthMethod: 'client_secret_post' } });
    expect(await store.get(secretKeys.idpClientSecret)).toBeUndefined();
    expect(await store.get(secretKeys.idpPrivateKey)).toBeUndefined();
    expect(await store.get(secretKeys.idpSession)).toBeUndefined();
    expect(await store.get('token:abc')).toBeUndefined();
    expect(await store.get(secretKeys.serverClientSecret('todo'))).toBe('todo-secret');
    expect(reconfigured).toBe(1);
  });

  it('a new client id at the same issuer does too', async () => {
    await control.updateSettings({ idp: { ...acme, clientId: 'another-client', clientAuthMethod: 'client_secret_post' } });
    expect(await store.get(secretKeys.idpClientSecret)).toBeUndefined();
    expect(await store.get(secretKeys.idpSession)).toBeUndefined();
  });

  it('the same IdP with other settings keeps the session and the secret', async () => {
    await control.updateSettings({ idp: { ...acme, clientAuthMethod: 'client_secret_basic' } });
    expect(await store.get(secretKeys.idpClientSecret)).toBe(SECRET);
    expect(await store.get(secretKeys.idpSession)).toBe('{"v":1}');
  });

  it('a secret entered with the IdP is stored bound to it', async () => {
    await control.updateSettings({ idp: { ...evil, clientAuthMethod: 'client_secret_post', clientSecret: 'evil-own-secret' } });
    expect(unsealCredential((await store.get(secretKeys.idpClientSecret))!)).toEqual({ value: 'evil-own-secret', boundTo: evil });
  });

  it('a server secret is stored bound to its client id, and refused without one', async () => {
    await control.addServer({ url: 'https://mcp.todo.example/mcp', id: 'new', clientId: 'lanyard-at-new', clientSecret: 'new-secret' });
    expect(unsealCredential((await store.get(secretKeys.serverClientSecret('new')))!)).toEqual({
      value: 'new-secret',
      boundTo: { clientId: 'lanyard-at-new' },
    });
    const error = await errorOf(control.addServer({ url: 'https://mcp.other.example/mcp', id: 'other', clientSecret: 'orphan' }));
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(await store.get(secretKeys.serverClientSecret('other'))).toBeUndefined();
  });
});

describe('the confirmation of a configure link', () => {
  const link = (method?: 'client_secret_post' | 'private_key_jwt' | 'none') =>
    parseConfigLink(encodeConfigLink({ idp: { ...evil, ...(method ? { clientAuthMethod: method } : {}) } })).proposal;

  it('says plainly that it changes the IdP, from which to which, and what the user must do', () => {
    const text = summarizeProposal(link('client_secret_post'), { idp: acme }).join('\n');
    expect(text).toContain(`This link changes your identity provider from ${acme.issuer} (client id ${acme.clientId}) to ${evil.issuer}`);
    expect(text).toContain(`you will be signed out and must enter ${evil.issuer}'s client secret`);
    expect(summarizeProposal(link('private_key_jwt'), { idp: acme }).join('\n')).toContain(`private key for ${evil.issuer}`);
    expect(summarizeProposal(link('none'), { idp: acme }).join('\n')).toContain(
      `you will be signed out and sign in again at ${evil.issuer}`,
    );
    // The change of IdP comes first, on a line of its own; what else the link does follows.
    const both = parseConfigLink(
      encodeConfigLink({
        idp: { ...evil, clientAuthMethod: 'client_secret_post' },
        servers: [{ url: 'https://mcp.todo.example/mcp', name: 'Todo' }],
      }),
    ).proposal;
    const lines = summarizeProposal(both, { idp: acme });
    expect(lines[0]).toBe(
      `This link changes your identity provider from ${acme.issuer} (client id ${acme.clientId}) to ${evil.issuer} (client id ${evil.clientId}, client_secret_post): you will be signed out and must enter ${evil.issuer}'s client secret.`,
    );
    expect(lines.slice(1, 3)).toEqual(['It also asks Lanyard to:', '  • add the MCP server Todo — https://mcp.todo.example/mcp']);
  });

  it('says the IdP stays when it is the current one, and that it is replaced when the current one is unknown', () => {
    expect(summarizeProposal(link(), { idp: evil }).join('\n')).toContain('keep your identity provider');
    expect(summarizeProposal(link('client_secret_post')).join('\n')).toMatch(/replaces the identity provider you use now.*must enter/);
  });
});
