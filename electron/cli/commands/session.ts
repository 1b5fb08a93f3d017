import { CLIENT_AUTH_METHODS, isClientAuthMethod, type ClientAuthMethod } from '../../../shared/auth-methods';
import type { ControlInput, Status } from '../../../shared/contract';
import { ControlError } from '../../../shared/control-client';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { createManagedPolicy, type ManagedSummary } from '../../broker/config/managed';
import { toErrorInfo } from '../../broker/errors';
import { inspectIde, type IdeConfigState } from '../../broker/ide/connector';
import { IDE_NAMES } from '../../broker/ide/targets';
import { CliError, ExitCode, UsageError, type CliContext } from '../context';
import { duration, outside, printJson, table, tildify } from '../output';
import { serverRows } from '../server-lines';

interface BrokerState {
  running: boolean;
  /** absent | stale | running | unreachable */
  state: string;
  pid?: number;
  url?: string;
  version?: string;
  startedAt?: string;
}

/** `lanyard status [--json]`: who is signed in, the servers, the IDEs, and whether the broker runs. */
export async function statusCommand(ctx: CliContext, args: { json: boolean }): Promise<number> {
  const broker = await ctx.broker();
  const lookup = await ctx.lookupRuntime();
  let status: Status | undefined;
  let brokerState: BrokerState = { running: false, state: lookup.state, ...(lookup.state === 'stale' ? { pid: lookup.info.pid } : {}) };
  let keychain: ErrorInfo | undefined;
  if (broker) {
    try {
      status = await broker.client.status({});
      brokerState = {
        running: true,
        state: 'running',
        pid: broker.info.pid,
        url: broker.info.url,
        version: broker.info.version,
        startedAt: broker.info.startedAt,
      };
    } catch (e) {
      if (!(e instanceof ControlError && e.info.code === ErrorCodes.BROKER_NOT_RUNNING)) throw e;
      brokerState = { running: false, state: 'unreachable', pid: broker.info.pid };
    }
  }
  if (!status) {
    const local = await ctx.local();
    try {
      await local.loadEngine();
    } catch (e) {
      // The keychain could not be read: the rest of the status is still worth showing.
      keychain = toErrorInfo(e);
    }
    status = await local.control.status();
    // Without the keychain the session is unknown; "not configured" would send the user the wrong way.
    if (keychain && status.idp) status = { ...status, session: { status: 'signed_out' } };
  }
  const managed = (ctx.deps.managed ?? createManagedPolicy({ env: ctx.env, platform: ctx.platform })).summary();
  const ides = await Promise.all(IDE_NAMES.map((ide) => inspectIde(ide, { machine: ctx.machine })));

  if (args.json) {
    printJson(ctx.io, { ...status, broker: brokerState, managed, ides, ...(keychain ? { keychain: { ok: false, error: keychain } } : {}) });
  } else {
    ctx.io.out(renderStatus(ctx, status, brokerState, managed, ides, keychain));
  }
  if (keychain) return ExitCode.FAILURE;
  return needsAction(status) ? ExitCode.NEEDS_ACTION : ExitCode.OK;
}

/**
 * Exit 3 when the user has something to do: sign in (an identity provider is set, or a server is or may be on Cross-App
 * Access, or nothing is set up yet), or a server needs its one action (authorize, set its key).
 */
function needsAction(status: Status): boolean {
  const signedIn = status.session.status === 'signed_in';
  const xaaPossible =
    status.servers.length === 0 || status.servers.some((s) => s.enabled && (s.authPath === 'xaa' || s.authPath === 'unknown'));
  if (!signedIn && (status.idp !== undefined || xaaPossible)) return true;
  return status.servers.some((s) => s.enabled && (s.action === 'authorize' || s.action === 'set_key'));
}

function renderStatus(
  ctx: CliContext,
  status: Status,
  broker: BrokerState,
  managed: ManagedSummary,
  ides: IdeConfigState[],
  keychain: ErrorInfo | undefined,
): string {
  const home = ctx.machine.homedir;
  const out: string[] = [`Lanyard ${status.version}`];
  out.push(
    broker.running
      ? `Broker:    running (pid ${broker.pid}) — ${status.gateway.url}`
      : broker.state === 'stale'
        ? `Broker:    not running (it stopped unexpectedly; pid ${broker.pid} is gone) — start the app or \`lanyard serve\``
        : broker.state === 'unreachable'
          ? `Broker:    not answering (pid ${broker.pid}) — quit it and start it again`
          : 'Broker:    not running — IDEs using `lanyard stdio` start it; for HTTP configs start the app or `lanyard serve`',
  );
  const s = status.session;
  if (keychain) out.push(`Sign-in:   unknown — ${keychain.message}\n           → ${keychain.fix}`);
  else if (s.status === 'signed_in')
    out.push(
      `Sign-in:   ${outside(s.user.email ?? s.user.name ?? s.user.sub)} at ${outside(s.user.issuer)} (ID token valid for ${duration(s.idTokenExpiresAt - Date.now())}; refreshed as needed)`,
    );
  else if (s.status === 'expired') out.push(`Sign-in:   expired for ${outside(s.user.email ?? s.user.sub)} → run \`lanyard login\``);
  else if (s.status === 'not_configured')
    out.push('Sign-in:   no identity provider configured → `lanyard login --issuer <url> --client-id <id>`');
  else out.push(`Sign-in:   ${s.status === 'signing_in' ? 'in progress in the browser' : 'not signed in → run `lanyard login`'}`);
  if (status.idp)
    out.push(`IdP:       ${outside(status.idp.issuer)} (client ${outside(status.idp.clientId)})${status.idp.managed ? ' [managed]' : ''}`);
  out.push(`Keychain:  ${status.secretStore.description}`);
  if (managed.state === 'ok')
    out.push(`Managed:   ${managed.path}${managed.locked.length ? ` — locks ${managed.locked.join(' and ')}` : ''}`);
  if (managed.state === 'invalid' || managed.state === 'untrusted')
    out.push(`Managed:   ${managed.error?.message}\n           → ${managed.error?.fix}`);

  if (status.servers.length === 0)
    out.push('Servers:   none → `lanyard servers add <url>`, or `lanyard import` to move them from your IDEs');
  else {
    out.push(`Servers (${status.servers.length}):`);
    const rows = serverRows(status.servers).map((row, i) => {
      const sv = status.servers[i]!;
      // The ID-JAG quota matters on the Cross-App Access path only (the IdP counts them per user and resource app).
      if (sv.authPath === 'xaa') row[3] = `${row[3]} ${sv.idJagsThisMonth}/${sv.idJagMonthlyQuota} ID-JAGs`;
      return row;
    });
    out.push(table(rows).trimEnd());
  }
  // Tool pinning: changed or added tools are hidden from every IDE until reviewed.
  if (status.pendingToolReviews)
    out.push(
      `Review:    ${status.pendingToolReviews} ${status.pendingToolReviews === 1 ? 'tool' : 'tools'} held back → lanyard tools review`,
    );
  out.push('IDEs:');
  out.push(
    table(
      ides.map((ide) => [
        ide.displayName,
        ide.problem ? 'unreadable' : ide.connected ? `connected (${ide.transport})` : 'not connected',
        tildify(ide.configPath, home),
        ide.problem ? `! ${ide.problem}` : ide.connected ? '' : `→ lanyard connect ${ide.ide}`,
      ]),
    ).trimEnd(),
  );
  if (status.ideSessions.length > 0) {
    out.push('Sessions:');
    out.push(
      table(
        status.ideSessions.map((x) => [
          `${x.clientName}${x.clientVersion ? ` ${x.clientVersion}` : ''}`,
          x.transport,
          x.endpoint,
          `since ${new Date(x.connectedAt).toLocaleTimeString()}`,
        ]),
      ).trimEnd(),
    );
  }
  return `${out.join('\n')}\n`;
}

interface LoginArgs {
  issuer?: string | undefined;
  clientId?: string | undefined;
  clientAuth?: string | undefined;
  redirectPort?: string | undefined;
  force: boolean;
}

/**
 * `lanyard login`: through the running broker when there is one (it opens the browser), otherwise in this process:
 * the browser opens (and the URL is printed, for SSH and WSL), the loopback redirect comes back here, and the session
 * goes to the keychain, where the broker finds it when it starts.
 */
export async function loginCommand(ctx: CliContext, args: LoginArgs): Promise<number> {
  const update = idpUpdate(args);
  // Setting an IdP on `--profile <new>` creates that identity profile.
  ctx.createProfile = update !== undefined;
  const broker = await ctx.broker();
  const control = broker ? broker.client : (await ctx.local()).control;
  if (update) {
    await control.updateSettings({ idp: update });
    ctx.io.out(`Identity provider set: ${update.issuer} (client ${update.clientId}).\n`);
  }
  if (!broker) {
    const engine = await (await ctx.local()).loadEngine();
    if (!engine) {
      throw new CliError(
        'No identity provider is configured.',
        'Run `lanyard login --issuer https://<your-org>.okta.com --client-id <client id>` (your IT team has both), or ask them for the managed configuration.',
        ExitCode.NEEDS_ACTION,
      );
    }
  }
  const before = (await control.status({})).session;
  if (before.status === 'signed_in' && !args.force && !update) {
    ctx.io.out(`Already signed in as ${before.user.email ?? before.user.sub}. (\`lanyard login --force\` signs in again.)\n`);
    return ExitCode.OK;
  }
  ctx.io.err(
    broker
      ? `Signing in through the running Lanyard (pid ${broker.info.pid}); finish in the browser window it opened.\n`
      : 'Signing in: finish in your browser (waiting up to 5 minutes)…\n',
  );
  const signingIn = control.signIn({});
  if (broker) {
    // The running broker may have no browser to open (SSH, WSL, a server): show its sign-in link here too.
    void printSignInLink(control, signingIn, (line) => ctx.io.err(line));
  }
  await signingIn;
  const after = (await control.status({})).session;
  if (after.status !== 'signed_in')
    throw new CliError('The sign-in did not complete.', 'Run `lanyard login` again; `lanyard doctor` shows what is wrong.');
  ctx.io.out(
    `Signed in as ${after.user.email ?? after.user.name ?? after.user.sub}.${broker ? '' : ' Lanyard uses this session from the keychain when it starts.'}\n`,
  );
  return ExitCode.OK;
}

/** Polls the broker's status until the sign-in link appears (or the sign-in ends), then prints it once. */
async function printSignInLink(
  control: { status(input: object): Promise<{ session: { status: string; authorizeUrl?: string | undefined } }> },
  done: Promise<unknown>,
  print: (line: string) => void,
): Promise<void> {
  let finished = false;
  void done.then(
    () => (finished = true),
    () => (finished = true),
  );
  for (let i = 0; i < 20 && !finished; i++) {
    const session = (await control.status({}).catch(() => undefined))?.session;
    if (session?.status === 'signing_in' && session.authorizeUrl) {
      print(`If no browser opened, open this link:\n  ${session.authorizeUrl}\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function idpUpdate(args: LoginArgs): NonNullable<ControlInput<'updateSettings'>['idp']> | undefined {
  if (args.issuer === undefined && args.clientId === undefined) {
    if (args.clientAuth !== undefined || args.redirectPort !== undefined)
      throw new UsageError('--client-auth and --redirect-port need --issuer and --client-id.');
    return undefined;
  }
  if (!args.issuer || !args.clientId)
    throw new UsageError(
      '--issuer and --client-id go together.',
      'Pass both, e.g. `lanyard login --issuer https://acme.okta.com --client-id 0oa…`.',
    );
  if (args.clientAuth !== undefined && !isClientAuthMethod(args.clientAuth)) {
    throw new UsageError(`--client-auth must be one of ${CLIENT_AUTH_METHODS.join(', ')}.`);
  }
  let redirectPort: number | undefined;
  if (args.redirectPort !== undefined) {
    redirectPort = Number(args.redirectPort);
    if (!Number.isInteger(redirectPort) || redirectPort < 1024 || redirectPort > 65535)
      throw new UsageError('--redirect-port must be a port between 1024 and 65535.');
  }
  return {
    issuer: args.issuer,
    clientId: args.clientId,
    ...(args.clientAuth ? { clientAuthMethod: args.clientAuth as ClientAuthMethod } : {}),
    ...(redirectPort ? { redirectPort } : {}),
  };
}

/** `lanyard logout`: revokes the refresh token at the IdP when it can, and wipes the session and tokens from the keychain. */
export async function logoutCommand(ctx: CliContext): Promise<number> {
  const broker = await ctx.broker();
  if (broker) {
    await broker.client.signOut({});
  } else {
    const local = await ctx.local();
    await local.loadEngine();
    await local.control.signOut();
  }
  ctx.io.out('Signed out; the session and access tokens are gone from the keychain.\n');
  return ExitCode.OK;
}
