import { get as httpGet } from 'node:http';
import path from 'node:path';
import { ErrorCodes } from '../../../shared/errors';
import type { StartupFailure } from '../../broker/startup-failure';
import { readRuntimeFile, type RuntimeInfo } from '../../broker/gateway/runtime-file';

/** A failure the bridge reports on stderr as `message` + `Fix: fix`. */
export class BridgeError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

export interface FindBrokerOptions {
  /** Lanyard's home (resolveLanyardHome()): where the runtime file is. */
  home: string;
  /** Starts the headless broker when none runs (the CLI spawns `lanyard serve` detached). */
  startBroker: () => Promise<void>;
  /** How long to wait for a broker that was just started. Default 15 s. */
  startTimeoutMs?: number;
  /** How often to look for the runtime file while waiting. Default 50 ms. */
  pollMs?: number;
}

/**
 * The runtime file of a live broker; starts one and waits (bounded) when there is none. A file whose process is gone
 * (a crash) counts as none; a file that is not trustworthy (other owner, loose mode) is refused, not used. A broker
 * that fails to start says why in its start-up failure file (port taken, config broken): that ends the wait at once.
 *
 * `graceMs`: how long to wait for a broker to come back by itself before starting one (a tray app or `lanyard serve`
 * restarting), so the bridge does not race it for the port.
 */
export async function findBroker(options: FindBrokerOptions, graceMs = 0): Promise<RuntimeInfo> {
  const found = await readRuntimeFile(options.home);
  if (found.state === 'invalid') {
    throw new BridgeError(
      `${found.problem}, so it is not used.`,
      'Quit Lanyard, delete that file, and start Lanyard again (it writes a new one, readable only by you).',
    );
  }
  if (found.state === 'running' && (await answers(found.info))) return found.info;
  const previous = found.state === 'running' || found.state === 'stale' ? found.info : undefined;
  const pollMs = options.pollMs ?? 50;
  // A live pid that did not answer before is not taken again unless it was replaced.
  const fresh = async (): Promise<RuntimeInfo | undefined> => {
    const now = await readRuntimeFile(options.home);
    if (now.state !== 'running') return undefined;
    if (previous && now.info.pid === previous.pid && now.info.startedAt === previous.startedAt) return undefined;
    return (await answers(now.info)) ? now.info : undefined;
  };
  for (const graceEnd = Date.now() + graceMs; Date.now() < graceEnd;) {
    await new Promise((r) => setTimeout(r, pollMs));
    const info = await fresh();
    if (info) return info;
  }
  const { readStartupFailure } = await import('../../broker/startup-failure');
  const startedAt = Date.now();
  try {
    await options.startBroker();
  } catch (e) {
    throw new BridgeError(
      `the Lanyard broker is not running and could not be started (${e instanceof Error ? e.message : String(e)}).`,
      'Start Lanyard (the tray app, or `lanyard serve` in a terminal).',
    );
  }
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  const deadline = startedAt + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, pollMs));
    const info = await fresh();
    if (info) return info;
    // Written by the broker this call started (file times have a coarse clock on some systems: allow a second).
    const failure = await readStartupFailure(options.home);
    // Lost the port to another broker of this home (a `lanyard serve` or tray app that came back meanwhile): that one is
    // the broker, and its runtime file follows its bind at once. Use it; starting yet another would only fight it.
    if (failure && failure.code === ErrorCodes.PORT_IN_USE && heldByThisHome(failure, options.home)) continue;
    if (failure && Date.parse(failure.at) >= startedAt - 1_000) {
      throw new BridgeError(`the Lanyard broker could not start: ${failure.message}`, failure.fix);
    }
  }
  throw new BridgeError(
    `the Lanyard broker did not start within ${timeoutMs >= 1_000 ? `${Math.round(timeoutMs / 1_000)} s` : `${timeoutMs} ms`}.`,
    'Run `lanyard serve` in a terminal to see why it does not start.',
  );
}

/** The broker that holds this home (its lock or runtime file names the home) refused the one we started. */
function heldByThisHome(failure: StartupFailure, home: string): boolean {
  const held = failure.heldBy;
  return held?.kind === 'lanyard' && held.home !== undefined && path.resolve(held.home) === path.resolve(home);
}

/**
 * The broker listens (its runtime file is written after it does; this catches a pid reused by another program). No
 * token is sent: whoever answers here has not been trusted yet. node:http, not fetch: fetch loads undici, about 15 ms
 * of the bridge's cold start.
 */
function answers(info: RuntimeInfo): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port: info.port, path: '/healthz', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}
