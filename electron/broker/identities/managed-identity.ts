import { managedPolicyOver, type ManagedConfig, type ManagedPolicy, type ManagedState } from '../config/managed';

/** The identity profiles the administrator's managed configuration defines (its `identities` section). */
export function managedIdentityNames(root: ManagedPolicy): string[] {
  const state = root.state();
  return state.state === 'ok' ? Object.keys(state.config.identities ?? {}) : [];
}

/**
 * The managed policy one identity profile's broker runs under: the company-wide settings of the managed file (network,
 * OAuth, secret scan, audit, tool pins, IDE tool profiles) with that profile's own `identities.<name>` IdP, servers and
 * locks in place of the top-level ones, which belong to the default profile. A file that is invalid locks every
 * profile, as it locks the default one.
 */
export function identityManagedPolicy(root: ManagedPolicy, name: string): ManagedPolicy {
  let derived: { from: ManagedState; state: ManagedState } | undefined;
  const state = (): ManagedState => {
    const from = root.state();
    if (derived?.from === from) return derived.state;
    derived = { from, state: from.state === 'ok' ? { state: 'ok', path: from.path, config: profileConfig(from.config, name) } : from };
    return derived.state;
  };
  return managedPolicyOver(root.path, state);
}

function profileConfig(config: ManagedConfig, name: string): ManagedConfig {
  const { idp: _idp, servers: _servers, identities, lock, ...companyWide } = config;
  const own = identities?.[name];
  // The default profile's IdP and server locks are its own; the company-wide locks (secret scan, pins, IDE profiles) hold everywhere.
  const inherited = lock.filter((field) => field !== 'idp' && field !== 'servers' && field !== 'authPaths');
  return {
    ...companyWide,
    ...(own?.idp ? { idp: own.idp } : {}),
    ...(own?.servers ? { servers: own.servers } : {}),
    lock: [...new Set([...inherited, ...(own?.lock ?? [])])],
  };
}
