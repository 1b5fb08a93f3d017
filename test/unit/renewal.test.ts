import { describe, expect, it } from 'vitest';
import { TokenCache, type CachedToken } from '../../electron/broker/exchange/token-cache';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import {
  ACCESS_TOKEN_RENEWAL,
  ID_TOKEN_RENEWAL,
  needsRenewal,
  renewalMarginMs,
  type RenewalPolicy,
} from '../../electron/broker/util/renewal';

const S = 1000;

/** Calls every `stepMs` for `spanMs`, renewing when the policy says so; returns how many renewals happened. */
function simulate(lifetimeMs: number, policy: RenewalPolicy, spanMs: number, stepMs: number): number {
  let token = { issuedAt: 0, expiresAt: lifetimeMs };
  let renewals = 0;
  for (let now = 0; now <= spanMs; now += stepMs) {
    if (needsRenewal(token, now, policy)) {
      token = { issuedAt: now, expiresAt: now + lifetimeMs };
      renewals++;
    }
  }
  return renewals;
}

describe('renewal policy', () => {
  it('keeps the old margins for long-lived tokens (an hour-long ID token: 2 min; access token: 1 min)', () => {
    expect(renewalMarginMs(3600 * S, ID_TOKEN_RENEWAL)).toBe(120 * S);
    expect(renewalMarginMs(3600 * S, ACCESS_TOKEN_RENEWAL)).toBe(60 * S);
    expect(renewalMarginMs(600 * S, ID_TOKEN_RENEWAL)).toBe(120 * S);
    expect(renewalMarginMs(300 * S, ACCESS_TOKEN_RENEWAL)).toBe(60 * S);
  });

  it('takes a quarter of a shorter lifetime, bounded below by a few seconds', () => {
    expect(renewalMarginMs(120 * S, ACCESS_TOKEN_RENEWAL)).toBe(30 * S);
    expect(renewalMarginMs(100 * S, ID_TOKEN_RENEWAL)).toBe(25 * S);
    expect(renewalMarginMs(20 * S, ACCESS_TOKEN_RENEWAL)).toBe(5 * S);
    expect(renewalMarginMs(12 * S, ID_TOKEN_RENEWAL)).toBe(5 * S);
  });

  it('never puts a fresh token inside its own margin: very short tokens are served for most of their life', () => {
    // 10 s: the 5 s floor leaves 5 s of service, the guaranteed minimum.
    expect(renewalMarginMs(10 * S, ACCESS_TOKEN_RENEWAL)).toBe(5 * S);
    // 6 s: the 5 s floor would leave 1 s; it is served for three quarters of its life instead.
    expect(renewalMarginMs(6 * S, ACCESS_TOKEN_RENEWAL)).toBe(1.5 * S);
    expect(renewalMarginMs(4 * S, ACCESS_TOKEN_RENEWAL)).toBe(1 * S);
    expect(renewalMarginMs(1 * S, ID_TOKEN_RENEWAL)).toBe(250);
    for (const policy of [ACCESS_TOKEN_RENEWAL, ID_TOKEN_RENEWAL]) {
      for (let lifetime = 100; lifetime <= 7200 * S; lifetime = Math.ceil(lifetime * 1.3)) {
        const margin = renewalMarginMs(lifetime, policy);
        expect(margin).toBeGreaterThan(0);
        expect(margin).toBeLessThan(lifetime);
        expect(needsRenewal({ issuedAt: 0, expiresAt: lifetime }, 0, policy)).toBe(false);
      }
    }
    expect(renewalMarginMs(0, ACCESS_TOKEN_RENEWAL)).toBe(0);
    expect(needsRenewal({ issuedAt: 0, expiresAt: 0 }, 0, ACCESS_TOKEN_RENEWAL)).toBe(true);
  });

  it('renews at most once per lifetime however often it is called (a 20 s token called every 100 ms for 10 minutes)', () => {
    // Each token is served for its lifetime minus the margin (15 s): 600 s / 15 s = 40 renewals, one per token.
    expect(simulate(20 * S, ACCESS_TOKEN_RENEWAL, 600 * S, 100)).toBe(40);
    expect(simulate(20 * S, ID_TOKEN_RENEWAL, 600 * S, 100)).toBe(40);
    for (const lifetime of [2 * S, 7 * S, 20 * S, 90 * S, 3600 * S]) {
      // Every token is served for at least 5 s, or three quarters of its life when it lives less than that.
      const served = Math.min(5 * S, lifetime * (1 - ACCESS_TOKEN_RENEWAL.fraction));
      expect(simulate(lifetime, ACCESS_TOKEN_RENEWAL, 3600 * S, 50)).toBeLessThanOrEqual(Math.floor((3600 * S) / served));
    }
  });

  it('renews inside the margin and once expired', () => {
    const token = { issuedAt: 0, expiresAt: 20 * S };
    expect(needsRenewal(token, 14_999, ACCESS_TOKEN_RENEWAL)).toBe(false);
    expect(needsRenewal(token, 15 * S, ACCESS_TOKEN_RENEWAL)).toBe(true);
    expect(needsRenewal(token, 30 * S, ACCESS_TOKEN_RENEWAL)).toBe(true);
  });
});

describe('token cache margins', () => {
  const token = (obtainedAt: number, lifetimeS: number): CachedToken => ({
    accessToken: 'sandbox-value',
    tokenType: 'Bearer',
    obtainedAt,
    expiresAt: obtainedAt + lifetimeS * S,
    scopes: [],
  });

  it('serves a 20 s token for 15 s, not zero (the fixed 60 s margin renewed it on every call)', async () => {
    let now = 1_000_000;
    const cache = new TokenCache({ secrets: new MemorySecretStore(), now: () => now });
    await cache.put('k', token(now, 20));
    expect(await cache.get('k')).toBeDefined();
    now += 14 * S;
    expect(await cache.get('k')).toBeDefined();
    now += 1 * S;
    expect(await cache.get('k')).toBeUndefined();
    // Still usable while a renewal is impossible.
    expect(cache.peek('k')).toBeDefined();
  });

  it('reads records from the keychain written before, and keeps the one-minute margin for long-lived tokens', async () => {
    let now = 1_000_000;
    const secrets = new MemorySecretStore();
    await secrets.set(
      'token:old',
      JSON.stringify({ accessToken: 'sandbox-value', tokenType: 'Bearer', expiresAt: now + 3600 * S, scopes: [] }),
    );
    await secrets.set('token:hour', JSON.stringify(token(now, 3600)));
    const cache = new TokenCache({ secrets, now: () => now });
    now += 3540 * S - 1;
    expect(await cache.get('old')).toBeDefined();
    expect(await cache.get('hour')).toBeDefined();
    now += 1;
    expect(await cache.get('old')).toBeUndefined();
    expect(await cache.get('hour')).toBeUndefined();
  });
});
