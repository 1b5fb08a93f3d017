/** electron/main/deep-link.ts: `lanyard://` links are untrusted input; only known "open" links are accepted. */
import { describe, expect, it } from 'vitest';
import { findDeepLinkArg, parseDeepLink } from '../../electron/main/deep-link';

describe('parseDeepLink', () => {
  it.each([
    ['lanyard://open', 'home'],
    ['lanyard://open/', 'home'],
    ['lanyard://open/servers', 'servers'],
    ['LANYARD://open/connect', 'connect'],
    ['lanyard:open/activity', 'activity'],
  ])('accepts %s as the %s page', (raw, page) => {
    expect(parseDeepLink(raw)).toEqual({ action: 'open', page });
  });

  it.each([
    'lanyard://signout',
    'lanyard://open/settings/../../etc',
    'lanyard://open/unknown-page',
    'lanyard://open/servers/extra',
    'https://open/servers',
    'javascript:alert(1)',
    'lanyard',
    '',
    `lanyard://open/${'a'.repeat(3000)}`,
  ])('ignores %j', (raw) => {
    expect(parseDeepLink(raw)).toBeNull();
  });
});

describe('findDeepLinkArg', () => {
  it("finds the link among a second instance's arguments", () => {
    expect(findDeepLinkArg(['/opt/Lanyard/lanyard', '--no-sandbox', 'lanyard://open/servers'])).toBe('lanyard://open/servers');
  });

  it('returns undefined when there is none', () => {
    expect(findDeepLinkArg(['/opt/Lanyard/lanyard', '--hidden', 'https://example.com'])).toBeUndefined();
  });
});
