/**
 * Short-lived tokens against the real sandbox: an IdP that issues 20-second ID tokens and authorization servers that
 * issue 20-second access tokens (both shorter than the fixed renewal margins Lanyard once used). Every renewal of an
 * access token costs an ID-JAG against the IdP's monthly quota, so a margin that does not fit the lifetime turns each
 * call into a refresh and an ID-JAG. Counts are taken at the parties (IdP token endpoint, resource AS).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';

const LIFETIME_S = 20;

describe('short-lived ID and access tokens (20 s each)', () => {
  let sandbox: Sandbox;
  let cleanup: () => Promise<void>;
  let engine: EngineHarness;

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: LIFETIME_S }, accessTokenTtlSeconds: LIFETIME_S });
    let home: string;
    ({ home, cleanup } = await tempHome());
    engine = await createEngine(sandbox, { home });
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
    expect(engine.tokens.status('todo').idJagsThisMonth).toBe(1);
  });

  it('renews each token once per lifetime: served most of its life, renewed once near its end, then served again', async () => {
    const first = await engine.tokens.getToken('todo');
    const before = counts();
    // A while later (on Lanyard's clock; the parties keep real time): still served, nothing renewed.
    engine.clock.advance(6);
    // (Compared as booleans so a failure never prints a token.)
    for (let i = 0; i < 3; i++) expect((await engine.tokens.getToken('todo'))?.accessToken === first?.accessToken).toBe(true);
    expect(since(before)).toEqual({ refreshes: 0, idJags: 0, grants: 0 });
    // Near the end of its life: one renewal of each token for any number of calls.
    engine.clock.advance(LIFETIME_S - 8);
    const renewed = await Promise.all(Array.from({ length: 5 }, () => engine.tokens.getToken('todo')));
    for (let i = 0; i < 3; i++) await engine.tokens.getToken('todo');
    expect(new Set(renewed.map((t) => t?.accessToken)).size).toBe(1);
    expect(renewed[0]?.accessToken === first?.accessToken).toBe(false);
    expect(since(before)).toEqual({ refreshes: 1, idJags: 1, grants: 1 });
  });
});
