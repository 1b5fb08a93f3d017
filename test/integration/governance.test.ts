/**
 * Governance end to end: a real broker (gateway, ledger, secret scan) in front of a sandbox MCP server, IDEs as SDK
 * clients through `/mcp`, the relay `/mcp/<id>` and the built `lanyard stdio`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, type RunningGateway } from '../../electron/broker/broker';
import { unmanaged } from '../../electron/broker/config/managed';
import { auditDir, listLedgerFiles } from '../../electron/broker/governance/ledger/files';
import { readLedger } from '../../electron/broker/governance/ledger/query';
import type { CallRecordInput } from '../../electron/broker/governance/ledger/record';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { createLogger } from '../../electron/broker/util/log';
import { runCli } from '../../electron/cli/cli';
import { startOtherServers } from '../helpers/auth-servers';
import { stdioBridge } from '../helpers/stdio-bridge';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-governance-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let others: Awaited<ReturnType<typeof startOtherServers>>;
let home: string;
let broker: Broker;
let gateway: RunningGateway;
const logLines: string[] = [];
const clients: Client[] = [];

/** A real RSA private key, made for this run (no key is stored in the repository). */
const privateKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const keyBody = privateKey.split('\n')[2]!;

async function ide(name: string, endpoint = gateway.server.mcpUrl): Promise<Client> {
  const client = new Client({ name, version: '1.2.3' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(endpoint), {
      requestInit: { headers: { Authorization: `Bearer ${gateway.localAuth.token}` } },
    }),
  );
  clients.push(client);
  return client;
}

async function calls(): Promise<CallRecordInput[]> {
  await broker.governance.flush();
  return (await readLedger(home)).map((r) => r.record).filter((r) => r.type === 'call') as unknown as CallRecordInput[];
}

/** Every file Lanyard wrote under its home, as text. */
async function everythingWritten(dir = home): Promise<string> {
  let out = '';
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    const st = await stat(p);
    out += st.isDirectory() ? await everythingWritten(p) : await readFile(p, 'utf8');
  }
  return out;
}

const text = (result: unknown) => (result as { content: Array<{ text: string }> }).content.map((c) => c.text).join('\n');

beforeAll(async () => {
  others = await startOtherServers();
  home = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-governance-'));
  broker = await Broker.create({
    version: 'test',
    home,
    secrets: new MemorySecretStore(),
    managed: unmanaged,
    log: createLogger({ level: 'debug', sink: (line) => logLines.push(line) }),
    openUrl: () => undefined,
  });
  await broker.control.addServer({ url: `${others.origin}/open/mcp`, id: 'open' });
  gateway = await broker.startGateway({ port: 0, timeouts: { listBudgetMs: 5_000 } });
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await gateway?.stop();
  await broker?.close();
  await others?.close();
  await rm(home, { recursive: true, force: true });
  await rm(cliDir, { recursive: true, force: true });
});

describe('the audit ledger records every upstream call', () => {
  it('through /mcp: the IDE name and version, server, tool, auth path and outcome (repeated calls take the fast path too)', async () => {
    const cursor = await ide('Cursor');
    for (let i = 0; i < 3; i++)
      expect(text(await cursor.callTool({ name: 'open__echo', arguments: { text: `hi ${i}` } }))).toBe(`open: hi ${i}`);
    const recorded = (await calls()).filter((r) => r.ide === 'Cursor');
    expect(recorded).toHaveLength(3);
    for (const r of recorded)
      expect(r).toMatchObject({
        ideVersion: '1.2.3',
        endpoint: '/mcp',
        server: 'open',
        url: `${others.origin}/open/mcp`,
        method: 'tools/call',
        name: 'echo',
        authPath: 'none',
        outcome: 'ok',
      });
    // Never the arguments.
    expect(JSON.stringify(recorded)).not.toContain('hi 1');
  });

  it('through the relay /mcp/<id>: each request, with the IDE name from its initialize', async () => {
    const windsurf = await ide('Windsurf', `${gateway.server.url}/mcp/open`);
    await windsurf.callTool({ name: 'echo', arguments: { text: 'relayed' } });
    const recorded = (await calls()).filter((r) => r.endpoint === '/mcp/open');
    expect(recorded.find((r) => r.method === 'initialize')).toMatchObject({ ide: 'Windsurf', ideVersion: '1.2.3', outcome: 'ok' });
    // This sandbox server is stateless (no session id to tie later requests to the initialize): the IDE is known
    // when its request comes on the same connection, else recorded as unknown (docs/architecture.md).
    expect(recorded.find((r) => r.method === 'tools/call')).toMatchObject({ server: 'open', name: 'echo', outcome: 'ok' });
  });

  it('through the built `lanyard stdio`: the IDE that started the bridge', async () => {
    const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(build.status, build.stderr).toBe(0);
    const { transport } = stdioBridge(cli, { home });
    const client = new Client({ name: 'Claude Code', version: '2.0.0' });
    await client.connect(transport);
    clients.push(client);
    expect(text(await client.callTool({ name: 'open__echo', arguments: { text: 'via stdio' } }))).toBe('open: via stdio');
    expect((await calls()).filter((r) => r.ide === 'Claude Code')).toEqual([
      expect.objectContaining({ ideVersion: '2.0.0', endpoint: '/mcp', server: 'open', name: 'echo', outcome: 'ok' }),
    ]);
  }, 60_000);
});

describe('the outbound secret scan', () => {
  it('warn (the default): the call goes through, the activity view and the ledger say which secret went where', async () => {
    const cursor = await ide('Cursor');
    expect(text(await cursor.callTool({ name: 'open__echo', arguments: { text: privateKey } }))).toContain(keyBody);
    const last = (await calls()).at(-1)!;
    expect(last).toMatchObject({
      ide: 'Cursor',
      outcome: 'ok',
      secrets: { action: 'warned', findings: [{ kind: 'private key', path: 'arguments.text' }] },
    });
    const warning = broker.activity.recent(20).find((e) => e.summary.startsWith('Secret sent to open'));
    expect(warning?.summary).toContain('a private key at arguments.text');
  });

  it('block: the call never leaves; the IDE gets a tool error naming the kind and the path; the key is in no log, ledger, activity or error', async () => {
    broker.config.update((draft) => ({ ...draft, secretScan: { servers: { open: 'block' } } }));
    const before = others.received.length;
    const cursor = await ide('Cursor');
    const result = await cursor.callTool({ name: 'open__echo', arguments: { note: 'deploy', nested: { key: privateKey } } });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/private key at arguments\.nested\.key/);
    expect(text(result)).not.toContain(keyBody);
    // Through the relay too, and for a second call on the same session (the fast path).
    const direct = await ide('Zed', `${gateway.server.url}/mcp/open`);
    const relayed = await direct.callTool({ name: 'echo', arguments: { text: privateKey } });
    expect(relayed.isError).toBe(true);
    expect(text(relayed)).toMatch(/private key at arguments\.text/);
    const again = await cursor.callTool({ name: 'open__echo', arguments: { text: `x ${privateKey}` } });
    expect(text(again)).toMatch(/private key at arguments\.text/);
    // Only the IDEs' own session traffic reached the server: no tools/call POST carried the key.
    expect(others.received.slice(before).length).toBeLessThanOrEqual(4);
    const denied = (await calls()).filter((r) => r.outcome === 'denied');
    expect(denied.map((r) => [r.endpoint, r.code, r.secrets?.findings[0]?.path])).toEqual([
      ['/mcp', 'secret_blocked', 'arguments.nested.key'],
      ['/mcp/open', 'secret_blocked', 'arguments.text'],
      ['/mcp', 'secret_blocked', 'arguments.text'],
    ]);
    await broker.activity.flush();
    const written = await everythingWritten();
    expect(written).toContain('secret_blocked');
    expect(written).not.toContain(keyBody);
    expect(logLines.join('\n')).not.toContain(keyBody);
    expect(JSON.stringify(broker.activity.recent(100))).not.toContain(keyBody);
    broker.config.update((draft) => ({ ...draft, secretScan: undefined }));
  });
});

describe('the ledger on disk', () => {
  it('is 0600, and a tampered ledger is detected by `lanyard audit verify` (exit 1, naming the record)', async () => {
    await broker.governance.flush();
    const [file] = await listLedgerFiles(auditDir(home));
    if (process.platform !== 'win32') expect((await stat(file!.path)).mode & 0o777).toBe(0o600);
    const run = async (argv: string[]) => {
      let out = '';
      const code = await runCli(argv, {
        io: { out: (t) => (out += t), err: (t) => (out += t), stdin: new PassThrough(), interactive: false },
        env: { LANYARD_HOME: home },
        version: 'test',
      });
      return { code, out };
    };
    expect(await run(['audit', 'verify'])).toMatchObject({ code: 0, out: expect.stringContaining('intact') });
    expect((await run(['audit', '--ide', 'cursor', '--json'])).out).toContain('"ide": "Cursor"');
    expect((await run(['audit', 'export', '--format', 'csv'])).out.split('\n')[0]).toMatch(/^seq,at,type/);

    const lines = (await readFile(file!.path, 'utf8')).split('\n');
    lines[2] = lines[2]!.replace('"outcome":"ok"', '"outcome":"error"');
    await writeFile(file!.path, lines.join('\n'));
    const verify = await run(['audit', 'verify']);
    expect(verify.code).toBe(1);
    expect(verify.out).toContain('Record 3 was edited');
  });
});
