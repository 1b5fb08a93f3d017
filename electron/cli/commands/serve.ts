import { createLogger, type LogLevel } from '../../broker/util/log';
import { ExitCode, UsageError, type CliContext } from '../context';

/**
 * `lanyard serve [--port <n>]`: the broker, gateway and dashboard in this process (headless: WSL, SSH, Linux servers,
 * and what `lanyard stdio` starts on demand). Prints where it listens, the dashboard link and how to connect an IDE,
 * then stays up until SIGINT/SIGTERM and stops everything cleanly (the runtime file is removed).
 */
export async function serve(ctx: CliContext, args: { port?: string | undefined }): Promise<number> {
  let port: number | undefined;
  if (args.port !== undefined) {
    port = Number(args.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be a port number (0 = any free port).');
  }
  const [{ openConfigStore }, startup, { brokerLockHolder }, { readRuntimeFile }] = await Promise.all([
    import('../../broker/config/store'),
    import('../../broker/startup-failure'),
    import('../../broker/broker-lock'),
    import('../../broker/gateway/runtime-file'),
  ]);
  // A taken port is found before the broker (most of the start-up time) is loaded: `lanyard stdio` waits for this.
  let wanted = port;
  try {
    if (wanted === undefined) {
      const config = openConfigStore(ctx.home);
      wanted = config.load().gateway.port;
      config.close();
    }
  } catch {
    // An unreadable config is startHeadless's to explain.
  }
  // A broker already serves (or is starting for) this home: whatever port it took, this one must not start.
  const holder = await brokerLockHolder(ctx.home);
  if (holder !== undefined) {
    const running = await readRuntimeFile(ctx.home);
    const at = running.state === 'running' && running.info.pid === holder ? running.info.port : (wanted ?? 0);
    const error = startup.portInUseError(at, { kind: 'lanyard', pid: holder, home: ctx.home });
    await startup.recordStartupFailure(ctx.home, error);
    throw error;
  }
  if (wanted !== undefined && wanted !== 0 && !(await startup.portIsFree(wanted))) {
    const error = startup.portInUseError(wanted, await startup.findPortOwner(wanted, { home: ctx.home, env: ctx.env }));
    await startup.recordStartupFailure(ctx.home, error);
    throw error;
  }
  // Listen for SIGINT/SIGTERM before starting: the runtime file is published during the start, and a signal that
  // arrived between then and here would otherwise kill the process with the default action and leave the file behind
  // (read as "stopped unexpectedly" by doctor and the stdio bridge). A signal during the start stops it right after.
  const stopRequested = (ctx.deps.waitForStop ?? waitForSignal)();
  const { startHeadless } = await import('../../broker/headless');
  let handle: Awaited<ReturnType<typeof startHeadless>>;
  try {
    handle = await startHeadless({
      version: ctx.version,
      home: ctx.home,
      env: ctx.env,
      ...(port !== undefined ? { port } : {}),
      // Warnings and errors only by default: this terminal is for the person running it.
      log: createLogger({ level: (ctx.env.LANYARD_LOG_LEVEL as LogLevel | undefined) ?? 'warn' }),
      openUrl: ctx.openUrl,
    });
  } catch (e) {
    // Started by `lanyard stdio` this process has no terminal: the file is how its failure reaches the bridge (and
    // `lanyard doctor`), instead of reading as a broker that never answered.
    const explained = await startup.explainStartupError(e, { home: ctx.home, env: ctx.env, port });
    await startup.recordStartupFailure(ctx.home, explained);
    throw explained;
  }
  await startup.clearStartupFailure(ctx.home);
  ctx.io.out(
    [
      `Lanyard ${ctx.version} is running.`,
      `  MCP endpoint:  ${handle.mcpUrl}  (IDEs need the local token: use \`lanyard connect <ide>\`)`,
      `  Dashboard:     ${handle.dashboardLink()}`,
      '  Connect an IDE: lanyard connect cursor | vscode | claude-code | claude-desktop | windsurf',
      'Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
  await stopRequested;
  await handle.stop();
  return ExitCode.OK;
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
