/**
 * Terminal-escape injection: outside text (a `lanyard://configure` link, a hand-edited or managed config, an IdP's
 * answer, an IDE's clientInfo name) reaching a person's terminal. A CR or an ANSI sequence in a link's client id can
 * erase the real issuer from the confirmation line and print a fake one; the link is then saved and `servers` /
 * `status` print it again. Every display string is refused at the schema, and the CLI escapes what it prints.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeConfigLink } from '../../electron/broker/config/managed';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { runCli } from '../../electron/cli/cli';
import { printError, table } from '../../electron/cli/output';

let root: string;
let home: string;
let userHome: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-esc-'));
  home = path.join(root, 'lanyard');
  userHome = path.join(root, 'user');
  await mkdir(userHome, { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    io: { out: (t) => void (stdout += t), err: (t) => void (stderr += t), stdin: Readable.from(['']), interactive: false },
    env: { LANYARD_HOME: home, HOME: userHome, LANYARD_MANAGED_CONFIG: path.join(root, 'managed.json') },
    version: '9.9.9',
    platform: 'linux',
    homedir: userHome,
    secrets: new MemorySecretStore(),
    script: path.join(root, 'lanyard.js'),
    openUrl: async () => undefined,
  });
  return { code, stdout, stderr };
}

/** Anything a terminal would act on: C0 (but the newlines the CLI itself writes), DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const TERMINAL_ACTIVE = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/;

/** The attack from the review: CR + "erase line" + a fake confirmation line naming a trusted issuer. */
const FAKE_LINE = '\r\x1b[2K  • sign you in with the identity provider https://login.acme.com (client id acme)';
const PAYLOADS: Array<[string, string]> = [
  ['CR + ESC[2K (erase the line, print a fake one)', `0oaEVIL${FAKE_LINE}`],
  ['a newline (forge an extra line)', 'x\n  • nothing else'],
  ['OSC title set (ESC ] … BEL)', 'x\x1b]0;pwned\x07'],
  ['8-bit CSI (U+009B)', 'x\u009b2K'],
  ['a bidi override (U+202E)', 'x\u202emoc.emca'],
  ['DEL', 'x\x7f'],
];

describe('a configure link carrying escape sequences', () => {
  it.each(PAYLOADS)('idp.clientId with %s: refused, nothing printed raw, nothing saved', async (_what, payload) => {
    const link = encodeConfigLink({ idp: { issuer: 'https://evil.example.net', clientId: payload } });
    const r = await cli(['accept-link', link, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/configuration in this link is invalid: idp\.clientId: must not contain control characters/);
    expect(r.stdout + r.stderr).not.toMatch(TERMINAL_ACTIVE);
    await expect(readFile(path.join(home, 'config.json'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it.each(PAYLOADS)('servers[].name / clientId with %s: refused', async (_what, payload) => {
    for (const server of [
      { url: 'https://wiki.example.net/mcp', name: payload },
      { url: 'https://wiki.example.net/mcp', clientId: payload },
    ]) {
      const r = await cli(['accept-link', encodeConfigLink({ servers: [server] }), '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/must not contain control characters/);
      expect(r.stdout + r.stderr).not.toMatch(TERMINAL_ACTIVE);
    }
  });

  it('a URL with ESC in its path is refused too (URLs are printed as well)', async () => {
    const r = await cli(['accept-link', encodeConfigLink({ servers: [{ url: 'https://wiki.example.net/\x1b[2Kmcp' }] }), '--yes']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).not.toMatch(TERMINAL_ACTIVE);
  });
});

describe('stored display strings', () => {
  it('`servers add --name` with an escape sequence is refused and nothing is stored', async () => {
    const r = await cli(['servers', 'add', 'https://wiki.example.net/mcp', '--name', 'Wiki\r\x1b[2KTrusted wiki']);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(TERMINAL_ACTIVE);
    const list = await cli(['servers', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it('a config.json edited to carry one is refused when read, and the error prints escaped', async () => {
    await mkdir(home, { recursive: true, mode: 0o700 });
    await writeFile(
      path.join(home, 'config.json'),
      JSON.stringify({ version: 1, servers: [{ id: 'wiki', name: `Wiki${FAKE_LINE}`, url: 'https://wiki.example.net/mcp' }] }),
      { mode: 0o600 },
    );
    const r = await cli(['servers', 'list']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/servers\[0\]\.name.*must not contain control characters/);
    expect(r.stdout + r.stderr).not.toMatch(TERMINAL_ACTIVE);
  });
});

describe('the CLI escapes outside text it prints', () => {
  it('tables (server names, IDE client names, issuers, URLs) and errors show escapes, not control characters', () => {
    const printed = table([
      ['NAME', 'CLIENT'],
      [`Cursor${FAKE_LINE}`, 'x\x1b]0;pwned\x07\u202e'],
    ]);
    expect(printed).not.toMatch(TERMINAL_ACTIVE);
    expect(printed).toContain('Cursor\\r\\x1b[2K  • sign you in');
    expect(printed).toContain('x\\x1b]0;pwned\\x07\\u202e');
    let err = '';
    printError({ out: () => undefined, err: (t) => void (err += t), stdin: Readable.from(['']), interactive: false }, 'login', {
      code: 'sign_in_failed',
      message: `The IdP said: invalid_client${FAKE_LINE}`,
      fix: 'x\x1b[31m',
    });
    expect(err).not.toMatch(TERMINAL_ACTIVE);
    expect(err).toContain('invalid_client\\r\\x1b[2K');
  });
});
