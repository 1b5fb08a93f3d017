/**
 * Short-lived tokens against the real sandbox: an IdP that issues 20-second ID tokens and authorization servers that
 * issue 20-second access tokens (both shorter than the fixed renewal margins Lanyard once used). Every renewal of an
 * access token costs an ID-JAG against the IdP's monthly quota, so a margin that does not fit the lifetime turns each
 * call into a refresh and an ID-JAG. Counts are taken at the parties (IdP token endpoint, resource AS).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ID_JAG_WARNING_THRESHOLD, UsageCounter } from '../../electron/broker/exchange/usage';
import type { TokenEvent } from '../../electron/broker/exchange/token-service';
import { IDP_SECRET_KEYS } from '../../electron/broker/identity/identity-session';
import { lanyardPaths } from '../../electron/broker/paths';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';

const LIFETIME_S = 20;

describe('short-lived ID and access tokens (20 s each)', () => {
  let sandbox: Sandbox;
  let cleanup: () => Promise<void>;
  let engine: EngineHarness;
  const events: TokenEvent[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: LIFETIME_S }, accessTokenTtlSeconds: LIFETIME_S });
    let home: string;
    ({ home, cleanup } = await tempHome());
    // Earlier this month alice used one ID-JAG short of the warning threshold at todo's resource app.
    const earlier = new UsageCounter(lanyardPaths(home).stateFile);
    const app = { idpIssuer: sandbox.idp.issuer, subject: '00u-alice', audience: sandbox.server('todo').as.issuer };
    for (let i = 1; i < ID_JAG_WARNING_THRESHOLD; i++) await earlier.increment('todo', app);
    engine = await createEngine(sandbox, { home });
    engine.tokens.onEvent((e) => events.push(e));
  });
  afterAll(async () => {
    await engine?.secrets.deleteAll();
    await sandbox?.stop();
    await cleanup?.();
  });

  const counts = () => ({
    refreshes: sandbox.idp.counters.refreshes,
    idJags: sandbox.idp.counters.exchanges,
    grants: sandbox.server('todo').as.counters.grants,
  });
  const since = (before: ReturnType<typeof counts>) => {
    const now = counts();
    return { refreshes: now.refreshes - before.refreshes, idJags: now.idJags - before.idJags, grants: now.grants - before.grants };
  };

  it('sign-in and three tool calls cost one ID-JAG and at most one refresh', async () => {
    await engine.signIn('alice');
    const before = counts();
    const client = new Client({ name: 'short-lifetimes', version: '1' }, { capabilities: {} });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(sandbox.server('todo').mcp.url), { fetch: engine.tokens.authorizedFetch('todo') }),
    );
    try {
      for (const text of ['one', 'two', 'three']) await client.callTool({ name: 'echo', arguments: { text } });
    } finally {
      await client.close();
    }
    const used = since(before);
    const seen = `refreshes=${used.refreshes} idJags=${used.idJags} grants=${used.grants}`;
    expect(used.idJags, seen).toBe(1);
    expect(used.grants, seen).toBe(1);
    expect(used.refreshes, seen).toBeLessThanOrEqual(1);
    expect(engine.tokens.status('todo').idJagsThisMonth).toBe(ID_JAG_WARNING_THRESHOLD);
    // That one reached the warning threshold: one warning event, and the status says what to do.
    expect(events.filter((e) => e.type === 'quota_warning')).toHaveLength(1);
    expect(engine.tokens.status('todo').idJagQuotaWarning).toMatchObject({ count: ID_JAG_WARNING_THRESHOLD, fix: expect.any(String) });
  });

  it('renews each token once per lifetime: served most of its life, renewed once near its end, then served again', async () => {
    const first = await engine.tokens.getToken('todo');
    const before = counts();
    // Lanyard's clock is set relative to the token's expiry (the parties keep real time), so load cannot shift the test.
    const at = (msBeforeExpiry: number) => (engine.clock.offsetMs += first!.expiresAt - msBeforeExpiry - engine.clock.now());
    // Six seconds into its life: still served, nothing renewed.
    at((LIFETIME_S - 6) * 1000);
    // (Compared as booleans so a failure never prints a token.)
    for (let i = 0; i < 3; i++) expect((await engine.tokens.getToken('todo'))?.accessToken === first?.accessToken).toBe(true);
    expect(since(before)).toEqual({ refreshes: 0, idJags: 0, grants: 0 });
    // Near the end of its life: one renewal of each token for any number of calls.
    at(2000);
    const renewed = await Promise.all(Array.from({ length: 5 }, () => engine.tokens.getToken('todo')));
    for (let i = 0; i < 3; i++) await engine.tokens.getToken('todo');
    expect(new Set(renewed.map((t) => t?.accessToken)).size).toBe(1);
    expect(renewed[0]?.accessToken === first?.accessToken).toBe(false);
    expect(since(before)).toEqual({ refreshes: 1, idJags: 1, grants: 1 });
    // Past the threshold, no second warning this month.
    expect(events.filter((e) => e.type === 'quota_warning')).toHaveLength(1);
  });

  it('a session stored before the issue time was recorded is read with the lifetime from its ID token', async () => {
    const raw = JSON.parse((await engine.secrets.get(IDP_SECRET_KEYS.session))!) as Record<string, unknown>;
    expect(typeof raw.idTokenIssuedAt).toBe('number');
    delete raw.idTokenIssuedAt;
    await engine.secrets.set(IDP_SECRET_KEYS.session, JSON.stringify(raw));
    const before = counts();
    const restarted = await engine.restart();
    await restarted.identity.getIdToken();
    await restarted.tokens.getToken('todo');
    expect(since(before)).toEqual({ refreshes: 0, idJags: 0, grants: 0 });
  });
});
