/**
 * Token hygiene: a realistic session through the whole broker — sign in, calls through `/mcp` and
 * `/mcp/<id>` and `lanyard stdio`, a step-up, a re-mint after the server dropped a token, an IdP error, an AS outage,
 * a forced refresh (rotation), an API-key server (its key stored through the control API, injected, then rejected), the
 * dashboard's control API, `lanyard status`, `servers` and `doctor`, then sign-out —
 * and afterwards every file Lanyard wrote under its LANYARD_HOME and everything it printed (its logger, this process's
 * stdout/stderr, every child's output, every API and tool answer) is searched for every token and secret the sandbox
 * issued. Zero hits; the local token only in the 0600 runtime file while the broker runs. Plus: logging redacts by
 * construction, whatever a caller passes it.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/security/token-hygiene.test.ts`
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lanyardPaths } from '../../electron/broker/paths';
import { createLogger } from '../../electron/broker/util/log';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { API_KEY, startOtherServers } from '../helpers/auth-servers';
import { scanForSecrets, SecretRecorder } from '../helpers/engine';
import { startBrokerOnSandbox, textOf, type BrokerOnSandbox } from '../reliability/harness';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-hygiene-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let sandbox: Sandbox;
let lanyard: BrokerOnSandbox;
let others: Awaited<ReturnType<typeof startOtherServers>>;
/** A key the API-key server rejects: stored, sent, refused — and never printed either. */
const WRONG_KEY = 'sk-wrong-Qw3Er4Ty5Ui6Op7As8Df9';
const recorder = new SecretRecorder();
/** Everything printed or answered during the session, by where it came from. */
const printed: Array<{ source: string; text: string }> = [];
const restoreStreams: Array<() => void> = [];

function capture(source: string, text: string): void {
  printed.push({ source, text });
}

/** Every token and secret the session produced: all issued tokens, every client secret, and the local token. */
function secrets(): { issued: string[]; local: string } {
  return {
    issued: [...recorder.values, ...Object.values(sandbox.lanyardSecrets()), API_KEY, WRONG_KEY].filter((v) => v.length >= 8),
    local: lanyard.token,
  };
}

function hits(text: string, values: string[]): string[] {
  return values.filter((v) => text.includes(v) || text.includes(v.slice(0, 24))).map((v) => `${v.slice(0, 6)}…(${v.length})`);
}

/** Runs the built CLI against this home; resolves with its exit code, its output captured. */
function lanyardCli(args: string[], input?: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, LANYARD_HOME: lanyard.home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      capture(`lanyard ${args.join(' ')}`, out);
      resolve({ code, out });
    });
    if (input) {
      // One line at a time, each after the previous answer: an IDE speaking to `lanyard stdio`.
      void (async () => {
        for (const line of input) {
          const answers = (out.match(/\n/g) ?? []).length;
          child.stdin.write(`${line}\n`);
          if (line.includes('"id"'))
            for (let i = 0; i < 200 && (out.match(/\n/g) ?? []).length <= answers; i++) await new Promise((r) => setTimeout(r, 25));
        }
        child.stdin.end();
      })();
    } else child.stdin.end();
  });
}

async function api(method: string, body: unknown = {}): Promise<unknown> {
  const r = await lanyard.post(`/api/${method}`, body);
  const text = await r.text();
  capture(`/api/${method}`, text);
  return JSON.parse(text) as unknown;
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  // Everything this process prints from here on is part of what Lanyard printed.
  for (const [name, stream] of [
    ['stdout', process.stdout],
    ['stderr', process.stderr],
  ] as const) {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      capture(`process.${name}`, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    restoreStreams.push(() => (stream.write = original as typeof stream.write));
  }
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 3600 } });
  others = await startOtherServers();
  lanyard = await startBrokerOnSandbox(sandbox, { fetch: recorder.wrap(fetch) });
});

afterAll(async () => {
  try {
    if (!lanyard) return;
    // Clean shutdown: the runtime file goes, the activity log is flushed.
    await lanyard.stop();
    const { issued, local } = secrets();
    const fileHits = await scanForSecrets(lanyard.home, [...issued, local]);
    const logText = lanyard.logs.join('\n');
    const outputHits = printed.map((p) => ({ source: p.source, hits: hits(p.text, [...issued, local]) })).filter((p) => p.hits.length);
    const bytes = printed.reduce((n, p) => n + p.text.length, 0) + logText.length;
    for (const restore of restoreStreams.splice(0)) restore();
    console.log(
      `token hygiene: ${issued.length} issued tokens/secrets + the local token searched in every file under LANYARD_HOME and ${lanyard.logs.length} log lines + ${printed.length} outputs (${(bytes / 1024).toFixed(0)} KB): ${fileHits.length + outputHits.length + hits(logText, [...issued, local]).length} hits`,
    );
    expect(fileHits).toEqual([]);
    expect(hits(logText, [...issued, local])).toEqual([]);
    expect(outputHits).toEqual([]);
  } finally {
    for (const restore of restoreStreams.splice(0)) restore();
    await lanyard?.dispose();
    await others?.close();
    await sandbox?.stop();
    await rm(cliDir, { recursive: true, force: true });
  }
});

describe('token hygiene over a realistic session', () => {
  it('sign in, calls on every path, step-up, re-mint, faults, refresh, control API, CLI, sign-out', async () => {
    await lanyard.signIn('alice');
    const engine = lanyard.headless.broker.getEngine()!;

    // The aggregated endpoint: tools, a step-up (admin_purge needs todo:write), a prompt and a resource.
    const agg = await lanyard.ide(undefined, { name: 'hygiene-ide' });
    capture('/mcp tools/list', JSON.stringify(await agg.listTools()));
    for (const [name, args] of [
      ['todo__echo', { text: 'hello' }],
      ['wiki__echo', { text: 'hello' }],
      ['todo__whoami', {}],
      ['todo__admin_purge', {}],
    ] as const) {
      capture(`/mcp ${name}`, JSON.stringify(await agg.callTool({ name, arguments: args })));
    }
    expect(textOf(await agg.callTool({ name: 'todo__admin_purge', arguments: {} }))).toBe('admin_purge done on todo');
    capture('/mcp prompts/get', JSON.stringify(await agg.getPrompt({ name: 'todo__greet', arguments: { name: 'Ada' } })));
    capture('/mcp resources/read', JSON.stringify(await agg.readResource({ uri: 'sandbox://todo/readme' })));

    // The relay.
    const relay = await lanyard.ide('todo', { name: 'hygiene-relay' });
    capture('/mcp/todo tools/list', JSON.stringify(await relay.listTools()));
    capture('/mcp/todo echo', JSON.stringify(await relay.callTool({ name: 'echo', arguments: { text: 'relayed' } })));
    capture('/mcp/todo admin_purge', JSON.stringify(await relay.callTool({ name: 'admin_purge', arguments: {} })));

    // The server drops its tokens (401): one re-mint, the call succeeds.
    sandbox.server('todo').as.revokeAccessTokens();
    capture('/mcp after revoke', JSON.stringify(await agg.callTool({ name: 'todo__echo', arguments: { text: 're-minted' } })));

    // A forced refresh (the refresh token rotates), and an IdP answering 5xx to one.
    await engine.identity.getIdToken({ forceRefresh: true });
    await sandbox.idp.setFault('5xx');
    capture(
      'refresh during IdP 5xx',
      String(await engine.identity.getIdToken({ forceRefresh: true }).catch((e: unknown) => (e instanceof Error ? e.message : e))),
    );
    await sandbox.idp.setFault(null);

    // An AS outage while a new token is needed: the error travels to the IDE, the activity view and the log.
    const wiki = sandbox.server('wiki');
    await wiki.as.setFault('down');
    wiki.as.revokeAccessTokens();
    const failed = await agg.callTool({ name: 'wiki__echo', arguments: { text: 'x' } });
    capture('/mcp wiki during AS outage', JSON.stringify(failed));
    expect(failed.isError).toBe(true);
    await wiki.as.setFault(null);

    // stdio, aggregated and relayed.
    const init = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'hygiene-stdio', version: '1' } },
    });
    const initialized = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const stdioAgg = await lanyardCli(
      ['stdio'],
      [
        init,
        initialized,
        JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'wiki__echo', arguments: { text: 'via stdio' } } }),
      ],
    );
    expect(stdioAgg.out).toContain('echo: via stdio');
    const stdioRelay = await lanyardCli(
      ['stdio', '--server', 'todo'],
      [init, initialized, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } })],
    );
    expect(stdioRelay.out).toContain('00u-alice');

    // An API-key server: the key goes in through the control API (to the keychain only), is injected on /mcp, the relay
    // and stdio, then a wrong one is rejected by the server — the error, the status and the activity never quote either.
    await api('addServer', { url: `${others.origin}/key/mcp`, id: 'apikey', header: { name: 'X-Api-Key', value: API_KEY } });
    const withKey = await lanyard.ide(undefined, { name: 'hygiene-key-ide' });
    await withKey.listTools();
    expect(textOf(await withKey.callTool({ name: 'apikey__echo', arguments: { text: 'k' } }))).toBe('key: k');
    const keyRelay = await lanyard.ide('apikey', { name: 'hygiene-key-relay' });
    capture('/mcp/apikey echo', JSON.stringify(await keyRelay.callTool({ name: 'echo', arguments: { text: 'r' } })));
    const keyStdio = await lanyardCli(
      ['stdio', '--server', 'apikey'],
      [
        JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'hygiene-stdio', version: '1' } },
        }),
        JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
        JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'via stdio' } } }),
      ],
    );
    expect(keyStdio.out).toContain('key: via stdio');
    expect(others.received.some((r) => r.headers['x-api-key'] === API_KEY)).toBe(true);
    await api('setServerKey', { id: 'apikey', value: WRONG_KEY });
    const rejected = await withKey.callTool({ name: 'apikey__echo', arguments: { text: 'k' } });
    capture('/mcp apikey with a rejected key', JSON.stringify(rejected));
    expect(rejected.isError).toBe(true);
    expect(textOf(rejected)).toMatch(/rejected the stored key/);
    await api('setServerKey', { id: 'apikey', value: API_KEY });
    await api('testServer', { id: 'apikey' });

    // The dashboard's control API and the CLI's views of the same state.
    for (const method of ['status', 'listServers', 'recentActivity', 'getSettings']) await api(method);
    await api('listTools', { id: 'todo' });
    await api('testServer', { id: 'wiki' });
    expect((await lanyardCli(['status', '--json'])).code).toBe(0);
    await lanyardCli(['servers', 'list', '--json']);
    await lanyardCli(['doctor', '--json']);

    // While the broker runs, the local token is in exactly one file: the 0600 runtime file.
    const { issued, local } = secrets();
    expect(issued.length).toBeGreaterThanOrEqual(8); // ID tokens, refresh tokens, ID-JAGs, access tokens, client secrets
    expect(await scanForSecrets(lanyard.home, [local])).toEqual([lanyardPaths(lanyard.home).runtimeFile]);
    expect(await scanForSecrets(lanyard.home, issued)).toEqual([]);

    // Sign out: the refresh token is revoked at the IdP and the session and tokens leave the keychain.
    const revocations = sandbox.idp.counters.revocations;
    await api('signOut');
    expect(sandbox.idp.counters.revocations).toBe(revocations + 1);
    expect(await lanyard.secrets.get('idp:session')).toBeUndefined();
  }, 90_000);
});

describe('logging redacts by construction', () => {
  it('a token in a message, in a field of any name, nested, in an array or in an error comes out redacted', async () => {
    const opaque = randomBytes(32).toString('base64url');
    const jwt = await sandbox.idp.mintIdToken('alice');
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', sink: (l) => lines.push(l), scope: 'test' });
    log.info(`minted ${opaque} and ${jwt}`, {
      accessToken: opaque,
      note: `the token is ${opaque}`,
      header: `Bearer ${opaque}`,
      form: `grant_type=refresh_token&refresh_token=${opaque}&client_secret=${opaque}`,
      url: `http://127.0.0.1/callback?code=${opaque}&state=x`,
      nested: { deeper: { deepest: { token: opaque, text: opaque, list: [opaque] } } },
      list: [opaque, { idToken: jwt }, [jwt]],
      error: new Error(`refresh failed: ${opaque} ${jwt}`),
      far: { a: { b: { c: { d: { e: opaque } } } } },
    });
    log.child('nested').warn(jwt, { why: jwt });
    const text = lines.join('\n');
    expect(lines).toHaveLength(2);
    expect(text).not.toContain(opaque);
    expect(text).not.toContain(jwt);
    expect(text).not.toContain(opaque.slice(0, 24));
    expect(text).not.toContain(jwt.split('.')[1]!.slice(0, 24));
    // What a person needs is still there.
    expect(text).toContain('minted [redacted]');
    expect(text).toContain('"scope":"test"');
  });
});
