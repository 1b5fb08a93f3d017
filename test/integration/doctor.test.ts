/**
 * `lanyard doctor` against the real sandbox (oidc-provider IdP, resource ASes, SDK MCP servers over HTTP) and the real
 * OS keychain: healthy, then with each hop broken — wrong issuer, an AS without the id-jag profile, the IdP refusing
 * the audience, the keychain unavailable, the local endpoint stale or its port taken — and the right line fails with
 * its fix. Run with `npm test`, or `bash scripts/keyring-session.sh npx vitest run test/integration/doctor.test.ts`.
 */
import { execFile, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../electron/broker/broker';
import type { LanyardConfigInput } from '../../electron/broker/config/schema';
import { openConfigStore } from '../../electron/broker/config/store';
import { runDoctor, type DoctorCheck, type DoctorReport } from '../../electron/broker/doctor/doctor';
import { formatDoctorReport } from '../../electron/broker/doctor/format';
import { startGatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { publishRuntime, writeRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { keychainNamespace } from '../../electron/broker/paths';
import { KeychainSecretStore } from '../../electron/broker/secrets/keychain-store';
import { LanyardError } from '../../electron/broker/errors';
import { readStartupFailure, recordStartupFailure } from '../../electron/broker/startup-failure';
import { silentLogger } from '../../electron/broker/util/log';
import { ErrorCodes } from '../../shared/errors';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startIdp, type SandboxIdp } from '../fixtures/sandbox/idp';
import { startMcpServer, type SandboxMcpServer } from '../fixtures/sandbox/mcp-servers';
import { startResourceAs, type SandboxResourceAs } from '../fixtures/sandbox/resource-as';
import { tempHome } from '../helpers/engine';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const NO_MANAGED = { LANYARD_MANAGED_CONFIG: '/nonexistent/lanyard-managed.json' };

interface Instance {
  home: string;
  local: Broker;
  cleanup(): Promise<void>;
}

const instances: Instance[] = [];
afterEach(async () => {
  for (const i of instances.splice(0)) await i.cleanup();
});

/** A Lanyard home configured for `config`, with `secrets` in its own keychain namespace, optionally signed in. */
async function instance(
  config: Omit<LanyardConfigInput, 'version'>,
  options: { secrets?: Record<string, string>; idp?: SandboxIdp; signIn?: string } = {},
): Promise<Instance> {
  const temp = await tempHome();
  openConfigStore(temp.home).update(() => ({ version: 1, gateway: { port: 0 }, ...config }));
  const secrets = new KeychainSecretStore({ service: keychainNamespace(temp.home) });
  for (const [k, v] of Object.entries(options.secrets ?? {})) await secrets.set(k, v);
  // The CLI's in-process broker (no broker running): the engine is built when doctor asks for it.
  const local = await Broker.create({
    home: temp.home,
    env: NO_MANAGED,
    version: 'test',
    secrets,
    engine: 'on-demand',
    log: silentLogger,
    openUrl: async (url) => {
      const callback = await options.idp!.completeLogin(url, options.signIn ?? 'alice');
      await fetch(callback);
    },
  });
  if (options.signIn) {
    await local.loadEngine();
    await local.control.signIn();
  }
  const inst: Instance = {
    home: temp.home,
    local,
    async cleanup() {
      await local.close();
      await secrets.deleteAll();
      await temp.cleanup();
    },
  };
  instances.push(inst);
  return inst;
}

function doctor(inst: Instance, extra: Partial<Parameters<typeof runDoctor>[0]> = {}): Promise<DoctorReport> {
  return runDoctor({
    home: inst.home,
    config: inst.local.config,
    secrets: inst.local.secrets,
    managed: inst.local.managed,
    engine: () => inst.local.loadEngine(),
    auth: inst.local.auth,
    ...extra,
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const check = (report: DoctorReport, id: string): DoctorCheck => {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check '${id}' in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
};

describe('doctor against the sandbox', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 600 } });
  });
  afterAll(async () => {
    await sandbox?.stop();
  });
  const healthy = () => instance(sandbox.lanyardConfig(), { secrets: sandbox.lanyardSecrets(), idp: sandbox.idp, signIn: 'alice' });

  it('healthy: every hop passes, one line each, and a second run spends no new grant', async () => {
    const inst = await healthy();
    const report = await doctor(inst);
    expect(report.checks.filter((c) => !c.ok && !c.skipped)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.id)).toEqual([
      'keychain',
      'managed',
      'config',
      'idp.discovery',
      'idp.token-exchange',
      'session',
      // One line per hop of the Cross-App Access path, for each server.
      ...['todo', 'wiki'].flatMap((id) => ['path', 'prm', 'as', 'session', 'id-jag', 'grant', 'mcp'].map((hop) => `server.${id}.${hop}`)),
      'endpoint',
    ]);
    expect(check(report, 'session').detail).toMatch(/^signed in as alice@example\.com; ID token valid for \d+ min/);
    expect(check(report, 'server.wiki.as').detail).toMatch(
      /tenant-acme: issuer matches its metadata; jwt-bearer grant and ID-JAG profile advertised/,
    );
    expect(check(report, 'server.todo.path').detail).toMatch(/^xaa — Cross-App Access \(/);
    expect(check(report, 'server.todo.session').detail).toBe('signed in as alice@example.com');
    expect(check(report, 'server.todo.id-jag').detail).toBe('the IdP issued an ID-JAG for this server');
    expect(check(report, 'server.todo.grant').detail).toMatch(/^exchanged: a new access token \(todo:read.*\) valid until/);
    expect(check(report, 'server.todo.mcp').detail).toMatch(/answered initialize with the Cross-App Access token$/);

    const exchanges = sandbox.idp.counters.exchanges;
    const again = await doctor(inst, { serverId: 'todo' });
    expect(check(again, 'server.todo.id-jag')).toMatchObject({ ok: true, skipped: true, detail: expect.stringMatching(/no ID-JAG spent/) });
    expect(check(again, 'server.todo.grant').detail).toMatch(/^a cached access token .* no new grant was spent$/);
    expect(sandbox.idp.counters.exchanges).toBe(exchanges);
    expect(again.checks.some((c) => c.id.startsWith('server.wiki'))).toBe(false);

    const text = formatDoctorReport(report);
    expect(text).toMatch(/^✓ Keychain\s+Secret Service/m);
    expect(text).toMatch(/All 21 checks passed\.\n$/);
  });

  it('not signed in: the sign-in line fails with its fix, and the exchanges are skipped', async () => {
    const inst = await instance(sandbox.lanyardConfig(), { secrets: sandbox.lanyardSecrets(), idp: sandbox.idp });
    const report = await doctor(inst);
    expect(check(report, 'session')).toMatchObject({
      ok: false,
      error: { code: ErrorCodes.NOT_SIGNED_IN, fix: expect.stringMatching(/lanyard login/) },
    });
    expect(check(report, 'server.todo.session')).toMatchObject({ ok: false, error: { fix: 'Run `lanyard login`.' } });
    expect(check(report, 'server.todo.id-jag')).toMatchObject({ skipped: true, detail: expect.stringMatching(/sign in first/) });
    expect(check(report, 'server.todo.as').ok).toBe(true);
    expect(report.ok).toBe(false);
  });

  it('wrong issuer: IdP discovery fails and names the setting to fix', async () => {
    const config = sandbox.lanyardConfig();
    const inst = await instance(
      { ...config, idp: { ...config.idp, issuer: `${sandbox.idp.issuer}/oauth2/default` } },
      { secrets: sandbox.lanyardSecrets() },
    );
    const report = await doctor(inst);
    expect(check(report, 'idp.discovery')).toMatchObject({
      ok: false,
      error: {
        code: ErrorCodes.CONFIG_INVALID,
        message: expect.stringMatching(/No OpenID Connect or OAuth metadata at .*oauth2\/default \(HTTP 404/),
        fix: expect.stringMatching(/idp\.issuer/),
      },
    });
    expect(formatDoctorReport(report)).toMatch(/✗ IdP discovery .*\n\s+→ Check idp\.issuer/);
  });

  it('an issuer that differs from what the IdP publishes (trailing slash) is a mismatch', async () => {
    const config = sandbox.lanyardConfig();
    const inst = await instance(
      { ...config, idp: { ...config.idp, issuer: `${sandbox.idp.issuer}/` } },
      { secrets: sandbox.lanyardSecrets() },
    );
    const report = await doctor(inst);
    expect(check(report, 'idp.discovery')).toMatchObject({
      ok: false,
      error: {
        message: expect.stringMatching(/names the issuer http:\/\/127\.0\.0\.1:\d+, not the configured http:\/\/127\.0\.0\.1:\d+\//),
        fix: expect.stringMatching(/Set idp\.issuer to exactly/),
      },
    });
  });

  it('the IdP refusing the audience: the exchange line fails with the policy reason and the admin fix', async () => {
    const inst = await healthy();
    const todoAs = sandbox.server('todo').as.issuer;
    const removed = sandbox.idp.policy.filter((r) => r.audience === todoAs);
    sandbox.idp.policy.splice(0, sandbox.idp.policy.length, ...sandbox.idp.policy.filter((r) => r.audience !== todoAs));
    try {
      const report = await doctor(inst, { serverId: 'todo' });
      expect(check(report, 'server.todo.as').ok).toBe(true);
      expect(check(report, 'server.todo.grant').skipped).toBe(true);
      expect(check(report, 'server.todo.id-jag')).toMatchObject({
        ok: false,
        error: {
          code: ErrorCodes.EXCHANGE_DENIED,
          message: expect.stringMatching(/invalid_target/),
          fix: expect.stringMatching(/IdP admin/),
        },
      });
    } finally {
      sandbox.idp.policy.push(...removed);
    }
  });

  it('an unknown --server is its own failing line', async () => {
    const inst = await healthy();
    const report = await doctor(inst, { serverId: 'nope' });
    expect(check(report, 'server.nope')).toMatchObject({ ok: false, error: { code: ErrorCodes.SERVER_UNKNOWN } });
  });

  it('keychain unavailable (no D-Bus): the keychain line fails with the fix, from the real CLI in a child process', async () => {
    const temp = await tempHome();
    try {
      openConfigStore(temp.home).update(() => ({ version: 1, ...sandbox.lanyardConfig() }));
      const failure = (await run(process.execPath, ['--import', 'tsx', 'electron/cli/lanyard.ts', 'doctor', '--json'], {
        cwd: root,
        env: { ...process.env, ...NO_MANAGED, LANYARD_HOME: temp.home, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' },
      }).catch((e: unknown) => e)) as { code: number; stdout: string };
      expect(failure.code).toBe(1);
      const report = JSON.parse(failure.stdout) as DoctorReport;
      expect(check(report, 'keychain')).toMatchObject({
        ok: false,
        error: {
          code: ErrorCodes.KEYCHAIN_UNAVAILABLE,
          message: expect.stringMatching(/D-Bus/),
          fix: expect.stringMatching(/dbus-run-session/),
        },
      });
      expect(check(report, 'session')).toMatchObject({ skipped: true, detail: expect.stringMatching(/keychain is unavailable/) });
      // The hops that need no keychain still ran.
      expect(check(report, 'idp.discovery').ok).toBe(true);
      expect(check(report, 'server.todo.as').ok).toBe(true);
    } finally {
      await temp.cleanup();
    }
  }, 60_000);
});

describe('doctor against an authorization server that does not advertise the id-jag profile', () => {
  let idp: SandboxIdp;
  let as: SandboxResourceAs;
  let mcp: SandboxMcpServer;
  beforeAll(async () => {
    idp = await startIdp({ idTokenTtlSeconds: 600 });
    as = await startResourceAs({
      name: 'Quiet AS',
      trustedIdp: { issuer: idp.issuer, jwksUri: idp.jwksUri },
      clients: [{ clientId: 'lanyard-at-quiet', authMethod: 'none' }],
      resources: [],
      scopes: ['quiet:read'],
      advertise: { idJagProfile: false },
    });
    mcp = await startMcpServer({ id: 'quiet', name: 'Quiet', as, baseScopes: ['quiet:read'] });
    as.resources.push(mcp.resource);
    idp.policy.push({
      user: 'alice',
      audience: as.issuer,
      resource: mcp.resource,
      scopes: ['quiet:read'],
      clientIdAtAs: 'lanyard-at-quiet',
    });
  });
  afterAll(async () => {
    await mcp?.stop();
    await as?.stop();
    await idp?.stop();
  });

  it('fails the authorization-server line naming the missing profile, while the exchange itself still works', async () => {
    const inst = await instance(
      {
        idp: { issuer: idp.issuer, clientId: idp.client.clientId, clientAuth: { method: idp.client.authMethod } },
        servers: [{ id: 'quiet', name: 'Quiet', url: mcp.url, asClient: { clientId: 'lanyard-at-quiet', method: 'none' } }],
      },
      { idp, signIn: 'alice' },
    );
    const report = await doctor(inst);
    expect(check(report, 'server.quiet.prm').ok).toBe(true);
    expect(check(report, 'server.quiet.as')).toMatchObject({
      ok: false,
      error: {
        code: ErrorCodes.SERVER_NOT_XAA_CAPABLE,
        message: expect.stringMatching(
          /does not advertise the ID-JAG grant profile \(urn:ietf:params:oauth:grant-profile:id-jag in authorization_grant_profiles_supported\)/,
        ),
      },
    });
    expect(check(report, 'server.quiet.grant')).toMatchObject({ ok: true, detail: expect.stringMatching(/^exchanged/) });
    expect(report.ok).toBe(false);
  });
});

describe('the local endpoint hop', () => {
  let sandbox: Sandbox;
  let blocker: Server | undefined;
  beforeAll(async () => {
    sandbox = await startSandbox();
  });
  afterAll(async () => {
    await sandbox?.stop();
  });
  afterEach(async () => {
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = undefined;
  });

  it('a running broker answering /healthz on its port passes', async () => {
    const inst = await instance(sandbox.lanyardConfig(), { secrets: sandbox.lanyardSecrets() });
    const localAuth = await LocalAuth.open(inst.local.secrets);
    const gateway = await startGatewayServer({
      port: 0,
      localAuth,
      aggregator: { handleRequest: async (_req, res) => void res.writeHead(501).end() },
      relay: createRelay({ getServer: () => undefined, tokens: (await inst.local.loadEngine())!.tokens }),
    });
    const runtime = await publishRuntime({ home: inst.home, port: gateway.port, version: 'test', localAuth });
    try {
      const report = await doctor(inst);
      expect(check(report, 'endpoint')).toMatchObject({
        ok: true,
        detail: expect.stringMatching(new RegExp(`answers on http://127\\.0\\.0\\.1:${gateway.port}/mcp; port ${gateway.port} is ours`)),
      });
    } finally {
      await runtime.close();
      await gateway.close();
    }
  });

  it('a runtime file left by a crashed broker fails with the fix', async () => {
    const inst = await instance(sandbox.lanyardConfig(), { secrets: sandbox.lanyardSecrets() });
    await writeRuntimeFile(inst.home, {
      pid: 2 ** 22 + 12345,
      port: 1,
      url: 'http://127.0.0.1:1',
      startedAt: '',
      version: 'test',
      token: 'x'.repeat(43),
    });
    const report = await doctor(inst);
    expect(check(report, 'endpoint')).toMatchObject({
      ok: false,
      error: {
        code: ErrorCodes.BROKER_NOT_RUNNING,
        message: expect.stringMatching(/stopped unexpectedly/),
        fix: expect.stringMatching(/Start Lanyard again/),
      },
    });
  });

  it('the detached broker’s last start failed (not the port): the endpoint line fails with its message and fix until a start succeeds', async () => {
    const inst = await instance(sandbox.lanyardConfig(), { secrets: sandbox.lanyardSecrets() });
    // What `lanyard serve`, started detached by `lanyard stdio`, leaves when its config does not load.
    const broken = new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      'The config file has an error: gateway.port must be a number.',
      'Fix the file.',
    );
    await recordStartupFailure(inst.home, broken);
    const expected = {
      ok: false,
      error: {
        code: ErrorCodes.CONFIG_INVALID,
        message: expect.stringMatching(
          /^Lanyard's last start \(.+\) failed: The config file has an error: gateway\.port must be a number\.$/,
        ),
        fix: 'Fix the file.',
      },
    };
    // Any-free-port and fixed-port configurations both report it.
    expect(check(await doctor(inst), 'endpoint')).toMatchObject(expected);
    const fixed = await freePort();
    inst.local.config.update((draft) => {
      draft.gateway.port = fixed;
    });
    expect(check(await doctor(inst), 'endpoint')).toMatchObject(expected);
    expect(formatDoctorReport(await doctor(inst))).toMatch(/gateway\.port must be a number/);

    // A start that succeeds (the real `lanyard serve`) removes the record: the line passes again.
    inst.local.config.update((draft) => {
      draft.gateway.port = 0;
    });
    const serve = spawn(process.execPath, ['--import', 'tsx', 'electron/cli/lanyard.ts', 'serve', '--port', '0'], {
      cwd: root,
      env: { ...process.env, ...NO_MANAGED, LANYARD_HOME: inst.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      serve.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise((r) => serve.once('exit', r));
      await Promise.race([
        new Promise<void>((resolve) => serve.stdout.on('data', () => /Stop with Ctrl-C/.test(out) && resolve())),
        exited.then(() => Promise.reject(new Error(`lanyard serve exited: ${out}`))),
      ]);
      serve.kill('SIGINT');
      await exited;
    } finally {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    }
    expect(await readStartupFailure(inst.home)).toBeUndefined();
    expect(check(await doctor(inst), 'endpoint')).toMatchObject({ ok: true, detail: expect.stringMatching(/^not running/) });
  }, 60_000);

  it('not running with its port taken by another program fails; free passes', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const inst = await instance({ ...sandbox.lanyardConfig(), gateway: { port } }, { secrets: sandbox.lanyardSecrets() });
    const taken = await doctor(inst);
    expect(check(taken, 'endpoint')).toMatchObject({
      ok: false,
      error: { code: ErrorCodes.PORT_IN_USE, message: expect.stringMatching(new RegExp(`port ${port} \\(gateway\\.port\\) is taken`)) },
    });
    await new Promise<void>((r) => blocker!.close(() => r()));
    blocker = undefined;
    const free = await doctor(inst);
    expect(check(free, 'endpoint')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(new RegExp(`not running; port ${port} is free`)),
    });
  });
});
