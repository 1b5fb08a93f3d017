import { ActivityLog } from '../broker/activity/activity-log';
import { createManagedPolicy, type ManagedPolicy } from '../broker/config/managed';
import type { LanyardConfig } from '../broker/config/schema';
import { ConfigStore, createConfBackend } from '../broker/config/store';
import { ControlService, type IdeConnectDeps } from '../broker/control/control-service';
import { createEngine, type Engine } from '../broker/engine';
import { UsageCounter } from '../broker/exchange/usage';
import { lanyardPaths } from '../broker/paths';
import { createSecretStore } from '../broker/secrets';
import type { SecretStore } from '../broker/secrets/secret-store';
import { silentLogger, type Logger } from '../broker/util/log';

type Env = Record<string, string | undefined>;

/** The identity session and token service, as in the running broker. */
export type LocalEngine = Engine;

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
    const usage = new UsageCounter(paths.stateFile, Date.now, log);
    await usage.load();
    const built = createEngine(idp, { config, secrets: secretsProxy, usage, openUrl: options.openUrl, log, fetch: options.fetch });
    await built.identity.restore();
    return built;
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
