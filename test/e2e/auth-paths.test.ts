/**
 * Every auth path end to end, as a user meets it: the built CLI (`lanyard serve`, `lanyard login`, `lanyard stdio`)
 * on a temporary LANYARD_HOME with the real OS keychain, the sandbox over HTTP — todo (Cross-App Access), wiki
 * (Cross-App Access that the IdP's policy refuses to alice), calendar (OAuth 2.1 at an OAuth-only authorization
 * server, Lanyard identified by its Client ID Metadata Document), search (an API key in the keychain), weather (no
 * authentication) — and Debian's Chromium as the system browser: a stand-in `xdg-open` on PATH records every URL the
 * broker opens, and the test opens it in Chromium and clicks through the IdP's sign-in page and the consent page.
 *
 * No server has a recorded path at the start: the broker's probe chooses each one at first use.
 *
 * Run inside the private keyring session:
 *   LANYARD_TEST_ROOT=$(mktemp -d) bash scripts/keyring-session.sh npx vitest run test/e2e/auth-paths.test.ts
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerSecretKey } from '../../electron/broker/auth/router';
import { openConfigStore } from '../../electron/broker/config/store';
import { readRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { keychainNamespace } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import { ErrorCodes } from '../../shared/errors';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { scanForSecrets } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');
// Built next to the real bundle (its npm imports resolve from the project's node_modules), never over it.
const cliDir = path.join(root, 'out', `cli-auth-paths-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-sync',
];

let sandbox: Sandbox;
let tempRoot: string;
let home: string;
let secrets: KeychainSecretStore;
let opensLog: string;
let binDir: string;
let port: number;
let serve: { child: ChildProcess; stderr: () => string } | undefined;
let browser: Browser;
let context: BrowserContext;
const clients: Client[] = [];
/** Everything the CLI processes printed (serve, login, stdio's stderr), for the leak scan. */
let printed = '';

const paths = () => sandbox.paths!;
const CALENDAR = 'Calendar (sandbox, OAuth)';
const AUTHORIZE_TEXT = new RegExp(`^Authorize ${CALENDAR.replace(/[()]/g, '\\$&')} in Lanyard`);

function env(): NodeJS.ProcessEnv {
  return { ...process.env, LANYARD_HOME: home, PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: p } = server.address() as { port: number };
      server.close(() => resolve(p));
    });
  });
}

/** Every URL the broker handed to the system browser so far. */
async function opened(): Promise<string[]> {
  return (await readFile(opensLog, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${serve ? `\nserve stderr:\n${serve.stderr()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startServe(): Promise<void> {
  const child = spawn(process.execPath, [cli, 'serve'], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    printed += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    printed += d.toString();
  });
  serve = { child, stderr: () => err };
  await waitFor('lanyard serve to start', async () => (/Stop with Ctrl-C/.test(out) ? true : child.exitCode !== null ? false : undefined));
  if (child.exitCode !== null) throw new Error(`lanyard serve exited: ${err}`);
}

async function stopServe(): Promise<void> {
  if (!serve || serve.child.exitCode !== null) return;
  const { child, stderr } = serve;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  const timer = new Promise((r) => setTimeout(r, 15_000, 'timeout'));
  if ((await Promise.race([exited, timer])) === 'timeout') {
    child.kill('SIGKILL');
    serve = undefined;
    throw new Error(`lanyard serve did not stop within 15 s of SIGINT\n${stderr()}`);
  }
  serve = undefined;
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      printed += stdout + stderr;
      resolve({ code, stdout, stderr });
    });
  });
}

/** An HTTP IDE on the aggregated endpoint, with the local token from the runtime file. */
async function httpIde(): Promise<Client> {
  const runtime = await readRuntimeFile(home);
  if (runtime.state !== 'running') throw new Error(`runtime file: ${runtime.state}`);
  const client = new Client({ name: 'e2e-http-ide', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${runtime.info.port}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${runtime.info.token}` } },
    }),
  );
  clients.push(client);
  return client;
}

/** A stdio IDE: `lanyard stdio` as Cursor or Claude Desktop starts it. */
async function stdioIde(): Promise<Client> {
  const client = new Client({ name: 'e2e-stdio-ide', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cli, 'stdio'],
    env: env() as Record<string, string>,
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d: Buffer) => (printed += d.toString()));
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function call(client: Client, name: string): Promise<{ isError: boolean; text: string; ms: number }> {
  const started = Date.now();
  const result = await client.callTool({ name, arguments: {} });
  const text = (result.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? '').join('\n');
  return { isError: result.isError === true, text, ms: Date.now() - started };
}

async function whoami(client: Client, server: string): Promise<{ sub: string; scopes: string[] }> {
  const r = await call(client, `${server}__whoami`);
  if (r.isError) throw new Error(`${server}__whoami failed: ${r.text}`);
  return JSON.parse(r.text) as { sub: string; scopes: string[] };
}

/** The authorization link in an "Authorize <server> in Lanyard" answer. */
function linkIn(text: string): string {
  // Taken as a user copies it, with no punctuation stripped: the link ends its line, nothing glued to it.
  const link = text.match(/https?:\/\/\S+/g)?.find((u) => u.startsWith(paths().oauthAs.authorizationEndpoint));
  if (!link) throw new Error(`no authorization link in: ${text}`);
  expect(text.split('\n').some((line) => line.trimEnd().endsWith(link))).toBe(true);
  return link;
}

/** The person at the consent page, in Chromium: picks alice (unless already signed in there) and presses Allow. */
async function consentInBrowser(link: string): Promise<void> {
  const page = await context.newPage();
  try {
    await page.goto(link);
    await page.getByRole('heading', { name: /^Authorize / }).waitFor();
    const alice = page.getByLabel('Alice Example (alice)');
    if (await alice.count()) await alice.check();
    await Promise.all([page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/), page.getByRole('button', { name: 'Allow' }).click()]);
  } finally {
    await page.close();
  }
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);

  sandbox = await startSandbox({ authPaths: true, idp: { idTokenTtlSeconds: 600 } });
  // The IdP's policy does not let alice reach wiki: her exchange for it is refused (invalid_target).
  const wikiAs = sandbox.server('wiki').as.issuer;
  sandbox.idp.policy.splice(
    0,
    sandbox.idp.policy.length,
    ...sandbox.idp.policy.filter((r) => !(r.user === 'alice' && r.audience === wikiAs)),
  );

  tempRoot = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-e2e-paths-'));
  home = path.join(tempRoot, 'home');
  binDir = path.join(tempRoot, 'bin');
  opensLog = path.join(tempRoot, 'opened.log');
  // The "system browser": records the URL; the test opens it in Chromium like a person would.
  await rm(binDir, { recursive: true, force: true });
  await mkdir(binDir, { recursive: true });
  await writeFile(path.join(binDir, 'xdg-open'), `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opensLog}'\n`);
  await chmod(path.join(binDir, 'xdg-open'), 0o755);

  port = await freePort();
  const others = sandbox.pathsConfig();
  openConfigStore(home).update(() => ({
    version: 1,
    idp: sandbox.lanyardConfig().idp,
    // No recorded path anywhere: the probe decides. The API-key server names its header (as `servers add --header` does).
    servers: [...sandbox.lanyardConfig().servers, ...others.servers.map(({ authPath: _chosenByProbe, ...s }) => s)],
    oauth: others.oauth,
    gateway: { port },
  }));
  secrets = new KeychainSecretStore({ service: keychainNamespace(home) });
  for (const [k, v] of Object.entries(sandbox.lanyardSecrets())) await secrets.set(k, v);
  await secrets.set(headerSecretKey(paths().header.id), paths().header.apiKey.value);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  context = await browser.newContext();
  await startServe();

  // Sign in once: `lanyard login` asks the broker, which opens the IdP's page; the person signs in as alice.
  const login = runCli(['login']);
  const idpUrl = await waitFor('the IdP sign-in page to be opened', async () =>
    (await opened()).find((u) => u.startsWith(sandbox.idp.authorizationEndpoint)),
  );
  const page = await context.newPage();
  await page.goto(idpUrl);
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill('alice-sandbox');
  await Promise.all([page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.close();
  expect(await login).toMatchObject({ code: 0, stdout: expect.stringMatching(/Signed in as alice@example\.com/) });
}, 120_000);

afterAll(async () => {
  const step = async (what: string, work: () => Promise<unknown>) => {
    const started = Date.now();
    await work().catch(() => undefined);
    if (Date.now() - started > 3_000) console.error(`afterAll: ${what} took ${Date.now() - started} ms`);
  };
  await step('closing the IDE clients', () => Promise.all(clients.map((c) => c.close())));
  await step('stopping lanyard serve', stopServe);
  await browser?.close().catch(() => undefined);
  await secrets?.deleteAll().catch(() => undefined);
  await sandbox?.stop();
  if (tempRoot) await rm(tempRoot, { recursive: true, force: true });
  await rm(cliDir, { recursive: true, force: true });
});

describe('every auth path through /mcp and lanyard stdio', () => {
  let http: Client;
  let stdio: Client;
  let firstLink: string;

  it('/mcp: todo by Cross-App Access, search with the key from the keychain, weather open; calendar answers at once "Authorize … in Lanyard" with the link', async () => {
    http = await httpIde();
    expect(await whoami(http, 'todo')).toMatchObject({ sub: '00u-alice' });
    expect(await whoami(http, 'search')).toMatchObject({ sub: 'api-key-holder' });
    expect(await whoami(http, 'weather')).toMatchObject({ sub: 'anonymous' });

    const calendar = await call(http, 'calendar__whoami');
    expect(calendar.isError).toBe(true);
    expect(calendar.text).toMatch(AUTHORIZE_TEXT);
    expect(calendar.text).toContain(ErrorCodes.AUTHORIZATION_REQUIRED);
    expect(calendar.ms).toBeLessThan(5_000);
    firstLink = linkIn(calendar.text);
    // Lanyard is identified by its Client ID Metadata Document, with PKCE and the server as RFC 8707 resource.
    const link = new URL(firstLink);
    expect(link.searchParams.get('client_id')).toBe(paths().clientMetadata.url);
    expect(link.searchParams.get('code_challenge_method')).toBe('S256');
    expect(link.searchParams.get('resource')).toBe(paths().oauth.mcp.url);
    // An IDE call never opens a browser: only the IdP sign-in was opened so far.
    expect((await opened()).filter((u) => u.startsWith(paths().oauthAs.issuer))).toEqual([]);

    // The probe chose each path and the config records it.
    const config = JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8')) as {
      servers: Array<{ id: string; authPath?: string }>;
    };
    const recorded = Object.fromEntries(config.servers.map((s) => [s.id, s.authPath]));
    expect(recorded).toMatchObject({ todo: 'xaa', calendar: 'oauth', search: 'header', weather: 'none' });
  }, 60_000);

  it('lanyard stdio, a second IDE session: the same answers, and the same link (one authorization under way, no new tab)', async () => {
    stdio = await stdioIde();
    expect(await whoami(stdio, 'todo')).toMatchObject({ sub: '00u-alice' });
    expect(await whoami(stdio, 'search')).toMatchObject({ sub: 'api-key-holder' });
    expect(await whoami(stdio, 'weather')).toMatchObject({ sub: 'anonymous' });
    const calendar = await call(stdio, 'calendar__whoami');
    expect(calendar.isError).toBe(true);
    expect(calendar.text).toMatch(AUTHORIZE_TEXT);
    expect(calendar.ms).toBeLessThan(5_000);
    expect(linkIn(calendar.text)).toBe(firstLink);
    expect((await opened()).filter((u) => u.startsWith(paths().oauthAs.issuer))).toEqual([]);
  }, 60_000);

  it('one consent in the browser serves both IDE sessions', async () => {
    const consentsBefore = paths().oauthAs.counters.consents;
    await consentInBrowser(firstLink);
    expect(paths().oauthAs.counters.consents).toBe(consentsBefore + 1);
    let last = '';
    const fromHttp = await waitFor('calendar to answer on /mcp', async () => {
      const r = await call(http, 'calendar__whoami');
      last = r.text;
      return r.isError ? undefined : (JSON.parse(r.text) as { sub: string });
    }).catch((e: unknown) => {
      throw new Error(`${String(e)}\nlast answer: ${last}`);
    });
    expect(fromHttp).toMatchObject({ sub: '00u-alice' });
    expect(await whoami(stdio, 'calendar')).toMatchObject({ sub: '00u-alice' });
    expect(paths().oauthAs.counters.codeGrants).toBe(1);
    expect(paths().oauthAs.counters.consents).toBe(consentsBefore + 1);
    // The authorization server offers DPoP, so Lanyard's tokens are bound to its key (RFC 9449) and sent with proofs.
    const schemes = new Set(paths().oauth.mcp.seenAuthorization.map((h) => h.split(' ')[0]));
    expect([...schemes]).toEqual(['DPoP']);
    // Bound means useless without the key: the same token replayed as Bearer, or as DPoP without a proof, is refused.
    const bound = paths().oauth.mcp.seenAuthorization.at(-1)!.slice('DPoP '.length);
    for (const authorization of [`Bearer ${bound}`, `DPoP ${bound}`]) {
      const replay = await fetch(paths().oauth.mcp.url, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
      expect(replay.status).toBe(401);
    }
  }, 60_000);

  it('a broker restart needs no browser: the grant comes back from the keychain', async () => {
    const opensBefore = (await opened()).length;
    // The IDE sessions end with the broker. (A stdio bridge left running would start a broker of its own if this one took
    // longer than its grace period to come back; test/integration/stdio-restart.test.ts covers a bridge across restarts.)
    await stdio.close();
    await http.close();
    await stopServe();
    await startServe();
    http = await httpIde();
    stdio = await stdioIde();
    expect(await whoami(http, 'calendar')).toMatchObject({ sub: '00u-alice' });
    expect(await whoami(stdio, 'calendar')).toMatchObject({ sub: '00u-alice' });
    expect(await whoami(http, 'todo')).toMatchObject({ sub: '00u-alice' });
    expect((await opened()).length).toBe(opensBefore);
    expect(paths().oauthAs.counters.codeGrants).toBe(1);
  }, 60_000);

  it('a revoked refresh token: the next call says "Authorize … in Lanyard" with a link at once; the others keep working; one consent fixes it', async () => {
    paths().oauthAs.revokeRefreshTokens('alice');
    await paths().oauthAs.revokeAccessTokens('alice');
    const calendar = await call(http, 'calendar__whoami');
    expect(calendar.isError).toBe(true);
    expect(calendar.text).toMatch(AUTHORIZE_TEXT);
    expect(calendar.ms).toBeLessThan(5_000);
    const link = linkIn(calendar.text);
    expect(await whoami(http, 'weather')).toMatchObject({ sub: 'anonymous' });
    expect(await whoami(http, 'todo')).toMatchObject({ sub: '00u-alice' });
    expect((await opened()).filter((u) => u.startsWith(paths().oauthAs.issuer))).toEqual([]);

    await consentInBrowser(link);
    const back = await waitFor('calendar to answer again', async () => {
      const r = await call(http, 'calendar__whoami');
      return r.isError ? undefined : (JSON.parse(r.text) as { sub: string });
    });
    expect(back).toMatchObject({ sub: '00u-alice' });
  }, 60_000);

  it('an API key the server rejects: KEY_REQUIRED with the fix, on /mcp and stdio; the others keep working', async () => {
    const apiKey = paths().header.apiKey;
    const stored = apiKey.value;
    apiKey.value = `sk-sandbox-rotated-${Date.now()}`;
    try {
      for (const client of [http, stdio]) {
        const search = await call(client, 'search__whoami');
        expect(search.isError).toBe(true);
        expect(search.text).toMatch(/rejected the stored key/);
        expect(search.text).toContain(ErrorCodes.KEY_REQUIRED);
        expect(search.text).toMatch(/set-key search --value-stdin/);
        expect(search.text.includes(stored)).toBe(false);
        expect(search.ms).toBeLessThan(5_000);
        expect(await whoami(client, 'weather')).toMatchObject({ sub: 'anonymous' });
      }
    } finally {
      apiKey.value = stored;
    }
  }, 60_000);

  it('Cross-App Access refused by the IdP policy: "blocked by your administrator" with its reason, never an OAuth or key fallback', async () => {
    const consents = paths().oauthAs.counters.consents;
    const opens = (await opened()).length;
    for (const client of [http, stdio]) {
      const wiki = await call(client, 'wiki__whoami');
      expect(wiki.isError).toBe(true);
      expect(wiki.text).toMatch(/blocked by your administrator/);
      expect(wiki.text).toMatch(/invalid_target/);
      expect(wiki.text).toContain(ErrorCodes.POLICY_BLOCKED);
      expect(wiki.text).not.toMatch(/Authorize /);
    }
    expect(paths().oauthAs.counters.consents).toBe(consents);
    expect((await opened()).length).toBe(opens);
    const config = JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8')) as {
      servers: Array<{ id: string; authPath?: string }>;
    };
    expect(config.servers.find((s) => s.id === 'wiki')?.authPath).toBe('xaa');
    expect(await whoami(http, 'todo')).toMatchObject({ sub: '00u-alice' });
  }, 60_000);

  it('Ctrl-C stops lanyard serve at once while an authorization waits for the user', async () => {
    paths().oauthAs.revokeRefreshTokens('alice');
    await paths().oauthAs.revokeAccessTokens('alice');
    expect((await call(http, 'calendar__whoami')).text).toMatch(AUTHORIZE_TEXT);
    // No bridge left to start a broker of its own once this one is gone.
    await stdio.close();
    const started = Date.now();
    await stopServe();
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 60_000);

  it('no authorization code, access or refresh token, nor the API key, in any file Lanyard wrote or anything it printed', async () => {
    const values = [...paths().oauthAs.issued, paths().header.apiKey.value];
    // Two consents (codes), their tokens, and refreshes: the scan has real material.
    expect(paths().oauthAs.issued.size).toBeGreaterThanOrEqual(6);
    expect(await scanForSecrets(home, values)).toEqual([]);
    // Counted, not listed: a failure must not print them either.
    expect(values.filter((v) => printed.includes(v) || printed.includes(v.slice(0, 24))).length).toBe(0);
    expect(printed).toMatch(/Lanyard .* is running/);
  });
});
