/**
 * electron/main/deep-link.ts: `lanyard://` links are untrusted input from any page or program. Only known links are
 * accepted, and they only ever show something (a page, a prefilled form).
 */
import { describe, expect, it } from 'vitest';
import { findDeepLinkArg, navigationFor, parseDeepLink } from '../../electron/main/deep-link';

describe('parseDeepLink: open', () => {
  it.each([
    ['lanyard://open', 'home'],
    ['lanyard://open/', 'home'],
    ['lanyard://open/servers', 'servers'],
    ['LANYARD://open/connect', 'connect'],
    ['lanyard:open/activity', 'activity'],
    ['lanyard://open/settings', 'settings'],
    ['lanyard://open/add-server', 'add-server'],
  ])('accepts %s as the %s page', (raw, page) => {
    expect(parseDeepLink(raw)).toEqual({ action: 'open', page });
  });

  it.each([
    'lanyard://signout',
    'lanyard://sign-out',
    'lanyard://open/settings/../../etc',
    'lanyard://open/unknown-page',
    'lanyard://open/servers/extra',
    'lanyard://open/servers?x=1',
    'lanyard://open/servers#frag',
    'lanyard://user:pw@open/servers',
    'https://open/servers',
    'javascript:alert(1)',
    'lanyard',
    '',
    `lanyard://open/${'a'.repeat(3000)}`,
  ])('ignores %j', (raw) => {
    expect(parseDeepLink(raw)).toBeNull();
  });
});

describe('parseDeepLink: add-server', () => {
  const enc = encodeURIComponent;

  it('accepts an https URL, with an optional name and client id', () => {
    expect(parseDeepLink(`lanyard://add-server?url=${enc('https://mcp.linear.app/mcp')}`)).toEqual({
      action: 'add-server',
      url: 'https://mcp.linear.app/mcp',
    });
    expect(
      parseDeepLink(`lanyard://add-server?url=${enc('https://mcp.linear.app/mcp')}&name=${enc(' Linear ')}&client_id=0oa123abc`),
    ).toEqual({
      action: 'add-server',
      url: 'https://mcp.linear.app/mcp',
      name: 'Linear',
      clientId: '0oa123abc',
    });
  });

  it('accepts http only for this machine (the sandbox, local servers)', () => {
    expect(parseDeepLink(`lanyard://add-server?url=${enc('http://127.0.0.1:4100/mcp')}`)).toMatchObject({
      url: 'http://127.0.0.1:4100/mcp',
    });
    expect(parseDeepLink(`lanyard://add-server?url=${enc('http://mcp.example.com/mcp')}`)).toBeNull();
  });

  it.each([
    ['no url', 'lanyard://add-server'],
    ['javascript url', `lanyard://add-server?url=${enc('javascript:alert(1)')}`],
    ['file url', `lanyard://add-server?url=${enc('file:///etc/passwd')}`],
    ['credentials in the url', `lanyard://add-server?url=${enc('https://u:p@mcp.example.com/mcp')}`],
    ['a fragment', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp#x')}`],
    ['spaces', `lanyard://add-server?url=${enc(' https://mcp.example.com/mcp')}`],
    ['an unknown parameter', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp')}&client_secret=s`],
    ['a repeated parameter', `lanyard://add-server?url=${enc('https://a.example.com/mcp')}&url=${enc('https://b.example.com/mcp')}`],
    ['a bidi override in the name', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp')}&name=${enc('Li\u202Eraenil')}`],
    ['markup in the name', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp')}&name=${enc('<img src=x>')}`],
    ['a control character in the name', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp')}&name=${enc('a\nb')}`],
    ['a long name', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp')}&name=${'n'.repeat(81)}`],
    ['a client id with spaces', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp')}&client_id=${enc('a b')}`],
    ['a client id with quotes', `lanyard://add-server?url=${enc('https://mcp.example.com/mcp')}&client_id=${enc('a"b')}`],
    ['an extra path segment', `lanyard://add-server/now?url=${enc('https://mcp.example.com/mcp')}`],
  ])('refuses %s', (_why, raw) => {
    expect(parseDeepLink(raw)).toBeNull();
  });

  it('becomes a navigation to the prefilled Add-server page (never an add)', () => {
    const link = parseDeepLink(`lanyard://add-server?url=${enc('https://mcp.linear.app/mcp')}&client_id=abc`);
    expect(link && navigationFor(link)).toEqual({ page: 'add-server', addServer: { url: 'https://mcp.linear.app/mcp', clientId: 'abc' } });
    expect(navigationFor({ action: 'open', page: 'activity' })).toEqual({ page: 'activity' });
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
