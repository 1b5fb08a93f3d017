import type { ActivityLog } from '../activity/activity-log';
import type { AuthRouter } from '../auth/router';
import type { ConfigStore } from '../config/store';
import type { Engine } from '../engine';
import type { Governance } from '../governance/governance';
import type { ToolGate } from '../governance/pins/gate';
import type { Logger } from '../util/log';
import type { ControlService, GatewayView } from '../control/control-service';
import { createControlHttpHandler } from '../control/http-api';
import { createAggregator, type Aggregator } from '../gateway/aggregate/aggregator';
import type { IdentityEndpoints } from '../gateway/http-server';
import type { LocalAuth } from '../gateway/local-auth';
import { createRelay } from '../gateway/relay';
import { createRelayToolGate } from '../governance/pins/relay-gate';
import type { FetchLike } from '../util/http';

/** The parts of a profile's Broker its endpoints are built on (structural: the composition root imports this module). */
export interface ProfileBroker {
  readonly identityProfile: string | undefined;
  readonly config: ConfigStore;
  readonly auth: AuthRouter;
  readonly governance: Governance;
  readonly toolGate: ToolGate;
  readonly activity: ActivityLog;
  readonly log: Logger;
  readonly control: ControlService;
  getEngine(): Engine | undefined;
  onSessionChange(listener: () => void): () => void;
  setGateway(view: GatewayView | undefined): void;
  close(): Promise<void>;
}

/** The gateway's upstream time bounds (Broker's GatewayTimeouts). */
export interface ProfileGatewayTimeouts {
  requestMs?: number;
  connectMs?: number;
  listBudgetMs?: number;
  relayResponseMs?: number;
}

/** One identity profile's endpoints on the shared port, and how to stop them. */
export interface ProfileGateway extends IdentityEndpoints {
  aggregator: Aggregator;
  stop(): Promise<void>;
}

/**
 * `/p/<name>/mcp`, `/p/<name>/mcp/<id>`, `/p/<name>/ide/<ide>/mcp` and `/p/<name>/api` for one identity profile: the
 * same aggregator, relay and control API the default profile gets from Broker.startGateway, built on the profile's own
 * broker — its config, its auth router (so its token service and keychain namespace), its audit ledger and tool pins.
 * Nothing here can reach another profile's tokens: the only credential source is `broker.auth`.
 */
export async function startProfileGateway(
  broker: ProfileBroker,
  options: { url: string; port: number; localAuth: LocalAuth; version: string; timeouts?: ProfileGatewayTimeouts; fetch?: typeof fetch },
): Promise<ProfileGateway> {
  const timeouts = options.timeouts ?? {};
  await broker.governance.start({ localToken: () => options.localAuth.token });
  const tokens = { authorizedFetch: (serverId: string, base?: FetchLike): FetchLike => broker.auth.authorizedFetch(serverId, base) };
  const servers = () => broker.config.load().servers;
  const aggregator = createAggregator({
    tokens,
    getServers: () => servers().map((s) => ({ id: s.id, name: s.name, url: s.url, enabled: s.enabled })),
    separator: broker.config.load().gateway.toolNameSeparator,
    profiles: () => broker.config.load().profiles,
    log: broker.log,
    version: options.version,
    isSignedIn: () => broker.getEngine()?.identity.state.status === 'signed_in',
    needsSignIn: (serverId) => broker.auth.needsSignIn(serverId),
    guard: broker.governance,
    signInHint: () =>
      `Sign in to this identity profile: run \`lanyard login --profile ${broker.identityProfile ?? ''}\` or use the Lanyard dashboard.`,
    onActivity: (event) => broker.activity.record(event),
    onIdeSession: () => broker.control.statusChanged(),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(timeouts.requestMs !== undefined ? { requestTimeoutMs: timeouts.requestMs } : {}),
    ...(timeouts.connectMs !== undefined ? { connectTimeoutMs: timeouts.connectMs } : {}),
    ...(timeouts.listBudgetMs !== undefined ? { listBudgetMs: timeouts.listBudgetMs } : {}),
    toolGate: broker.toolGate,
  });
  const relay = createRelay({
    getServer: (id) => servers().find((s) => s.id === id),
    tokens,
    guard: broker.governance,
    log: broker.log,
    toolGate: createRelayToolGate(broker.toolGate, broker.log.child('relay')),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(timeouts.relayResponseMs !== undefined ? { responseTimeoutMs: timeouts.relayResponseMs } : {}),
  });
  // Sign-in, sign-out and config edits change what this profile's /mcp lists.
  const offConfig = broker.config.onChange(
    () => aggregator.notifyServersChanged(),
    (e) => broker.log.warn('config change ignored', { error: e }),
  );
  const offIdentity = broker.onSessionChange(() => aggregator.notifyServersChanged());
  const offAuth = broker.auth.onChange(() => aggregator.notifyServersChanged());
  const offUsable = broker.auth.onCredentialsUsable((serverId) => aggregator.credentialsChanged(serverId));
  const offHealth = aggregator.onServerHealth(() => broker.control.statusChanged());
  broker.setGateway({
    url: options.url,
    port: options.port,
    ideSessions: () => aggregator.ideSessions().map((s) => ({ ...s })),
    serverHealth: (id) => aggregator.serverHealth(id),
    listTools: (id) => aggregator.listTools(id),
    serversChanged: () => aggregator.notifyServersChanged(),
  });
  broker.auth.probeUnknown();
  return {
    aggregator,
    relay,
    control: createControlHttpHandler(broker.control),
    stop: async () => {
      offConfig();
      offIdentity();
      offAuth();
      offUsable();
      offHealth();
      broker.setGateway(undefined);
      await aggregator.close();
      await broker.governance.stop();
    },
  };
}
