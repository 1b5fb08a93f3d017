/**
 * The OAuth 2.1 path's engine keeps the MCP SDK's SEP-2352 authorization-server binding active: every client it hands
 * the SDK carries the `issuer` stamp of the authorization server it is registered at, even one read back from storage
 * written before the stamp existed, and the SDK never has to say (on the console) that the binding is inactive. Against
 * the sandbox's OAuth-only authorization server (dynamic client registration, consent page, `iss` in responses).
 *
 * Run alone: LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/integration/oauth-sep2352.test.ts
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { oauthKeys } from '../../electron/broker/oauth/grant-store';
import { createOAuthSessions } from '../../electron/broker/oauth/oauth-sessions';
import type { OAuthServerRef } from '../../electron/broker/oauth/types';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ authPaths: true });
}, 60_000);
afterAll(async () => {
  await sandbox?.stop();
});

const paths = () => sandbox.paths!;
/** No pre-registered client and no CIMD URL: Lanyard registers itself (RFC 7591) and keeps the registration. */
const server = (): OAuthServerRef => ({ id: 'calendar', url: paths().oauth.mcp.url });

let warn: MockInstance<typeof console.warn>;
beforeEach(() => {
  warn = vi.spyOn(console, 'warn');
});
afterEach(() => {
  warn.mockRestore();
});
const sep2352Warnings = () => warn.mock.calls.map((args) => args.map(String).join(' ')).filter((line) => /SEP-2352/.test(line));

/** The engine as the broker builds it; the browser signs in as alice and approves. */
function engine(secrets: MemorySecretStore) {
  return createOAuthSessions({
    secrets,
    clientMetadataUrl: () => undefined,
    openUrl: async (url) => {
      await fetch(await paths().oauthAs.completeConsent(url, 'alice'));
    },
  });
}

async function authorizeOnce(secrets: MemorySecretStore): Promise<void> {
  const { done } = await engine(secrets).authorize(server());
  await done;
}

async function storedClient(secrets: MemorySecretStore): Promise<Record<string, unknown>> {
  return JSON.parse((await secrets.get(oauthKeys.registeredClient('calendar'))) ?? 'null') as Record<string, unknown>;
}

/** The registration as storage written before the SEP-2352 stamp existed holds it: the same client, no `issuer`. */
async function unstamp(secrets: MemorySecretStore): Promise<string> {
  const { issuer: _issuer, ...legacy } = await storedClient(secrets);
  void _issuer;
  await secrets.set(oauthKeys.registeredClient('calendar'), JSON.stringify(legacy));
  return legacy.client_id as string;
}

describe('SEP-2352 binding on the OAuth path', () => {
  it('a dynamically registered client is stored with its issuer stamp and reused without a warning', async () => {
    const secrets = new MemorySecretStore();
    const before = paths().oauthAs.counters.registrations;
    await authorizeOnce(secrets);
    expect(await storedClient(secrets)).toMatchObject({ issuer: paths().oauthAs.issuer });
    await authorizeOnce(secrets);
    expect(paths().oauthAs.counters.registrations).toBe(before + 1);
    expect(sep2352Warnings()).toEqual([]);
  });

  it('a registration stored without the stamp is stamped from the grant it served and reused, without a warning', async () => {
    const secrets = new MemorySecretStore();
    await authorizeOnce(secrets);
    const clientId = await unstamp(secrets);
    const before = paths().oauthAs.counters.registrations;
    await authorizeOnce(secrets);
    expect(paths().oauthAs.counters.registrations).toBe(before);
    expect(await storedClient(secrets)).toMatchObject({ client_id: clientId, issuer: paths().oauthAs.issuer });
    expect(sep2352Warnings()).toEqual([]);
  });

  it('a registration without the stamp and without a grant to tell its authorization server is not presented', async () => {
    const secrets = new MemorySecretStore();
    await authorizeOnce(secrets);
    const clientId = await unstamp(secrets);
    await secrets.delete(oauthKeys.serverRecord('calendar'));
    const before = paths().oauthAs.counters.registrations;
    await authorizeOnce(secrets);
    expect(paths().oauthAs.counters.registrations).toBe(before + 1);
    const client = await storedClient(secrets);
    expect(client.client_id).not.toBe(clientId);
    expect(client).toMatchObject({ issuer: paths().oauthAs.issuer });
    expect(sep2352Warnings()).toEqual([]);
  });
});
