import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { ManagedConfigSchema, mergeManagedConfig } from '../../electron/broker/config/managed';
import { LanyardConfigSchema } from '../../electron/broker/config/schema';
import { LanyardError } from '../../electron/broker/errors';
import { createNetworkStack } from '../../electron/broker/net/network-stack';
import { decideProxy, displayProxy, proxySettings } from '../../electron/broker/net/proxy-rules';
import { loadTrust } from '../../electron/broker/net/trust';

const decide = (url: string, env: Record<string, string>, config = {}) => decideProxy(new URL(url), proxySettings(env, config));
const PROXY = { HTTPS_PROXY: 'http://proxy.corp:3128' };

describe('proxy selection (HTTPS_PROXY / HTTP_PROXY / NO_PROXY)', () => {
  it('sends https through HTTPS_PROXY and http through HTTP_PROXY; https falls back to HTTP_PROXY', () => {
    expect(decide('https://idp.example.com/', PROXY)).toMatchObject({ kind: 'proxy', source: 'HTTPS_PROXY' });
    expect(decide('http://idp.example.com/', PROXY)).toEqual({ kind: 'direct', reason: 'no_proxy_set' });
    const httpOnly = decide('https://idp.example.com/', { HTTP_PROXY: 'proxy.corp:8080' });
    expect(httpOnly.kind === 'proxy' && httpOnly.proxy.href).toBe('http://proxy.corp:8080/');
  });

  it('lower case wins over upper case, and network.proxy over both', () => {
    const lower = decide('https://a.example/', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' });
    expect(lower.kind === 'proxy' && lower.proxy.host).toBe('lower:1');
    const config = decide('https://a.example/', { HTTPS_PROXY: 'http://upper:2' }, { proxy: 'http://configured:3' });
    expect(config).toMatchObject({ kind: 'proxy', source: 'network.proxy' });
    expect(config.kind === 'proxy' && config.proxy.host).toBe('configured:3');
  });

  it('loopback is always direct, whatever the settings say', () => {
    for (const url of [
      'http://127.0.0.1:4000/mcp',
      'http://localhost:1/',
      'http://[::1]:2/',
      'https://app.localhost/',
      'http://127.8.9.10/',
    ])
      expect(decide(url, { ...PROXY, HTTP_PROXY: 'http://proxy.corp:3128' })).toEqual({ kind: 'direct', reason: 'loopback' });
  });

  it('NO_PROXY: *, suffixes (with or without a leading dot or *.), exact IPs, ports', () => {
    const env = (noProxy: string) => ({ ...PROXY, NO_PROXY: noProxy });
    expect(decide('https://anything.example/', env('*'))).toMatchObject({ kind: 'direct', reason: 'no_proxy', rule: '*' });
    for (const rule of ['corp.example', '.corp.example', '*.corp.example']) {
      expect(decide('https://mcp.corp.example/', env(rule))).toMatchObject({ kind: 'direct', reason: 'no_proxy' });
      expect(decide('https://corp.example/', env(rule))).toMatchObject({ kind: 'direct', reason: 'no_proxy' });
      expect(decide('https://notcorp.example/', env(rule)).kind).toBe('proxy');
    }
    expect(decide('https://10.1.2.3/', env('10.1.2.3')).kind).toBe('direct');
    expect(decide('https://10.1.2.4/', env('10.1.2.3')).kind).toBe('proxy');
    expect(decide('https://mcp.corp.example:8443/', env('mcp.corp.example:8443')).kind).toBe('direct');
    expect(decide('https://mcp.corp.example/', env('mcp.corp.example:8443')).kind).toBe('proxy');
    expect(decide('https://mcp.corp.example/', env('mcp.corp.example:443')).kind).toBe('direct');
    expect(decide('https://b.example/', env('a.example, b.example  c.example')).kind).toBe('direct');
    // network.noProxy replaces the environment's list.
    expect(decide('https://mcp.corp.example/', env('corp.example'), { noProxy: ['other.example'] }).kind).toBe('proxy');
  });

  it('shows a proxy without its credentials', () => {
    expect(displayProxy(new URL('http://user:secret@proxy.corp:3128'))).toBe('http://proxy.corp:3128');
  });
});

describe('network config', () => {
  it('refuses proxy credentials in the config file (they belong in HTTPS_PROXY)', () => {
    expect(LanyardConfigSchema.safeParse({ version: 1, network: { proxy: 'http://proxy.corp:3128' } }).success).toBe(true);
    expect(LanyardConfigSchema.safeParse({ version: 1, network: { proxy: 'http://u:p@proxy.corp:3128' } }).success).toBe(false);
    expect(LanyardConfigSchema.safeParse({ version: 1, network: { proxy: 'socks5://proxy.corp:1080' } }).success).toBe(false);
  });

  it("the managed configuration's network settings win field by field over the user's", () => {
    const user = LanyardConfigSchema.parse({ version: 1, network: { proxy: 'http://mine:1', caFile: '/home/me/ca.pem' } });
    const managed = ManagedConfigSchema.parse({ network: { proxy: 'http://corp:3128', noProxy: ['.corp.example'] } });
    expect(mergeManagedConfig(user, managed).network).toEqual({
      proxy: 'http://corp:3128',
      noProxy: ['.corp.example'],
      caFile: '/home/me/ca.pem',
    });
  });
});

describe('CA bundle', () => {
  it('an unreadable or empty caFile is a CONFIG_INVALID naming the file, and every hop reports it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lanyard-net-unit-'));
    try {
      const empty = path.join(dir, 'empty.pem');
      await writeFile(empty, 'not a certificate\n');
      for (const caFile of [path.join(dir, 'missing.pem'), empty]) {
        let error: unknown;
        try {
          loadTrust({ caFile, env: {} });
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(LanyardError);
        expect((error as LanyardError).code).toBe(ErrorCodes.CONFIG_INVALID);
        expect((error as LanyardError).message).toContain(caFile);
        const stack = createNetworkStack({ env: {}, settings: () => ({ caFile }) });
        await expect(stack.fetch('https://idp.example.com/')).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
        await stack.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the stack follows a changed proxy variable or network setting on the next request, and is reused while neither changes', async () => {
    const env: Record<string, string | undefined> = {};
    let settings: { proxy?: string } = {};
    const stack = createNetworkStack({ env, settings: () => settings });
    const url = new URL('https://idp.example.com/');
    try {
      expect((await stack.route(url)).decision.kind).toBe('direct');
      env.HTTPS_PROXY = 'http://proxy.corp:3128';
      expect((await stack.route(url)).decision).toMatchObject({ kind: 'proxy', source: 'HTTPS_PROXY' });
      const reused = stack.upstream(url);
      expect(stack.upstream(url)?.agent ?? 'send').toBe(reused?.agent ?? 'send');
      settings = { proxy: 'http://configured:3' };
      expect((await stack.route(url)).decision).toMatchObject({ kind: 'proxy', source: 'network.proxy' });
      delete env.HTTPS_PROXY;
      settings = {};
      expect((await stack.route(url)).decision.kind).toBe('direct');
    } finally {
      await stack.close();
    }
  });

  it('without caFile nothing is pinned: Node default roots (and NODE_EXTRA_CA_CERTS, reported) apply', () => {
    const trust = loadTrust({ env: {} });
    expect(trust.secureContext).toBeUndefined();
    expect(trust.sources).toEqual([]);
  });
});
