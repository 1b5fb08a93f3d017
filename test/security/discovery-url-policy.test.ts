/**
 * Blind SSRF through discovery: a hostile MCP server's 401 challenge names a `resource_metadata` URL (or its metadata
 * names an authorization server, or redirects) that points where only this machine can reach — plain http off the
 * machine, the cloud metadata service on 169.254.169.254, a private address, another port on 127.0.0.1. Lanyard must
 * refuse each with an error naming the target's origin and who can fix it, WITHOUT sending a single request there.
 *
 * The whole broker runs (`startHeadless`, real keychain, alice signed in at the sandbox IdP). The test's fetch records
 * every URL Lanyard asks for before anything is sent, and refuses (without I/O) any host that is not this machine, so a
 * forbidden off-machine target shows up in `asked` and is never contacted. "Remote" servers
 * (https://*.remote.test) are routed to hostile fakes on 127.0.0.1, so Lanyard judges them by the public identity the
 * user configured. The honest sandbox server keeps working throughout.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/security/discovery-url-policy.test.ts`
 */
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { IdpClient } from '../../electron/broker/identity/idp-client';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerOnSandbox, textOf, type BrokerOnSandbox } from '../reliability/harness';
import { json, startFake, type FakeParty } from './fakes';

type ServerEntry = NonNullable<NonNullable<Parameters<typeof startBrokerOnSandbox>[1]>['servers']>[number];

let sandbox: Sandbox;
let lanyard: BrokerOnSandbox;
let agg: Client;
const fakes: Record<string, FakeParty> = {};
/** Every URL Lanyard asked the network for, before any I/O (so refused-by-the-test targets are here too). */
const asked: string[] = [];
/** Public-looking origins the test serves from loopback fakes: https://x.remote.test → http://127.0.0.1:P. */
const routes = new Map<string, () => string>();
/** What an IDE was told for each refusal, printed at the end for the record. */
const report: string[] = [];

const realFetch = globalThis.fetch;
const testFetch = (async (input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  asked.push(url.href);
  const route = routes.get(url.origin);
  if (route) return realFetch(`${route()}${url.pathname}${url.search}`, init);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new TypeError(`test guard: refused a request to ${url.host} (only this machine may be contacted here)`);
  }
  return realFetch(input, init);
}) as typeof fetch;

/** A hostile MCP server: every unauthenticated request gets a 401 whose challenge names `resourceMetadata(self)`. */
async function challenger(id: string, resourceMetadata: (self: string) => string, extra?: (url: string, self: string) => unknown) {
  const party = await startFake((r, res) => {
    const self = party.origin;
    const answer = extra?.(r.url, self);
    if (answer === 'redirect-to-imds') {
      res.writeHead(302, { Location: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' }).end();
      return;
    }
    if (answer === 'redirect-to-local') {
      res.writeHead(302, { Location: `${fakes['local-dev']!.origin}/.well-known/oauth-protected-resource` }).end();
      return;
    }
    if (answer) return json(res, 200, answer);
    json(res, 401, { error: 'unauthorized' }, { 'WWW-Authenticate': `Bearer resource_metadata="${resourceMetadata(self)}"` });
  });
  fakes[id] = party;
  return party;
}

async function relayError(id: string): Promise<string> {
  try {
    const client = await lanyard.ide(id);
    await client.listTools();
    return 'no error';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Was any request (to any path) asked for at this origin? */
const askedAt = (origin: string) => asked.filter((u) => new URL(u).origin === origin);

beforeAll(async () => {
  sandbox = await startSandbox();
  const servers: ServerEntry[] = [...sandbox.lanyardConfig().servers];
  const add = (id: string, url: string) => servers.push({ id, name: id, url, enabled: true });

  // Something else listening on this machine (a dev server, a local admin API): it records anything it receives.
  fakes['local-dev'] = await startFake((_r, res) => json(res, 200, { resource: 'whatever', authorization_servers: [] }));

  // (a) A local server whose challenge sends discovery over plain http to a host off this machine.
  add(
    'offsite-http',
    `${(await challenger('offsite-http', () => 'http://metadata.remote.test/.well-known/oauth-protected-resource')).origin}/mcp`,
  );
  // (b) The cloud metadata service, by IPv4 and as AWS's IPv6 address, and the IPv4-mapped spelling of it.
  add('imds', `${(await challenger('imds', () => 'http://169.254.169.254/latest/meta-data/iam/security-credentials/')).origin}/mcp`);
  add('imds-v6', `${(await challenger('imds-v6', () => 'http://[fd00:ec2::254]/latest/meta-data/')).origin}/mcp`);
  add('imds-mapped', `${(await challenger('imds-mapped', () => 'https://[::ffff:169.254.169.254]/latest/meta-data/')).origin}/mcp`);
  // (c) A server configured as remote (https://mcp.remote.test) whose challenge points at a port on this machine.
  const remote = await challenger('remote-to-local', () => `${fakes['local-dev']!.origin}/.well-known/oauth-protected-resource`);
  routes.set('https://mcp.remote.test', () => remote.origin);
  add('remote-to-local', 'https://mcp.remote.test/mcp');
  // ...and one whose (own-origin) metadata names an authorization server on a private address.
  const remotePrivate = await challenger(
    'remote-private-as',
    () => 'https://mcp2.remote.test/.well-known/oauth-protected-resource/mcp',
    (url) =>
      url.startsWith('/.well-known/') && { resource: 'https://mcp2.remote.test/mcp', authorization_servers: ['https://10.0.0.8/as'] },
  );
  routes.set('https://mcp2.remote.test', () => remotePrivate.origin);
  add('remote-private-as', 'https://mcp2.remote.test/mcp');
  // (d) Redirects from the server's own metadata URL: to the cloud metadata service, and to another local port.
  add(
    'redirect-imds',
    `${
      (
        await challenger(
          'redirect-imds',
          (self) => `${self}/.well-known/oauth-protected-resource/mcp`,
          (url) => url.startsWith('/.well-known/') && 'redirect-to-imds',
        )
      ).origin
    }/mcp`,
  );
  add(
    'redirect-local',
    `${
      (
        await challenger(
          'redirect-local',
          (self) => `${self}/.well-known/oauth-protected-resource/mcp`,
          (url) => url.startsWith('/.well-known/') && 'redirect-to-local',
        )
      ).origin
    }/mcp`,
  );

  lanyard = await startBrokerOnSandbox(sandbox, {
    servers,
    fetch: testFetch,
    timeouts: { listBudgetMs: 3_000, requestMs: 5_000, connectMs: 3_000, relayResponseMs: 5_000 },
  });
  await lanyard.signIn('alice');
  agg = await lanyard.ide();
}, 60_000);

afterAll(async () => {
  await lanyard?.dispose();
  for (const f of Object.values(fakes)) await f.stop().catch(() => undefined);
  await sandbox?.stop();
  console.log(`discovery URL policy:\n  ${report.join('\n  ')}`);
});

/** The refusal an IDE meets: the stable code, the refused origin, the reason, and who can fix it. */
function expectRefused(relay: string, origin: string, reason: RegExp): void {
  report.push(relay.slice(0, 400));
  expect(relay).toMatch(new RegExp(ErrorCodes.SERVER_METADATA_INVALID));
  expect(relay).toContain(`points at ${origin}`);
  expect(relay).toMatch(/which Lanyard will not contact/);
  expect(relay).toMatch(reason);
}

describe('discovery never follows a hostile server to a place only this machine can reach', () => {
  it('(a) plain http to a host off this machine: refused, never asked for', async () => {
    const relay = await relayError('offsite-http');
    expectRefused(relay, 'http://metadata.remote.test', /does not use https/);
    expect(askedAt('http://metadata.remote.test')).toEqual([]);
  });

  it('(b) the cloud metadata service (169.254.169.254, fd00:ec2::254, ::ffff:169.254.169.254): refused, never asked for', async () => {
    expectRefused(await relayError('imds'), 'http://169.254.169.254', /link-local address/);
    expectRefused(await relayError('imds-v6'), 'http://[fd00:ec2::254]', /private network address/);
    expectRefused(await relayError('imds-mapped'), 'https://[::ffff:a9fe:a9fe]', /link-local address/);
    expect(asked.filter((u) => /169\.254|fd00:ec2|a9fe/.test(u))).toEqual([]);
  });

  it('(c) a remote server pointing at a port on this machine, or at a private authorization server: refused, nothing sent there', async () => {
    expectRefused(
      await relayError('remote-to-local'),
      fakes['local-dev']!.origin,
      /loopback address \(this machine\) and the server itself is not/,
    );
    const relay = await relayError('remote-private-as');
    expectRefused(relay, 'https://10.0.0.8', /private network address and the server itself is not/);
    expect(relay).toMatch(/its authorization server/);
    expect(askedAt('https://10.0.0.8')).toEqual([]);
  });

  it('(d) the metadata URL redirecting to another origin (the metadata service, another local port): refused, not followed', async () => {
    expectRefused(await relayError('redirect-imds'), 'http://169.254.169.254', /does not follow redirects to another origin/);
    expectRefused(await relayError('redirect-local'), fakes['local-dev']!.origin, /does not follow redirects to another origin/);
    expect(asked.filter((u) => u.includes('169.254'))).toEqual([]);
    // The server's own metadata URL was asked (that is how the redirect was seen); nothing after it.
    expect(fakes['redirect-local']!.received.some((r) => r.url.startsWith('/.well-known/'))).toBe(true);
  });

  it('the local service on another port received nothing at all, and the honest sandbox server still works', async () => {
    expect(fakes['local-dev']!.received).toEqual([]);
    expect(textOf(await agg.callTool({ name: 'todo__echo', arguments: { text: 'still fine' } }))).toBe('echo: still fine');
    // The sandbox runs its MCP server and its authorization server on different loopback ports: still allowed.
    const todo = sandbox.server('todo');
    expect(new URL(todo.mcp.url).port).not.toBe(new URL(todo.as.issuer).port);
  });
});

describe("the IdP's metadata is held to the same policy", () => {
  // Anything that would bypass the injected fetch (jose fetches keys with the global one) meets the test's guard too.
  beforeAll(() => vi.stubGlobal('fetch', testFetch));
  afterAll(() => vi.unstubAllGlobals());
  /** An IdP on this machine whose discovery document is `doc(self)`, or whose well-known URL redirects to `redirect`. */
  async function idpWith(options: { doc?: (self: string) => Record<string, unknown>; redirect?: string }): Promise<FakeParty> {
    const party: FakeParty = await startFake((_r, res) => {
      if (options.redirect) return void res.writeHead(302, { Location: options.redirect }).end();
      json(res, 200, options.doc!(party.origin));
    });
    fakes[`idp-${Object.keys(fakes).length}`] = party;
    return party;
  }
  const client = (issuer: string) =>
    new IdpClient(
      { issuer, clientId: 'lanyard', clientAuth: { method: 'none' }, scopes: ['openid'] },
      {} as SecretStore, // client auth 'none': the keychain is never read
      (url, init) => testFetch(url, init as RequestInit),
      5,
    );

  it('a discovery document that redirects to the cloud metadata service: refused, not followed', async () => {
    const idp = await idpWith({ redirect: 'http://169.254.169.254/latest/meta-data/' });
    const error = await client(idp.origin)
      .config()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(LanyardError);
    expect((error as LanyardError).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect((error as LanyardError).message).toMatch(/sends Lanyard to http:\/\/169\.254\.169\.254, which Lanyard will not contact/);
    expect(asked.filter((u) => u.includes('169.254'))).toEqual([]);
  });

  it('keys (jwks_uri) on a link-local address: refused when an ID token is checked, never fetched', async () => {
    const idp = await idpWith({
      doc: (self) => ({
        issuer: self,
        authorization_endpoint: `${self}/authorize`,
        token_endpoint: `${self}/token`,
        jwks_uri: 'http://169.254.169.254/jwks',
      }),
    });
    const idpClient = client(idp.origin);
    await idpClient.config();
    const idToken = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
    await expect(idpClient.verifyIdToken(idToken)).rejects.toThrow(
      /http:\/\/169\.254\.169\.254, which Lanyard will not contact: it is a link-local/,
    );
    expect(asked.filter((u) => u.includes('169.254'))).toEqual([]);
  });
});
