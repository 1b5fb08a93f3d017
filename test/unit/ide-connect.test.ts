/**
 * `lanyard connect` / `disconnect` on each IDE's real file location inside a temporary home: HTTP and stdio entries
 * read back in each IDE's format, the file created when missing, the user's other entries and formatting kept, a
 * backup first, idempotence, and disconnect restoring the file byte for byte.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectIde, disconnectIde, inspectIde, MASKED_TOKEN, type IdeContext } from '../../electron/broker/ide/connector';
import { parseJsonc, toValue } from '../../electron/broker/ide/jsonc';
import { resolveStdioLauncher } from '../../electron/broker/ide/launcher';
import { IDE_NAMES, IDE_TARGETS, type StdioLauncher } from '../../electron/broker/ide/targets';
import type { IdeName } from '../../shared/contract';

const TOKEN = 'tok_0123456789abcdef0123456789abcdef0123456';
const endpoint = { url: 'http://127.0.0.1:47821/mcp', token: TOKEN };
const launcher: StdioLauncher = { command: '/usr/local/bin/node', args: ['/opt/lanyard/out/cli/lanyard.js', 'stdio'] };
/** Each IDE's own endpoint and bridge arguments: they name the IDE, so its tool profile applies. */
const urlOf = (ide: IdeName) => `http://127.0.0.1:47821/ide/${ide}/mcp`;
const argsOf = (ide: IdeName) => [...launcher.args, '--ide', ide];

let root: string;
let ctx: IdeContext;

beforeEach(async () => {
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-ide-'));
  ctx = {
    home: path.join(root, 'lanyard-home'),
    machine: { homedir: path.join(root, 'user'), env: {}, platform: 'linux' },
    now: () => new Date('2026-01-31T12:04:05.123Z'),
  };
  await mkdir(ctx.home, { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const fileOf = (ide: IdeName) => IDE_TARGETS[ide].configPath(ctx.machine);
const readJson = async (ide: IdeName) =>
  toValue(parseJsonc(await readFile(fileOf(ide), 'utf8'))!) as Record<string, Record<string, Record<string, unknown>>>;
const backupsOf = async (file: string) =>
  (await readdir(path.dirname(file))).filter((f) => f.startsWith(`${path.basename(file)}.lanyard-backup-`));

describe('each IDE, into a fresh home', () => {
  const expectedHttp: Record<IdeName, { key: string; entry: Record<string, unknown> } | undefined> = {
    cursor: { key: 'mcpServers', entry: { url: urlOf('cursor'), headers: { Authorization: `Bearer ${TOKEN}` } } },
    vscode: { key: 'servers', entry: { type: 'http', url: urlOf('vscode'), headers: { Authorization: `Bearer ${TOKEN}` } } },
    'claude-code': { key: 'mcpServers', entry: { type: 'http', url: urlOf('claude-code'), headers: { Authorization: `Bearer ${TOKEN}` } } },
    'claude-desktop': undefined,
    windsurf: { key: 'mcpServers', entry: { serverUrl: urlOf('windsurf'), headers: { Authorization: `Bearer ${TOKEN}` } } },
  };

  it.each(IDE_NAMES)('%s: HTTP entry with the local token header, file and directories created', async (ide) => {
    const outcome = await connectIde(ide, { transport: 'http', endpoint, launcher }, ctx);
    expect(outcome).toMatchObject({ ide, changed: true, created: true, configPath: fileOf(ide) });
    expect(outcome.backupPath).toBeUndefined();
    const doc = await readJson(ide);
    const expected = expectedHttp[ide];
    if (expected) {
      expect(outcome.transport).toBe('http');
      expect(doc[expected.key]!.lanyard).toEqual(expected.entry);
      // Contains the token: readable by the user only.
      expect((await stat(fileOf(ide))).mode & 0o777).toBe(0o600);
    } else {
      // Claude Desktop ignores remote servers in its file: always `lanyard stdio`.
      expect(outcome.transport).toBe('stdio');
      expect(doc.mcpServers!.lanyard).toEqual({ command: launcher.command, args: argsOf(ide) });
    }
    // The snippet (shown in the dashboard) never carries the token.
    expect(outcome.snippet).not.toContain(TOKEN);
    if (expected) expect(outcome.snippet).toContain(MASKED_TOKEN);
    expect(await inspectIde(ide, ctx)).toMatchObject({ connected: true, exists: true, transport: outcome.transport });
  });

  it.each(IDE_NAMES)('%s: stdio entry runs `lanyard stdio` by absolute path, never npx', async (ide) => {
    await connectIde(ide, { transport: 'stdio', launcher }, ctx);
    const doc = await readJson(ide);
    const entry = doc[IDE_TARGETS[ide].containerKey]!.lanyard!;
    expect(entry.command).toBe('/usr/local/bin/node');
    expect(entry.args).toEqual(['/opt/lanyard/out/cli/lanyard.js', 'stdio', '--ide', ide]);
    if (ide === 'vscode' || ide === 'claude-code') expect(entry.type).toBe('stdio');
    expect(JSON.stringify(entry)).not.toMatch(/npx/);
  });

  it.each(IDE_NAMES)('%s: disconnect after creating the file deletes it and the directories Lanyard made', async (ide) => {
    await connectIde(ide, { transport: 'http', endpoint, launcher }, ctx);
    const outcome = await disconnectIde(ide, ctx);
    expect(outcome).toMatchObject({ changed: true, action: 'deleted-file' });
    await expect(stat(fileOf(ide))).rejects.toThrow();
    // The directories Lanyard had to create for it are gone too (here even the test user's home, which did not exist).
    await expect(stat(path.dirname(fileOf(ide)))).rejects.toThrow();
    expect(await disconnectIde(ide, ctx)).toMatchObject({ changed: false, action: 'none' });
  });
});

describe('the user’s existing file', () => {
  const cursorFile =
    '{\n' +
    '   // my servers — do not lose this comment\n' +
    '   "mcpServers": {\n' +
    '      "github": {\n' +
    '         "command": "npx",\n' +
    '         "args": ["-y", "@modelcontextprotocol/server-github"],\n' +
    '         "env": { "GITHUB_TOKEN": "ghp_user_secret" }\n' +
    '      },\n' +
    '      "linear": { "url": "https://mcp.linear.app/mcp" }   /* trailing comment */\n' +
    '   }\n' +
    '}\n';
  const vscodeFile =
    '// VS Code user MCP config\r\n' +
    '{\r\n' +
    '\t"inputs": [\r\n' +
    '\t\t{ "type": "promptString", "id": "key", "password": true, },\r\n' +
    '\t],\r\n' +
    '\t"servers": {\r\n' +
    '\t\t"memory": { "type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"] },\r\n' +
    '\t},\r\n' +
    '}\r\n';

  async function seed(ide: IdeName, text: string, mode = 0o644): Promise<string> {
    const file = fileOf(ide);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
    await chmod(file, mode);
    return file;
  }

  it('keeps other servers, comments and odd indentation; takes a backup first', async () => {
    const file = await seed('cursor', cursorFile);
    const outcome = await connectIde('cursor', { transport: 'http', endpoint, launcher }, ctx);
    expect(outcome).toMatchObject({ changed: true, created: false });
    expect(outcome.backupPath).toBe(`${file}.lanyard-backup-20260131T120405123Z`);
    expect(await readFile(outcome.backupPath!, 'utf8')).toBe(cursorFile);
    expect((await stat(outcome.backupPath!)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text.startsWith('{\n   // my servers — do not lose this comment\n   "mcpServers": {\n      "github": {')).toBe(true);
    expect(text).toContain(
      '"linear": { "url": "https://mcp.linear.app/mcp" },   /* trailing comment */\n      "lanyard": {\n         "url": "http://127.0.0.1:47821/ide/cursor/mcp",',
    );
    const doc = await readJson('cursor');
    expect(Object.keys(doc.mcpServers!)).toEqual(['github', 'linear', 'lanyard']);
  });

  it.each([
    ['cursor', cursorFile],
    ['vscode', vscodeFile],
  ] as const)('%s: connect then disconnect leaves the file byte for byte as it was (and its mode)', async (ide, original) => {
    const file = await seed(ide, original, 0o644);
    await connectIde(ide, { transport: 'http', endpoint, launcher }, ctx);
    expect(await readFile(file, 'utf8')).not.toBe(original);
    const outcome = await disconnectIde(ide, ctx);
    expect(outcome).toMatchObject({ changed: true, action: 'restored-backup' });
    expect(await readFile(file, 'utf8')).toBe(original);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    // The backup was identical to the restored file: not left behind.
    expect(await backupsOf(file)).toEqual([]);
  });

  it('VS Code: the entry goes into `servers`, in tabs and CRLF, trailing commas kept', async () => {
    const file = await seed('vscode', vscodeFile);
    await connectIde('vscode', { transport: 'http', endpoint, launcher }, ctx);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('\t\t"lanyard": {\r\n\t\t\t"type": "http",\r\n');
    expect(text.split('\r\n').every((line, i, all) => i === all.length - 1 || !line.includes('\n'))).toBe(true);
    expect(text.startsWith(vscodeFile.slice(0, vscodeFile.indexOf('\t},\r\n}')))).toBe(true);
    expect((await readJson('vscode')).servers!.lanyard!.type).toBe('http');
  });

  it('is idempotent: a second connect changes nothing and takes no backup', async () => {
    const file = await seed('cursor', cursorFile);
    await connectIde('cursor', { transport: 'http', endpoint, launcher }, ctx);
    const after = await readFile(file, 'utf8');
    const again = await connectIde(
      'cursor',
      { transport: 'http', endpoint, launcher },
      { ...ctx, now: () => new Date('2026-02-01T00:00:00Z') },
    );
    expect(again.changed).toBe(false);
    expect(again.backupPath).toBeUndefined();
    expect(await readFile(file, 'utf8')).toBe(after);
    expect(await backupsOf(file)).toHaveLength(1);
    // …and a changed token updates the one entry in place; disconnect still restores the original file.
    const rotated = await connectIde(
      'cursor',
      { transport: 'http', endpoint: { ...endpoint, token: 'new-token-xyz' }, launcher },
      { ...ctx, now: () => new Date('2026-02-02T00:00:00Z') },
    );
    expect(rotated.changed).toBe(true);
    expect((await readJson('cursor')).mcpServers!.lanyard!.headers).toEqual({ Authorization: 'Bearer new-token-xyz' });
    await disconnectIde('cursor', ctx);
    expect(await readFile(file, 'utf8')).toBe(cursorFile);
  });

  it('edited by the user after connect: disconnect removes only the lanyard entry and keeps their edits', async () => {
    const file = await seed('cursor', cursorFile);
    await connectIde('cursor', { transport: 'http', endpoint, launcher }, ctx);
    const edited = (await readFile(file, 'utf8')).replace('"linear": {', '"jira": { "url": "https://jira/mcp" },\n      "linear": {');
    await writeFile(file, edited);
    const outcome = await disconnectIde('cursor', ctx);
    expect(outcome.action).toBe('removed-entry');
    expect(outcome.backupPath).toBeDefined();
    expect(await readFile(file, 'utf8')).toBe(
      cursorFile.replace('"linear": {', '"jira": { "url": "https://jira/mcp" },\n      "linear": {'),
    );
  });

  it('a lanyard entry that was there before comes back on disconnect', async () => {
    const before = '{\n  "mcpServers": {\n    "lanyard": { "url": "http://127.0.0.1:9999/mcp" }\n  }\n}\n';
    const file = await seed('cursor', before);
    await connectIde('cursor', { transport: 'stdio', launcher }, ctx);
    expect((await readJson('cursor')).mcpServers!.lanyard!.command).toBe(launcher.command);
    await writeFile(file, `${await readFile(file, 'utf8')}\n`); // touched by someone: forces the textual path
    await disconnectIde('cursor', ctx);
    expect(await readFile(file, 'utf8')).toBe(`${before}\n`);
  });

  it('adds the container when the file has none, and takes it out again', async () => {
    const before = '{\n  "numStartups": 12,\n  "projects": {}\n}';
    const file = await seed('claude-code', before);
    await connectIde('claude-code', { transport: 'http', endpoint, launcher }, ctx);
    expect((await readJson('claude-code')).mcpServers!.lanyard!.type).toBe('http');
    await writeFile(file, (await readFile(file, 'utf8')).replace('12', '13'));
    await disconnectIde('claude-code', ctx);
    expect(await readFile(file, 'utf8')).toBe(before.replace('12', '13'));
  });

  it('refuses a file that is not JSON, names the position and leaves it alone', async () => {
    const broken = '{\n  "mcpServers": {\n    "a": { "url": "x" }\n    "b": {}\n  }\n}\n';
    const file = await seed('windsurf', broken);
    await expect(connectIde('windsurf', { transport: 'http', endpoint, launcher }, ctx)).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/line 4, column 5/),
    });
    expect(await readFile(file, 'utf8')).toBe(broken);
    expect(await backupsOf(file)).toEqual([]);
  });

  it('follows a symlinked config file instead of replacing the link', async () => {
    const real = path.join(root, 'dotfiles', 'mcp.json');
    await mkdir(path.dirname(real), { recursive: true });
    await writeFile(real, cursorFile);
    await mkdir(path.dirname(fileOf('cursor')), { recursive: true });
    await symlink(real, fileOf('cursor'));
    await connectIde('cursor', { transport: 'http', endpoint, launcher }, ctx);
    expect((await lstat(fileOf('cursor'))).isSymbolicLink()).toBe(true);
    expect(await readFile(real, 'utf8')).toContain('"lanyard"');
    await disconnectIde('cursor', ctx);
    expect(await readFile(real, 'utf8')).toBe(cursorFile);
  });

  it('the ledger holds no token', async () => {
    await seed('cursor', cursorFile);
    await connectIde('cursor', { transport: 'http', endpoint, launcher }, ctx);
    const ledger = await readFile(path.join(ctx.home, 'ide-connections.json'), 'utf8');
    expect(ledger).not.toContain(TOKEN);
    expect(ledger).not.toContain('ghp_user_secret');
    expect((await stat(path.join(ctx.home, 'ide-connections.json'))).mode & 0o777).toBe(0o600);
  });
});

describe('config paths per OS', () => {
  const machine = (platform: NodeJS.Platform, env: Record<string, string> = {}) => ({
    homedir: platform === 'win32' ? 'C:\\Users\\ada' : platform === 'darwin' ? '/Users/ada' : '/home/ada',
    env,
    platform,
  });
  const paths = (platform: NodeJS.Platform, env: Record<string, string> = {}) =>
    Object.fromEntries(IDE_NAMES.map((ide) => [ide, IDE_TARGETS[ide].configPath(machine(platform, env))]));

  it('macOS', () => {
    expect(paths('darwin')).toEqual({
      cursor: '/Users/ada/.cursor/mcp.json',
      vscode: '/Users/ada/Library/Application Support/Code/User/mcp.json',
      'claude-code': '/Users/ada/.claude.json',
      'claude-desktop': '/Users/ada/Library/Application Support/Claude/claude_desktop_config.json',
      windsurf: '/Users/ada/.codeium/windsurf/mcp_config.json',
    });
  });

  it('Windows', () => {
    expect(paths('win32', { APPDATA: 'C:\\Users\\ada\\AppData\\Roaming' })).toEqual({
      cursor: 'C:\\Users\\ada\\.cursor\\mcp.json',
      vscode: 'C:\\Users\\ada\\AppData\\Roaming\\Code\\User\\mcp.json',
      'claude-code': 'C:\\Users\\ada\\.claude.json',
      'claude-desktop': 'C:\\Users\\ada\\AppData\\Roaming\\Claude\\claude_desktop_config.json',
      windsurf: 'C:\\Users\\ada\\.codeium\\windsurf\\mcp_config.json',
    });
    // Without APPDATA, the documented default under the profile.
    expect(paths('win32').vscode).toBe('C:\\Users\\ada\\AppData\\Roaming\\Code\\User\\mcp.json');
  });

  it('Linux, with XDG_CONFIG_HOME honoured only when absolute', () => {
    expect(paths('linux')).toEqual({
      cursor: '/home/ada/.cursor/mcp.json',
      vscode: '/home/ada/.config/Code/User/mcp.json',
      'claude-code': '/home/ada/.claude.json',
      'claude-desktop': '/home/ada/.config/Claude/claude_desktop_config.json',
      windsurf: '/home/ada/.codeium/windsurf/mcp_config.json',
    });
    expect(paths('linux', { XDG_CONFIG_HOME: '/xdg' }).vscode).toBe('/xdg/Code/User/mcp.json');
    expect(paths('linux', { XDG_CONFIG_HOME: 'relative' }).vscode).toBe('/home/ada/.config/Code/User/mcp.json');
  });

  it('respects CLAUDE_CONFIG_DIR, VSCODE_APPDATA and VSCODE_PORTABLE', () => {
    expect(paths('linux', { CLAUDE_CONFIG_DIR: '/cfg/claude' })['claude-code']).toBe('/cfg/claude/.claude.json');
    expect(paths('darwin', { VSCODE_APPDATA: '/data' }).vscode).toBe('/data/Code/User/mcp.json');
    expect(paths('win32', { VSCODE_PORTABLE: 'D:\\VSCode\\data' }).vscode).toBe('D:\\VSCode\\data\\user-data\\User\\mcp.json');
  });
});

describe('deep links carry the stdio variant, never a token', () => {
  it('Cursor: cursor://anysphere.cursor-deeplink/mcp/install?name=lanyard&config=<base64 entry>', async () => {
    const outcome = await connectIde('cursor', { transport: 'http', endpoint, launcher }, ctx);
    const url = new URL(outcome.deepLink!);
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe('cursor://anysphere.cursor-deeplink/mcp/install');
    expect(url.searchParams.get('name')).toBe('lanyard');
    expect(JSON.parse(Buffer.from(url.searchParams.get('config')!, 'base64').toString('utf8'))).toEqual({
      command: launcher.command,
      args: argsOf('cursor'),
    });
    expect(outcome.deepLink).not.toContain(TOKEN);
  });

  it('VS Code: vscode:mcp/install?<url-encoded {name, type, command, args}>', async () => {
    const outcome = await connectIde('vscode', { transport: 'http', endpoint, launcher }, ctx);
    expect(outcome.deepLink!.startsWith('vscode:mcp/install?')).toBe(true);
    expect(JSON.parse(decodeURIComponent(outcome.deepLink!.slice('vscode:mcp/install?'.length)))).toEqual({
      name: 'lanyard',
      type: 'stdio',
      command: launcher.command,
      args: argsOf('vscode'),
    });
  });

  it('the other IDEs have none', async () => {
    for (const ide of ['claude-code', 'claude-desktop', 'windsurf'] as const) {
      expect((await connectIde(ide, { transport: 'stdio', launcher }, ctx)).deepLink).toBeUndefined();
    }
  });
});

describe('resolveStdioLauncher', () => {
  it('uses this interpreter and the real path of the CLI script, with LANYARD_HOME for a non-default home', async () => {
    const script = path.join(root, 'pkg', 'out', 'cli', 'lanyard.js');
    await mkdir(path.dirname(script), { recursive: true });
    await writeFile(script, '');
    const bin = path.join(root, 'bin', 'lanyard');
    await mkdir(path.dirname(bin), { recursive: true });
    await symlink(script, bin);
    const l = resolveStdioLauncher({
      home: '/somewhere/else',
      env: { HOME: '/home/ada' },
      platform: 'linux',
      execPath: process.execPath,
      script: bin,
    });
    expect(l.command).toBe(process.execPath);
    expect(l.args).toEqual([script, 'stdio']);
    expect(l.env).toEqual({ LANYARD_HOME: '/somewhere/else' });
    expect(
      resolveStdioLauncher({ home: '/home/ada/.config/lanyard', env: { HOME: '/home/ada' }, platform: 'linux', script: bin }).env,
    ).toBeUndefined();
  });

  it('refuses to guess when the running program is not the lanyard CLI', () => {
    let error: unknown;
    try {
      resolveStdioLauncher({ home: '/h', env: {}, script: '/usr/lib/electron/electron' });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ message: expect.stringMatching(/cannot tell where/), fix: expect.stringMatching(/LANYARD_CLI_PATH/) });
  });
});
