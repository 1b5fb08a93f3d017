/**
 * The CLI side of the auth paths, in-process (runCli with a temporary LANYARD_HOME and an in-memory keychain): how the
 * probe and each server's path, state and action are printed, `servers add --header … --value-stdin` and `set-key`
 * (the key only ever in the keychain; a key on the command line refused without being echoed), and `servers
 * authorize` waiting for the outcome.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProbeResult, ServerStatus } from '../../shared/contract';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { runCli } from '../../electron/cli/cli';
import { authorize } from '../../electron/cli/commands/servers';
import type { CliDeps } from '../../electron/cli/context';
import { actionText, renderProbe, serverRows } from '../../electron/cli/server-lines';

const KEY = 'sk-live-Cli0123456789AbCdEfGhIjKl';

let root: string;
let home: string;
let secrets: MemorySecretStore;

beforeEach(async () => {
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-cli-paths-'));
  home = path.join(root, 'lanyard');
  await mkdir(path.join(root, 'user'), { recursive: true });
  secrets = new MemorySecretStore();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function cli(argv: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const deps: CliDeps = {
    io: { out: (t) => void (stdout += t), err: (t) => void (stderr += t), stdin: Readable.from([stdin]), interactive: false },
    env: { LANYARD_HOME: home, HOME: path.join(root, 'user'), LANYARD_MANAGED_CONFIG: path.join(root, 'managed.json') },
    version: '9.9.9',
    platform: 'linux',
    homedir: path.join(root, 'user'),
    secrets,
    openUrl: async () => undefined,
  };
  const code = await runCli(argv, deps);
  return { code, stdout, stderr };
}

/** Every file under `dir`, read as text (the key must be in none of them). */
async function allText(dir: string): Promise<string> {
  let out = '';
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    out += (await stat(file)).isDirectory() ? await allText(file) : await readFile(file, 'utf8');
  }
  return out;
}

const status = (extra: Partial<ServerStatus>): ServerStatus => ({
  id: 'todo',
  name: 'Todo',
  url: 'https://todo.example/mcp',
  enabled: true,
  managed: false,
  health: 'idle',
  authPath: 'oauth',
  authState: 'ready',
  authPathPinned: false,
  scopes: [],
  idJagsThisMonth: 0,
  idJagMonthlyQuota: 250,
  ...extra,
});

describe('path, state and the one action', () => {
  it('names the command each state needs, and the administrator’s reason (escaped) when blocked', () => {
    expect(actionText(status({ authState: 'ready' }))).toBeUndefined();
    expect(actionText(status({ authState: 'authorization_required', action: 'authorize' }))).toBe('run `lanyard servers authorize todo`');
    expect(actionText(status({ authPath: 'xaa', authState: 'sign_in_required', action: 'sign_in' }))).toBe('run `lanyard login`');
    expect(actionText(status({ authPath: 'header', authState: 'key_required', action: 'set_key', headerName: 'X-Api-Key' }))).toBe(
      'run `lanyard servers set-key todo --header X-Api-Key --value-stdin`',
    );
    expect(
      actionText(
        status({
          authPath: 'xaa',
          authState: 'blocked',
          lastError: { code: 'policy_blocked', message: 'access_denied: not in group\u001b[2J', fix: 'Ask IT.' },
        }),
      ),
    ).toBe('blocked by your administrator: access_denied: not in group\\x1b[2J');
    expect(actionText(status({ enabled: false }))).toBe('run `lanyard servers enable todo`');
    expect(serverRows([status({ authPath: 'header', authState: 'key_required', authPathPinned: true })])[0]).toEqual([
      'todo',
      'Todo',
      'https://todo.example/mcp',
      'header (pinned)',
      'key needed',
      'run `lanyard servers set-key todo --value-stdin`',
    ]);
  });

  it('prints every path of the probe in order, why it applies or not, and the chosen one', () => {
    const probe: ProbeResult = {
      url: 'https://todo.example/mcp',
      reachable: true,
      scopes: [],
      xaa: 'unsupported',
      needsClientId: false,
      path: 'oauth',
      paths: [
        { path: 'xaa', applies: false, reason: 'the authorization server does not advertise the ID-JAG profile' },
        { path: 'oauth', applies: true, reason: 'authorization code with PKCE S256 at https://as.example' },
        { path: 'header', applies: false, reason: 'not needed: OAuth applies' },
        { path: 'none', applies: false, reason: 'the server answered 401: it wants credentials' },
      ],
    };
    const text = renderProbe(probe, probe.path);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('Probed https://todo.example/mcp:');
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/).slice(0, 2).join(' '))).toEqual(['✗ xaa', '→ oauth', '✗ header', '✗ none']);
    expect(lines[2]).toMatch(/OAuth \(browser authorization\)\s+authorization code with PKCE S256 at https:\/\/as\.example {2}← chosen$/);
    expect(renderProbe(probe, 'header')).toMatch(/Using header \(API key\) as asked, although the probe did not find it applies\./);
    const down: ProbeResult = { ...probe, reachable: false, error: { code: 'server_unreachable', message: 'ECONNREFUSED', fix: '' } };
    expect(renderProbe(down, undefined)).toBe(
      'Probed https://todo.example/mcp: no answer (ECONNREFUSED); the path is chosen when the server is first used.\n',
    );
  });
});

describe('servers add --header --value-stdin and set-key', () => {
  it('keeps the key in the keychain only: not in stdout, stderr, config.json or any file', async () => {
    const add = await cli(
      ['servers', 'add', 'https://key.example/mcp', '--id', 'key', '--header', 'X-Api-Key', '--value-stdin', '--no-probe'],
      `${KEY}\n`,
    );
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(
      /^Added server key \(.*\) → https:\/\/key\.example\/mcp on the header path \(API key\); its key is in the keychain/,
    );
    expect(await secrets.get('server:key:header')).toBe(KEY);
    const config = JSON.parse(await readFile(path.join(home, 'config.json'), 'utf8')) as { servers: unknown[] };
    expect(config.servers).toEqual([expect.objectContaining({ id: 'key', authPath: 'header', header: { name: 'X-Api-Key' } })]);

    const replaced = await cli(['servers', 'set-key', 'key', '--value-stdin'], 'sk-second-0123456789abcdef\n');
    expect(replaced).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^Stored the key for key in the keychain; .*X-Api-Key header\./),
    });
    expect(await secrets.get('server:key:header')).toBe('sk-second-0123456789abcdef');

    const list = await cli(['servers', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: 'key', authPath: 'header', headerName: 'X-Api-Key' })]);
    for (const r of [add, replaced, list]) expect(r.stdout + r.stderr).not.toMatch(/sk-live|sk-second/);
    expect(await allText(root)).not.toMatch(/sk-live|sk-second/);
  });

  it('refuses a key on the command line — as --value, inside --header, or as an extra argument — and never echoes it', async () => {
    await cli(
      ['servers', 'add', 'https://key.example/mcp', '--id', 'key', '--header', 'X-Api-Key', '--value-stdin', '--no-probe'],
      'first',
    );
    await secrets.delete('server:key:header');
    const attempts = [
      ['servers', 'set-key', 'key', '--value', KEY],
      ['servers', 'set-key', 'key', KEY],
      ['servers', 'add', 'https://other.example/mcp', '--header', `X-Api-Key: ${KEY}`, '--value-stdin'],
      ['servers', 'add', 'https://other.example/mcp', KEY],
    ];
    for (const argv of attempts) {
      const r = await cli(argv);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/lanyard servers: /);
      expect(r.stdout + r.stderr).not.toContain(KEY);
    }
    expect(await secrets.get('server:key:header')).toBeUndefined();
    expect(await allText(root)).not.toContain(KEY);
  });

  it('a header server without its key says which command sets it, in list and in status', async () => {
    await cli(['servers', 'add', 'https://key.example/mcp', '--id', 'key', '--header', 'X-Api-Key', '--value-stdin', '--no-probe'], KEY);
    // No identity provider and no server that needs one: nothing to do, exit 0.
    expect((await cli(['status'])).code).toBe(0);
    // The key gone from the keychain (deleted by hand, another machine's config): the server needs it again.
    await secrets.delete('server:key:header');
    const list = await cli(['servers', 'list']);
    expect(list.stdout).toMatch(/^ID\s+NAME\s+URL\s+PATH\s+STATE\s+ACTION\n/);
    expect(list.stdout).toMatch(/key\s+.*\s+header\s+key needed\s+run `lanyard servers set-key key --header X-Api-Key --value-stdin`/);
    const st = await cli(['status']);
    expect(st.code).toBe(3);
    expect(st.stdout).toMatch(/key\s+.*\s+header\s+key needed\s+run `lanyard servers set-key key --header X-Api-Key --value-stdin`/);
  });

  it('usage errors for contradicting or incomplete options', async () => {
    expect((await cli(['servers', 'add', 'https://x.example/mcp', '--auth', 'magic'])).stderr).toMatch(
      /--auth must be one of xaa, oauth, header, none/,
    );
    expect((await cli(['servers', 'add', 'https://x.example/mcp', '--value-stdin'], KEY)).stderr).toMatch(/--value-stdin needs --header/);
    expect((await cli(['servers', 'add', 'https://x.example/mcp', '--auth', 'xaa', '--header', 'X-Api-Key'])).stderr).toMatch(
      /contradicts --auth xaa/,
    );
    expect((await cli(['servers', 'add', 'https://x.example/mcp', '--header', 'Host'])).stderr).toMatch(/set by the MCP transport/);
    expect((await cli(['servers', 'set-key', 'x'])).stderr).toMatch(/pass --value-stdin/);
    expect((await cli(['servers', 'add', 'https://x.example/mcp', '--header', 'X-Api-Key'])).stderr).toMatch(/--header needs the key/);
  });
});

describe('servers authorize', () => {
  const io = () => {
    const out = { stdout: '', stderr: '' };
    return {
      out,
      ctx: {
        io: {
          out: (t: string) => void (out.stdout += t),
          err: (t: string) => void (out.stderr += t),
          stdin: Readable.from(['']),
          interactive: false,
        },
      },
    };
  };
  const control = (states: Array<Partial<ServerStatus>>) => {
    let i = 0;
    return {
      calls: 0,
      authorizeServer: async () => ({ authorizeUrl: 'https://as.example/authorize?state=s' }),
      listServers: async () => [status(states[Math.min(i++, states.length - 1)]!)],
    };
  };

  it('prints the link once and waits until the server is ready', async () => {
    const { out, ctx } = io();
    const code = await authorize(
      ctx,
      control([{ authState: 'authorizing' }, { authState: 'authorizing' }, { authState: 'ready' }]),
      'todo',
      { json: false, pollMs: 1 },
    );
    expect(code).toBe(0);
    expect(out.stderr.match(/https:\/\/as\.example\/authorize\?state=s/g)).toHaveLength(1);
    expect(out.stdout).toMatch(/^✓ todo is authorized; Lanyard keeps the grant in the keychain/);
  });

  it('the browser closed or the authorization server refused: the reason and what to do, exit 3', async () => {
    const { ctx } = io();
    await expect(
      authorize(
        ctx,
        control([
          { authState: 'authorizing' },
          {
            authState: 'authorization_required',
            lastError: { code: 'authorization_failed', message: 'The authorization server answered access_denied.', fix: 'Try again.' },
          },
        ]),
        'todo',
        { json: false, pollMs: 1 },
      ),
    ).rejects.toMatchObject({ exitCode: 3, message: 'Authorizing todo failed: The authorization server answered access_denied.' });
  });

  it('gives up after the wait with the command to run again', async () => {
    const { ctx } = io();
    await expect(
      authorize(ctx, control([{ authState: 'authorizing' }]), 'todo', { json: false, waitMs: 5, pollMs: 1 }),
    ).rejects.toMatchObject({
      exitCode: 3,
      message: 'Authorizing todo did not finish in time.',
    });
  });
});
