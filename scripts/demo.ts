/**
 * `npm run demo`: Lanyard on its built-in sandbox enterprise, with one server for every auth path side by side.
 *
 * Starts the sandbox — an Okta-like IdP with a real login page; MCP servers on Cross-App Access (todo; wiki, which also
 * speaks MCP 2026-07-28; notes, which speaks only 2026-07-28) whose authorization servers validate ID-JAGs; one behind an OAuth-2.1-only authorization server with a consent page
 * (calendar); one that wants an API key (search); one open to anyone (weather) — and Lanyard headless against it, in
 * the LANYARD_HOME `.lanyard-demo/`; prints the dashboard link, the sandbox accounts, each server with its auth path
 * and what the user does for it, and the IDE snippet; stops everything cleanly on Ctrl-C.
 *
 * On Linux without a desktop session (no D-Bus session bus), it runs itself inside a private D-Bus session with an
 * unlocked gnome-keyring (scripts/keyring-session.sh), so secrets still go to a real OS keychain.
 *
 *   npm run demo                  the whole thing
 *   npm run sandbox               the sandbox only (for running `lanyard serve` yourself)
 *
 * Both run it in one process, `node --import tsx`, not through the tsx CLI: that CLI runs the script in a child and
 * relays signals to it, and SIGKILLs the child (exiting 130) when it has not acknowledged a signal within 30 ms — which
 * a busy machine easily misses — so Ctrl-C would skip the shutdown below.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { version } from '../package.json';
import { AUTH_PATH_LABELS, type AuthPath } from '../shared/auth-paths';
import type { ServerStatus } from '../shared/contract';
import { openConfigStore } from '../electron/broker/config/store';
import { LanyardError } from '../electron/broker/errors';
import { startHeadless } from '../electron/broker/headless';
import { createSecretStore } from '../electron/broker/secrets';
import { describePortOwner, findPortOwner } from '../electron/broker/startup-failure';
import { createLogger } from '../electron/broker/util/log';
import { SANDBOX_USERS, startSandbox, type Sandbox } from '../test/fixtures/sandbox';

const root = path.resolve(import.meta.dirname, '..');
const sandboxOnly = process.argv.includes('--sandbox-only');

function ensureKeyringSession(): void {
  if (process.platform !== 'linux' || process.env.DBUS_SESSION_BUS_ADDRESS || process.env.LANYARD_DEMO_IN_SESSION || sandboxOnly) return;
  const deps = spawnSync('bash', [path.join(root, 'scripts/ensure-system-deps.sh'), 'gnome-keyring', 'libsecret-1-0', 'dbus', 'dbus-x11'], {
    stdio: 'inherit',
  });
  if (deps.status !== 0) process.exit(1);
  process.stderr.write('demo: no desktop session here; starting a private D-Bus session with gnome-keyring for the OS keychain.\n');
  // Ctrl-C reaches this process too: it must wait for the demo inside the session to stop cleanly, not die first.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);
  const child = spawnSync(
    'bash',
    [path.join(root, 'scripts/keyring-session.sh'), process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, LANYARD_DEMO_IN_SESSION: '1' },
    },
  );
  process.exit(child.status ?? 0);
}

function ensureBuilt(): void {
  if (existsSync(path.join(root, 'out/cli/lanyard.js')) && existsSync(path.join(root, 'out/renderer/index.html'))) return;
  process.stderr.write('demo: building Lanyard (first run only)…\n');
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

async function main(): Promise<void> {
  ensureKeyringSession();
  const sandbox = await startSandbox({ authPaths: true, modernServers: true });
  const paths = sandbox.paths!;
  const accounts = SANDBOX_USERS.map((u) => `${u.username} / ${u.password}`).join('    ');
  if (sandboxOnly) {
    const config = sandbox.lanyardConfig();
    const { apiKey } = paths.header;
    process.stdout.write(
      [
        '',
        'Sandbox enterprise running:',
        `  IdP issuer     ${sandbox.idp.issuer}   (client id ${config.idp.clientId}, public client)`,
        ...sandbox.servers.map(
          (s) =>
            `  MCP server     ${s.id.padEnd(8)} ${s.mcp.url}   Cross-App Access (AS ${s.as.issuer}, Lanyard's client id ${s.asClient.clientId})`,
        ),
        `  MCP server     ${paths.oauth.id.padEnd(8)} ${paths.oauth.mcp.url}   OAuth (AS ${paths.oauthAs.issuer}: CIMD, DCR, pre-registered ${paths.preRegistered.public.clientId})`,
        `  MCP server     ${paths.header.id.padEnd(8)} ${paths.header.mcp.url}   API key in the ${apiKey.header} header`,
        `  MCP server     ${paths.none.id.padEnd(8)} ${paths.none.mcp.url}   no authentication`,
        `  Lanyard CIMD   ${paths.clientMetadata.url}   (set as oauth.clientMetadataUrl)`,
        `  Accounts       ${accounts}`,
        // The key is for pasting into \`lanyard servers add … --value-stdin\`: shown on a terminal only, never into a
        // pipe or a log file. It dies with the sandbox.
        process.stdout.isTTY
          ? `  API key        ${apiKey.value}   (sandbox-generated; paste it into: lanyard servers add ${paths.header.mcp.url} --header ${apiKey.header} --value-stdin)`
          : '  API key        not shown (output is not a terminal)',
        '',
        'Ctrl-C stops it.',
        '',
      ].join('\n'),
    );
    await waitForSignal();
    await sandbox.stop();
    return;
  }

  ensureBuilt();
  const home = process.env.LANYARD_DEMO_HOME ? path.resolve(process.env.LANYARD_DEMO_HOME) : path.join(root, '.lanyard-demo');
  // A fresh config for this sandbox run (its ports are new every time); other files in the home are kept.
  const config = openConfigStore(home);
  const lanyard = sandbox.lanyardConfig();
  // LANYARD_DEMO_PORT: another fixed port (tests use it to hold the port themselves).
  const demoPort = Number(process.env.LANYARD_DEMO_PORT ?? '47821');
  const others = sandbox.pathsConfig();
  // Every server with the path the probe (`lanyard servers add`) records for it; the API-key server names its header
  // only. Lanyard's Client ID Metadata Document is the sandbox's, as a company would host its own.
  config.update(() => ({
    version: 1,
    idp: lanyard.idp,
    servers: [...lanyard.servers.map((s) => ({ ...s, authPath: 'xaa' as const })), ...others.servers],
    oauth: others.oauth,
    gateway: { port: demoPort },
  }));
  config.close();
  const secrets = createSecretStore({ home });
  for (const [key, value] of Object.entries(sandbox.lanyardSecrets())) await secrets.set(key, value);
  // The API key goes to the keychain only, under the entry the header path reads (what `lanyard servers set-key` and
  // the dashboard's "Set key" store); never into the config file or the output.
  await secrets.set(`server:${paths.header.id}:header`, paths.header.apiKey.value);

  const log = createLogger({ level: process.env.LANYARD_LOG_LEVEL === 'debug' ? 'debug' : 'warn' });
  let headless;
  try {
    headless = await startHeadless({ version, home, log });
  } catch (e) {
    if (!(e instanceof LanyardError && e.code === 'port_in_use')) throw e;
    const owner = await findPortOwner(demoPort, { home });
    process.stderr.write(
      `demo: port ${demoPort} is in use by ${describePortOwner(owner)}, so this demo listens on a free port instead (shown below).\n` +
        `      To run it on ${demoPort}: ${owner.kind === 'lanyard' ? 'quit that Lanyard' : 'stop that program'} and start the demo again.\n`,
    );
    headless = await startHeadless({ version, home, log, port: 0 });
  }
  const cli = `${process.execPath} ${path.join(root, 'out/cli/lanyard.js')}`;
  const stdioSnippet = JSON.stringify(
    {
      mcpServers: {
        lanyard: { command: process.execPath, args: [path.join(root, 'out/cli/lanyard.js'), 'stdio'], env: { LANYARD_HOME: home } },
      },
    },
    null,
    2,
  );
  process.stdout.write(
    [
      '',
      '  Lanyard demo is running.',
      '',
      `  Dashboard        ${headless.dashboardLink()}`,
      `  MCP endpoint     ${headless.mcpUrl}   (local token required; \`lanyard connect <ide>\` writes it for you)`,
      `  Sandbox IdP      ${sandbox.idp.issuer}`,
      `  Sign in as       ${accounts}`,
      '',
      '  Sign in from the dashboard, or:',
      `    LANYARD_HOME=${home} ${cli} login`,
      `    LANYARD_HOME=${home} ${cli} status`,
      '',
      '  Point your IDE at Lanyard (stdio; Cursor ~/.cursor/mcp.json, Claude Desktop, Windsurf…):',
      ...stdioSnippet.split('\n').map((l) => `    ${l}`),
      '',
      '  Servers behind it, one per auth path (tried in this order: Cross-App Access → OAuth → API key → none):',
      ...serverLines(sandbox, await headless.broker.control.listServers()),
      '',
      '  Ctrl-C stops the demo.',
      '',
    ].join('\n'),
  );
  await waitForSignal();
  process.stdout.write('\nStopping…\n');
  await headless.stop();
  await sandbox.stop();
  // The sandbox's credentials die with it; drop them from the keychain too.
  await secrets.deleteAll().catch(() => {});
  await rm(path.join(home, 'run'), { recursive: true, force: true });
  process.stdout.write('Stopped.\n');
}

/** The sandbox servers that speak MCP 2026-07-28 (startSandbox's modernServers), shown with their server line. */
const MCP_ERAS: Record<string, string> = {
  wiki: 'speaks MCP 2025-11-25 and 2026-07-28 (try confirm_action, forecast, reindex: a task)',
  notes: 'speaks only MCP 2026-07-28 (try confirm_action, forecast, reindex: a task)',
};

/** One line per server: its auth path as the broker reports it, and what the user does for it. */
function serverLines(sandbox: Sandbox, statuses: ServerStatus[]): string[] {
  const paths = sandbox.paths!;
  const rows: Array<{ id: string; path: AuthPath | 'unknown'; todo: string }> = [
    ...sandbox.servers.map((s) => ({
      id: s.id,
      path: 'xaa' as const,
      todo: `sign in once to the IdP; no consent screen (IdP policy decides)${MCP_ERAS[s.id] ? `; ${MCP_ERAS[s.id]}` : ''}`,
    })),
    { id: paths.oauth.id, path: 'oauth', todo: 'press Authorize once in the dashboard; on the consent page pick your user, Allow' },
    { id: paths.header.id, path: 'header', todo: `nothing: its key is already in the keychain (${paths.header.apiKey.header})` },
    { id: paths.none.id, path: 'none', todo: 'nothing' },
  ];
  // What Lanyard itself says (the recorded path), not what the sandbox intends.
  for (const row of rows) row.path = statuses.find((s) => s.id === row.id)?.authPath ?? 'unknown';
  const label = (p: AuthPath | 'unknown') => (p === 'unknown' ? 'not chosen yet' : AUTH_PATH_LABELS[p]);
  const width = Math.max(...rows.map((r) => label(r.path).length));
  return rows.map((r) => `    ${r.id.padEnd(9)} ${label(r.path).padEnd(width)}  ${r.todo}`);
}

/**
 * Resolves on the first SIGINT/SIGTERM and keeps listening for good. One Ctrl-C often arrives twice — the terminal
 * signals the whole foreground process group, and `npm run` forwards the signal to its child as well — and a signal
 * with no listener left takes Node's default action: the process dies with 130 in the middle of its shutdown, leaving
 * the sandbox's credentials in the keychain. Later signals are ignored.
 */
function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = () => {
      if (received) return;
      received = true;
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    const info = e instanceof LanyardError ? `${e.message}\n  → ${e.fix}` : e instanceof Error ? (e.stack ?? e.message) : String(e);
    process.stderr.write(`demo: ${info}\n`);
    process.exit(1);
  },
);
