/**
 * The `lanyard` CLI in-process (runCli with injected I/O, a temporary LANYARD_HOME and an in-memory keychain): help per
 * command, exit codes, errors that say what to do, and the commands that work without a running broker.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeConfigLink } from '../../electron/broker/config/managed';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { unsealCredential } from '../../electron/broker/secrets/secret-store';
import { runCli, usage } from '../../electron/cli/cli';
import type { CliDeps } from '../../electron/cli/context';

let root: string;
let home: string;
let userHome: string;
let secrets: MemorySecretStore;
let script: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-cli-'));
  home = path.join(root, 'lanyard');
  userHome = path.join(root, 'user');
  await mkdir(userHome, { recursive: true });
  secrets = new MemorySecretStore();
  script = path.join(root, 'pkg', 'out', 'cli', 'lanyard.js');
  await mkdir(path.dirname(script), { recursive: true });
  await writeFile(script, '');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  opened: string[];
}

async function cli(
  argv: string[],
  options: { stdin?: string; env?: Record<string, string>; confirm?: boolean; interactive?: boolean; stdinIsTty?: boolean } = {},
): Promise<Run> {
  let stdout = '';
  const stdin = Readable.from([options.stdin ?? '']);
  if (options.stdinIsTty) Object.assign(stdin, { isTTY: true });
  let stderr = '';
  const opened: string[] = [];
  const deps: CliDeps = {
    io: {
      out: (t) => void (stdout += t),
      err: (t) => void (stderr += t),
      stdin,
      interactive: options.interactive ?? false,
    },
    env: { LANYARD_HOME: home, HOME: userHome, LANYARD_MANAGED_CONFIG: path.join(root, 'managed.json'), ...options.env },
    version: '9.9.9',
    platform: 'linux',
    homedir: userHome,
    secrets,
    script,
    openUrl: async (url) => void opened.push(url),
    ...(options.confirm !== undefined ? { confirm: async () => options.confirm! } : {}),
  };
  const code = await runCli(argv, deps);
  return { code, stdout, stderr, opened };
}

describe('help and usage errors', () => {
  it('prints the usage with every command, exit 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(usage());
    for (const command of [
      'serve',
      'stdio',
      'login',
      'logout',
      'status',
      'servers',
      'connect',
      'disconnect',
      'import',
      'doctor',
      'accept-link',
      'token',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${command}\\s+\\S`, 'm'));
    }
    expect(r.stdout).toMatch(/Exit codes: 0 ok, 1 failed, 2 usage error, 3 sign-in or confirmation needed, 4 Lanyard not running/);
    expect((await cli([])).stdout).toBe(usage());
    expect((await cli(['-v'])).stdout).toBe('9.9.9\n');
  });

  it.each(['serve', 'stdio', 'login', 'logout', 'status', 'servers', 'connect', 'disconnect', 'import', 'doctor', 'accept-link', 'token'])(
    'has help for %s',
    async (command) => {
      for (const argv of [
        [command, '--help'],
        ['help', command],
      ]) {
        const r = await cli(argv);
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^Usage: lanyard ${command}`));
      }
    },
  );

  it('unknown command, unknown option, missing argument: exit 2 with what to do', async () => {
    const unknown = await cli(['frobnicate']);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
    const option = await cli(['status', '--bogus']);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/Unknown option '--bogus'/);
    expect(option.stderr).toMatch(/Usage: lanyard status/);
    const ide = await cli(['connect', 'notepad']);
    expect(ide).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/unknown IDE 'notepad'.\n {2}→ Name one of: cursor, vscode, claude-code, claude-desktop, windsurf/),
    });
    expect((await cli(['servers', 'remove'])).code).toBe(2);
    expect((await cli(['servers', 'add', 'https://x.dev/mcp', '--client-auth', 'magic', '--client-id', 'a'])).code).toBe(2);
  });

  it('a relative LANYARD_HOME is refused with the fix', async () => {
    const r = await cli(['servers', 'list'], { env: { LANYARD_HOME: 'relative/dir' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/LANYARD_HOME must be an absolute path.*\n {2}→ Set LANYARD_HOME to an absolute directory/);
  });
});

describe('servers, without a running broker', () => {
  it('add, list, disable, enable, remove — written to config.json, the secret to the keychain only', async () => {
    const add = await cli(
      [
        'servers',
        'add',
        'https://mcp.linear.app/mcp',
        '--client-id',
        'lanyard-at-linear',
        '--client-auth',
        'client_secret_post',
        '--client-secret-stdin',
        '--scope',
        'read',
        '--scope',
        'write',
        '--no-probe',
      ],
      { stdin: 's3cret-value\n' },
    );
    expect(add).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        /^Added server linear \(Linear\.app\) → https:\/\/mcp\.linear\.app\/mcp; its client secret is in the keychain\./,
      ),
    });
    // Stored bound to the client it was given for (see secrets/secret-store.ts sealCredential).
    expect(unsealCredential((await secrets.get('server:linear:client_secret'))!)).toEqual({
      value: 's3cret-value',
      boundTo: { clientId: 'lanyard-at-linear' },
    });
    const file = await readFile(path.join(home, 'config.json'), 'utf8');
    expect(file).not.toContain('s3cret');
    expect(JSON.parse(file).servers).toEqual([
      {
        id: 'linear',
        name: 'Linear.app',
        url: 'https://mcp.linear.app/mcp',
        enabled: true,
        asClient: { clientId: 'lanyard-at-linear', method: 'client_secret_post' },
        scopes: ['read', 'write'],
      },
    ]);

    const list = await cli(['servers', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ id: 'linear', enabled: true, managed: false, clientId: 'lanyard-at-linear' }),
    ]);
    expect((await cli(['servers', 'list'])).stdout).toMatch(
      /^ID\s+NAME\s+URL\s+PATH\s+STATE\s+ACTION\nlinear\s+Linear\.app\s+https:\/\/mcp\.linear\.app\/mcp\s+unknown\s+not checked yet/,
    );

    expect((await cli(['servers', 'disable', 'linear'])).stdout).toBe('Disabled server linear.\n');
    expect(JSON.parse((await cli(['servers', 'list', '--json'])).stdout)[0].enabled).toBe(false);
    expect((await cli(['servers', 'enable', 'linear'])).code).toBe(0);

    const dup = await cli(['servers', 'add', 'https://mcp.linear.app/mcp']);
    expect(dup).toMatchObject({ code: 1, stderr: expect.stringMatching(/is already configured\.\n {2}→ Each server is added once/) });

    expect((await cli(['servers', 'remove', 'linear'])).code).toBe(0);
    expect(await secrets.get('server:linear:client_secret')).toBeUndefined();
    const missing = await cli(['servers', 'remove', 'linear']);
    expect(missing).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/No server "linear" is configured\.\n {2}→ Run `lanyard servers list`/),
    });
  });

  it('an invalid URL is refused naming the field, and nothing is written', async () => {
    const r = await cli(['servers', 'add', 'http://mcp.example.com/mcp']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/servers\[0\]\.url: must be an https URL/);
  });

  it('a managed, locked server list refuses changes with MANAGED_LOCKED and says who to ask', async () => {
    await writeFile(
      path.join(root, 'managed.json'),
      JSON.stringify({ servers: [{ id: 'wiki', name: 'Wiki', url: 'https://wiki.acme.dev/mcp' }], lock: ['servers'] }),
    );
    const r = await cli(['servers', 'add', 'https://other.dev/mcp']);
    expect(r).toMatchObject({ code: 1, stderr: expect.stringMatching(/managed by your administrator\.\n {2}→ Ask your IT team/) });
    expect(JSON.parse((await cli(['servers', 'list', '--json'])).stdout)).toEqual([expect.objectContaining({ id: 'wiki', managed: true })]);
  });
});

describe('status without a running broker', () => {
  it('--json shows config, keychain session, managed state and IDEs; exit 3 while not signed in', async () => {
    await cli(['servers', 'add', 'https://mcp.linear.app/mcp']);
    const r = await cli(['status', '--json']);
    expect(r.code).toBe(3);
    const status = JSON.parse(r.stdout);
    expect(status).toMatchObject({
      version: '9.9.9',
      session: { status: 'not_configured' },
      broker: { running: false, state: 'absent' },
      gateway: { url: 'http://127.0.0.1:47821/mcp', running: false },
      secretStore: { kind: 'memory' },
      managed: { state: 'absent', locked: [] },
      servers: [expect.objectContaining({ id: 'linear' })],
    });
    expect(status.ides).toHaveLength(5);
    expect(status.ides[0]).toMatchObject({ ide: 'cursor', connected: false, configPath: path.join(userHome, '.cursor', 'mcp.json') });
    const text = (await cli(['status'])).stdout;
    expect(text).toMatch(/Sign-in:\s+no identity provider configured → `lanyard login --issuer <url> --client-id <id>`/);
    expect(text).toMatch(/Cursor\s+not connected\s+~\/\.cursor\/mcp\.json\s+→ lanyard connect cursor/);
  });

  it('login without an IdP says how to set one (exit 3); with --issuer it sets it first', async () => {
    const r = await cli(['login']);
    expect(r).toMatchObject({
      code: 3,
      stderr: expect.stringMatching(/No identity provider is configured\.\n {2}→ Run `lanyard login --issuer/),
    });
    const half = await cli(['login', '--issuer', 'https://acme.okta.com']);
    expect(half.code).toBe(2);
  });
});

describe('login --client-secret-stdin', () => {
  it('the first line of stdin is the confidential client’s secret: to the keychain, bound to the IdP, never printed or written', async () => {
    // An IdP that cannot be reached: the sign-in fails after the settings (and the secret) are stored.
    const r = await cli(
      ['login', '--issuer', 'http://127.0.0.1:9/idp', '--client-id', 'lanyard-app', '--client-secret-stdin', '--device'],
      {
        stdin: 'idp-s3cret-value\nnot read\n',
      },
    );
    expect(r.stdout).toContain('Identity provider set: http://127.0.0.1:9/idp (client lanyard-app; its client secret is in the keychain).');
    expect(`${r.stdout}${r.stderr}`).not.toContain('s3cret');
    expect(unsealCredential((await secrets.get('idp:client_secret'))!)).toEqual({
      value: 'idp-s3cret-value',
      boundTo: { issuer: 'http://127.0.0.1:9/idp', clientId: 'lanyard-app' },
    });
    const file = await readFile(path.join(home, 'config.json'), 'utf8');
    expect(file).not.toContain('s3cret');
    expect(JSON.parse(file).idp).toMatchObject({ clientId: 'lanyard-app', clientAuth: { method: 'client_secret_basic' } });
  });

  it('is refused without the IdP client, with a method that takes no secret, with an empty stdin, or typed at the terminal', async () => {
    const alone = await cli(['login', '--client-secret-stdin'], { stdin: 'x\n' });
    expect(alone).toMatchObject({ code: 2, stderr: expect.stringContaining('pass --issuer and --client-id too') });
    const none = await cli(
      ['login', '--issuer', 'https://acme.okta.com', '--client-id', 'c', '--client-auth', 'none', '--client-secret-stdin'],
      {
        stdin: 'x\n',
      },
    );
    expect(none).toMatchObject({ code: 2, stderr: expect.stringContaining('--client-auth none uses no client secret') });
    const empty = await cli(['login', '--issuer', 'https://acme.okta.com', '--client-id', 'c', '--client-secret-stdin']);
    expect(empty).toMatchObject({ code: 2, stderr: expect.stringContaining('read an empty secret') });
    const typed = await cli(['login', '--issuer', 'https://acme.okta.com', '--client-id', 'c', '--client-secret-stdin'], {
      stdin: 'x\n',
      interactive: true,
    });
    expect(typed).toMatchObject({ code: 2, stderr: expect.stringContaining('not from the terminal') });
    // stdin is the terminal though stderr is redirected (so not "interactive"): typing would still echo the secret.
    const typedQuietly = await cli(['login', '--issuer', 'https://acme.okta.com', '--client-id', 'c', '--client-secret-stdin'], {
      stdin: 'x\n',
      stdinIsTty: true,
    });
    expect(typedQuietly).toMatchObject({ code: 2, stderr: expect.stringContaining('not from the terminal') });
    expect(await secrets.get('idp:client_secret')).toBeUndefined();
  });
});

describe('connect, disconnect, import, accept-link', () => {
  it('connect --http writes the IDE file with the local token; disconnect restores it', async () => {
    const file = path.join(userHome, '.cursor', 'mcp.json');
    await mkdir(path.dirname(file), { recursive: true });
    const original =
      '{\n  "mcpServers": {\n    "github": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"] }\n  }\n}\n';
    await writeFile(file, original);
    const r = await cli(['connect', 'cursor', '--http']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^✓ Cursor now reaches Lanyard through http:\/\/127\.0\.0\.1:47821\/ide\/cursor\/mcp\.\n {2}Wrote ~\/\.cursor\/mcp\.json; backup: ~\/\.cursor\/mcp\.json\.lanyard-backup-/,
    );
    expect(r.stdout).toMatch(/Lanyard is not running now/);
    const token = await secrets.get('gateway:local_token');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const written = JSON.parse(await readFile(file, 'utf8'));
    expect(written.mcpServers.lanyard).toEqual({
      url: 'http://127.0.0.1:47821/ide/cursor/mcp',
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(r.stdout).not.toContain(token!);

    const again = await cli(['connect', 'cursor', '--http', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ ide: 'cursor', changed: false, transport: 'http' });

    const off = await cli(['disconnect', 'cursor']);
    expect(off).toMatchObject({ code: 0, stdout: expect.stringMatching(/^✓ Cursor: Restored .* exactly as it was/) });
    expect(await readFile(file, 'utf8')).toBe(original);
  });

  it('connect (stdio by default) runs this node and this script by absolute path, with this LANYARD_HOME', async () => {
    const r = await cli(['connect', 'claude-code', '--json']);
    expect(r.code).toBe(0);
    const entry = JSON.parse(await readFile(path.join(userHome, '.claude.json'), 'utf8')).mcpServers.lanyard;
    expect(entry).toEqual({
      type: 'stdio',
      command: process.execPath,
      args: [script, 'stdio', '--ide', 'claude-code'],
      env: { LANYARD_HOME: home },
    });
  });

  it('connect --link opens the IDE install link (stdio, no token) and writes nothing', async () => {
    const r = await cli(['connect', 'vscode', '--link']);
    expect(r.code).toBe(0);
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.startsWith('vscode:mcp/install?')).toBe(true);
    expect(JSON.parse(decodeURIComponent(r.opened[0]!.split('?')[1]!))).toMatchObject({
      name: 'lanyard',
      type: 'stdio',
      command: process.execPath,
    });
    expect(await secrets.get('gateway:local_token')).toBeUndefined();
    expect((await cli(['connect', 'windsurf', '--link'])).code).toBe(2);
  });

  it('import: --dry-run shows the plan; without --yes and no terminal it needs action (3); --yes applies', async () => {
    const file = path.join(userHome, '.codeium', 'windsurf', 'mcp_config.json');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(
      file,
      JSON.stringify(
        {
          mcpServers: {
            docs: { serverUrl: 'https://docs.acme.dev/mcp' },
            fs: { command: 'npx', args: ['@modelcontextprotocol/server-filesystem'] },
          },
        },
        null,
        2,
      ),
    );
    const dry = await cli(['import', '--dry-run', '--no-probe']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      /Windsurf \(~\/\.codeium\/windsurf\/mcp_config\.json\):\n {2}→ move {2}docs {2}https:\/\/docs\.acme\.dev\/mcp {2}as "docs"\n {2}· keep {2}fs: a local stdio server/,
    );
    expect(dry.stdout).toMatch(/Dry run: nothing changed/);

    const ask = await cli(['import', '--no-probe']);
    expect(ask).toMatchObject({ code: 3, stderr: expect.stringMatching(/needs your confirmation\.\n {2}→ Run `lanyard import --yes`/) });
    const declined = await cli(['import', '--no-probe'], { confirm: false });
    expect(declined.code).toBe(3);

    const yes = await cli(['import', '--yes', '--no-probe', '--stdio']);
    expect(yes.code).toBe(0);
    expect(yes.stdout).toMatch(/✓ Windsurf: moved docs; wrote ~\/\.codeium\/windsurf\/mcp_config\.json/);
    expect(Object.keys(JSON.parse(await readFile(file, 'utf8')).mcpServers)).toEqual(['fs', 'lanyard']);
    expect(JSON.parse((await cli(['servers', 'list', '--json'])).stdout).map((s: { id: string }) => s.id)).toEqual(['docs']);
  });

  it('accept-link shows the summary, needs a yes, then applies', async () => {
    const link = encodeConfigLink({
      idp: { issuer: 'https://acme.okta.com', clientId: '0oaABC' },
      servers: [{ url: 'https://wiki.acme.dev/mcp', id: 'wiki' }],
    });
    const ask = await cli(['accept-link', link]);
    expect(ask.code).toBe(3);
    expect(ask.stdout).toMatch(
      /This link asks Lanyard to:\n {2}• sign you in with the identity provider https:\/\/acme\.okta\.com \(client id 0oaABC\)/,
    );
    const yes = await cli(['accept-link', link, '--yes']);
    expect(yes).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/✓ Identity provider set\. Sign in with `lanyard login`\.\n✓ Added wiki\./),
    });
    const bad = await cli(['accept-link', 'lanyard://configure?config=%%']);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringMatching(/not a Lanyard configuration link/) });
  });
});

describe('lanyard profiles', () => {
  it('shows the defaults, sets a budget and favourites into config.json, refuses a bad reference, and resets', async () => {
    const shown = await cli(['profiles', 'show', 'cursor']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^cursor \(defaults\)\n {2}budget {10}40 tools \(the IDE's limit: 40\)/);
    const set = await cli(['profiles', 'set', 'cursor', '--budget', '12', '--favourite', 'todo/echo', '--deny-server', 'wiki']);
    expect(set.code).toBe(0);
    const config = JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8')) as { profiles: unknown };
    expect(config.profiles).toEqual({ cursor: { budget: 12, favourites: ['todo/echo'], servers: { deny: ['wiki'] } } });
    const json = JSON.parse((await cli(['profiles', 'show', 'cursor', '--json'])).stdout) as { budget: number; customized: boolean };
    expect(json).toMatchObject({ budget: 12, customized: true });
    const bad = await cli(['profiles', 'set', 'cursor', '--favourite', 'just-a-name']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/<server-id>\/<tool name>/);
    expect((await cli(['profiles', 'set', 'notepad', '--budget', '3'])).code).toBe(2);
    expect((await cli(['profiles', 'reset', 'cursor'])).code).toBe(0);
    expect(JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8')).profiles).toBeUndefined();
  });

  it('a profile locked by the managed configuration refuses changes with MANAGED_LOCKED', async () => {
    await writeFile(path.join(root, 'managed.json'), JSON.stringify({ profiles: { cursor: { budget: 10 } }, lock: ['profiles'] }));
    const r = await cli(['profiles', 'set', 'cursor', '--budget', '20']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/managed by your administrator/);
  });
});
