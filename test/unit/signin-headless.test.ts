/** The pieces of sign-in without a browser that need no IdP: reading a pasted redirect, and telling that no browser can open. */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callbackFromPaste } from '../../electron/broker/identity/pasted-redirect';
import { browserUnavailable } from '../../electron/cli/open-url';

const expectation = {
  redirectUri: 'http://127.0.0.1:53682/callback',
  issuer: 'https://acme.okta.com',
  state: 'state-of-this-attempt',
  finishedStates: new Set(['state-of-an-old-attempt']),
};

describe('callbackFromPaste', () => {
  it('rebuilds the callback on the attempt’s own redirect URI from a full address, a bare query, quotes and all', () => {
    for (const pasted of [
      'http://127.0.0.1:53682/callback?code=abc123&state=state-of-this-attempt&iss=https%3A%2F%2Facme.okta.com',
      '  "http://localhost:9999/callback?code=abc123&state=state-of-this-attempt"  ',
      '?code=abc123&state=state-of-this-attempt',
      'code=abc123&state=state-of-this-attempt',
      'http://127.0.0.1:53682/callback#code=abc123&state=state-of-this-attempt',
    ]) {
      const url = callbackFromPaste(pasted, expectation);
      expect(`${url.origin}${url.pathname}`).toBe('http://127.0.0.1:53682/callback');
      expect(Object.fromEntries(url.searchParams)).toEqual({
        code: 'abc123',
        state: 'state-of-this-attempt',
        iss: 'https://acme.okta.com',
      });
    }
  });

  it('passes an error answer of this attempt through (the grant turns it into the IdP’s refusal)', () => {
    const url = callbackFromPaste('error=access_denied&state=state-of-this-attempt', expectation);
    expect(url.searchParams.get('error')).toBe('access_denied');
  });

  it('refuses garbage, the link itself, another attempt, a replay and another issuer — never echoing the paste', () => {
    const cases: Array<[string, RegExp]> = [
      ['hello', /not the address the browser ended on/],
      ['x'.repeat(9000), /not the address the browser ended on/],
      ['http://127.0.0.1:1/callback?code=abc 123&state=state-of-this-attempt', /not the address/],
      ['http://127.0.0.1:1/callback?code=abc123', /not the address/],
      ['https://acme.okta.com/oauth2/v1/authorize?client_id=x&response_type=code&state=state-of-this-attempt', /the sign-in link itself/],
      ['code=abc123&state=someone-else', /another sign-in attempt/],
      ['code=abc123&state=state-of-an-old-attempt', /already finished; a sign-in code works only once/],
      ['code=abc123&state=state-of-this-attempt&iss=https%3A%2F%2Fevil.example', /another identity provider/],
    ];
    for (const [pasted, message] of cases) {
      let error: unknown;
      try {
        callbackFromPaste(pasted, expectation);
      } catch (e) {
        error = e;
      }
      expect(String((error as Error | undefined)?.message)).toMatch(message);
      expect(JSON.stringify(error)).not.toContain('abc123');
      expect((error as Error).message).not.toContain('abc123');
    }
  });
});

describe('browserUnavailable', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanyard-opener-'));
    for (const name of ['xdg-open', 'wslview']) {
      await writeFile(path.join(dir, name), '#!/bin/sh\n');
      await chmod(path.join(dir, name), 0o755);
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('Linux without a display, or without xdg-open, has no browser; with both it may; other systems always do', () => {
    expect(browserUnavailable({ PATH: dir }, 'linux')).toMatch(/no display/);
    expect(browserUnavailable({ DISPLAY: ':0', PATH: '/nonexistent' }, 'linux')).toMatch(/xdg-open is not installed/);
    expect(browserUnavailable({ WAYLAND_DISPLAY: 'wayland-0', PATH: dir }, 'linux')).toBeUndefined();
    // WSL opens the Windows browser without a display of its own.
    expect(browserUnavailable({ WSL_DISTRO_NAME: 'Ubuntu', PATH: dir }, 'linux')).toBeUndefined();
    expect(browserUnavailable({ WSL_DISTRO_NAME: 'Ubuntu', PATH: '/nonexistent' }, 'linux')).toMatch(/wslview or xdg-open/);
    // LANYARD_NO_BROWSER keeps its meaning: print the link, wait for the loopback redirect.
    expect(browserUnavailable({ LANYARD_NO_BROWSER: '1' }, 'linux')).toBeUndefined();
    expect(browserUnavailable({}, 'darwin')).toBeUndefined();
    expect(browserUnavailable({}, 'win32')).toBeUndefined();
  });
});
