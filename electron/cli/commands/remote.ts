import { hostname } from 'node:os';
import type { ControlApi, RemoteAccess } from '../../../shared/contract';
import { ControlError } from '../../../shared/control-client';
import { CliError, ExitCode, UsageError, type CliContext } from '../context';
import { printJson, table, tildify } from '../output';
import { readRemoteCredential, saveRemoteCredential } from '../remote/credentials';
import { checkPairings } from '../remote/pairing-check';
import { parseRemoteEndpoint, remoteRequest, RemoteEndpointError, unreachableText, type RemoteEndpoint } from '../remote/endpoint';

const USAGE = 'lanyard remote pair <laptop endpoint> [--label <name>] | status | approve <code> | list | revoke <id>';

/**
 * `lanyard remote …` (docs/architecture.md, "Remote development"). On the remote side (WSL, SSH host, dev container):
 * `pair` asks the laptop's broker for a pairing, shows the code, waits for it to be approved on the laptop and stores
 * the remote token (0600). On the laptop: `approve <code>`, `list`, `revoke <id>`.
 */
export async function remoteCommand(
  ctx: CliContext,
  args: { positionals: string[]; json: boolean; label?: string | undefined; timeoutMs?: number },
): Promise<number> {
  const [action, ...rest] = args.positionals;
  switch (action) {
    case 'pair':
      if (rest.length !== 1)
        throw new UsageError('which laptop endpoint?', `Usage: ${USAGE} (e.g. lanyard remote pair http://127.0.0.1:47821)`);
      return pair(ctx, endpointArg(rest[0]!), args);
    case 'status':
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'.`, `Usage: ${USAGE}`);
      return remoteStatus(ctx, args.json);
    case 'approve': {
      if (rest.length !== 1) throw new UsageError('which code?', 'Usage: lanyard remote approve <code shown by `lanyard remote pair`>');
      const device = await (await laptop(ctx, 'approve')).approvePairing({ code: rest[0]! });
      if (args.json) printJson(ctx.io, device);
      else
        ctx.io.out(
          `✓ Paired "${device.label}" (${device.id}). It may now use Lanyard's MCP endpoints; revoke it with \`lanyard remote revoke ${device.id}\`.\n`,
        );
      return ExitCode.OK;
    }
    case 'list': {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'.`, `Usage: ${USAGE}`);
      const access = await (await laptop(ctx, 'list')).listRemoteDevices({});
      if (args.json) printJson(ctx.io, access);
      else ctx.io.out(listText(access));
      return ExitCode.OK;
    }
    case 'revoke': {
      if (rest.length !== 1) throw new UsageError('which device?', 'Usage: lanyard remote revoke <id> (see `lanyard remote list`)');
      const device = await (await laptop(ctx, 'revoke')).revokeRemoteDevice({ id: rest[0]! });
      if (args.json) printJson(ctx.io, device);
      else ctx.io.out(`✓ Revoked "${device.label}" (${device.id}): its token is refused from now on.\n`);
      return ExitCode.OK;
    }
    default:
      throw new UsageError(action === undefined ? 'missing action.' : `unknown remote action '${action}'.`, `Usage: ${USAGE}`);
  }
}

export function endpointArg(value: string | undefined): RemoteEndpoint {
  if (value === undefined) throw new UsageError('which laptop endpoint?', 'Give it as http://127.0.0.1:<port>.');
  try {
    return parseRemoteEndpoint(value);
  } catch (e) {
    if (e instanceof RemoteEndpointError) throw new UsageError(e.message, e.fix);
    throw e;
  }
}

/** The laptop's control API: the running broker's (approval needs it: the request waits in its memory), or this process's. */
async function laptop(
  ctx: CliContext,
  action: 'approve' | 'list' | 'revoke',
): Promise<Pick<ControlApi, 'approvePairing' | 'listRemoteDevices' | 'revokeRemoteDevice'>> {
  const broker = await ctx.broker();
  if (broker) return appAware(broker.client);
  if (action === 'approve')
    throw new CliError(
      'Lanyard is not running on this machine, so there is no pairing request to approve.',
      'Run this on the laptop where Lanyard runs (tray app or `lanyard serve`); the request waits there for 5 minutes.',
      ExitCode.BROKER_NOT_RUNNING,
    );
  return (await ctx.local()).control as unknown as ControlApi;
}

/**
 * The desktop app's endpoint serves no control API over HTTP (its window talks over IPC): say where to go instead of
 * "unexpected answer".
 */
function appAware(client: ControlApi): Pick<ControlApi, 'approvePairing' | 'listRemoteDevices' | 'revokeRemoteDevice'> {
  const explain = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (e) {
      if (e instanceof ControlError && /HTTP 404/.test(e.info.message))
        throw new CliError(
          'The running Lanyard is the desktop app, which takes pairing approvals and revocations in its window.',
          'Open Remote in the Lanyard window (tray → Remote Devices…) and type the code there.',
        );
      throw e;
    }
  };
  return {
    approvePairing: (input) => explain(() => client.approvePairing(input)),
    listRemoteDevices: (input) => explain(() => client.listRemoteDevices(input)),
    revokeRemoteDevice: (input) => explain(() => client.revokeRemoteDevice(input)),
  };
}

function listText(access: RemoteAccess): string {
  const lines: string[] = [];
  if (access.pending.length) {
    lines.push('Waiting for their code (`lanyard remote approve <code>`):');
    lines.push(table(access.pending.map((p) => [p.label, `asked ${p.createdAt}`, `expires ${p.expiresAt}`])));
  }
  if (access.devices.length === 0) lines.push('No paired remote devices. On the remote side: lanyard remote pair <laptop endpoint>');
  else {
    lines.push('Paired remote devices:');
    lines.push(
      table(
        access.devices.map((d) => [
          d.id,
          d.label,
          d.revokedAt ? `revoked ${d.revokedAt}` : 'active',
          `paired ${d.createdAt}`,
          d.lastUsedAt ? `last used ${d.lastUsedAt}` : 'never used',
        ]),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A label that tells the developer on the laptop which machine asks: host name and the kind of remote. */
export function defaultLabel(env: Record<string, string | undefined>): string {
  const kind = env.WSL_DISTRO_NAME
    ? `WSL ${env.WSL_DISTRO_NAME}`
    : env.REMOTE_CONTAINERS || env.CODESPACES || env.DEVCONTAINER
      ? 'dev container'
      : env.SSH_CONNECTION
        ? 'SSH'
        : 'remote';
  return `${hostname()} (${kind})`;
}

async function pair(
  ctx: CliContext,
  endpoint: RemoteEndpoint,
  args: { json: boolean; label?: string | undefined; timeoutMs?: number },
): Promise<number> {
  const label = args.label ?? defaultLabel(ctx.env);
  const started = await call(endpoint, '/remote/pair', { label });
  if (started.status === 421) throw hostRefused(endpoint);
  const s = started.body as {
    pairing?: string;
    code?: string;
    expiresAt?: string;
    pollMs?: number;
    error?: { message: string; fix: string };
  };
  if (started.status !== 201 || !s.pairing || !s.code) throw refusal(s.error, started.status);
  if (!args.json) {
    ctx.io.err(
      `Pairing code: ${s.code}  (device "${label}")\nOn the laptop, approve it: \`lanyard remote approve ${s.code}\`, or type it in Lanyard's dashboard → Remote.\nWaiting for approval (the code is good for 5 minutes)…\n`,
    );
  } else printJson(ctx.io, { state: 'pending', code: s.code, label, expiresAt: s.expiresAt });
  const pollMs = Math.min(Math.max(s.pollMs ?? 1_000, 200), 10_000);
  const deadline = Date.now() + (args.timeoutMs ?? 5 * 60_000 + 10_000);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, pollMs));
    let answer;
    try {
      answer = await call(endpoint, '/remote/pair/claim', { pairing: s.pairing });
    } catch {
      // The laptop dozed or the forward blinked: keep waiting until the code expires.
      continue;
    }
    if (answer.status === 202) continue;
    const body = answer.body as {
      token?: string;
      device?: { id: string; label: string; createdAt: string };
      error?: { message: string; fix: string };
    };
    if (answer.status !== 200 || !body.token || !body.device) throw refusal(body.error, answer.status);
    const file = await saveRemoteCredential(ctx.home, endpoint.origin, {
      token: body.token,
      deviceId: body.device.id,
      label: body.device.label,
      pairedAt: body.device.createdAt,
    });
    if (args.json)
      printJson(ctx.io, { state: 'paired', endpoint: endpoint.origin, deviceId: body.device.id, label: body.device.label, file });
    else
      ctx.io.out(
        `✓ Paired with the laptop at ${endpoint.origin} as "${body.device.label}" (${body.device.id}).\n  The remote token is in ${tildify(file, ctx.machine.homedir)} (readable only by you; no keychain is used here).\n  Next: lanyard connect <ide> --remote ${endpoint.origin}\n`,
      );
    return ExitCode.OK;
  }
  throw new CliError(
    'The pairing code was not approved in time.',
    `Run \`lanyard remote pair ${endpoint.origin}\` again and approve the new code on the laptop.`,
    ExitCode.NEEDS_ACTION,
  );
}

async function call(endpoint: RemoteEndpoint, path: string, body: unknown) {
  try {
    return await remoteRequest(endpoint, 'POST', path, body);
  } catch (e) {
    const { message, fix } = unreachableText(endpoint, e);
    throw new CliError(message, fix, ExitCode.BROKER_NOT_RUNNING);
  }
}

function hostRefused(endpoint: RemoteEndpoint): CliError {
  return new CliError(
    `The laptop's Lanyard refused the request for its Host: port ${endpoint.port} here is not the port Lanyard listens on there.`,
    `Forward the same port number on both sides (e.g. \`ssh -R ${endpoint.port}:127.0.0.1:${endpoint.port}\` when Lanyard's gateway.port is ${endpoint.port}).`,
  );
}

function refusal(error: { message: string; fix: string } | undefined, status: number): CliError {
  return new CliError(
    error?.message ?? `The laptop's Lanyard answered HTTP ${status}.`,
    error?.fix ?? "Check that the endpoint is the laptop's Lanyard and that it is up to date.",
    ExitCode.NEEDS_ACTION,
  );
}

/**
 * `lanyard remote status`, on the remote side: each laptop this side is paired with, whether it answers and still
 * accepts the token (one MCP ping; the token is never printed). Exit 0 when every pairing works.
 */
async function remoteStatus(ctx: CliContext, json: boolean): Promise<number> {
  const checks = await checkPairings(ctx.home);
  if (json) printJson(ctx.io, checks);
  else if (checks.length === 0) ctx.io.out('This side is not paired with any laptop. Run: lanyard remote pair <laptop endpoint>\n');
  else
    for (const c of checks)
      ctx.io.out(`${c.ok ? '✓' : '✗'} ${c.endpoint} as "${c.label}" (${c.deviceId}): ${c.message}\n${c.fix ? `  → ${c.fix}\n` : ''}`);
  return checks.every((c) => c.ok) ? ExitCode.OK : ExitCode.NEEDS_ACTION;
}

/** For `lanyard connect --remote` and `lanyard stdio --remote`: this side's credential for the endpoint, or how to get one. */
export async function requireRemoteCredential(ctx: CliContext, endpoint: RemoteEndpoint) {
  const credential = await readRemoteCredential(ctx.home, endpoint.origin);
  if (!credential)
    throw new CliError(
      `This side is not paired with the laptop at ${endpoint.origin}.`,
      `Run \`lanyard remote pair ${endpoint.origin}\` first and approve the code on the laptop.`,
      ExitCode.NEEDS_ACTION,
    );
  return credential;
}
