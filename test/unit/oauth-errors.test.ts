import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import type { CustomFetch } from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { redeemIdJag } from '../../electron/broker/exchange/redeem';
import { TokenService } from '../../electron/broker/exchange/token-service';
import { UsageCounter } from '../../electron/broker/exchange/usage';
import { exchangeIdTokenForIdJag } from '../../electron/broker/identity/id-jag';
import { IdpClient } from '../../electron/broker/identity/idp-client';
import { IdentitySession } from '../../electron/broker/identity/identity-session';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';

/**
 * OAuth refusals reach Lanyard's code as fields on the LanyardError (`oauth.error`, `.description`, `.status`), read
 * from the party's answer, so decisions (retry with a fresh grant, "sign in again") never depend on message wording.
 */
let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await startSandbox();
});
afterAll(async () => {
  await sandbox?.stop();
});

/** A well-formed ID-JAG for the todo AS, signed by a key the AS does not trust: it must refuse it with invalid_grant. */
async function forgedIdJag(): Promise<string> {
  const todo = sandbox.server('todo');
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT({ client_id: todo.asClient.clientId, resource: todo.mcp.resource, scope: 'todo:read', jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'RS256', typ: 'oauth-id-jag+jwt', kid: 'foreign' })
    .setIssuer(sandbox.idp.issuer)
    .setSubject('alice')
    .setAudience(todo.as.issuer)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('should have been refused'),
    (e: unknown) => e as LanyardError,
  );

describe('authorization server refusals (leg 2)', () => {
  it('an invalid_grant from the sandbox AS is carried as oauth.error with its status and description', async () => {
    const todo = sandbox.server('todo');
    const error = await rejection(
      redeemIdJag({
        tokenEndpoint: todo.as.tokenEndpoint,
        asIssuer: todo.as.issuer,
        idJag: await forgedIdJag(),
        credentials: todo.asClient,
        fetch,
        serverId: 'todo',
      }),
    );
    expect(error).toBeInstanceOf(LanyardError);
    expect(error.code).toBe(ErrorCodes.AS_GRANT_REJECTED);
    expect(error.oauth).toEqual({ error: 'invalid_grant', status: 400, description: expect.stringMatching(/signature/) });
    expect(error.serverId).toBe('todo');
  });

  it('a wrong client secret answered 401 with a Basic challenge still yields the OAuth error from the body', async () => {
    const todo = sandbox.server('todo');
    const error = await rejection(
      redeemIdJag({
        tokenEndpoint: todo.as.tokenEndpoint,
        asIssuer: todo.as.issuer,
        idJag: await forgedIdJag(),
        credentials: { ...todo.asClient, clientSecret: 'not-the-secret' },
        fetch,
      }),
    );
    expect(error.code).toBe(ErrorCodes.AS_CLIENT_REJECTED);
    expect(error.oauth).toEqual({ error: 'invalid_client', status: 401, description: 'client secret is wrong' });
  });

  it('an error_description is outside text: a token in it never reaches the error', async () => {
    const jwtLike = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
    const server: Server = createServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_grant', error_description: `assertion ${jwtLike} was already used` }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const error = await rejection(
        redeemIdJag({
          tokenEndpoint: `${origin}/token`,
          asIssuer: origin,
          idJag: 'x',
          credentials: { clientId: 'c', method: 'none' },
          fetch,
        }),
      );
      expect(error.oauth).toMatchObject({ error: 'invalid_grant', status: 400, description: 'assertion [redacted-jwt] was already used' });
      expect(`${error.message} ${error.fix}`).not.toContain('eyJ');
    } finally {
      server.close();
    }
  });
});

describe('identity provider refusals (leg 1)', () => {
  const client = (timeoutSeconds = 5) => {
    const config = sandbox.lanyardConfig();
    return new IdpClient(
      { issuer: config.idp.issuer, clientId: config.idp.clientId, clientAuth: config.idp.clientAuth, scopes: ['openid'] },
      new MemorySecretStore(sandbox.lanyardSecrets()),
      fetch as CustomFetch,
      timeoutSeconds,
    );
  };
  const request = () => ({ audience: sandbox.server('todo').as.issuer, resource: sandbox.server('todo').mcp.resource, serverId: 'todo' });

  it("the IdP's invalid_grant is a field; it is retried once with a refreshed ID token, then reported", async () => {
    const asked: Array<boolean | undefined> = [];
    const error = await rejection(
      exchangeIdTokenForIdJag(
        {
          client: client(),
          issuer: sandbox.idp.issuer,
          getIdToken: async (options) => {
            asked.push(options?.forceRefresh);
            return 'not-an-id-token';
          },
        },
        request(),
      ),
    );
    expect(error.code).toBe(ErrorCodes.EXCHANGE_DENIED);
    expect(error.oauth).toMatchObject({ error: 'invalid_grant', status: 400 });
    expect(asked).toEqual([undefined, true]);
  });

  it('an IdP that stalls during the exchange is a transient IDP_UNREACHABLE, not a refusal', async () => {
    const idp = client(1);
    await idp.config(); // discovered while the IdP still answers
    await sandbox.idp.setFault('stall');
    try {
      const error = await rejection(
        exchangeIdTokenForIdJag({ client: idp, issuer: sandbox.idp.issuer, getIdToken: async () => 'x' }, request()),
      );
      expect(error.code).toBe(ErrorCodes.IDP_UNREACHABLE);
      expect(error.transient).toBe(true);
      expect(error.message).toMatch(/timed out/);
    } finally {
      await sandbox.idp.setFault(null);
    }
  });
});

describe('decisions taken on the fields', () => {
  it('an ID-JAG the AS refuses with invalid_grant (already used) is replaced by one fresh ID-JAG, once', async () => {
    const config = sandbox.lanyardConfig();
    const secrets = new MemorySecretStore(sandbox.lanyardSecrets());
    const todo = sandbox.server('todo');
    // A middlebox that retried the first token request: the AS accepts the copy, and Lanyard gets the answer to its
    // replay, the sandbox AS's real "invalid_grant: jti already used".
    let replayed = false;
    const replayingFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      if (!replayed && String(input) === todo.as.tokenEndpoint) {
        replayed = true;
        await (await fetch(input, init)).body?.cancel();
      }
      return fetch(input, init);
    }) as typeof fetch;
    const identity = new IdentitySession({
      settings: { ...config.idp, scopes: ['openid', 'profile', 'email', 'offline_access'] },
      secrets,
      fetch: replayingFetch,
      openUrl: async (url) => {
        await fetch(await sandbox.idp.completeLogin(url, 'alice'));
      },
    });
    await identity.signIn({ timeoutMs: 10_000 });
    const tokens = new TokenService({
      identity,
      secrets,
      usage: new UsageCounter(undefined),
      getServer: (id) => config.servers.find((s) => s.id === id),
      fetch: replayingFetch,
    });
    const replaysBefore = todo.as.counters.rejections['invalid_grant:replay'] ?? 0;
    const exchangesBefore = sandbox.idp.counters.exchanges;

    await expect(tokens.getToken('todo')).resolves.toMatchObject({ accessToken: expect.any(String) });
    expect(replayed).toBe(true);
    expect(todo.as.counters.rejections['invalid_grant:replay']).toBe(replaysBefore + 1);
    expect(sandbox.idp.counters.exchanges).toBe(exchangesBefore + 2);
  });
});
