/**
 * Runs the official MCP conformance suite against Lanyard and prints, per group, a summary line:
 *   client-auth: N passed, M failed          (every `auth/*` client scenario, one line each, Lanyard's engine as client)
 *   client-protocol: N passed, M failed      (the client protocol scenarios, per revision, Lanyard's upstream sessions as client)
 *   server-direct (<rev>): N passed, M failed         (server scenarios against the sandbox's conformance server)
 *   server-via-relay (<rev>): N passed, M failed      (the same scenarios through Lanyard's relay, /mcp/<id>)
 *   server-via-aggregated (<rev>): N passed, M failed (the same through the aggregated pipeline, /mcp/only/<id>)
 *   gateway-dns-rebinding: N passed, M failed (dns-rebinding-protection against the gateway itself)
 * client-auth counts scenarios (a scenario passes when it recorded checks and none failed); the server groups count
 * checks. Exits non-zero when something fails, or when the gateway run misses a check that passed directly — except the
 * checks listed in KNOWN_GAPS (open work, printed with `~` and still counted as failed) and the scenarios of an extension
 * the sandbox server does not implement (NOT_APPLICABLE_SERVER_PREFIXES, printed with the reason). A WARNING
 * (a SHOULD not met) is listed and counted apart; it does not fail the run.
 *
 * Client scenarios: every `auth/*` scenario the suite lists (`conformance list --client`) runs against a client built
 * on Lanyard's own engine — test/conformance/oauth-client.ts (the OAuth 2.1 path, electron/broker/oauth) for the
 * authorization-code scenarios, test/conformance/xaa-client.ts (the identity session and token service) for
 * `auth/enterprise-managed-authorization`. Those that do not apply to a desktop user broker are listed with the reason
 * and not counted: the client-credentials and workload-identity scenarios are machine-to-machine grants with no user.
 * See docs/protocol.md, "The OAuth 2.1 path".
 *
 * The client protocol scenarios (initialize, tools_call, sse-retry, request-metadata, the SEP-2243 header scenarios,
 * json-schema-*, sep-2322-client-request-state) run against test/conformance/upstream-client.ts: the UpstreamPool and a
 * bound session, as the gateway uses them, negotiating the protocol era itself. Each runs once per revision it belongs
 * to (2025-11-25, 2026-07-28: `--spec-version`), and passes when it recorded checks and none failed. See
 * docs/protocol.md, "Upstream era negotiation".
 *
 * The server groups run, for 2025-11-25 and for 2026-07-28, the scenarios that revision requires (`--requirements
 * <rev>`); the sandbox's conformance server speaks both eras. Through the gateway the path is the product's: the suite's client → Lanyard's gateway (local token, Host and Origin checks) →
 * relay → TokenService (alice signed in at the sandbox IdP, ID-JAG, jwt-bearer at the conformance server's own resource
 * AS) → the same conformance server, this time protected. The direct run uses an unprotected instance: the suite
 * cannot authenticate.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAggregator } from '../../electron/broker/gateway/aggregate/aggregator';
import { startGatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { startSandbox } from '../fixtures/sandbox';
import { startConformanceServer } from '../fixtures/sandbox/conformance-server';
import { startResourceAs } from '../fixtures/sandbox/resource-as';
import { createEngine, tempHome } from '../helpers/engine';

const node22 = process.env.LANYARD_CONFORMANCE_NODE22;
const cli = process.env.LANYARD_CONFORMANCE_CLI;
if (!node22 || !cli) {
  console.error('conformance: run through `npm run conformance` (scripts/conformance.sh installs the suite and Node 22).');
  process.exit(2);
}

interface Check {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | string;
  description?: string;
}

interface GroupResult {
  passed: number;
  failed: number;
  warnings: string[];
  failures: string[];
  /** `<scenario> <check id>` of every check that passed: the gateway run must pass all that the direct run passes. */
  passedIds: Set<string>;
  /** Failures listed in KNOWN_GAPS: printed and counted in `failed`, but they do not fail the run (open work). */
  knownGaps: string[];
}

const emptyResult = (): GroupResult => ({ passed: 0, failed: 0, warnings: [], failures: [], passedIds: new Set(), knownGaps: [] });

/**
 * Server scenarios of an optional extension that the sandbox's conformance server does not implement, so no path can
 * be measured against it: left out of every server group (direct, relay, aggregated) alike, with the reason printed.
 */
const NOT_APPLICABLE_SERVER_PREFIXES: Record<string, string> = {};

/**
 * Checks that pass against the server directly but not through one Lanyard path: known, open gaps, each with why. They
 * stay in the group's `failed` count and are printed on every run; they do not fail the run. One that starts passing
 * fails the run until it is removed from this list, so the list cannot go stale.
 */
const KNOWN_GAPS: Record<string, string> = {};

const root = path.resolve(import.meta.dirname, '../..');
const tsx = path.join(root, 'node_modules/tsx/dist/cli.mjs');

/** Client scenarios that test grants a desktop user broker does not use, with the reason printed for each. */
const NOT_APPLICABLE: Record<string, string> = {
  'auth/client-credentials-jwt':
    'client credentials (private_key_jwt): a machine-to-machine grant with no user; Lanyard acts for a signed-in user',
  'auth/client-credentials-basic':
    'client credentials (client_secret_basic): a machine-to-machine grant with no user; Lanyard acts for a signed-in user',
  'auth/wif-jwt-bearer': 'workload identity federation (jwt-bearer with a workload JWT): machine-to-machine, no user',
};

/** Which of Lanyard's conformance clients plays a scenario. */
const clientFor = (scenario: string): string =>
  scenario === 'auth/enterprise-managed-authorization' ? 'xaa-client.ts' : 'oauth-client.ts';

async function runConformance(args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(node22!, [cli!, ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

async function readChecks(dir: string): Promise<Check[]> {
  const checks: Check[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name === 'checks.json') checks.push(...(JSON.parse(await readFile(p, 'utf8')) as Check[]));
    }
  };
  await walk(dir);
  return checks;
}

function tally(checks: Check[], label: string, into: GroupResult): void {
  for (const check of checks) {
    const line = `${label}: ${check.id} ${check.status}${check.description ? ` — ${check.description}` : ''}`;
    if (check.status === 'SUCCESS') {
      into.passed++;
      into.passedIds.add(`${label} ${check.id}`);
    } else if (check.status === 'FAILURE') {
      into.failed++;
      into.failures.push(line);
    } else if (check.status === 'WARNING') into.warnings.push(line);
  }
}

async function listAuthScenarios(): Promise<string[]> {
  const run = await runConformance(['list', '--client'], 60_000);
  const names = [...run.output.matchAll(/^\s*-\s+(auth\/\S+)/gm)].map((m) => m[1]!);
  if (names.length === 0)
    throw new Error(`conformance list --client printed no auth scenarios (exit ${run.code})\n${run.output.slice(-2000)}`);
  return names;
}

async function clientAuth(): Promise<GroupResult> {
  const result = emptyResult();
  for (const scenario of await listAuthScenarios()) {
    const reason = NOT_APPLICABLE[scenario];
    if (reason) {
      console.log(`  - ${scenario}: not applicable (${reason})`);
      continue;
    }
    const out = await mkdtemp(path.join(tmpdir(), 'lanyard-conf-'));
    try {
      const command = `${process.execPath} ${tsx} ${path.join(root, 'test/conformance', clientFor(scenario))}`;
      const run = await runConformance(['client', '--scenario', scenario, '--command', command, '-o', out], 120_000);
      const checks = await readChecks(out);
      const scenarioResult = emptyResult();
      tally(checks, scenario, scenarioResult);
      result.warnings.push(...scenarioResult.warnings);
      if (checks.length > 0 && scenarioResult.failed === 0) {
        result.passed++;
        console.log(`  ✓ ${scenario} (${scenarioResult.passed} checks passed)`);
      } else {
        result.failed++;
        console.log(`  ✗ ${scenario}`);
        result.failures.push(
          ...(checks.length === 0
            ? [`${scenario}: no checks recorded (exit ${run.code})\n${run.output.slice(-2000)}`]
            : scenarioResult.failures),
        );
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
  return result;
}

/** The client scenarios that test Lanyard's upstream MCP client (not its authorization), by name or prefix. */
const CLIENT_PROTOCOL_SCENARIOS = [
  'initialize',
  'tools_call',
  'sse-retry',
  'request-metadata',
  'http-standard-headers',
  'http-custom-headers',
  'http-invalid-tool-headers',
  'json-schema-',
  'sep-2322-client-request-state',
];
/** The revisions the client protocol scenarios run at (each scenario at those of them it belongs to). */
const CLIENT_REVISIONS = ['2025-11-25', '2026-07-28'];

async function listClientProtocolScenarios(): Promise<Array<{ name: string; revisions: string[] }>> {
  const run = await runConformance(['list', '--client'], 60_000);
  const out: Array<{ name: string; revisions: string[] }> = [];
  for (const m of run.output.matchAll(/^\s*-\s+(\S+)\s+\[([^\]]*)\]/gm)) {
    const name = m[1]!;
    if (!CLIENT_PROTOCOL_SCENARIOS.some((s) => (s.endsWith('-') ? name.startsWith(s) : name === s))) continue;
    const revisions = m[2]!
      .split(',')
      .filter((r) => CLIENT_REVISIONS.includes(r.trim()))
      .map((r) => r.trim());
    if (revisions.length) out.push({ name, revisions });
  }
  if (out.length === 0)
    throw new Error(
      `conformance list --client printed none of the client protocol scenarios (exit ${run.code})\n${run.output.slice(-2000)}`,
    );
  return out;
}

async function clientProtocol(): Promise<GroupResult> {
  const result = emptyResult();
  const command = `${process.execPath} ${tsx} ${path.join(root, 'test/conformance/upstream-client.ts')}`;
  for (const { name, revisions } of await listClientProtocolScenarios()) {
    for (const revision of revisions) {
      const label = `${name} @${revision}`;
      const out = await mkdtemp(path.join(tmpdir(), 'lanyard-conf-'));
      try {
        const run = await runConformance(
          ['client', '--scenario', name, '--spec-version', revision, '--command', command, '-o', out],
          120_000,
        );
        const checks = await readChecks(out);
        const scenarioResult = emptyResult();
        tally(checks, label, scenarioResult);
        result.warnings.push(...scenarioResult.warnings);
        if (checks.length > 0 && scenarioResult.failed === 0) {
          result.passed++;
          console.log(`  ✓ ${label} (${scenarioResult.passed} checks passed)`);
        } else {
          result.failed++;
          console.log(`  ✗ ${label}`);
          result.failures.push(
            ...(checks.length === 0
              ? [`${label}: no checks recorded (exit ${run.code})\n${run.output.slice(-2000)}`]
              : scenarioResult.failures),
          );
        }
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    }
  }
  return result;
}

/** Runs server scenarios against `url` (one `conformance server` run) and tallies them by scenario. */
async function serverScenarios(url: string, args: string[], timeoutMs = 300_000): Promise<GroupResult> {
  const result = emptyResult();
  const out = await mkdtemp(path.join(tmpdir(), 'lanyard-conf-'));
  try {
    const run = await runConformance(['server', '--url', url, ...args, '-o', out], timeoutMs);
    for (const entry of await readdir(out, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      // Result folders are named server-<scenario>-<timestamp>.
      const scenario = entry.name.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T.*$/, '');
      if (Object.keys(NOT_APPLICABLE_SERVER_PREFIXES).some((prefix) => scenario.startsWith(prefix))) continue;
      tally(await readChecks(path.join(out, entry.name)), scenario, result);
    }
    if (result.passed + result.failed + result.warnings.length === 0) {
      result.failed++;
      result.failures.push(`no checks recorded against ${url} (exit ${run.code})\n${run.output.slice(-2000)}`);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  return result;
}

/**
 * The suite's client sends no Lanyard local token (it cannot be told to), so the via-gateway runs go through this
 * loopback forwarder, which adds `Authorization: Bearer <local token>` and changes nothing else — Host and Origin pass
 * unchanged, so the gateway's DNS-rebinding checks see exactly what the suite sent. It listens on [::1] with the
 * gateway's own port number: `[::1]:<port>` is one of the Host values the gateway accepts, so no header needs
 * rewriting. Where IPv6 loopback is unavailable it listens on 127.0.0.1 (another port) and maps only its own
 * loopback Host/Origin to the gateway's port, leaving every other value (evil.example.com) untouched.
 */
async function startTokenForwarder(
  gatewayPort: number,
  token: string,
  options: { ipv4Only?: boolean } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  let mapFrom: number | undefined;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    if (mapFrom !== undefined) {
      for (const name of ['host', 'origin'] as const) {
        const value = headers[name];
        if (typeof value === 'string')
          headers[name] = value.replace(new RegExp(`^(http://)?(127\\.0\\.0\\.1|localhost):${mapFrom}$`), `$1$2:${gatewayPort}`);
      }
    }
    const upstream = httpRequest({ host: '127.0.0.1', port: gatewayPort, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  const listen = (port: number, host: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  let url: string;
  try {
    if (options.ipv4Only) throw new Error('IPv4 requested');
    await listen(gatewayPort, '::1');
    url = `http://[::1]:${gatewayPort}`;
  } catch {
    await listen(0, '127.0.0.1');
    mapFrom = (server.address() as AddressInfo).port;
    url = `http://127.0.0.1:${mapFrom}`;
  }
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The keychain when a Secret Service session exists (npm test provides one), else memory (and the run says so). */
function conformanceSecrets(): SecretStore | undefined {
  if (process.env.DBUS_SESSION_BUS_ADDRESS) return undefined;
  console.log('  (no D-Bus session: the gateway runs keep their secrets in memory; `npm test` runs them against the real keychain)');
  return new MemorySecretStore();
}

/** The revisions whose required server scenarios run (`--requirements <revision>`, frozen at each release). */
const SERVER_REVISIONS = ['2025-11-25', '2026-07-28'] as const;

async function serverGroups(): Promise<Array<[string, GroupResult]>> {
  const direct = await startConformanceServer();
  const sandbox = await startSandbox();
  const { home, cleanup } = await tempHome();
  const stoppers: Array<() => Promise<unknown>> = [() => direct.stop(), () => sandbox.stop(), () => cleanup()];
  try {
    // The protected instance: its own resource AS, trusting the sandbox IdP, with a policy rule letting alice in.
    const clientSecret = randomBytes(24).toString('base64url');
    const as = await startResourceAs({
      name: 'Conformance AS',
      trustedIdp: { issuer: sandbox.idp.issuer, jwksUri: sandbox.idp.jwksUri },
      clients: [{ clientId: 'lanyard-at-conformance', authMethod: 'client_secret_basic', clientSecret }],
      resources: [],
      scopes: ['conformance:use'],
    });
    stoppers.unshift(() => as.stop());
    const protectedServer = await startConformanceServer({ as, scopes: ['conformance:use'] });
    stoppers.unshift(() => protectedServer.stop());
    as.resources.push(protectedServer.resource);
    sandbox.idp.policy.push({
      user: 'alice',
      audience: as.issuer,
      resource: protectedServer.resource,
      scopes: ['conformance:use'],
      clientIdAtAs: 'lanyard-at-conformance',
    });

    const servers = [
      ...sandbox.lanyardConfig().servers,
      {
        id: 'conformance',
        name: 'Conformance (sandbox)',
        url: protectedServer.url,
        enabled: true,
        asClient: { clientId: 'lanyard-at-conformance', method: 'client_secret_basic' as const },
      },
    ];
    const memory = conformanceSecrets();
    const engine = await createEngine(sandbox, { home, servers, ...(memory ? { secrets: memory } : {}) });
    stoppers.push(() => engine.secrets.deleteAll());
    await engine.secrets.set('server:conformance:client_secret', clientSecret);
    await engine.signIn('alice');

    const localAuth = await LocalAuth.open(engine.secrets);
    // The real aggregated endpoint, as the broker wires it.
    const aggregator = createAggregator({
      tokens: engine.tokens,
      getServers: () => servers.map((s) => ({ id: s.id, name: s.name, url: s.url, enabled: s.enabled })),
      isSignedIn: () => engine.identity.state.status === 'signed_in',
      signInHint: () => 'Run `lanyard login`.',
    });
    stoppers.unshift(() => aggregator.close());
    const gateway = await startGatewayServer({
      port: 0,
      localAuth,
      aggregator,
      relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
    });
    stoppers.unshift(() => gateway.close());
    const forwarder = await startTokenForwarder(gateway.port, localAuth.token);
    stoppers.unshift(() => forwarder.close());
    // The suite's raw-HTTP scenarios (http-header-validation, http-custom-header-server-validation) cannot resolve a
    // bracketed IPv6 host, so the scenario runs go through a 127.0.0.1 forwarder; DNS rebinding keeps the [::1] one.
    const forwarder4 = await startTokenForwarder(gateway.port, localAuth.token, { ipv4Only: true });
    stoppers.unshift(() => forwarder4.close());

    const groups: Array<[string, GroupResult]> = [];
    // Each revision's scenarios: directly, through the relay (/mcp/<id>) and through the aggregated pipeline carrying
    // only this server (/mcp/only/<id>, docs/protocol.md); both paths must pass every check the direct run passes.
    for (const revision of SERVER_REVISIONS) {
      const requirements = ['--requirements', revision];
      const directResult = await serverScenarios(direct.url, requirements);
      groups.push([`server-direct (${revision})`, directResult]);
      for (const [group, endpoint] of [
        ['server-via-relay', '/mcp/conformance'],
        ['server-via-aggregated', '/mcp/only/conformance'],
      ] as const) {
        const requestsBefore = protectedServer.counters.requests;
        const via = await serverScenarios(`${forwarder4.url}${endpoint}`, requirements);
        const name = `${group} (${revision})`;
        for (const id of directResult.passedIds) {
          if (via.passedIds.has(id)) {
            if (KNOWN_GAPS[`${name}|${id}`] !== undefined) {
              via.failed++;
              via.failures.push(`${id}: now passes through ${endpoint}; remove it from KNOWN_GAPS in test/conformance/run.ts`);
            }
            continue;
          }
          via.failed++;
          const gap = KNOWN_GAPS[`${name}|${id}`];
          if (gap !== undefined) via.knownGaps.push(`${id}: passed directly but not through ${endpoint} (known gap: ${gap})`);
          else via.failures.push(`${id}: passed directly but not through ${endpoint}`);
        }
        if (protectedServer.counters.requests === requestsBefore) {
          via.failed++;
          via.failures.push(`the conformance server saw no request through ${endpoint}`);
        }
        if (!protectedServer.seenAuthorization.length || protectedServer.seenAuthorization.some((a) => a.includes(localAuth.token))) {
          via.failed++;
          via.failures.push('the conformance server did not see Lanyard-minted tokens only (the local token must never reach it)');
        }
        groups.push([name, via]);
      }
    }

    // DNS rebinding against the gateway itself: the aggregated endpoint and the relay.
    const rebinding = emptyResult();
    for (const [label, endpoint] of [
      ['/mcp', '/mcp'],
      ['/mcp/<id>', '/mcp/conformance'],
    ] as const) {
      const r = await serverScenarios(`${forwarder.url}${endpoint}`, ['--scenario', 'dns-rebinding-protection'], 60_000);
      rebinding.passed += r.passed;
      rebinding.failed += r.failed;
      rebinding.failures.push(...r.failures.map((f) => `${label} ${f}`));
      rebinding.warnings.push(...r.warnings.map((w) => `${label} ${w}`));
    }
    groups.push(['gateway-dns-rebinding', rebinding]);
    return groups;
  } finally {
    for (const stop of stoppers) await stop().catch(() => undefined);
  }
}

/**
 * The gateway runs use the real keychain: without a D-Bus session (a plain `npm run conformance`), re-run this script
 * inside scripts/keyring-session.sh, which makes a private, unlocked gnome-keyring — when it is installed.
 */
function reexecInKeyringSession(): boolean {
  if (process.env.DBUS_SESSION_BUS_ADDRESS || process.env.LANYARD_CONFORMANCE_NO_REEXEC) return false;
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  if (!has('dbus-run-session') || !has('gnome-keyring-daemon')) return false;
  const child = spawnSync(
    'bash',
    [
      path.join(root, 'scripts/keyring-session.sh'),
      process.execPath,
      tsx,
      path.join(root, 'test/conformance/run.ts'),
      ...process.argv.slice(2),
    ],
    {
      stdio: 'inherit',
      env: { ...process.env, LANYARD_CONFORMANCE_NO_REEXEC: '1' },
    },
  );
  process.exit(child.status ?? 1);
}

async function main(): Promise<void> {
  reexecInKeyringSession();
  console.log(`conformance: @modelcontextprotocol/conformance ${process.env.LANYARD_CONFORMANCE_VERSION ?? '(version unknown)'}`);
  const groups: Array<[string, GroupResult]> = [];
  // `--server-only`: the server groups alone (the client scenarios take minutes and test another side).
  if (!process.argv.includes('--server-only')) {
    groups.push(['client-auth', await clientAuth()]);
    groups.push(['client-protocol', await clientProtocol()]);
  }
  groups.push(...(await serverGroups()));
  let failed = 0;
  for (const [prefix, reason] of Object.entries(NOT_APPLICABLE_SERVER_PREFIXES))
    console.log(`  - ${prefix}* server scenarios: not applicable (${reason})`);
  for (const [name, result] of groups) {
    for (const failure of result.failures) console.log(`  ✗ ${failure}`);
    for (const gap of result.knownGaps) console.log(`  ~ ${gap}`);
    for (const warning of result.warnings) console.log(`  ! ${warning}`);
    const notes = [
      ...(result.knownGaps.length ? [`${result.knownGaps.length} of them known gaps, listed above`] : []),
      ...(result.warnings.length ? [`${result.warnings.length} warning${result.warnings.length > 1 ? 's' : ''}`] : []),
    ];
    console.log(`${name}: ${result.passed} passed, ${result.failed} failed${notes.length ? ` (${notes.join('; ')})` : ''}`);
    failed += result.failed - result.knownGaps.length;
  }
  process.exit(failed > 0 ? 1 : 0);
}

await main();
