import type { LanyardConfig } from '../config/schema';
import { LOCKABLE_FIELDS, mergeManagedConfig, type ManagedConfig, type ManagedPolicy, type ManagedState } from '../config/managed';

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
  let merged: { user: LanyardConfig; state: ManagedState; result: LanyardConfig } | undefined;
  const locked = (): string[] => {
    const s = state();
    if (s.state === 'invalid') return [...LOCKABLE_FIELDS];
    return s.state === 'ok' ? [...new Set(s.config.lock)] : [];
  };
  const managedServerIds = (): string[] => {
    const s = state();
    return s.state === 'ok' ? (s.config.servers ?? []).map((x) => x.id) : [];
  };
  return {
    path: root.path,
    state,
    overlay: (config) => {
      const s = state();
      if (s.state !== 'ok') return config;
      if (merged?.user !== config || merged.state !== s) merged = { user: config, state: s, result: mergeManagedConfig(config, s.config) };
      return merged.result;
    },
    locked,
    managedServerIds,
    summary: () => {
      const s = state();
      return {
        path: root.path,
        state: s.state,
        locked: locked(),
        managesIdp: s.state === 'ok' && s.config.idp !== undefined,
        serverIds: managedServerIds(),
        ...(s.state === 'invalid' || s.state === 'untrusted' ? { error: s.error } : {}),
      };
    },
  };
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
