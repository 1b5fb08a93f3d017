/**
 * Reliability under faults through the whole broker: `startHeadless` against the sandbox, SDK clients as the IDEs on `/mcp`
 * (aggregated) and `/mcp/<id>` (relay), the real OS keychain. The engine-level faults (IdP 5xx → 200, stalled IdP,
 * rotation race, keychain loss) are in test/integration/engine-faults.test.ts; this file shows what an IDE sees when
 * a party fails, and that the broker recovers without the user doing anything.
 *
 * Time: the wall clock of the whole test process (Lanyard AND the sandbox parties) is faked and moved forward to
 * model a laptop that slept, exactly as a real sleep does — every party's clock jumps, monotonic timers do not.
 * Every wait is bounded; every fault is undone in afterEach.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/reliability/broker-faults.test.ts`
 */
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerOnSandbox, textOf, type BrokerOnSandbox } from './harness';

/** Short upstream bounds so a stalled server shows up in about a second (the product defaults are 30-120 s). */
const TIMEOUTS = { requestMs: 1_500, connectMs: 1_500, listBudgetMs: 1_000, relayResponseMs: 1_500 };

let sandbox: Sandbox;
let lanyard: BrokerOnSandbox;
let agg: Client;
let relay: Client;
/** Faults injected (reported at the end). */
const faults: string[] = [];

function jump(seconds: number): void {
  vi.setSystemTime(Date.now() + seconds * 1000);
}

async function callAgg(name: string, args: Record<string, unknown> = { text: 'hi' }): Promise<{ ok: boolean; text: string; ms: number }> {
  const started = performance.now();
  const result = await agg.callTool({ name, arguments: args });
  return { ok: !result.isError, text: textOf(result), ms: performance.now() - started };
}

async function callRelay(
  name: string,
  args: Record<string, unknown> = { text: 'hi' },
  client: Client = relay,
): Promise<{ ok: boolean; text: string; ms: number }> {
  const started = performance.now();
  try {
    const result = await client.callTool({ name, arguments: args });
    return { ok: !result.isError, text: textOf(result), ms: performance.now() - started };
  } catch (e) {
    return { ok: false, text: e instanceof Error ? e.message : String(e), ms: performance.now() - started };
  }
}

beforeAll(async () => {
  // Only Date is faked (timers stay real), and it keeps running: the test moves it forward like a wake from sleep.
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 }, accessTokenTtlSeconds: 300 });
  lanyard = await startBrokerOnSandbox(sandbox, { timeouts: TIMEOUTS });
  await lanyard.signIn('alice');
  agg = await lanyard.ide();
  relay = await lanyard.ide('todo');
});

afterEach(async () => {
  await sandbox.idp.setFault(null);
  for (const s of sandbox.servers) {
    await s.as.setFault(null);
    await s.mcp.setFault(null);
  }
});

afterAll(async () => {
  await lanyard?.dispose();
  await sandbox?.stop();
  vi.useRealTimers();
  console.log(`broker faults injected: ${faults.length} (${faults.join('; ')})`);
});

describe('the whole broker under faults', () => {
  it('the IdP down for a while: cached tokens keep serving, a clear error once they run out, recovery on its own', async () => {
    expect((await callAgg('todo__echo')).ok).toBe(true);
    expect((await callRelay('echo')).ok).toBe(true);
    const exchanges = sandbox.idp.counters.exchanges;

    await sandbox.idp.setFault('down');
    faults.push('IdP down');
    // Cached access tokens: every call works, on both endpoints, without the IdP.
    for (let i = 0; i < 5; i++) {
      expect((await callAgg('todo__echo', { text: `agg ${i}` })).text).toBe(`echo: agg ${i}`);
      expect((await callRelay('echo', { text: `relay ${i}` })).text).toBe(`echo: relay ${i}`);
    }
    // Inside the renewal margin the broker tries to renew, fails (IdP down) and keeps serving the still-valid token.
    jump(270);
    expect((await callAgg('todo__echo')).ok).toBe(true);
    expect((await callRelay('echo')).ok).toBe(true);

    // The access tokens run out: a clear, prompt error naming the IdP, on both endpoints.
    jump(60);
    const aggFail = await callAgg('todo__echo');
    expect(aggFail.ok).toBe(false);
    expect(aggFail.text).toMatch(/identity provider .* could not be reached/);
    expect(aggFail.text).toContain(`Lanyard error code: ${ErrorCodes.IDP_UNREACHABLE}`);
    expect(aggFail.ms).toBeLessThan(3_000);
    const relayFail = await callRelay('echo');
    expect(relayFail.ok).toBe(false);
    expect(relayFail.text).toMatch(/identity provider .* could not be reached|503/);
    expect(relayFail.ms).toBeLessThan(3_000);
    // The session itself survives an unreachable IdP.
    expect(lanyard.headless.broker.getEngine()!.identity.state.status).toBe('signed_in');

    // The IdP comes back: the next calls work, with nothing done by the user.
    await sandbox.idp.setFault(null);
    expect((await callAgg('todo__echo', { text: 'back' })).text).toBe('echo: back');
    expect((await callRelay('echo', { text: 'back' })).text).toBe('echo: back');
    expect(sandbox.idp.counters.exchanges).toBeGreaterThan(exchanges);
  });

  it('the IdP down past the ID token: refresh fails transiently, backs off, and recovers once the IdP is back', async () => {
    await sandbox.idp.setFault('down');
    faults.push('IdP down across ID-token expiry');
    jump(700); // access tokens and the ID token have all expired
    const failed = await callAgg('wiki__echo');
    expect(failed.ok).toBe(false);
    expect(failed.text).toContain(ErrorCodes.IDP_UNREACHABLE);
    expect(lanyard.headless.broker.getEngine()!.identity.state.status).toBe('signed_in');
    await sandbox.idp.setFault(null);
    // Within the backoff window the IdP is not hammered; after it, the refresh and the call go through.
    jump(35);
    const refreshes = sandbox.idp.counters.refreshes;
    expect((await callAgg('wiki__echo', { text: 'refreshed' })).text).toBe('echo: refreshed');
    expect(sandbox.idp.counters.refreshes).toBe(refreshes + 1);
  });

  it('an authorization server down when a new token is needed: a clear error, then recovery', async () => {
    expect((await callAgg('wiki__echo')).ok).toBe(true);
    const wiki = sandbox.server('wiki');
    await wiki.as.setFault('down');
    faults.push('wiki AS down + tokens revoked');
    // The server stops accepting the token (its AS restarted): Lanyard must mint a new one, and cannot.
    wiki.as.revokeAccessTokens();
    const failed = await callAgg('wiki__echo');
    expect(failed.ok).toBe(false);
    expect(failed.text).toMatch(/authorization server .* could not be reached/);
    expect(failed.text).toContain(ErrorCodes.AS_UNREACHABLE);
    expect(failed.ms).toBeLessThan(3_000);
    // An IDE connecting to /mcp/wiki now is refused at initialize, with the same reason and its fix.
    const refused = await lanyard.ide('wiki').then(
      () => 'connected',
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    expect(refused).toContain(ErrorCodes.AS_UNREACHABLE);
    expect(refused).toMatch(/could not be reached.*Fix:/);
    // Other servers are unaffected.
    expect((await callAgg('todo__echo', { text: 'todo fine' })).text).toBe('echo: todo fine');
    await wiki.as.setFault(null);
    expect((await callAgg('wiki__echo', { text: 'wiki back' })).text).toBe('echo: wiki back');
    const wikiRelay = await lanyard.ide('wiki');
    expect((await callRelay('echo', { text: 'wiki relay back' }, wikiRelay)).text).toBe('echo: wiki relay back');
  });

  it('an upstream killed and restarted mid-stream: the in-flight call fails promptly, the next one succeeds', async () => {
    const todo = sandbox.server('todo');
    const progressAgg: number[] = [];
    const progressRelay: number[] = [];
    const slow = { steps: 50, delayMs: 100 };
    const started = performance.now();
    const inflightAgg = agg.callTool({ name: 'todo__slow_count', arguments: slow }, { onprogress: (p) => progressAgg.push(p.progress) });
    const inflightRelay = relay
      .callTool({ name: 'slow_count', arguments: slow }, { onprogress: (p) => progressRelay.push(p.progress) })
      .then(
        (r) => ({ ok: !r.isError, text: textOf(r) }),
        (e: unknown) => ({ ok: false, text: e instanceof Error ? e.message : String(e) }),
      );
    await vi.waitFor(() => expect(progressAgg.length > 1 && progressRelay.length > 1).toBe(true), { timeout: 5_000, interval: 20 });
    // The server process dies: every session is gone, the port refuses connections.
    todo.mcp.dropSessions();
    await todo.mcp.setFault('down');
    const killedAt = performance.now();
    faults.push('todo MCP server killed mid-stream and restarted');

    const aggResult = await inflightAgg;
    const aggMs = performance.now() - killedAt;
    expect(aggResult.isError).toBe(true);
    expect(textOf(aggResult)).toMatch(/Server "todo" .*(closed|could not|refused|reset)/);
    const relayResult = await Promise.race([inflightRelay, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
    const relayMs = performance.now() - killedAt;
    expect(relayResult).not.toBe('hung');
    expect((relayResult as { ok: boolean }).ok).toBe(false);
    // The relay answers the broken call itself (the stream carried no event ids, so the IDE could not resume it).
    expect((relayResult as { text: string }).text).toMatch(/"todo" closed the response stream before answering/);
    // Promptly: long before the 5 s the call would have taken, and nowhere near a request timeout.
    expect(aggMs).toBeLessThan(3_000);
    expect(relayMs).toBeLessThan(3_000);
    console.log(
      `upstream killed mid-stream: /mcp error after ${aggMs.toFixed(0)} ms, /mcp/todo error after ${relayMs.toFixed(0)} ms (call started ${(killedAt - started).toFixed(0)} ms before the kill)`,
    );

    // The server restarts on the same port (with no memory of the old sessions).
    await todo.mcp.setFault(null);
    expect((await callAgg('todo__echo', { text: 'after restart' })).text).toBe('echo: after restart');
    // The relayed IDE session died with the server (404 on its old session id): the IDE re-initializes, as MCP says.
    const stale = await callRelay('echo', { text: 'old session' });
    expect(stale.ok).toBe(false);
    expect(stale.text).toMatch(/404|[Ss]ession not found/);
    const fresh = await lanyard.ide('todo');
    expect((await callRelay('echo', { text: 'after restart' }, fresh)).text).toBe('echo: after restart');
  });

  it('a stalled upstream: bounded timeouts on both endpoints, no hang, the others keep working', async () => {
    const todo = sandbox.server('todo');
    expect((await callAgg('todo__echo')).ok).toBe(true);
    const relayClient = await lanyard.ide('todo');
    await todo.mcp.setFault('stall');
    faults.push('todo MCP server stalled');
    const [aggResult, relayResult, wikiResult] = await Promise.all([
      callAgg('todo__echo', { text: 'stalled' }),
      callRelay('echo', { text: 'stalled' }, relayClient),
      // While todo hangs, wiki answers at once.
      callAgg('wiki__echo', { text: 'wiki meanwhile' }),
    ]);
    expect(wikiResult.text).toBe('echo: wiki meanwhile');
    expect(wikiResult.ms).toBeLessThan(1_000);
    expect(aggResult.ok).toBe(false);
    expect(aggResult.text).toMatch(/Server "todo" did not answer tools\/call within/);
    expect(relayResult.ok).toBe(false);
    expect(relayResult.text).toMatch(/did not answer within|504/);
    for (const r of [aggResult, relayResult]) {
      expect(r.ms).toBeGreaterThanOrEqual(1_400);
      expect(r.ms).toBeLessThan(5_000);
    }
    // A new IDE session meeting the stall: initialize is local, its first call is bounded too.
    const late = await lanyard.ide();
    const lateStarted = performance.now();
    const lateResult = await late.callTool({ name: 'todo__echo', arguments: { text: 'late' } });
    expect(lateResult.isError).toBe(true);
    expect(performance.now() - lateStarted).toBeLessThan(5_000);
    console.log(
      `stalled upstream: /mcp error after ${aggResult.ms.toFixed(0)} ms, /mcp/todo error after ${relayResult.ms.toFixed(0)} ms (bounds ${TIMEOUTS.requestMs}/${TIMEOUTS.relayResponseMs} ms)`,
    );

    await todo.mcp.setFault(null);
    expect((await callAgg('todo__echo', { text: 'unstalled' })).text).toBe('echo: unstalled');
    expect((await callRelay('echo', { text: 'unstalled' }, relayClient)).text).toBe('echo: unstalled');
  });

  it('a clock jump as after a night asleep: every expiry is re-checked, tokens renewed, calls just work', async () => {
    expect((await callAgg('todo__echo')).ok).toBe(true);
    const before = { refreshes: sandbox.idp.counters.refreshes, exchanges: sandbox.idp.counters.exchanges };
    jump(8 * 3600);
    faults.push('clock jump +8 h');
    expect((await callAgg('todo__echo', { text: 'good morning' })).text).toBe('echo: good morning');
    expect((await callAgg('wiki__echo', { text: 'good morning' })).text).toBe('echo: good morning');
    const fresh = await lanyard.ide('todo');
    expect((await callRelay('echo', { text: 'good morning' }, fresh)).text).toBe('echo: good morning');
    // The ID token was refreshed once (not once per caller) and each server got a new access token.
    expect(sandbox.idp.counters.refreshes).toBe(before.refreshes + 1);
    expect(sandbox.idp.counters.exchanges).toBeGreaterThanOrEqual(before.exchanges + 2);
    const status = await lanyard.headless.broker.control.status();
    expect(JSON.stringify(status)).not.toMatch(/expired/i);
  });
});
