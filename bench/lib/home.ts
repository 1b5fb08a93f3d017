import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Broker } from '../../electron/broker/broker';
import { openConfigStore } from '../../electron/broker/config/store';
import { IDP_SECRET_KEYS } from '../../electron/broker/identity/identity-session';
import { createSecretStore } from '../../electron/broker/secrets';
import { silentLogger } from '../../electron/broker/util/log';
import type { SandboxHandle } from './sandbox-client';

export interface PreparedHome {
  home: string;
  /** Access tokens minted by Lanyard's engine while preparing (server id → bearer token). */
  tokens: Record<string, string>;
  /** Removes the home and its keychain entries. */
  cleanup(): Promise<void>;
}

export interface HomeOptions {
  root: string;
  sandbox: SandboxHandle;
  /** The servers configured in this home (default: all of the sandbox's). */
  serverIds?: string[];
  /** Mint (and cache in the keychain) a token for these servers, as a broker that already ran would have. */
  mintFor?: string[];
  /**
   * Leave the stored session with an ID token past its refresh margin, as after a laptop slept through its lifetime:
   * the next token exchange must refresh it first.
   */
  ageIdToken?: boolean;
}

/**
 * A fresh LANYARD_HOME for one benchmark case, the way a user's machine is after `lanyard login`: config pointing at
 * the sandbox, the sandbox's client credentials in the OS keychain, alice signed in (the IdP's sign-in page driven
 * over HTTP, as the engine tests do), optionally some tokens already minted. It signs in with a Broker that has no
 * gateway, so nothing lists the servers (or mints tokens) behind the benchmark's back.
 */
export async function prepareHome(options: HomeOptions): Promise<PreparedHome> {
  const home = await mkdtemp(path.join(options.root, 'home-'));
  const { sandbox } = options;
  const servers = options.serverIds ? sandbox.config.servers.filter((s) => options.serverIds!.includes(s.id)) : sandbox.config.servers;
  const config = openConfigStore(home);
  config.update(() => ({ version: 1, idp: sandbox.config.idp, servers, gateway: { port: 0 } }));
  config.close();
  const secrets = createSecretStore({ home });
  const wanted = new Set([
    'idp:client_secret',
    'idp:private_key',
    ...servers.flatMap((s) => [`server:${s.id}:client_secret`, `server:${s.id}:private_key`]),
  ]);
  for (const [key, value] of Object.entries(sandbox.secrets)) if (wanted.has(key)) await secrets.set(key, value);

  const broker = await Broker.create({
    version: 'bench',
    home,
    log: silentLogger,
    openUrl: async (url) => {
      const callback = await sandbox.completeLogin(url, 'alice');
      await (await fetch(callback)).text();
    },
  });
  const tokens: Record<string, string> = {};
  try {
    const engine = broker.getEngine();
    if (!engine) throw new Error('the benchmark home has no IdP configured');
    await engine.identity.signIn({ timeoutMs: 15_000 });
    for (const id of options.mintFor ?? []) {
      const token = await engine.tokens.getToken(id);
      if (!token) throw new Error(`server ${id} asked for no token`);
      tokens[id] = token.accessToken;
    }
  } finally {
    await broker.close();
  }
  if (options.ageIdToken) {
    // A new store: the one above read the keychain before the broker stored the session (a store reads it once).
    const current = createSecretStore({ home });
    const raw = await current.get(IDP_SECRET_KEYS.session);
    if (!raw) throw new Error('no stored session to age');
    const session = JSON.parse(raw) as { idTokenExpiresAt: number };
    session.idTokenExpiresAt = Date.now() - 1_000;
    await current.set(IDP_SECRET_KEYS.session, JSON.stringify(session));
  }
  return {
    home,
    tokens,
    async cleanup() {
      await secrets.deleteAll().catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
}
