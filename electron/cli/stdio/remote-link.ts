import { request } from 'node:http';
import { readRemoteCredential } from '../remote/credentials';
import { parseRemoteEndpoint, RemoteEndpointError, type RemoteEndpoint } from '../remote/endpoint';
import type { RuntimeInfo } from '../../broker/gateway/runtime-file';
import type { RemoteTarget } from './broker-link';
import { BridgeError } from './find-broker';

/** The first wait after the laptop stopped answering; it doubles up to MAX_BACKOFF_MS while it stays away. */
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * `lanyard stdio --remote <laptop endpoint>` (docs/architecture.md, "Remote development"): the same byte pipe as the
 * local bridge, to the laptop's broker through a forwarded port, with the remote token `lanyard remote pair` stored.
 * Nothing is started here (the broker is the laptop's).
 *
 * A laptop that went to sleep or a forward that dropped: the IDE's requests are answered at once with a JSON-RPC error
 * that says so, and the bridge looks for the laptop again with back-off (1 s, doubling to 30 s) — however many
 * requests the IDE sends meanwhile, at most one probe per back-off step, so a sleeping laptop meets no retry storm.
 * When it answers again the bridge opens a new session as it does after a local broker restart.
 */
export interface RemoteBridgeSetup {
  endpoint: RemoteEndpoint;
  broker: RuntimeInfo;
  target: RemoteTarget;
  findAgain(): Promise<RuntimeInfo>;
}

export async function remoteBridgeSetup(home: string, endpointText: string, now: () => number = Date.now): Promise<RemoteBridgeSetup> {
  let endpoint: RemoteEndpoint;
  try {
    endpoint = parseRemoteEndpoint(endpointText);
  } catch (e) {
    if (e instanceof RemoteEndpointError) throw new BridgeError(e.message, e.fix);
    throw e;
  }
  const pairAgain = `run \`lanyard remote pair ${endpoint.origin}\` on this side and approve the code on the laptop.`;
  const credential = await readRemoteCredential(home, endpoint.origin);
  if (!credential) throw new BridgeError(`this side is not paired with the laptop at ${endpoint.origin}.`, pairAgain);
  const info = (token: string): RuntimeInfo => ({ pid: 0, port: endpoint.port, url: endpoint.origin, startedAt: '', version: '', token });
  const unreachableFix = `wake the laptop and check Lanyard runs there; re-open the port forward (e.g. \`ssh -R ${endpoint.port}:127.0.0.1:${endpoint.port}\`).`;
  let failures = 0;
  let nextTryAt = 0;
  const unreachable = (detail: string, waitMs?: number) =>
    `the laptop's Lanyard at ${endpoint.origin} cannot be reached (${detail}): the laptop may be asleep or the port forward gone${waitMs !== undefined ? `; the bridge tries again in ${Math.ceil(waitMs / 1_000)} s` : ''}.`;
  const retryFix = `${unreachableFix} The bridge reconnects by itself once the laptop answers.`;
  return {
    endpoint,
    broker: info(credential.token),
    target: {
      host: endpoint.host,
      hostHeader: endpoint.hostHeader,
      token: async () => (await readRemoteCredential(home, endpoint.origin))?.token,
      unreachable: (code) => `${unreachable(code)} Fix: ${retryFix}`,
    },
    async findAgain() {
      const at = now();
      if (at < nextTryAt) throw new BridgeError(unreachable('still unreachable', nextTryAt - at), retryFix);
      if (await answers(endpoint)) {
        failures = 0;
        nextTryAt = 0;
        const token = (await readRemoteCredential(home, endpoint.origin))?.token;
        if (!token) throw new BridgeError(`this side's pairing with ${endpoint.origin} is gone.`, pairAgain);
        return info(token);
      }
      const wait = Math.min(FIRST_BACKOFF_MS * 2 ** failures, MAX_BACKOFF_MS);
      failures++;
      nextTryAt = at + wait;
      throw new BridgeError(unreachable('no answer', wait), retryFix);
    },
  };
}

/** The laptop's broker answers its health route (addressed to its loopback name, as every request from here). */
function answers(endpoint: RemoteEndpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: endpoint.host, port: endpoint.port, path: '/healthz', timeout: 3_000, headers: { host: endpoint.hostHeader } },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}
