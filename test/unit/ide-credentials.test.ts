/**
 * API keys in IDE config files: which entries carry one Lanyard can move (and which not, with the reason), and backups
 * that keep no key yet let `disconnect` restore the file byte for byte — including after `connect` took the backup
 * before `import` moved the key.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AddServerInputSchema, ProbeResult, ServerStatus, Settings } from '../../shared/contract';
import type { z } from 'zod';
import { connectIde, disconnectIde, type IdeContext } from '../../electron/broker/ide/connector';
import { credentialOf, redactCredentials, restoreCredentials } from '../../electron/broker/ide/credentials';
import { applyImport, planImport } from '../../electron/broker/ide/import';
import { IDE_TARGETS } from '../../electron/broker/ide/targets';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';

const launcher = { command: '/usr/bin/node', args: ['/opt/lanyard/out/cli/lanyard.js', 'stdio'] };

describe('credentialOf', () => {
  it('one credential header with a value in the file moves; the value is read from env for mcp-remote', () => {
    expect(credentialOf({ url: 'https://x/mcp', headers: { 'X-API-Key': 'k1' } })).toEqual({
      kind: 'key',
      credential: { headerName: 'X-API-Key', value: 'k1' },
    });
    expect(
      credentialOf({
        command: 'npx',
        args: ['-y', 'mcp-remote', 'https://x/mcp', '--header', 'Authorization:Bearer ${TOKEN}'],
        env: { TOKEN: 'k2' },
      }),
    ).toEqual({ kind: 'key', credential: { headerName: 'Authorization', value: 'Bearer k2' } });
  });

  it('stays, with the reason and never the value: a variable only the IDE resolves, several headers, custom headers', () => {
    const input = credentialOf({ url: 'https://x/mcp', headers: { Authorization: 'Bearer ${input:token}' } });
    expect(input).toMatchObject({ kind: 'problem', reason: expect.stringMatching(/comes from a variable only the IDE can resolve/) });
    const envVar = credentialOf({ url: 'https://x/mcp', headers: { 'X-Api-Key': '${env:API_KEY}' } });
    expect(envVar.kind).toBe('problem');
    const several = credentialOf({ url: 'https://x/mcp', headers: { 'X-Api-Key': 'secret-a', 'X-Tenant': 'acme' } });
    expect(several).toMatchObject({ kind: 'problem', reason: expect.stringMatching(/several headers \(X-Api-Key, X-Tenant\)/) });
    expect(JSON.stringify(several)).not.toContain('secret-a');
    expect(credentialOf({ url: 'https://x/mcp', headers: { 'X-Tenant': 'acme' } })).toMatchObject({
      kind: 'problem',
      reason: expect.stringMatching(/custom headers/),
    });
    expect(credentialOf({ url: 'https://x/mcp' })).toEqual({ kind: 'none' });
  });
});

describe('backups without keys', () => {
  it('placeholders in, originals back byte for byte — escapes, twelve keys, mcp-remote args and env', async () => {
    const entries = Array.from(
      { length: 12 },
      (_, i) => `    "s${i}": { "url": "https://s${i}/mcp", "headers": { "X-Api-Key": "key-${i}\\u0041\\"q" } }`,
    );
    const text =
      '{\n  // comment\n  "mcpServers": {\n' +
      entries.join(',\n') +
      ',\n    "r": { "command": "npx", "args": ["mcp-remote", "https://r/mcp", "--header", "Authorization:Bearer ${T}"], "env": { "T": "tok-r", "OTHER": "keep" } }\n  }\n}\n';
    const secrets = new MemorySecretStore();
    const redacted = await redactCredentials(text, 'mcpServers', secrets);
    expect(redacted.redactions).toHaveLength(14);
    expect(redacted.text).not.toMatch(/key-\d|tok-r/);
    expect(redacted.text).toContain('"OTHER": "keep"');
    expect(await restoreCredentials(redacted.text, redacted.redactions, secrets)).toBe(text);
    // A placeholder whose keychain entry is gone cannot be restored: the caller falls back instead of writing a guess.
    await secrets.delete(redacted.redactions[3]!.key);
    expect(await restoreCredentials(redacted.text, redacted.redactions, secrets)).toBeUndefined();
  });
});

describe('import after connect', () => {
  let root: string;
  let ctx: IdeContext;
  beforeEach(async () => {
    root = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-credentials-'));
    ctx = { home: path.join(root, 'lanyard'), machine: { homedir: path.join(root, 'user'), env: {}, platform: 'linux' } };
    await mkdir(ctx.home, { recursive: true });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('takes the key out of the backup `connect` made too, and disconnect still restores the original exactly', async () => {
    const file = IDE_TARGETS.cursor.configPath(ctx.machine);
    const original =
      '{\n  "mcpServers": {\n    "stripe": { "url": "https://mcp.stripe.com", "headers": { "Authorization": "Bearer sk_live_999" } }\n  }\n}\n';
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, original);
    // `lanyard connect` (no keychain at hand: the key is still in the IDE file anyway).
    await connectIde('cursor', { transport: 'stdio', launcher }, ctx);

    const added: Array<z.input<typeof AddServerInputSchema>> = [];
    const control = {
      listServers: async () => [] as ServerStatus[],
      getSettings: async () => ({ locked: [] }) as unknown as Settings,
      probeUrl: async ({ url }: { url: string }) => ({ url, paths: [] }) as unknown as ProbeResult,
      addServer: async (input: z.input<typeof AddServerInputSchema>) => {
        added.push(input);
        return { id: input.id, url: input.url } as ServerStatus;
      },
    };
    const secrets = new MemorySecretStore();
    const plan = await planImport({ ctx, control, ides: ['cursor'] });
    const result = await applyImport({ plan, ctx: { ...ctx, secrets }, control, transport: 'stdio', launcher });
    expect(result.failed).toEqual([]);
    expect(added).toEqual([
      expect.objectContaining({ id: 'stripe', authPath: 'header', header: { name: 'Authorization', value: 'Bearer sk_live_999' } }),
    ]);

    const dir = path.dirname(file);
    for (const name of await readdir(dir)) expect(await readFile(path.join(dir, name), 'utf8')).not.toContain('sk_live_999');
    expect(await readFile(path.join(ctx.home, 'ide-connections.json'), 'utf8')).not.toContain('sk_live_999');

    const undo = await disconnectIde('cursor', { ...ctx, secrets });
    expect(undo.action).toBe('restored-backup');
    expect(await readFile(file, 'utf8')).toBe(original);
  });
});
