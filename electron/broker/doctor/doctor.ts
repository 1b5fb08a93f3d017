import type { ServerStatus } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import type { LanyardConfig, ServerConfig } from '../config/schema';
import { toErrorInfo } from '../errors';
import { probeSecretStore } from '../secrets/secret-store';
import { withTimeout } from '../util/http';
import { checkEndpoint } from './endpoint';
import { checkIdpDiscovery, checkSession, checkTokenExchange } from './idp';
import { checkNetworkHops, recordOrigins } from './network';
import { checkServer } from './servers';
import { err, failWith, skip, type DoctorCheck, type DoctorEngine, type DoctorOptions, type DoctorReport } from './types';

export { probePort } from './endpoint';
export type { DoctorAuth, DoctorCheck, DoctorEngine, DoctorOptions, DoctorReport } from './types';

/**
 * `lanyard doctor`: one pass/fail line per hop between the IDE and each MCP server, each failure with its fix —
 * keychain, managed and user configuration, IdP discovery and sign-in (idp.ts), then each server on its auth path
 * (servers.ts: xaa.ts, oauth.ts, header.ts, the MCP hop in mcp.ts), and the local endpoint and its port (endpoint.ts).
 *
 * Two modes for the hops that hold the user's tokens. With no broker running, an in-process engine restores the
 * session from the keychain and may refresh it. With a broker running, those hops go through the broker's control API
 * instead: a second process refreshing the same rotating refresh token would invalidate the broker's copy. No line ever
 * shows a token, a key or a secret.
 */

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const add = (check: DoctorCheck) => {
    checks.push(check);
    return check;
  };
  // Every origin the checks reach is recorded: each gets a network line (proxy, certificate issuer) at the end.
  const recorded = recordOrigins(options.fetch ?? options.network?.fetch ?? fetch);
  const fetchFn = withTimeout(recorded.fetch, options.timeoutMs ?? 10_000);
  const now = options.now ?? Date.now;

  // Keychain: a real write/read-back/delete round trip.
  const probe = await probeSecretStore(options.secrets);
  const keychain = add(
    probe.ok
      ? { id: 'keychain', hop: 'Keychain', ok: true, detail: `${probe.backend}: a test secret was written, read back and deleted` }
      : { id: 'keychain', hop: 'Keychain', ok: false, detail: probe.error.message, error: probe.error },
  );

  // Managed configuration.
  if (options.managed) {
    const m = options.managed.summary();
    if (m.state === 'invalid' || m.state === 'untrusted')
      add({ id: 'managed', hop: 'Managed configuration', ok: false, detail: m.error!.message, error: m.error! });
    else if (m.state === 'ok') {
      const parts = [
        m.managesIdp ? 'sets the identity provider' : undefined,
        m.serverIds.length ? `sets ${m.serverIds.length} server(s)` : undefined,
        m.locked.length ? `locks ${m.locked.join(' and ')}` : undefined,
      ].filter(Boolean);
      add({ id: 'managed', hop: 'Managed configuration', ok: true, detail: `${m.path}: ${parts.join('; ') || 'present, sets nothing'}` });
    } else add({ id: 'managed', hop: 'Managed configuration', ok: true, detail: `none (an administrator can deploy ${m.path})` });
  }

  // Configuration.
  let config: LanyardConfig | undefined;
  try {
    config = options.config.load();
    add({
      id: 'config',
      hop: 'Configuration',
      ok: true,
      detail: `${options.config.path}: valid (${config.servers.length} server(s), ${config.idp ? 'identity provider set' : 'no identity provider'})`,
    });
  } catch (e) {
    const error = toErrorInfo(e);
    add({ id: 'config', hop: 'Configuration', ok: false, detail: error.message, error });
  }

  const servers = selectServers(config, options.serverId, add);
  // The IdP and each server first, so each gets its network line even when a failure stops the checks short of it.
  if (config?.idp) recorded.note(config.idp.issuer);
  for (const server of servers) if (server.enabled || options.serverId !== undefined) recorded.note(server.url);
  // The IdP's hops matter when a server may be on Cross-App Access (or no server is configured yet).
  const needsIdp = servers.length === 0 || servers.some((s) => mayUseXaa(s, options));

  // Identity provider.
  let idpOk = false;
  if (config && !config.idp) {
    if (options.pairedRemote && servers.length === 0) {
      add({ ...skip('idp.discovery', 'IdP discovery', "this side is paired with a laptop's Lanyard, which signs in"), ok: true });
    } else if (needsIdp) {
      const error = err(
        ErrorCodes.CONFIG_INVALID,
        'No identity provider is configured.',
        'Set it with `lanyard login --issuer <url> --client-id <id>` (or in Settings), or ask your IT team for the managed configuration.',
      );
      add({ id: 'idp.discovery', hop: 'IdP discovery', ok: false, detail: error.message, error });
    } else add({ ...skip('idp.discovery', 'IdP discovery', 'no identity provider; no server here uses Cross-App Access'), ok: true });
  } else if (config?.idp) {
    const discovered = await checkIdpDiscovery(config.idp.issuer, fetchFn);
    add(discovered.check);
    if (discovered.metadata) add(checkTokenExchange(config.idp.issuer, discovered.metadata));
    idpOk = discovered.check.ok;
  }

  // Sign-in state and ID-token freshness.
  let engine: DoctorEngine | undefined;
  let session = { signedIn: false } as { signedIn: boolean; who?: string | undefined };
  if (config?.idp) {
    let who: string | undefined;
    const sessionCheck = await checkSession({
      options,
      keychainOk: keychain.ok,
      idpOk,
      now,
      setEngine: (e) => (engine = e),
      setWho: (w) => (who = w),
    });
    add(sessionCheck);
    session = { signedIn: sessionCheck.ok, who };
  } else if (needsIdp) {
    add(skip('session', 'Sign-in', 'no identity provider is configured'));
  }

  // Each server on its auth path.
  let brokerServers: ServerStatus[] | undefined;
  if (options.broker && servers.length > 0) brokerServers = (await options.broker.status({}).catch(() => undefined))?.servers;
  for (const server of servers) {
    if (!server.enabled && options.serverId === undefined) {
      add(skip(`server.${server.id}`, `${server.id}`, 'disabled (check it with `lanyard doctor --server ' + server.id + '`)'));
      continue;
    }
    for (const check of await checkServer(server, { options, config: config!, fetchFn, engine, session, brokerServers })) add(check);
  }

  // The way to each party reached above: the proxy used (or direct, and why) and the certificate's issuer.
  if (options.network)
    for (const check of await checkNetworkHops(options.network, recorded.origins(), options.timeoutMs ?? 10_000)) add(check);

  // The local endpoint and its port.
  add(await checkEndpoint(options, config));

  return { ok: checks.every((c) => c.ok || c.skipped === true), checks };
}

/** Whether a server may be on the Cross-App Access path: recorded or pinned there, or not known yet. */
function mayUseXaa(server: ServerConfig, options: DoctorOptions): boolean {
  if (!server.enabled && options.serverId === undefined) return false;
  const path = options.auth?.policy(server).pinned ?? server.authPath ?? options.auth?.pathOf(server.id);
  return path === undefined || path === 'xaa';
}

function selectServers(
  config: LanyardConfig | undefined,
  serverId: string | undefined,
  add: (c: DoctorCheck) => DoctorCheck,
): ServerConfig[] {
  if (!config) return [];
  if (serverId === undefined) return config.servers;
  const server = config.servers.find((s) => s.id === serverId);
  if (!server)
    add(
      failWith(
        `server.${serverId}`,
        serverId,
        ErrorCodes.SERVER_UNKNOWN,
        `No server "${serverId}" is configured.`,
        'Run `lanyard servers list` to see the configured servers.',
        serverId,
      ),
    );
  return server ? [server] : [];
}
