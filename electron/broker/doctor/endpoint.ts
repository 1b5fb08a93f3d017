import { createServer } from 'node:net';
import { ErrorCodes, isErrorCode } from '../../../shared/errors';
import type { LanyardConfig } from '../config/schema';
import { readRuntimeFile } from '../gateway/runtime-file';
import { identityPathPrefix } from '../identities/names';
import { describePortOwner, findPortOwner, portInUseFix, readStartupFailure } from '../startup-failure';
import { withTimeout } from '../util/http';
import { describe, failWith, type DoctorCheck, type DoctorOptions } from './types';

/**
 * The local endpoint hop: the running broker answers /healthz on the port IDE configs point at; with none running, the
 * configured port is free for it (or who holds it), and why the last start failed.
 */
export async function checkEndpoint(options: DoctorOptions, config: LanyardConfig | undefined): Promise<DoctorCheck> {
  const id = 'endpoint';
  const hop = 'Local endpoint';
  const lookup = await (options.runtime ?? (() => readRuntimeFile(options.home)))();
  // An identity profile is served by the default profile's broker, on its port, under /p/<name>.
  const profile = options.identityProfile;
  const configured = profile ? profile.port : config?.gateway.port;
  const mcpPath = profile ? `${identityPathPrefix(profile.name)}/mcp` : '/mcp';
  switch (lookup.state) {
    case 'running': {
      const info = lookup.info;
      try {
        const response = await withTimeout(options.fetch ?? fetch, 3000)(`${info.url}/healthz`);
        const body = (await response.json().catch(() => undefined)) as { ok?: unknown } | undefined;
        if (!response.ok || body?.ok !== true) throw new Error(`HTTP ${response.status}`);
      } catch (e) {
        return failWith(
          id,
          hop,
          ErrorCodes.BROKER_NOT_RUNNING,
          `Lanyard (pid ${info.pid}) should be listening on ${info.url}, but /healthz did not answer (${describe(e)}).`,
          'Quit Lanyard (tray → Quit, or stop `lanyard serve`) and start it again.',
        );
      }
      if (configured !== undefined && configured !== 0 && configured !== info.port) {
        return failWith(
          id,
          hop,
          ErrorCodes.CONFIG_INVALID,
          `Lanyard listens on port ${info.port}, but gateway.port is ${configured}, where IDE configs point.`,
          `Restart Lanyard so it listens on ${configured}, or run \`lanyard connect <ide>\` again.`,
        );
      }
      return {
        id,
        hop,
        ok: true,
        detail: `Lanyard ${info.version || ''} (pid ${info.pid}) answers on ${info.url}${mcpPath}; port ${info.port} is ours`.replace(
          '  ',
          ' ',
        ),
      };
    }
    case 'stale':
      return failWith(
        id,
        hop,
        ErrorCodes.BROKER_NOT_RUNNING,
        `Lanyard stopped unexpectedly: its runtime file names pid ${lookup.info.pid}, which is gone.`,
        'Start Lanyard again (the app, or `lanyard serve`); IDEs that use `lanyard stdio` start it by themselves.',
      );
    case 'invalid':
      return failWith(
        id,
        hop,
        ErrorCodes.LOCAL_AUTH_FAILED,
        `Lanyard's runtime file is not trusted: ${lookup.problem}.`,
        `Delete it; Lanyard writes a new one (0600) when it starts.`,
      );
    case 'absent': {
      // Why the last start failed (written by `lanyard serve`, e.g. when `lanyard stdio` started it detached).
      const lastStart = await readStartupFailure(profile?.rootHome ?? options.home);
      const lastStartFailed = (failure: NonNullable<typeof lastStart>): DoctorCheck =>
        failWith(
          id,
          hop,
          isErrorCode(failure.code) ? failure.code : ErrorCodes.INTERNAL,
          `Lanyard's last start (${failure.at}) failed: ${failure.message}`,
          failure.fix,
        );
      if (configured === undefined || configured === 0) {
        if (lastStart && lastStart.code !== ErrorCodes.PORT_IN_USE) return lastStartFailed(lastStart);
        return { id, hop, ok: true, detail: 'not running (any free port is used when it starts)' };
      }
      const state = await (options.portProbe ?? probePort)(configured);
      if (state === 'in-use') {
        const owner = await findPortOwner(configured, { home: options.home, askIt: false });
        return failWith(
          id,
          hop,
          ErrorCodes.PORT_IN_USE,
          `Lanyard is not running, and port ${configured} (gateway.port) is taken by ${describePortOwner(owner)}.`,
          portInUseFix(configured, owner),
        );
      }
      if (lastStart && lastStart.code !== ErrorCodes.PORT_IN_USE) return lastStartFailed(lastStart);
      return {
        id,
        hop,
        ok: true,
        detail: `not running; port ${configured} is free for it (IDEs using \`lanyard stdio\` start it; HTTP configs need the app or \`lanyard serve\`)${profile ? `; this profile's endpoint is http://127.0.0.1:${configured}${mcpPath}` : ''}`,
      };
    }
  }
}

/** Whether 127.0.0.1:port can be bound right now. */
export function probePort(port: number): Promise<'free' | 'in-use'> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve('in-use'));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve('free')));
  });
}
