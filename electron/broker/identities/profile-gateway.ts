import type { AuthRouter } from '../auth/router';
import type { ConfigStore } from '../config/store';
import type { Governance } from '../governance/governance';
import type { Logger } from '../util/log';
import type { ControlService, GatewayView } from '../control/control-service';
import { createControlHttpHandler } from '../control/http-api';
import { createAggregator, type Aggregator, type AggregatorOptions } from '../gateway/aggregate/aggregator';
import type { IdentityEndpoints } from '../gateway/http-server';
import type { LocalAuth } from '../gateway/local-auth';
import { createRelay, type RelayOptions } from '../gateway/relay';

/** The parts of a profile's Broker its endpoints are built on (structural: the composition root imports this module). */
export interface ProfileBroker {
  readonly config: ConfigStore;
  readonly auth: AuthRouter;
  readonly governance: Governance;
  readonly log: Logger;
  readonly control: ControlService;
  onSessionChange(listener: () => void): () => void;
  setGateway(view: GatewayView | undefined): void;
  /** The aggregator's and relay's options on this broker's services: the default profile's gateway uses the same. */
  gatewayOptions(timeouts?: ProfileGatewayTimeouts): { aggregator: AggregatorOptions; relay: RelayOptions };
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
 * same aggregator, relay and control API the default profile gets from Broker.startGateway (one option list,
 * Broker.gatewayOptions), built on the profile's own broker — its config, its auth router (so its token service and
 * keychain namespace), its audit ledger, tool pins, activity and discovery state.
 * Nothing here can reach another profile's tokens: the only credential source is `broker.auth`.
 */
export async function startProfileGateway(
  broker: ProfileBroker,
  /** `url`: the profile's own base, `http://127.0.0.1:<port>/p/<name>` (its status and the Connect page show `<url>/mcp`). */
  options: { url: string; port: number; localAuth: LocalAuth; timeouts?: ProfileGatewayTimeouts },
): Promise<ProfileGateway> {
  await broker.governance.start({ localToken: () => options.localAuth.token });
  // The same option list as the default profile's gateway, on this profile's own services.
  const endpoints = broker.gatewayOptions(options.timeouts);
  const aggregator = createAggregator(endpoints.aggregator);
  const relay = createRelay(endpoints.relay);
  // Sign-in, sign-out and config edits change what this profile's /mcp lists.
  const offConfig = broker.config.onChange(
    () => aggregator.notifyServersChanged(),
    (e) => broker.log.warn('config change ignored', { error: e }),
  );
  const offIdentity = broker.onSessionChange(() => aggregator.notifyServersChanged());
  const offAuth = broker.auth.onChange(() => aggregator.notifyServersChanged());
  const offUsable = broker.auth.onCredentialsUsable((serverId) => aggregator.credentialsChanged(serverId));
  const offHealth = aggregator.onServerHealth(() => broker.control.statusChanged());
  // A server added to this profile is probed for its auth path, as on the default profile.
  const offProbe = broker.config.onChange(
    () => broker.auth.probeUnknown(),
    () => undefined,
  );
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
      offProbe();
      broker.setGateway(undefined);
      await aggregator.close();
      await broker.governance.stop();
    },
  };
}
