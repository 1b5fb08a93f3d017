/**
 * `lanyard import`: remote MCP servers already in the IDEs' files (URL entries and `npx mcp-remote <url>` wrappers)
 * move behind Lanyard; what cannot move stays, with the reason; --dry-run is a plan, applying it writes each IDE file
 * once (with a backup) and `disconnect` undoes it.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AddServerInputSchema, ProbeResult, ServerStatus, Settings } from '../../shared/contract';
import type { z } from 'zod';
import { disconnectIde, type IdeContext } from '../../electron/broker/ide/connector';
import { applyImport, classify, planImport } from '../../electron/broker/ide/import';
import { parseJsonc, toValue } from '../../electron/broker/ide/jsonc';
import { IDE_TARGETS } from '../../electron/broker/ide/targets';
import { LanyardError } from '../../electron/broker/errors';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import type { IdeName } from '../../shared/contract';

const endpoint = { url: 'http://127.0.0.1:47821/mcp', token: 'local-token-abcdefghijklmnopqrstuvwxyz0123456' };
const launcher = { command: '/usr/bin/node', args: ['/opt/lanyard/out/cli/lanyard.js', 'stdio'] };

let root: string;
let ctx: IdeContext;
beforeEach(async () => {
  root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-import-'));
  ctx = { home: path.join(root, 'lanyard'), machine: { homedir: path.join(root, 'user'), env: {}, platform: 'linux' } };
  await mkdir(ctx.home, { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The in-memory keychain, telling which keys it holds. */
class KeychainRecorder extends MemorySecretStore {
  private readonly held = new Set<string>();
  override async set(key: string, value: string): Promise<void> {
    this.held.add(key);
    await super.set(key, value);
  }
  override async delete(key: string): Promise<void> {
    this.held.delete(key);
    await super.delete(key);
  }
  keys(): string[] {
    return [...this.held];
  }
}

const fileOf = (ide: IdeName) => IDE_TARGETS[ide].configPath(ctx.machine);
async function seed(ide: IdeName, text: string): Promise<void> {
  await mkdir(path.dirname(fileOf(ide)), { recursive: true });
  await writeFile(fileOf(ide), text);
}
const readJson = async (ide: IdeName) =>
  toValue(parseJsonc(await readFile(fileOf(ide), 'utf8'))!) as Record<string, Record<string, unknown>>;

const probes: Record<string, Partial<ProbeResult>> = {
  'https://mcp.linear.app/mcp': { reachable: true, xaa: 'supported', asIssuer: 'https://linear.app', needsClientId: true },
  'https://mcp.atlassian.com/v1/mcp': { reachable: true, xaa: 'supported', asIssuer: 'https://auth.atlassian.com', needsClientId: true },
  'https://docs.internal.dev/mcp': { reachable: true, xaa: 'not_needed', needsClientId: false },
  'https://todo.oauth.dev/mcp': {
    reachable: true,
    xaa: 'unsupported',
    path: 'oauth',
    paths: [
      { path: 'xaa', applies: false, reason: 'no ID-JAG profile' },
      { path: 'oauth', applies: true, reason: 'authorization code with PKCE' },
    ],
  },
  'https://mcp.notion.com/mcp': {
    reachable: true,
    xaa: 'unsupported',
    error: {
      code: 'server_not_xaa_capable',
      message: 'The authorization server https://notion.so does not offer the ID-JAG grant profile',
      fix: '',
    },
  },
  'https://down.example.com/mcp': {
    reachable: false,
    xaa: 'unknown',
    error: { code: 'server_unreachable', message: 'https://down.example.com/mcp could not be reached (ENOTFOUND)', fix: '' },
  },
};

function fakeControl(options: { servers?: Array<Pick<ServerStatus, 'id' | 'url'>>; locked?: string[]; failAdd?: string[] } = {}) {
  const servers = [...(options.servers ?? [])];
  const added: Array<z.input<typeof AddServerInputSchema>> = [];
  const probed: string[] = [];
  return {
    added,
    probed,
    listServers: async () => servers as ServerStatus[],
    getSettings: async () => ({ locked: options.locked ?? [] }) as Settings,
    probeUrl: async ({ url }: { url: string }) => {
      probed.push(url);
      return { url, scopes: [], needsClientId: false, reachable: true, xaa: 'unknown', paths: [], ...probes[url] } as ProbeResult;
    },
    addServer: async (input: z.input<typeof AddServerInputSchema>) => {
      if (options.failAdd?.includes(input.url)) throw new LanyardError('config_invalid', 'refused by test', 'n/a');
      added.push(input);
      servers.push({ id: input.id!, url: input.url });
      return { id: input.id!, url: input.url } as ServerStatus;
    },
  };
}

const cursorText =
  '{\n' +
  '  "mcpServers": {\n' +
  '    "Linear": { "url": "https://mcp.linear.app/mcp" },\n' +
  '    "github": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"] },\n' +
  '    "stripe": { "url": "https://mcp.stripe.com", "headers": { "Authorization": "Bearer sk_live_123" } },\n' +
  '    "asana": { "url": "https://mcp.asana.com/sse" },\n' +
  '    "atlassian": { "command": "npx", "args": ["-y", "mcp-remote@0.1.29", "https://mcp.atlassian.com/v1/mcp"] }\n' +
  '  }\n' +
  '}\n';
const vscodeText =
  '{\n  // mine\n  "servers": {\n    "linear": { "type": "http", "url": "https://mcp.linear.app/mcp" },\n    "memory": { "type": "stdio", "command": "npx", "args": ["@modelcontextprotocol/server-memory"] },\n    "down": { "type": "http", "url": "https://down.example.com/mcp" },\n  },\n}\n';
const desktopText =
  '{\n  "mcpServers": {\n    "wiki": { "command": "npx", "args": ["mcp-remote", "https://wiki.acme.dev/mcp", "--header", "Authorization: Bearer ${WIKI_TOKEN}"] }\n  }\n}\n';
const windsurfText =
  '{\n  "mcpServers": {\n    "notion": { "serverUrl": "https://mcp.notion.com/mcp" },\n    "docs": { "serverUrl": "https://docs.internal.dev/mcp", "disabled": true }\n  }\n}\n';
const claudeCodeText =
  '{\n  "numStartups": 3,\n  "mcpServers": {\n    "todo": { "type": "http", "url": "https://todo.acme.dev/mcp" },\n    "docs": { "type": "http", "url": "https://docs.internal.dev/mcp" }\n  }\n}\n';

async function seedAll(): Promise<void> {
  await seed('cursor', cursorText);
  await seed('vscode', vscodeText);
  await seed('claude-desktop', desktopText);
  await seed('windsurf', windsurfText);
  await seed('claude-code', claudeCodeText);
}

describe('classify', () => {
  it('reads each IDE dialect and mcp-remote wrappers', () => {
    expect(classify('a', { url: 'https://x/mcp' })).toMatchObject({ kind: 'http', url: 'https://x/mcp' });
    expect(classify('a', { serverUrl: 'https://x/mcp' })).toMatchObject({ kind: 'http', url: 'https://x/mcp' });
    expect(classify('a', { type: 'sse', url: 'https://x/events' })).toMatchObject({ kind: 'sse' });
    expect(
      classify('a', { command: 'C:\\Program Files\\nodejs\\npx.cmd', args: ['-y', 'mcp-remote', 'https://x/mcp', '--header', 'X-Key: 1'] }),
    ).toMatchObject({ kind: 'mcp-remote', url: 'https://x/mcp', headers: ['X-Key'] });
    expect(classify('a', { command: 'mcp-remote', args: ['https://x/mcp', '--transport', 'sse-only'] })).toMatchObject({ kind: 'sse' });
    expect(classify('a', { command: 'uvx', args: ['mcp-server-fetch'] })).toMatchObject({ kind: 'stdio' });
    expect(classify('lanyard', { url: 'http://127.0.0.1:47821/mcp' }).kind).toBe('lanyard');
    expect(classify('a', 'nope').kind).toBe('other');
  });
});

describe('the plan (--dry-run)', () => {
  it('moves remote servers, leaves the rest and says why for each', async () => {
    await seedAll();
    const control = fakeControl({ servers: [{ id: 'todo', url: 'https://todo.acme.dev/mcp' }] });
    const plan = await planImport({ ctx, control });
    const byKey = Object.fromEntries(plan.items.map((i) => [`${i.ide}/${i.name}`, i]));

    expect(byKey['cursor/Linear']).toMatchObject({
      action: 'move',
      serverId: 'linear',
      existing: false,
      kind: 'http',
      warning: expect.stringMatching(/client id/),
    });
    expect(byKey['cursor/atlassian']).toMatchObject({ action: 'move', serverId: 'atlassian', kind: 'mcp-remote' });
    expect(byKey['cursor/github']).toMatchObject({ action: 'skip', kind: 'stdio', reason: expect.stringMatching(/local stdio server/) });
    // An API key moves onto the API-key path; the plan names the header, never the key.
    expect(byKey['cursor/stripe']).toMatchObject({
      action: 'move',
      serverId: 'stripe',
      keyHeader: 'Authorization',
      reason: expect.stringMatching(/sends an API key \(Authorization header\): it moves to the keychain/),
    });
    expect(JSON.stringify(plan)).not.toContain('sk_live_123');
    expect(byKey['cursor/asana']).toMatchObject({ action: 'skip', kind: 'sse', reason: expect.stringMatching(/legacy SSE/) });
    // The same URL in two IDEs becomes one Lanyard server.
    expect(byKey['vscode/linear']).toMatchObject({ action: 'move', serverId: 'linear', reason: expect.stringMatching(/same server/) });
    expect(byKey['vscode/memory']).toMatchObject({ action: 'skip', kind: 'stdio' });
    expect(byKey['vscode/down']).toMatchObject({ action: 'skip', reason: expect.stringMatching(/could not be reached/) });
    // ${WIKI_TOKEN} is not in the entry's env: only the IDE's environment has it.
    expect(byKey['claude-desktop/wiki']).toMatchObject({
      action: 'skip',
      kind: 'mcp-remote',
      reason: expect.stringMatching(/Authorization header comes from a variable only the IDE can resolve/),
    });
    expect(byKey['windsurf/notion']).toMatchObject({ action: 'skip', reason: expect.stringMatching(/does not support cross-app access/) });
    expect(byKey['windsurf/docs']).toMatchObject({ action: 'skip', reason: expect.stringMatching(/disabled in Windsurf/) });
    expect(byKey['claude-code/todo']).toMatchObject({
      action: 'move',
      serverId: 'todo',
      existing: true,
      reason: 'already in Lanyard as "todo"',
    });
    expect(byKey['claude-code/docs']).toMatchObject({
      action: 'move',
      serverId: 'docs',
      reason: expect.stringMatching(/needs no sign-in/),
    });
    // Each URL probed once, and nothing written by a plan.
    expect(control.probed.filter((u) => u === 'https://mcp.linear.app/mcp')).toHaveLength(1);
    expect(await readFile(fileOf('cursor'), 'utf8')).toBe(cursorText);
    expect(control.added).toEqual([]);
  });

  it('with the server list locked by the administrator, nothing new moves', async () => {
    await seed('cursor', cursorText);
    const plan = await planImport({ ctx, control: fakeControl({ locked: ['servers'] }), ides: ['cursor'] });
    expect(plan.items.find((i) => i.name === 'Linear')).toMatchObject({
      action: 'skip',
      reason: expect.stringMatching(/administrator manages the server list/),
    });
  });

  it('reports an unreadable file instead of failing the whole plan', async () => {
    await seed('cursor', '{ "mcpServers": { oops } }');
    await seed('claude-code', claudeCodeText);
    const plan = await planImport({ ctx, control: fakeControl(), ides: ['cursor', 'claude-code'], probe: false });
    expect(plan.unreadable).toEqual([expect.objectContaining({ ide: 'cursor', problem: expect.stringMatching(/not valid JSON/) })]);
    expect(plan.items.map((i) => i.name)).toEqual(['todo', 'docs']);
  });
});

describe('applying it (--yes)', () => {
  it('adds each server once, rewrites each IDE file once with a backup, and disconnect undoes it', async () => {
    await seedAll();
    const control = fakeControl({ servers: [{ id: 'todo', url: 'https://todo.acme.dev/mcp' }] });
    const plan = await planImport({ ctx, control });
    const secrets = new KeychainRecorder();
    const withKeychain = { ...ctx, secrets };
    const result = await applyImport({ plan, ctx: withKeychain, control, transport: 'http', endpoint, launcher });

    expect(control.added.map((a) => [a.id, a.url, a.name])).toEqual([
      ['linear', 'https://mcp.linear.app/mcp', 'Linear'],
      ['stripe', 'https://mcp.stripe.com', 'stripe'],
      ['atlassian', 'https://mcp.atlassian.com/v1/mcp', 'atlassian'],
      ['docs', 'https://docs.internal.dev/mcp', 'docs'],
    ]);
    // The key goes to Lanyard (which keeps it in the keychain) on the API-key path.
    expect(control.added[1]).toMatchObject({ authPath: 'header', header: { name: 'Authorization', value: 'Bearer sk_live_123' } });
    expect(result.failed).toEqual([]);
    expect(result.files.map((f) => [f.ide, f.removed])).toEqual([
      ['cursor', ['Linear', 'stripe', 'atlassian']],
      ['vscode', ['linear']],
      ['claude-code', ['todo', 'docs']],
    ]);
    expect(Object.keys((await readJson('cursor')).mcpServers!)).toEqual(['github', 'asana', 'lanyard']);
    // Neither the IDE file nor its backup keeps the key: the backup has a placeholder, the keychain the original text.
    const cursorDir = path.dirname(fileOf('cursor'));
    const cursorBackup = (await readdir(cursorDir)).find((f) => f.includes('.lanyard-backup-'))!;
    expect(await readFile(fileOf('cursor'), 'utf8')).not.toContain('sk_live_123');
    expect(await readFile(path.join(cursorDir, cursorBackup), 'utf8')).not.toContain('sk_live_123');
    expect(await readFile(path.join(cursorDir, cursorBackup), 'utf8')).toMatch(
      /"Authorization": "<lanyard-keychain:ide-backup:[0-9a-f]+:0>"/,
    );
    expect(await readFile(path.join(ctx.home, 'ide-connections.json'), 'utf8')).not.toContain('sk_live_123');
    expect(secrets.keys()).toEqual([expect.stringMatching(/^ide-backup:/)]);
    expect(Object.keys((await readJson('vscode')).servers!)).toEqual(['memory', 'down', 'lanyard']);
    expect(Object.keys((await readJson('claude-code')).mcpServers!)).toEqual(['lanyard']);
    expect((await readJson('claude-code')).numStartups).toBe(3);
    // Untouched: nothing movable there.
    expect(await readFile(fileOf('windsurf'), 'utf8')).toBe(windsurfText);
    expect(await readFile(fileOf('claude-desktop'), 'utf8')).toBe(desktopText);
    for (const ide of ['cursor', 'vscode', 'claude-code'] as const) {
      const backups = (await readdir(path.dirname(fileOf(ide)))).filter((f) => f.includes('.lanyard-backup-'));
      expect(backups).toHaveLength(1);
    }

    // Undo: the IDE files are back exactly as before the import, the key included, and its backup copy leaves the keychain.
    await disconnectIde('cursor', withKeychain);
    await disconnectIde('vscode', withKeychain);
    expect(await readFile(fileOf('cursor'), 'utf8')).toBe(cursorText);
    expect(await readFile(fileOf('vscode'), 'utf8')).toBe(vscodeText);
    expect(secrets.keys()).toEqual([]);
  });

  it('an entry whose server Lanyard could not add stays in its IDE', async () => {
    await seed('cursor', cursorText);
    const control = fakeControl({ failAdd: ['https://mcp.linear.app/mcp'] });
    const plan = await planImport({ ctx, control, ides: ['cursor'] });
    const result = await applyImport({ plan, ctx, control, transport: 'stdio', launcher });
    expect(result.failed).toEqual([
      expect.objectContaining({
        item: expect.objectContaining({ name: 'Linear' }),
        error: expect.objectContaining({ message: 'refused by test' }),
      }),
    ]);
    expect(Object.keys((await readJson('cursor')).mcpServers!)).toEqual(['Linear', 'github', 'asana', 'lanyard']);
  });
});

describe('servers on the other auth paths', () => {
  it('an OAuth server moves on the path the probe found, recorded when added, with the command to authorize it', async () => {
    await seed('claude-code', '{\n  "mcpServers": {\n    "todo": { "type": "http", "url": "https://todo.oauth.dev/mcp" }\n  }\n}\n');
    const control = fakeControl();
    const plan = await planImport({ ctx, control, ides: ['claude-code'] });
    expect(plan.items[0]).toMatchObject({
      action: 'move',
      authPath: 'oauth',
      reason: 'remote server on the oauth path (OAuth (browser authorization))',
      warning: expect.stringMatching(/`lanyard servers authorize todo`/),
    });
    // With the paths locked by the administrator, the broker applies the policy's choice itself.
    const locked = await planImport({ ctx, control: fakeControl({ locked: ['authPaths'] }), ides: ['claude-code'] });
    expect(locked.items[0]).toMatchObject({ action: 'move' });
    expect(locked.items[0]!.authPath).toBeUndefined();

    await applyImport({ plan, ctx, control, transport: 'stdio', launcher });
    expect(control.added).toEqual([expect.objectContaining({ id: 'todo', authPath: 'oauth' })]);
  });
});
