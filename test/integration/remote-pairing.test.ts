/**
 * Remote development end to end: the laptop's real broker (sandbox IdP, alice signed in, the sandbox's todo server)
 * and a "remote side" — the built CLI in another process with another LANYARD home, as in WSL, on an SSH host or in a
 * dev container — talking to the laptop's endpoint. Pairing, approval, a tools/call through `lanyard stdio --remote`,
 * revocation, the code faults, and the scope of a remote token. Memory secret store on the laptop (no keychain needed).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, type RunningGateway } from '../../electron/broker/broker';
import { unmanaged } from '../../electron/broker/config/managed';
import { openConfigStore } from '../../electron/broker/config/store';
import { readLedger } from '../../electron/broker/governance/ledger/query';
import type { CallRecordInput } from '../../electron/broker/governance/ledger/record';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import { createLogger } from '../../electron/broker/util/log';
import { runCli } from '../../electron/cli/cli';
import { saveRemoteCredential } from '../../electron/cli/remote/credentials';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { stdioBridge } from '../helpers/stdio-bridge';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'out', `cli-remote-test-${process.pid}`);
const cli = path.join(cliDir, 'lanyard.js');

let sandbox: Sandbox;
let laptopHome: string;
let remoteHome: string;
let broker: Broker;
let gateway: RunningGateway;
let endpoint: string;
const logLines: string[] = [];
const clients: Client[] = [];

const text = (result: unknown) => (result as { content: Array<{ text: string }> }).content.map((c) => c.text).join('\n');

/** `lanyard <argv>` in-process on the laptop (it finds the running broker through its runtime file). */
async function laptop(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCli(argv, {
    io: { out: (t) => (out += t), err: (t) => (out += t), stdin: new PassThrough(), interactive: false },
    env: { LANYARD_HOME: laptopHome },
    version: 'test',
  });
  return { code, out };
}

/** `lanyard <argv>` in-process on the remote side (its own home). */
async function remoteSide(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCli(argv, {
    io: { out: (t) => (out += t), err: (t) => (out += t), stdin: new PassThrough(), interactive: false },
    env: { LANYARD_HOME: remoteHome },
    version: 'test',
  });
  return { code, out };
}

/** `lanyard remote pair` on the remote side, as its own process; resolves once it shows the code. */
async function startPairing(label: string): Promise<{ code: string; done: Promise<{ status: number | null; out: string; err: string }> }> {
  const child = spawn(process.execPath, [cli, 'remote', 'pair', endpoint, '--label', label], {
    env: { ...process.env, LANYARD_HOME: remoteHome },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /Pairing code: ([A-Z0-9]{4}-[A-Z0-9]{4})/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`pair exited before showing a code: ${err}`)));
  });
  const done = new Promise<{ status: number | null; out: string; err: string }>((resolve) =>
    child.on('exit', (status) => resolve({ status, out, err })),
  );
  return { code, done };
}

async function calls(): Promise<CallRecordInput[]> {
  await broker.governance.flush();
  return (await readLedger(laptopHome)).map((r) => r.record).filter((r) => r.type === 'call') as unknown as CallRecordInput[];
}

async function everythingWritten(dir: string): Promise<string> {
  let out = '';
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    out += (await stat(p)).isDirectory() ? await everythingWritten(p) : await readFile(p, 'utf8');
  }
  return out;
}

async function storedToken(): Promise<string> {
  const file = JSON.parse(await readFile(path.join(remoteHome, 'remote', 'credentials.json'), 'utf8')) as {
    endpoints: Record<string, { token: string }>;
  };
  return file.endpoints[endpoint]!.token;
}

beforeAll(async () => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build-cli.mjs'), '--outfile', path.relative(root, cli)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`CLI build failed: ${build.stderr}`);
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
  const base = process.env.LANYARD_TEST_ROOT ?? tmpdir();
  laptopHome = await mkdtemp(path.join(base, 'lanyard-laptop-'));
  remoteHome = await mkdtemp(path.join(base, 'lanyard-remote-'));
  openConfigStore(laptopHome).update(() => ({ version: 1, ...sandbox.lanyardConfig() }));
  const secrets = new MemorySecretStore();
  for (const [k, v] of Object.entries(sandbox.lanyardSecrets())) await secrets.set(k, v);
  broker = await Broker.create({
    version: 'test',
    home: laptopHome,
    secrets,
    managed: unmanaged,
    log: createLogger({ level: 'debug', sink: (line) => logLines.push(line) }),
    openUrl: async (url) => {
      await fetch(await sandbox.idp.completeLogin(url, 'alice'));
    },
  });
  await broker.control.signIn();
  // The control API over HTTP too (what `lanyard remote approve` and the headless dashboard use).
  gateway = await broker.startGateway({ port: 0, dashboard: { rendererDir: path.join(laptopHome, 'no-renderer') } });
  endpoint = gateway.server.url;
}, 90_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await gateway?.stop();
  await broker?.close();
  await sandbox?.stop();
  for (const dir of [laptopHome, remoteHome, cliDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pairing a remote side and using the laptop through it', () => {
  let deviceId: string;
  let bridge: Client;
  let bridgeErr: () => string;

  it('pair → approve on the laptop → the remote side holds a 0600 token the laptop keeps only as a hash', async () => {
    const pairing = await startPairing('devbox (SSH)');
    // The laptop lists the request by its label, never its code.
    const listed = await broker.control.listRemoteDevices();
    expect(listed.pending).toEqual([expect.objectContaining({ label: 'devbox (SSH)' })]);
    expect(JSON.stringify(listed)).not.toContain(pairing.code);

    const approved = await laptop(['remote', 'approve', pairing.code.toLowerCase()]);
    expect(approved.code, approved.out).toBe(0);
    expect(approved.out).toContain('Paired "devbox (SSH)"');
    const done = await pairing.done;
    expect(done.status, done.err).toBe(0);
    expect(done.out).toContain('Paired with the laptop');

    const token = await storedToken();
    expect(token).toMatch(/^lnr_/);
    const st = await stat(path.join(remoteHome, 'remote', 'credentials.json'));
    expect(st.mode & 0o777).toBe(0o600);
    const devices = await readFile(path.join(laptopHome, 'remote-devices.json'), 'utf8');
    expect(devices).toContain('devbox (SSH)');
    expect(devices).not.toContain(token);
    deviceId = (await broker.control.listRemoteDevices()).devices[0]!.id;
    const status = await remoteSide(['remote', 'status']);
    expect(status).toMatchObject({ code: 0, out: expect.stringContaining(`✓ ${endpoint} as "devbox (SSH)"`) });
    expect(status.out).not.toContain(token);
    // `lanyard doctor` on the remote side: the link to the laptop is a hop, and no IdP here is expected, not a failure.
    const doctor = JSON.parse((await remoteSide(['doctor', '--json'])).out) as { checks: { id: string; ok: boolean; detail: string }[] };
    expect(doctor.checks.find((c) => c.id === `remote.${deviceId}`)).toMatchObject({
      ok: true,
      detail: expect.stringContaining('devbox (SSH)'),
    });
    expect(doctor.checks.find((c) => c.id === 'idp.discovery')).toMatchObject({ ok: true });
  }, 30_000);

  it('a tools/call through `lanyard stdio --remote` reaches the sandbox as alice, and the ledger names the device', async () => {
    const { transport, stderr } = stdioBridge(cli, { home: remoteHome, args: ['--remote', endpoint] });
    bridgeErr = stderr;
    bridge = new Client({ name: 'Remote IDE', version: '1.0.0' });
    await bridge.connect(transport);
    clients.push(bridge);
    const who = JSON.parse(text(await bridge.callTool({ name: 'todo__whoami', arguments: {} }))) as { sub: string };
    expect(who.sub).toBe('00u-alice');
    expect((await calls()).filter((r) => r.ide === 'Remote IDE' && r.method === 'tools/call')).toEqual([
      expect.objectContaining({ remote: 'devbox (SSH)', server: 'todo', name: 'whoami', outcome: 'ok' }),
    ]);
    const activity = await broker.control.recentActivity({ limit: 50 });
    expect(activity.some((a) => a.kind === 'tool_call' && a.summary.includes('(remote: devbox (SSH))'))).toBe(true);
    // The laptop's own IDEs are not attributed to any device.
    const local = new Client({ name: 'Laptop IDE', version: '1' });
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
    await local.connect(
      new StreamableHTTPClientTransport(new URL(gateway.server.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${gateway.localAuth.token}` } },
      }),
    );
    clients.push(local);
    await local.callTool({ name: 'todo__whoami', arguments: {} });
    const laptopCalls = (await calls()).filter((r) => r.ide === 'Laptop IDE' && r.method === 'tools/call');
    expect(laptopCalls).toHaveLength(1);
    expect(laptopCalls[0]!.remote).toBeUndefined();
  }, 30_000);

  it('`lanyard connect <ide> --remote` on the remote side writes an entry (no token in it) that reaches the laptop', async () => {
    const userHome = path.join(remoteHome, 'user');
    let out = '';
    const code = await runCli(['connect', 'claude-code', '--remote', endpoint], {
      io: { out: (t) => (out += t), err: (t) => (out += t), stdin: new PassThrough(), interactive: false },
      env: { LANYARD_HOME: remoteHome, HOME: userHome, LANYARD_MANAGED_CONFIG: path.join(remoteHome, 'no-managed.json') },
      version: 'test',
      platform: 'linux',
      homedir: userHome,
      script: cli,
    });
    expect(code, out).toBe(0);
    expect(out).toContain(`reaches the laptop's Lanyard at ${endpoint}`);
    const file = await readFile(path.join(userHome, '.claude.json'), 'utf8');
    expect(file).not.toContain('lnr_');
    const entry = (JSON.parse(file) as { mcpServers: Record<string, { command: string; args: string[] }> }).mcpServers.lanyard!;
    expect(entry.args).toEqual(expect.arrayContaining(['stdio', '--remote', endpoint, '--ide', 'claude-code']));
    // What the IDE would start, started.
    const { StdioClientTransport } = await import('@modelcontextprotocol/client/stdio');
    const ide = new Client({ name: 'Claude Code (remote)', version: '1' });
    await ide.connect(
      new StdioClientTransport({
        command: entry.command,
        args: entry.args,
        env: { ...process.env, LANYARD_HOME: remoteHome } as Record<string, string>,
      }),
    );
    clients.push(ide);
    const tools = await ide.listTools();
    expect(tools.tools.some((t) => t.name === 'todo__whoami')).toBe(true);
  }, 30_000);

  it('the remote token opens no control API: status, settings, pairing approval, sign-out are refused with the reason', async () => {
    const token = await storedToken();
    for (const method of ['status', 'signOut', 'getSettings', 'approvePairing', 'listRemoteDevices', 'rotateLocalToken']) {
      const res = await fetch(`${endpoint}/api/${method}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: method === 'approvePairing' ? '{"code":"ABCD-EFGH"}' : '{}',
      });
      expect(res.status, method).toBe(403);
      const body = (await res.json()) as { error: { message: string; data: { code: string } } };
      expect(body.error.data.code).toBe('remote_token_refused');
      expect(body.error.message).toContain('may only call Lanyard');
      expect(body.error.message).not.toContain(token);
    }
    // Still signed in: the refused sign-out did nothing.
    expect((await broker.control.status()).session.status).toBe('signed_in');
  });

  it('the laptop asleep (its endpoint gone): the IDE hears so at once, and the bridge reconnects by itself once it is back', async () => {
    const port = gateway.server.port;
    await gateway.stop();
    const started = Date.now();
    const error = await bridge.callTool({ name: 'todo__whoami', arguments: {} }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error?.message).toContain(`the laptop's Lanyard at ${endpoint} cannot be reached`);
    expect(error?.message).toContain('tries again in 1 s');
    gateway = await broker.startGateway({ port, dashboard: { rendererDir: path.join(laptopHome, 'no-renderer') } });
    await new Promise((r) => setTimeout(r, 1_100));
    const who = JSON.parse(text(await bridge.callTool({ name: 'todo__whoami', arguments: {} }))) as { sub: string };
    expect(who.sub).toBe('00u-alice');
    expect(bridgeErr()).toContain('reconnected');
  }, 30_000);

  it('revoked on the laptop: the running bridge is refused at once, with how to pair again', async () => {
    const revoked = await laptop(['remote', 'revoke', deviceId]);
    expect(revoked.code, revoked.out).toBe(0);
    const error = await bridge.callTool({ name: 'todo__whoami', arguments: {} }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain('was revoked on the laptop');
    expect(error?.message).toContain('lanyard remote pair');
    const listed = await laptop(['remote', 'list']);
    expect(listed.out).toMatch(new RegExp(`${deviceId}.*revoked`));
    const status = await remoteSide(['remote', 'status']);
    expect(status.code).toBe(3);
    expect(status.out).toContain('was revoked on the laptop');
    expect(status.out).toContain(`→ lanyard remote pair ${endpoint}`);
    const doctor = await remoteSide(['doctor', '--json']);
    expect(doctor.code).toBe(1);
    const hop = (JSON.parse(doctor.out) as { checks: { id: string; ok: boolean; error?: { code: string; fix: string } }[] }).checks.find(
      (c) => c.id === `remote.${deviceId}`,
    );
    expect(hop).toMatchObject({ ok: false, error: { code: 'remote_token_refused', fix: `lanyard remote pair ${endpoint}` } });
    expect(doctor.out).not.toContain(await storedToken());
    expect(bridgeErr()).not.toContain(await storedToken());
  }, 30_000);

  it("nothing leaked: no remote token in the laptop's files, activity or logs", async () => {
    const token = await storedToken();
    await broker.activity.flush();
    await broker.governance.flush();
    expect(await everythingWritten(laptopHome)).not.toContain(token);
    expect(logLines.join('\n')).not.toContain(token);
    expect(JSON.stringify(await broker.control.recentActivity({ limit: 500 }))).not.toContain(token);
  });
});

describe('pairing faults', () => {
  it('guessed codes: wrong codes count down, the fifth voids the request, and the remote side is told to pair again', async () => {
    const pairing = await startPairing('guess target');
    const messages: string[] = [];
    for (let i = 0; i < 5; i++) {
      const wrong = await laptop(['remote', 'approve', 'AAAA-AAAA']);
      expect(wrong.code).toBe(1);
      messages.push(wrong.out);
    }
    expect(messages[0]).toContain('4 more wrong codes void every waiting request');
    expect(messages[4]).toContain('voided');
    for (const m of messages) expect(m).not.toContain('AAAA');
    // The right code no longer works: the request is void.
    const late = await laptop(['remote', 'approve', pairing.code]);
    expect(late.out).toContain('voided');
    expect(late.out).not.toContain(pairing.code);
    const done = await pairing.done;
    expect(done.status).not.toBe(0);
    expect(done.err).toContain('voided');
    expect(done.err).toContain('lanyard remote pair');
  }, 30_000);

  it('replayed: a collected pairing cannot be collected again, and a code cannot be approved twice', async () => {
    const post = (p: string, body: unknown) =>
      fetch(`${endpoint}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const started = (await (await post('/remote/pair', { label: 'replay' })).json()) as { pairing: string; code: string };
    expect((await post('/remote/pair/claim', { pairing: started.pairing })).status).toBe(202);
    await broker.control.approvePairing({ code: started.code });
    const twice = (await broker.control.approvePairing({ code: started.code }).catch((e: unknown) => e)) as Error;
    expect(twice.message).toContain('already approved');
    // Errors name the request by its label, never by the code.
    expect(twice.message).not.toContain(started.code);
    const first = await post('/remote/pair/claim', { pairing: started.pairing });
    expect(first.status).toBe(200);
    const second = await post('/remote/pair/claim', { pairing: started.pairing });
    expect(second.status).toBe(410);
    const body = (await second.json()) as { error: { message: string; fix: string } };
    expect(body.error.message).toContain('already collected');
    expect(JSON.stringify(body)).not.toContain('lnr_');
  });

  it('a web page cannot start a pairing: the front door refuses its Origin and a rebinding Host', async () => {
    const fromPage = await fetch(`${endpoint}/remote/pair`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(fromPage.status).toBe(403);
    expect((await broker.control.listRemoteDevices()).pending.some((p) => p.label === 'remote device')).toBe(false);
  });

  it('an unknown remote token is told to pair again; a laptop that does not answer is a clear error for the IDE', async () => {
    const res = await fetch(`${endpoint}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer lnr_${'A'.repeat(43)}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('lanyard remote pair');

    // Not paired with that laptop: the bridge says how to pair, and exits.
    const unpaired = stdioBridge(cli, { home: remoteHome, args: ['--remote', 'http://127.0.0.1:9'] });
    const first = new Client({ name: 'Unpaired', version: '1' });
    await expect(first.connect(unpaired.transport)).rejects.toThrow();
    await first.close().catch(() => undefined);
    expect(unpaired.stderr()).toContain('not paired with the laptop at http://127.0.0.1:9');
    expect(unpaired.stderr()).toContain('lanyard remote pair http://127.0.0.1:9');

    // The laptop asleep, or the forward dropped: a paired endpoint where nothing answers now.
    await saveRemoteCredential(remoteHome, 'http://127.0.0.1:9', {
      token: `lnr_${'B'.repeat(43)}`,
      deviceId: 'rd_x',
      label: 'x',
      pairedAt: '',
    });
    const asleep = stdioBridge(cli, { home: remoteHome, args: ['--remote', 'http://127.0.0.1:9'] });
    const ide = new Client({ name: 'Asleep', version: '1' });
    const failed = await ide.connect(asleep.transport).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await ide.close().catch(() => undefined);
    expect(failed?.message).toContain("the laptop's Lanyard at http://127.0.0.1:9 cannot be reached");
    expect(failed?.message).toContain('asleep');
    expect((failed as { data?: unknown } | undefined)?.data).toEqual({ code: 'remote_unreachable' });
  }, 30_000);
});
