import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { IdentityProfile, Status } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import type { ManagedPolicy } from '../config/managed';
import { LanyardError } from '../errors';
import type { IdentityEndpoints } from '../gateway/http-server';
import type { LocalAuth } from '../gateway/local-auth';
import { ensurePrivateDir } from '../paths';
import type { Logger } from '../util/log';
import { identityManagedPolicy, managedIdentityNames } from './managed-identity';
import { checkIdentityProfileName, identityPathPrefix, identityProfileHome, IDENTITY_PROFILE_PATTERN } from './names';
import { identityProfileOf } from './summary';
import { startProfileGateway, type ProfileBroker, type ProfileGateway, type ProfileGatewayTimeouts } from './profile-gateway';

export interface IdentityProfilesOptions {
  /** The default profile's home: each identity profile lives in `<home>/identities/<name>/`. */
  home: string;
  managed: ManagedPolicy;
  log: Logger;
  /** Builds one profile's broker (the composition root passes `Broker.create` with its own network and openUrl). */
  open(options: { home: string; managed: ManagedPolicy; log: Logger; identityProfile: string }): Promise<ProfileBroker>;
}

/**
 * The identity profiles (a second tenant, a contractor account) next to the default one. Each has its own Broker —
 * config, IdP session, token service, keychain namespace (keyed by its home), activity, audit ledger and tool pins —
 * hosted in this process and started lazily, so a machine with one identity pays nothing for the feature. The
 * gateway reaches a profile's endpoints through `endpoints(name)`; nothing is shared between profiles except the
 * outbound network and the local token that guards the port.
 */
export class IdentityProfiles {
  private readonly brokers = new Map<string, Promise<ProfileBroker>>();
  private readonly gateways = new Map<string, Promise<ProfileGateway>>();
  private gatewayContext: { url: string; port: number; localAuth: LocalAuth; timeouts?: ProfileGatewayTimeouts } | undefined;
  private closed = false;

  constructor(private readonly options: IdentityProfilesOptions) {}

  /** Every known profile's name: those created on this machine (a directory with a config) and the managed ones. */
  names(): string[] {
    return identityProfileNames(this.options.home, this.options.managed);
  }

  /** A valid name that is not (yet) a profile is an error with the way to create it. */
  has(name: string): boolean {
    return this.names().includes(checkIdentityProfileName(name));
  }

  /** The profile's broker, started on first use; `create` makes a new profile (its directory) instead of refusing it. */
  broker(name: string, opts: { create?: boolean } = {}): Promise<ProfileBroker> {
    checkIdentityProfileName(name);
    if (this.closed) return Promise.reject(new Error('identity profiles closed'));
    const running = this.brokers.get(name);
    if (running) return running;
    if (!opts.create && !this.has(name)) return Promise.reject(unknownProfile(name, this.names()));
    const started = (async () => {
      const home = identityProfileHome(this.options.home, name);
      await ensurePrivateDir(home);
      return this.options.open({
        home,
        managed: identityManagedPolicy(this.options.managed, name),
        log: this.options.log.child(`identity:${name}`),
        identityProfile: name,
      });
    })();
    this.brokers.set(name, started);
    started.catch(() => this.brokers.delete(name));
    return started;
  }

  /** Lets `endpoints()` build profile gateways on the running port (called by Broker.startGateway); undefined stops them. */
  async useGateway(context: IdentityProfiles['gatewayContext']): Promise<void> {
    this.gatewayContext = context;
    if (context) return;
    const gateways = [...this.gateways.values()];
    this.gateways.clear();
    await Promise.all(gateways.map(async (g) => (await g.catch(() => undefined))?.stop()));
  }

  /** The profile's MCP endpoints and control API (`/p/<name>/…`), built on first use. */
  endpoints(name: string): Promise<IdentityEndpoints> {
    const context = this.gatewayContext;
    if (!context) return Promise.reject(new Error('the gateway is not running'));
    const running = this.gateways.get(name);
    if (running) return running;
    const started = (async () =>
      startProfileGateway(await this.broker(name), { ...context, url: `${context.url}${identityPathPrefix(name)}` }))();
    this.gateways.set(name, started);
    started.catch(() => this.gateways.delete(name));
    return started;
  }

  /**
   * The default profile (from `defaultStatus`) and every other one with its sign-in state, `current` marking the named
   * one. Asking starts the profiles' brokers (restoring a session reads the keychain only, it calls no IdP): the tray
   * and the dashboard ask, an IDE request to the default profile never does.
   */
  async list(current: string | null, defaultStatus: () => Promise<Status>): Promise<IdentityProfile[]> {
    const managed = new Set(managedIdentityNames(this.options.managed));
    const others = await Promise.all(
      this.names().map(async (name): Promise<IdentityProfile> => {
        const status = await this.broker(name)
          .then((b) => b.control.status())
          .catch(() => undefined);
        const flags = { managed: managed.has(name), current: name === current };
        return status ? identityProfileOf(name, status, flags) : { name, status: 'signed_out', ...flags };
      }),
    );
    return [identityProfileOf(null, await defaultStatus(), { managed: false, current: current === null }), ...others];
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.useGateway(undefined);
    const brokers = [...this.brokers.values()];
    this.brokers.clear();
    await Promise.all(brokers.map(async (b) => (await b.catch(() => undefined))?.close()));
  }
}

export function unknownProfile(name: string, known: readonly string[]): LanyardError {
  return new LanyardError(
    ErrorCodes.IDENTITY_PROFILE_UNKNOWN,
    `There is no identity profile "${name}"${known.length ? ` (known: ${known.join(', ')})` : ''}.`,
    `Create it by signing in to it: \`lanyard login --profile ${name} --issuer <url> --client-id <id>\`, or check the name.`,
  );
}

/** The identity profiles of the default profile's `home`: directories under `identities/` with a config, and the managed ones. */
export function identityProfileNames(home: string, managed: ManagedPolicy): string[] {
  const dir = path.join(home, 'identities');
  let own: string[] = [];
  try {
    own = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && IDENTITY_PROFILE_PATTERN.test(e.name) && existsSync(path.join(dir, e.name, 'config.json')))
      .map((e) => e.name);
  } catch {
    // No identities directory: only the default profile (and any managed ones).
  }
  return [...new Set([...managedIdentityNames(managed), ...own])].sort();
}
