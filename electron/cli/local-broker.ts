import { ActivityLog } from '../broker/activity/activity-log';
import { createManagedPolicy, type ManagedPolicy } from '../broker/config/managed';
import type { LanyardConfig } from '../broker/config/schema';
import { ConfigStore, createConfBackend } from '../broker/config/store';
import { ControlService, type IdeConnectDeps } from '../broker/control/control-service';
import { TokenService } from '../broker/exchange/token-service';
import { UsageCounter } from '../broker/exchange/usage';
import { IdentitySession } from '../broker/identity/identity-session';
import { lanyardPaths } from '../broker/paths';
import { createSecretStore } from '../broker/secrets';
import type { SecretStore } from '../broker/secrets/secret-store';
import { silentLogger, type Logger } from '../broker/util/log';

type Env = Record<string, string | undefined>;

export interface LocalEngine {
  identity: IdentitySession;
  tokens: TokenService;
}

/**
 * Lanyard's logic in the CLI's own process, for when no broker is running: the config (with the administrator's
 * managed overlay), the keychain and the control service, and — only when a command needs it — the identity session
 * and token service. `servers list` never touches the keychain; `status` and `login` build the engine, which restores
 * the session from the keychain without calling the IdP.
 *
 * The same composition as Broker (broker.ts) minus the gateway, plus the managed policy wired into the config store and
 * the control service's lock hooks.
 */
export interface LocalBroker {
  home: string;
  config: ConfigStore;
  secrets: SecretStore;
  managed: ManagedPolicy;
  activity: ActivityLog;
  control: ControlService;
  /** Builds (once) and restores the engine; undefined when no IdP is configured. */
  engine(): Promise<LocalEngine | undefined>;
  close(): Promise<void>;
}

export interface LocalBrokerOptions {
  home: string;
  env: Env;
  version: string;
  openUrl: (url: string) => Promise<void> | void;
  secrets?: SecretStore | undefined;
  managed?: ManagedPolicy | undefined;
  fetch?: typeof fetch | undefined;
  log?: Logger | undefined;
  ide?: IdeConnectDeps | undefined;
}

export async function openLocalBroker(options: LocalBrokerOptions): Promise<LocalBroker> {
  const paths = lanyardPaths(options.home);
  const log = options.log ?? silentLogger;
  const managed = options.managed ?? createManagedPolicy({ env: options.env });
  const config = new ConfigStore(createConfBackend(options.home), { overlay: (c) => managed.overlay(c) });
  let secrets: SecretStore | undefined = options.secrets;
  // Created on first use, so commands that never need the keychain never load it.
  const lazySecrets = (): SecretStore => (secrets ??= createSecretStore({ home: options.home, env: options.env }));
  const secretsProxy: SecretStore = {
    get kind() {
      return lazySecrets().kind;
    },
    get description() {
      return lazySecrets().description;
    },
    get: (k) => lazySecrets().get(k),
    set: (k, v) => lazySecrets().set(k, v),
    delete: (k) => lazySecrets().delete(k),
    deleteAll: (p) => lazySecrets().deleteAll(p),
  };
  const activity = new ActivityLog({ file: paths.activityFile, log });
  await activity.load();

  let engine: LocalEngine | undefined;
  let engineKey = '';
  const build = async (): Promise<LocalEngine | undefined> => {
    const idp = config.load().idp;
    const key = JSON.stringify(idp ?? null);
    if (engine && key === engineKey) return engine;
    engineKey = key;
    engine = idp ? await buildEngine(idp) : undefined;
    return engine;
  };
  const buildEngine = async (idp: NonNullable<LanyardConfig['idp']>): Promise<LocalEngine> => {
    const identity = new IdentitySession({
      settings: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientAuth: { method: idp.clientAuth.method, ...('keyId' in idp.clientAuth && idp.clientAuth.keyId ? { keyId: idp.clientAuth.keyId } : {}) },
        scopes: idp.scopes,
        redirectPort: idp.redirectPort || undefined,
        tokenExchangeEndpoint: idp.tokenExchangeEndpoint,
      },
      secrets: secretsProxy,
      openUrl: options.openUrl,
      log,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    const usage = new UsageCounter(paths.stateFile, Date.now, log);
    await usage.load();
    const tokens = new TokenService({
      identity,
      secrets: secretsProxy,
      usage,
      getServer: (id) => {
        const server = config.load().servers.find((s) => s.id === id);
        return server && { id: server.id, url: server.url, enabled: server.enabled, asClient: server.asClient, scopes: server.scopes, expectedAsIssuer: server.expectedAsIssuer };
      },
      log,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    await identity.restore();
    return { identity, tokens };
  };

  const control = new ControlService({
    version: options.version,
    config,
    secrets: secretsProxy,
    activity,
    engine: () => engine,
    gateway: () => undefined,
    locked: () => managed.locked(),
    managedServerIds: () => managed.managedServerIds(),
    reconfigure: async () => {
      if (engine) await build();
    },
    ide: { home: options.home, ...options.ide },
    log,
  });

  return {
    home: options.home,
    config,
    secrets: secretsProxy,
    managed,
    activity,
    control,
    engine: build,
    async close() {
      config.close();
      await activity.flush();
    },
  };
}
