import { CLIENT_AUTH_METHODS, isClientAuthMethod, usesClientSecret, type ClientAuthMethod } from '../../../shared/auth-methods';
import { createInterface } from 'node:readline';
import type { ControlApi, ControlInput, IdentityProfile, Status } from '../../../shared/contract';
import { ControlError } from '../../../shared/control-client';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { createManagedPolicy, type ManagedSummary } from '../../broker/config/managed';
import { toErrorInfo } from '../../broker/errors';
import { identityPathPrefix } from '../../broker/identities/names';
import { loginCommandFor } from '../../broker/identities/sign-in';
import { inspectIde, type IdeConfigState } from '../../broker/ide/connector';
import { IDE_NAMES } from '../../broker/ide/targets';
import { CliError, ExitCode, UsageError, type BrokerConnection, type CliContext } from '../context';
import { browserUnavailable } from '../open-url';
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
  const identities = await identityProfiles(ctx, brokerState.running ? broker : undefined);

  if (args.json) {
    printJson(ctx.io, {
      ...status,
      ...(identities ? { identities } : {}),
      broker: brokerState,
      managed,
      ides,
      ...(keychain ? { keychain: { ok: false, error: keychain } } : {}),
    });
  } else {
    ctx.io.out(renderStatus(ctx, status, brokerState, managed, ides, keychain, identities));
  }
  if (keychain) return ExitCode.FAILURE;
  return needsAction(status) ? ExitCode.NEEDS_ACTION : ExitCode.OK;
}

/** An identity profile in `lanyard status`: its sign-in state and the endpoint its IDEs use. */
type IdentityLine = IdentityProfile & { endpoint: string };

/**
 * Every identity profile with its sign-in state and endpoint, when there is more than the default one (undefined
 * otherwise, or when the list cannot be had). From the running broker when there is one; otherwise this process opens
 * each profile (its session is restored from the keychain, no IdP is called). Without a running broker, a command for
 * one profile (`--profile`) knows only that profile.
 */
async function identityProfiles(ctx: CliContext, broker: BrokerConnection | undefined): Promise<IdentityLine[] | undefined> {
  let list: IdentityProfile[];
  try {
    list = broker ? await broker.client.listIdentityProfiles({}) : await (await ctx.local()).control.listIdentityProfiles();
  } catch {
    return undefined;
  }
  if (!list.some((p) => p.name !== null)) return undefined;
  // The default profile's broker serves every profile, on the default profile's port.
  const base = broker ? broker.info.url : `http://127.0.0.1:${await ctx.rootGatewayPort()}`;
  return list.map((p) => ({ ...p, endpoint: `${base}${p.name === null ? '' : identityPathPrefix(p.name)}/mcp` }));
}

function identityState(p: IdentityProfile): string {
  const login = loginCommandFor(p.name ?? undefined);
  switch (p.status) {
    case 'signed_in':
      return `signed in${p.user ? ` as ${outside(p.user)}` : ''}`;
    case 'expired':
      return `expired${p.user ? ` for ${outside(p.user)}` : ''} → ${login}`;
    case 'signing_in':
      return 'signing in';
    case 'not_configured':
      return `no identity provider → ${login} --issuer <url> --client-id <id>`;
    default:
      return `not signed in → ${login}`;
  }
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
  identities: IdentityLine[] | undefined,
): string {
  const home = ctx.machine.homedir;
  const login = loginCommandFor(ctx.identityProfile);
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
  else if (s.status === 'expired') out.push(`Sign-in:   expired for ${outside(s.user.email ?? s.user.sub)} → run \`${login}\``);
  else if (s.status === 'not_configured')
    out.push(`Sign-in:   no identity provider configured → \`${login} --issuer <url> --client-id <id>\``);
  else out.push(`Sign-in:   ${s.status === 'signing_in' ? 'in progress in the browser' : `not signed in → run \`${login}\``}`);
  if (status.idp)
    out.push(`IdP:       ${outside(status.idp.issuer)} (client ${outside(status.idp.clientId)})${status.idp.managed ? ' [managed]' : ''}`);
  out.push(`Keychain:  ${status.secretStore.description}`);
  if (managed.state === 'ok')
    out.push(`Managed:   ${managed.path}${managed.locked.length ? ` — locks ${managed.locked.join(' and ')}` : ''}`);
  if (managed.state === 'invalid' || managed.state === 'untrusted')
    out.push(`Managed:   ${managed.error?.message}\n           → ${managed.error?.fix}`);
  if (identities) {
    out.push('Identity profiles:');
    out.push(
      table(
        identities.map((p) => [
          p.name ?? 'default',
          identityState(p),
          p.endpoint,
          (p.name ?? undefined) === ctx.identityProfile ? '← this status' : '',
        ]),
      ).trimEnd(),
    );
  }

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
  /** Sign in with a browser on another machine and paste back the address it ends on. */
  noBrowser?: boolean | undefined;
  /** Device authorization (RFC 8628), where the IdP offers it. */
  device?: boolean | undefined;
  /** The IdP client's secret (a confidential client) is the first line of stdin. */
  clientSecretStdin?: boolean | undefined;
}

type LoginControl = Pick<ControlApi, 'status' | 'beginSignIn' | 'completeSignIn' | 'awaitSignIn'>;

/**
 * `lanyard login`: through the running broker when there is one, otherwise in this process (the session goes to the
 * keychain, where the broker finds it when it starts). Three ways, one session:
 * - the browser here opens the link (the link is printed too) and the loopback redirect comes back;
 * - `--no-browser`, or by itself where no browser can open (no display, no xdg-open; judged without a running broker):
 *   the link is printed for any machine, and the address that browser ends on is pasted back here (a browser here
 *   still completes it too);
 * - `--device`: a code to enter at the IdP's address on any device (RFC 8628).
 */
export async function loginCommand(ctx: CliContext, args: LoginArgs): Promise<number> {
  if (args.noBrowser && args.device) throw new UsageError('--no-browser and --device are two different ways to sign in; pass one.');
  const idp = idpUpdate(args);
  // stdin is read line by line, once: the client secret is its first line, a pasted address (--no-browser) the next.
  const stdin = lineReader(ctx);
  const clientSecret = args.clientSecretStdin ? await readClientSecret(ctx, stdin) : undefined;
  const update = idp && clientSecret ? { ...idp, clientSecret } : idp;
  // Setting an IdP on `--profile <new>` creates that identity profile.
  ctx.createProfile = update !== undefined;
  const broker = await ctx.broker();
  const control = broker ? broker.client : (await ctx.local()).control;
  if (update) {
    await control.updateSettings({ idp: update });
    ctx.io.out(
      `Identity provider set: ${update.issuer} (client ${update.clientId}${clientSecret ? '; its client secret is in the keychain' : ''}).\n`,
    );
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
  // Whether a browser can open is judged here only when this process signs in: a running broker opens its own (it may
  // sit in a desktop session this shell is not part of), and prints the link for the paste prompt below either way.
  const noBrowserHere = args.device || args.noBrowser || broker ? undefined : browserUnavailable(ctx.env, ctx.platform);
  const mode = args.device ? 'device' : args.noBrowser || noBrowserHere ? 'paste' : 'browser';
  const prompt = await control.beginSignIn({ mode });
  const outcome = control.awaitSignIn({});
  outcome.catch(() => {});

  if (prompt.mode === 'device') {
    // The IdP's words: printed through `outside`, so no control character in them acts on the terminal.
    const { verificationUri, verificationUriComplete, userCode, expiresAt } = prompt.device;
    ctx.io.err(
      `To sign in, open ${outside(verificationUri)} on any device and enter the code:\n\n    ${outside(userCode)}\n\n` +
        (verificationUriComplete ? `(Or open ${outside(verificationUriComplete)}, which has the code filled in.)\n` : '') +
        `Waiting for you to approve it (the code expires in ${duration(expiresAt - Date.now())})…\n`,
    );
    await outcome;
  } else if (prompt.mode === 'paste') {
    ctx.io.err(
      `${noBrowserHere ? `No browser can be opened here: ${noBrowserHere}.\n` : ''}Sign in from a browser on any machine:\n` +
        `  1. Open this link:\n\n     ${outside(prompt.authorizeUrl)}\n\n` +
        '  2. Sign in. The browser then goes to an http://127.0.0.1:…/callback address that does not load there; that is expected.\n' +
        '  3. Copy that whole address from the address bar and paste it here.\n',
    );
    await pasteOrWait(ctx, control, outcome, stdin);
  } else {
    ctx.io.err(
      broker
        ? `Signing in through the running Lanyard (pid ${broker.info.pid}); finish in the browser window it opened.\nIf no browser opened, open this link:\n  ${outside(prompt.authorizeUrl)}\n`
        : 'Signing in: finish in your browser (waiting up to 5 minutes)…\n',
    );
    // A person at the terminal whose browser turns out to be elsewhere can still paste the address back.
    if (ctx.io.interactive) {
      ctx.io.err('(If your browser is on another machine, paste the address it ends on here.)\n');
      await pasteOrWait(ctx, control, outcome, stdin);
    } else await outcome;
  }
  const after = (await control.status({})).session;
  if (after.status !== 'signed_in')
    throw new CliError('The sign-in did not complete.', 'Run `lanyard login` again; `lanyard doctor` shows what is wrong.');
  ctx.io.out(
    `Signed in as ${after.user.email ?? after.user.name ?? after.user.sub}.${broker ? '' : ' Lanyard uses this session from the keychain when it starts.'}\n`,
  );
  return ExitCode.OK;
}

/**
 * Reads pasted redirect addresses from stdin until one signs in or the sign-in ends some other way (a browser here
 * reached the loopback listener, the attempt timed out). A wrong paste prints what was wrong and its fix, and asks
 * again while the attempt is still open; the end of stdin just leaves the wait to the attempt.
 */
async function pasteOrWait(ctx: CliContext, control: LoginControl, outcome: Promise<unknown>, stdin: LineReader): Promise<void> {
  let ended = false;
  const stop = () => {
    ended = true;
    stdin.close();
  };
  outcome.then(stop, stop);
  const reading = (async (): Promise<boolean> => {
    ctx.io.err('Paste the address: ');
    for (let line = await stdin.next(); line !== undefined; line = await stdin.next()) {
      if (ended) return false;
      if (!line.trim()) continue;
      try {
        await control.completeSignIn({ redirectUrl: line });
        return true;
      } catch (e) {
        const info = e instanceof ControlError ? e.info : toErrorInfo(e);
        ctx.io.err(`${outside(info.message)}\n  → ${outside(info.fix)}\n`);
        // Refused before the IdP saw it, or a code the IdP refused: the attempt waits for another paste. Otherwise it ended.
        if ((await control.status({})).session.status !== 'signing_in') throw e;
        ctx.io.err('Paste the address: ');
      }
    }
    return false;
  })();
  try {
    const signedIn = await Promise.race([reading, outcome.then(() => true)]);
    if (!signedIn) await outcome;
  } finally {
    stop();
  }
}

/** stdin line by line, through one reader for the whole command (a second one would lose what the first buffered). */
interface LineReader {
  /** The next line, or undefined at the end of stdin (or once closed). */
  next(): Promise<string | undefined>;
  close(): void;
}

function lineReader(ctx: CliContext): LineReader {
  let lines: ReturnType<typeof createInterface> | undefined;
  let iterator: AsyncIterator<string> | undefined;
  let closed = false;
  return {
    async next() {
      if (closed) return undefined;
      lines ??= createInterface({ input: ctx.io.stdin, crlfDelay: Infinity, terminal: false });
      iterator ??= lines[Symbol.asyncIterator]();
      const result = await iterator.next();
      return result.done ? undefined : result.value;
    },
    close() {
      closed = true;
      lines?.close();
    },
  };
}

/**
 * `--client-secret-stdin`: the first line of stdin, never echoed or printed. A person typing at the terminal would see
 * it on the screen, so it must be piped in.
 */
async function readClientSecret(ctx: CliContext, stdin: LineReader): Promise<string> {
  const pipeIt = 'Pipe it in, e.g. `pass show lanyard/idp | lanyard login --issuer … --client-id … --client-secret-stdin`.';
  // Not only when a person is at the terminal: stdin alone being the terminal (stderr redirected) still echoes it.
  if (ctx.io.interactive || (ctx.io.stdin as { isTTY?: boolean }).isTTY)
    throw new UsageError('--client-secret-stdin reads the secret from a pipe, not from the terminal (it would show).', pipeIt);
  const secret = (await stdin.next())?.trim();
  if (!secret) throw new UsageError('--client-secret-stdin read an empty secret.', pipeIt);
  return secret;
}

function idpUpdate(args: LoginArgs): NonNullable<ControlInput<'updateSettings'>['idp']> | undefined {
  if (args.issuer === undefined && args.clientId === undefined) {
    if (args.clientAuth !== undefined || args.redirectPort !== undefined || args.clientSecretStdin)
      throw new UsageError(
        '--client-auth, --client-secret-stdin and --redirect-port describe the IdP client: pass --issuer and --client-id too.',
      );
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
  // A client secret is for a confidential client: client_secret_basic unless another secret method is named.
  const clientAuth = (args.clientAuth ?? (args.clientSecretStdin ? 'client_secret_basic' : undefined)) as ClientAuthMethod | undefined;
  if (args.clientSecretStdin && !usesClientSecret(clientAuth!))
    throw new UsageError(
      `--client-auth ${clientAuth} uses no client secret.`,
      'Drop --client-secret-stdin, or pass --client-auth client_secret_basic or client_secret_post.',
    );
  return {
    issuer: args.issuer,
    clientId: args.clientId,
    ...(clientAuth ? { clientAuthMethod: clientAuth } : {}),
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
