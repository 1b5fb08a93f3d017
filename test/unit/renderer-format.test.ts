/** renderer/src/model/format.ts: the wording people read for times, durations and hosts. */
import { describe, expect, it } from 'vitest';
import { expiryLabel, formatDuration, hostOf, issuerLabel, plural, relativeTime, shortDate } from '../../renderer/src/model/format';

const now = Date.UTC(2025, 2, 12, 10, 0, 0);
const min = 60_000;

describe('relativeTime', () => {
  it.each([
    [now - 5_000, 'just now'],
    [now + 5_000, 'in a few seconds'],
    [now - 5 * min, '5 min ago'],
    [now + 9 * min, 'in 9 min'],
    [now - 50_000, '1 min ago'],
    [now - 3 * 60 * min, '3 h ago'],
    [now + 2 * 60 * min, 'in 2 h'],
    [now - 26 * 60 * min, 'yesterday'],
    [now + 24 * 60 * min, 'tomorrow'],
    [now - 3 * 24 * 60 * min, '3 days ago'],
    [now - 30 * 24 * 60 * min, '10 Feb 2025'],
  ])('%s → %s', (at, text) => {
    expect(relativeTime(at, now)).toBe(text);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [84.6, '85 ms'],
    [1234, '1.2 s'],
    [12_345, '12 s'],
    [125_000, '2 min'],
    [-1, '—'],
    [Number.NaN, '—'],
  ])('%s ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('expiryLabel', () => {
  it('says when a token expires, or that it did, or that there is none', () => {
    expect(expiryLabel(now + 9 * min, now)).toBe('Expires in 9 min');
    expect(expiryLabel(now - 2 * min, now)).toBe('Expired 2 min ago');
    expect(expiryLabel(undefined, now)).toBe('No token yet');
  });
});

describe('hosts and issuers', () => {
  it('shows the host of a URL and the issuer without its scheme', () => {
    expect(hostOf('https://mcp.example.com:8443/mcp')).toBe('mcp.example.com:8443');
    expect(hostOf('not a url')).toBe('not a url');
    expect(issuerLabel('https://acme.okta.com/oauth2/default/')).toBe('acme.okta.com/oauth2/default');
    expect(issuerLabel('https://acme.okta.com')).toBe('acme.okta.com');
  });

  it('pluralizes and prints dates in UTC', () => {
    expect(plural(1, 'tool')).toBe('1 tool');
    expect(plural(3, 'tool')).toBe('3 tools');
    expect(plural(2, 'server needs', 'servers need')).toBe('2 servers need');
    expect(shortDate(Date.UTC(2024, 11, 31, 23, 59))).toBe('31 Dec 2024');
  });
});
