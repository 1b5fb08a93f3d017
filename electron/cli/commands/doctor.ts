import { ControlError } from '../../../shared/control-client';
import { runDoctor } from '../../broker/doctor/doctor';
import { formatDoctorReport } from '../../broker/doctor/format';
import { ExitCode, type CliContext } from '../context';
import { printJson } from '../output';
import { checkPairings, pairingHop } from '../remote/pairing-check';

/**
 * `lanyard doctor [--server <id>] [--json]`: one line per hop, each failure with its fix; exit 0 when every check
 * passes, 1 otherwise. With a broker running, the sign-in and exchange hops are checked through it (this process must
 * not refresh the tokens the broker holds); without one, in this process.
 */
export async function doctorCommand(ctx: CliContext, args: { server?: string | undefined; json: boolean }): Promise<number> {
  const broker = await ctx.broker();
  let brokerApi = broker?.client;
  if (brokerApi) {
    try {
      await brokerApi.status({});
    } catch (e) {
      // Recorded by the endpoint check; the other hops run in this process.
      if (!(e instanceof ControlError)) throw e;
      brokerApi = undefined;
    }
  }
  const local = await ctx.local();
  const pairings = await checkPairings(ctx.home);
  const report = await runDoctor({
    home: ctx.home,
    pairedRemote: pairings.length > 0,
    config: local.config,
    secrets: local.secrets,
    managed: local.managed,
    engine: brokerApi ? undefined : () => local.loadEngine(),
    broker: brokerApi,
    // Paths, policy and the OAuth path's state from this process's router; it records nothing on the doctor's behalf.
    auth: local.auth,
    serverId: args.server,
    ...(ctx.deps.fetch ? { fetch: ctx.deps.fetch } : {}),
    network: local.network,
    runtime: () => ctx.lookupRuntime(),
    ...(ctx.identityProfile !== undefined
      ? { identityProfile: { name: ctx.identityProfile, rootHome: ctx.rootHome, port: await ctx.rootGatewayPort() } }
      : {}),
  });
  // On a remote side (WSL, SSH, a dev container): the link to each paired laptop is a hop of its own.
  if (pairings.length > 0) {
    report.checks.push(...pairings.map(pairingHop));
    report.ok &&= pairings.every((p) => p.ok);
  }
  if (args.json) printJson(ctx.io, report);
  else ctx.io.out(formatDoctorReport(report));
  return report.ok ? ExitCode.OK : ExitCode.FAILURE;
}
