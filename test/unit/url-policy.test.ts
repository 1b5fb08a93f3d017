import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { classifyOAuthError } from '../../electron/broker/identity/oauth-errors';
import { MAX_SAME_ORIGIN_REDIRECTS, policyFetch } from '../../electron/broker/util/policy-fetch';
import { checkOutboundUrl, hostClass, safeOrigin } from '../../electron/broker/util/url-policy';

describe('hostClass', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['localhost', 'loopback'],
    ['LOCALHOST.', 'loopback'],
    ['app.localhost', 'loopback'],
    ['[::1]', 'loopback'],
    ['[::ffff:7f00:1]', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['[fe80::1]', 'link-local'],
    ['[febf::1]', 'link-local'],
    ['[::ffff:a9fe:a9fe]', 'link-local'],
    ['[64:ff9b::a9fe:a9fe]', 'link-local'],
    ['10.0.0.8', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['[fc00::1]', 'private'],
    ['[fd12:3456::1]', 'private'],
    ['0.0.0.0', 'unroutable'],
    ['[::]', 'unroutable'],
    ['224.0.0.1', 'unroutable'],
    ['255.255.255.255', 'unroutable'],
    ['[ff02::1]', 'unroutable'],
    ['[::7f00:1]', 'unroutable'],
    ['172.32.0.1', 'public'],
    ['8.8.8.8', 'public'],
    ['[2001:db8::1]', 'public'],
    ['mcp.example.com', 'public'],
    ['localhost.example.com', 'public'],
  ])('%s is %s', (host, cls) => {
    expect(hostClass(host)).toBe(cls);
  });

  it('judges what the URL parser made of odd IPv4 spellings, not the text', () => {
    expect(hostClass(new URL('http://0x7f.1/').hostname)).toBe('loopback');
    expect(hostClass(new URL('http://2852039166/').hostname)).toBe('link-local'); // 169.254.169.254 as one number
    expect(hostClass(new URL('http://[::ffff:169.254.169.254]/').hostname)).toBe('link-local');
    expect(hostClass(new URL('http://012.0.0.1/').hostname)).toBe('private'); // octal 10.0.0.1
  });
});

describe('checkOutboundUrl', () => {
  const publicServer = 'https://mcp.example.com/mcp';
  const loopbackServer = 'http://127.0.0.1:4100/mcp';
  const privateServer = 'https://10.1.2.3/mcp';
  const linkLocalServer = 'https://[fe80::5]/mcp';

  it.each([
    // [target, anchor (the configured server), allowed?, reason fragment]
    ['https://as.example.com/.well-known/x', publicServer, true, ''],
    ['https://93.184.216.34/token', publicServer, true, ''],
    ['http://as.example.com/token', publicServer, false, 'does not use https'],
    ['http://169.254.169.254/latest/meta-data/', publicServer, false, 'link-local'],
    ['https://169.254.169.254/', publicServer, false, 'link-local'],
    ['https://[fe80::1]/', publicServer, false, 'link-local'],
    ['https://10.0.0.8/', publicServer, false, 'private network'],
    ['https://192.168.1.1/', publicServer, false, 'private network'],
    ['https://[fd00::1]/', publicServer, false, 'private network'],
    ['http://127.0.0.1:8080/admin', publicServer, false, 'loopback'],
    ['https://localhost/', publicServer, false, 'loopback'],
    ['https://0.0.0.0/', publicServer, false, 'unroutable'],
    ['ftp://as.example.com/', publicServer, false, 'ftp:'],
    ['file:///etc/passwd', loopbackServer, false, 'file:'],
    ['https://user:pw@as.example.com/', publicServer, false, 'user name or password'],
    ['not a url', publicServer, false, 'not a valid URL'],
    // A loopback server (the sandbox, a local dev setup): its AS on another loopback port is fine, over http too.
    ['http://127.0.0.1:4200/.well-known/oauth-authorization-server', loopbackServer, true, ''],
    ['http://localhost:4300/token', loopbackServer, true, ''],
    ['https://as.example.com/', loopbackServer, true, ''],
    ['http://as.example.com/', loopbackServer, false, 'does not use https'],
    ['http://169.254.169.254/', loopbackServer, false, 'link-local'],
    ['https://10.0.0.8/', loopbackServer, false, 'private network'],
    // A server on a private network may use its neighbours, over https only.
    ['https://10.9.9.9/token', privateServer, true, ''],
    ['http://10.9.9.9/token', privateServer, false, 'does not use https'],
    ['https://169.254.169.254/', privateServer, false, 'link-local'],
    ['https://127.0.0.1/', privateServer, false, 'loopback'],
    ['https://[fe80::6]/', linkLocalServer, true, ''],
    ['https://10.0.0.1/', linkLocalServer, false, 'private network'],
  ])('%s from %s → %s', (target, anchor, ok, reason) => {
    const verdict = checkOutboundUrl(target, anchor);
    expect(verdict.ok).toBe(ok);
    if (!verdict.ok) expect(verdict.reason).toContain(reason);
  });
});

describe('safeOrigin', () => {
  it('shows scheme, host and port only: never a path, query or credentials', () => {
    expect(safeOrigin('https://user:pw@as.example.com:8443/p?token=abc#x')).toBe('https://as.example.com:8443');
    expect(safeOrigin('nope')).toBe('an invalid URL');
  });
});

/** A base fetch that answers from a table and records every URL: nothing here touches the network. */
function scripted(answers: Record<string, () => Response>) {
  const calls: Array<{ url: string; redirect: RequestInit['redirect'] }> = [];
  const base = async (input: string | URL, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, redirect: init?.redirect });
    const answer = answers[url];
    if (!answer) throw new Error(`test: unexpected request to ${url}`);
    return answer();
  };
  return { base, calls };
}

const redirect =
  (location: string, status = 302) =>
  () =>
    new Response(null, { status, headers: { location } });
const ok = () => new Response('{}', { status: 200 });
const refuse = (target: URL, reason: string) => new Error(`refused ${target.origin}: ${reason}`);

describe('policyFetch', () => {
  const anchor = 'https://mcp.example.com/mcp';

  it('refuses a forbidden URL before calling the network at all', async () => {
    const { base, calls } = scripted({});
    const guarded = policyFetch(base, { anchor, refuse });
    await expect(guarded('http://169.254.169.254/latest/meta-data/')).rejects.toThrow(/refused http:\/\/169\.254\.169\.254: .*link-local/);
    await expect(guarded('http://127.0.0.1:9000/admin')).rejects.toThrow(/loopback/);
    expect(calls).toEqual([]);
  });

  it('always asks the network layer not to follow redirects', async () => {
    const { base, calls } = scripted({ 'https://mcp.example.com/a': ok });
    await policyFetch(base, { anchor, refuse })('https://mcp.example.com/a');
    expect(calls).toEqual([{ url: 'https://mcp.example.com/a', redirect: 'manual' }]);
  });

  it('follows same-origin redirects itself, within a bound', async () => {
    const { base, calls } = scripted({
      'https://mcp.example.com/a': redirect('/b'),
      'https://mcp.example.com/b': redirect('https://mcp.example.com/c', 308),
      'https://mcp.example.com/c': ok,
    });
    const response = await policyFetch(base, { anchor, refuse })('https://mcp.example.com/a');
    expect(response.status).toBe(200);
    expect(calls.map((c) => c.url)).toEqual(['https://mcp.example.com/a', 'https://mcp.example.com/b', 'https://mcp.example.com/c']);

    const loop = scripted({ 'https://mcp.example.com/loop': redirect('/loop') });
    const last = await policyFetch(loop.base, { anchor, refuse })('https://mcp.example.com/loop');
    expect(last.status).toBe(302);
    expect(loop.calls).toHaveLength(MAX_SAME_ORIGIN_REDIRECTS + 1);
  });

  it('refuses a redirect to another origin, even an allowed one, and never requests it', async () => {
    const { base, calls } = scripted({
      'https://mcp.example.com/a': redirect('http://169.254.169.254/latest/meta-data/'),
      'https://mcp.example.com/b': redirect('https://other.example.com/x', 307),
    });
    const guarded = policyFetch(base, { anchor, refuse });
    await expect(guarded('https://mcp.example.com/a')).rejects.toThrow(/refused http:\/\/169\.254\.169\.254: .*another origin/);
    await expect(guarded('https://mcp.example.com/b', { redirect: 'manual' })).rejects.toThrow(/refused https:\/\/other\.example\.com/);
    expect(calls.map((c) => c.url)).toEqual(['https://mcp.example.com/a', 'https://mcp.example.com/b']);
  });

  it("hands a same-origin redirect back to a caller that follows them itself (redirect: 'manual'), and never follows a POST", async () => {
    const { base, calls } = scripted({
      'https://mcp.example.com/a': redirect('/b'),
      'https://mcp.example.com/token': redirect('/t2', 307),
    });
    const guarded = policyFetch(base, { anchor, refuse });
    expect((await guarded('https://mcp.example.com/a', { redirect: 'manual' })).status).toBe(302);
    expect((await guarded('https://mcp.example.com/token', { method: 'POST', body: 'x=1' })).status).toBe(307);
    expect(calls.map((c) => c.url)).toEqual(['https://mcp.example.com/a', 'https://mcp.example.com/token']);
  });
});

describe('a refusal inside openid-client', () => {
  it('keeps the refusal\'s own words instead of openid-client\'s "something went wrong"', () => {
    const refusal = new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      'The identity provider X sends Lanyard to http://169.254.169.254, …',
      'fix',
    );
    const failure = classifyOAuthError(new oidc.ClientError('something went wrong', { cause: refusal }));
    expect(failure).toEqual({ kind: 'client', summary: refusal.message });
  });
});
