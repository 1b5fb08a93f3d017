import type { LanyardConfig } from './config/schema';
import type { ConfigStore } from './config/store';
import { TokenService } from './exchange/token-service';
import type { DiscoveryState } from './exchange/discovery-state';
import type { UsageCounter } from './exchange/usage';
import { IdentitySession } from './identity/identity-session';
import type { SecretStore } from './secrets/secret-store';
import type { Logger } from './util/log';

export interface Engine {
  identity: IdentitySession;
  tokens: TokenService;
}

/**
 * The identity session and token service for one configured IdP — built the same way by the running broker and by the
 * CLI when no broker runs. Servers are read from the config at each use, so edits apply without a rebuild.
 */
export function createEngine(
  idp: NonNullable<LanyardConfig['idp']>,
  deps: {
    config: ConfigStore;
    secrets: SecretStore;
    usage: UsageCounter;
    openUrl: (url: string) => Promise<void> | void;
    log: Logger;
    fetch?: typeof fetch | undefined;
    /** The clock both services see (tests move it forward as after a sleep). Default: `Date.now`. */
    now?: (() => number) | undefined;
    /** Time bound of each request to the IdP (default: the identity session's). */
    requestTimeoutSeconds?: number | undefined;
    /** What discovery learnt in earlier runs (the broker's; the CLI without a broker discovers afresh). */
    discoveryState?: DiscoveryState | undefined;
  },
): Engine {
  const identity = new IdentitySession({
    settings: {
      issuer: idp.issuer,
      clientId: idp.clientId,
      clientAuth: {
        method: idp.clientAuth.method,
        ...('keyId' in idp.clientAuth && idp.clientAuth.keyId ? { keyId: idp.clientAuth.keyId } : {}),
      },
      scopes: idp.scopes,
      redirectPort: idp.redirectPort || undefined,
      tokenExchangeEndpoint: idp.tokenExchangeEndpoint,
    },
    secrets: deps.secrets,
    openUrl: deps.openUrl,
    log: deps.log,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.requestTimeoutSeconds !== undefined ? { requestTimeoutSeconds: deps.requestTimeoutSeconds } : {}),
  });
  const tokens = new TokenService({
    identity,
    secrets: deps.secrets,
    usage: deps.usage,
    getServer: (id) => {
      const server = deps.config.load().servers.find((s) => s.id === id);
      return (
        server && {
          id: server.id,
          url: server.url,
          enabled: server.enabled,
          asClient: server.asClient,
          scopes: server.scopes,
          expectedAsIssuer: server.expectedAsIssuer,
        }
      );
    },
    log: deps.log,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.discoveryState ? { discoveryState: deps.discoveryState } : {}),
  });
  return { identity, tokens };
}
