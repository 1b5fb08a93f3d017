import type { ControlApi, Settings, SignInMode, SignInPrompt } from '../../../shared/contract';
import type { ActivityLog } from '../activity/activity-log';
import type { LanyardConfig } from '../config/schema';
import type { ConfigStore } from '../config/store';
import { toErrorInfo } from '../errors';
import type { TokenService } from '../exchange/token-service';
import type { IdentitySession } from '../identity/identity-session';
import { sealCredential, secretKeys, type SecretStore } from '../secrets/secret-store';
import { assertUnlocked, notConfigured, type ManagedLocks } from './guards';

/** The identity session and the token service built for the configured IdP. */
interface IdpEngine {
  identity: IdentitySession;
  tokens: TokenService;
}

export interface SettingsControlDeps extends Pick<ManagedLocks, 'locked'> {
  config: ConfigStore;
  secrets: SecretStore;
  activity: ActivityLog;
  /** The current engine (replaced when the IdP settings change). */
  engine: () => IdpEngine | undefined;
  /** Applies config changes that need the engine rebuilt (IdP settings). */
  reconfigure: () => Promise<void>;
  /** Asks for a status push (coalesced by the control service). */
  statusChanged: () => void;
}

/** The control methods about the user's session at the IdP and the settings, the IdP's among them. */
export class SettingsControl {
  constructor(private readonly deps: SettingsControlDeps) {}

  async signIn(): Promise<{ ok: true }> {
    const engine = this.requireEngine();
    this.deps.activity.record({ kind: 'session', summary: 'Sign-in started in the browser', outcome: 'info' });
    try {
      const user = await engine.identity.signIn();
      this.deps.activity.record({ kind: 'session', summary: `Signed in as ${user.email ?? user.sub}`, outcome: 'ok' });
    } catch (e) {
      this.deps.activity.record({ kind: 'session', summary: 'Sign-in failed', outcome: 'error', error: toErrorInfo(e) });
      throw e;
    }
    this.deps.statusChanged();
    return { ok: true };
  }

  /**
   * Starts (or joins) a sign-in without waiting for it (identity-session.ts beginSignIn): the link or the device code
   * comes back at once; the outcome is recorded when it comes, and awaitSignIn or the status event reports it.
   */
  async beginSignIn(input: { mode?: SignInMode | undefined }): Promise<SignInPrompt> {
    const engine = this.requireEngine();
    const mode = input.mode ?? 'browser';
    const joining = engine.identity.state.status === 'signing_in';
    const prompt = await engine.identity.beginSignIn({ mode });
    this.deps.statusChanged();
    if (!joining) {
      const how = mode === 'device' ? 'with a device code' : mode === 'paste' ? 'with a link for another machine' : 'in the browser';
      this.deps.activity.record({ kind: 'session', summary: `Sign-in started ${how}`, outcome: 'info' });
      engine.identity.waitForSignIn().then(
        (user) => {
          this.deps.activity.record({ kind: 'session', summary: `Signed in as ${user.email ?? user.sub}`, outcome: 'ok' });
          this.deps.statusChanged();
        },
        (e: unknown) => {
          this.deps.activity.record({ kind: 'session', summary: 'Sign-in failed', outcome: 'error', error: toErrorInfo(e) });
          this.deps.statusChanged();
        },
      );
    }
    return prompt;
  }

  /** The address a browser elsewhere ended on, for the sign-in in progress; resolves once signed in. */
  async completeSignIn(input: { redirectUrl: string }): Promise<{ ok: true }> {
    await this.requireEngine().identity.submitRedirect(input.redirectUrl);
    this.deps.statusChanged();
    return { ok: true };
  }

  async awaitSignIn(): Promise<{ ok: true }> {
    await this.requireEngine().identity.waitForSignIn();
    return { ok: true };
  }

  async signOut(): Promise<{ ok: true }> {
    const engine = this.deps.engine();
    if (engine) {
      await engine.identity.signOut();
      await engine.tokens.clear();
    }
    this.deps.activity.record({ kind: 'session', summary: 'Signed out; tokens removed from the keychain', outcome: 'info' });
    this.deps.statusChanged();
    return { ok: true };
  }

  async getSettings(): Promise<Settings> {
    return settingsOf(this.deps.config.load(), this.deps.locked());
  }

  /**
   * Changes the settings. Changing the identity provider's issuer or client id (here, from a configuration link, or
   * from the CLI) also signs the user out — the session and the server tokens minted with it belong to the old IdP —
   * and removes the old IdP's client secret and private key from the keychain: they are the old IdP's, and must be
   * entered again for the new one. (The IdP client refuses a credential stored for another party anyway; this is so the
   * old one does not linger.) A client secret given here is stored bound to the IdP and client id it was entered with.
   */
  async updateSettings(input: Parameters<ControlApi['updateSettings']>[0]): Promise<Settings> {
    if (input.idp) assertUnlocked(this.deps, 'idp');
    const before = this.deps.config.load().idp;
    // The engine built for the old IdP, captured before anything changes: it signs out at the IdP that issued the session.
    const oldEngine = this.deps.engine();
    this.deps.config.update((draft) => {
      if (input.idp) {
        draft.idp = {
          issuer: input.idp.issuer.trim(),
          clientId: input.idp.clientId.trim(),
          clientAuth: { method: input.idp.clientAuthMethod ?? 'none' } as NonNullable<LanyardConfig['idp']>['clientAuth'],
          scopes: draft.idp?.scopes ?? ['openid', 'profile', 'email', 'offline_access'],
          ...(input.idp.redirectPort ? { redirectPort: input.idp.redirectPort } : {}),
        };
      }
      if (input.gatewayPort !== undefined) draft.gateway.port = input.gatewayPort;
      if (input.toolNameSeparator !== undefined) draft.gateway.toolNameSeparator = input.toolNameSeparator;
      if (input.allowedOrigins !== undefined) draft.gateway.allowedOrigins = input.allowedOrigins;
      if (input.startAtLogin !== undefined) draft.ui = { ...draft.ui, startAtLogin: input.startAtLogin };
    });
    const after = this.deps.config.load().idp;
    if (after && (before?.issuer !== after.issuer || before?.clientId !== after.clientId)) {
      await this.endIdpSession(oldEngine);
      await this.deps.secrets.delete(secretKeys.idpClientSecret);
      await this.deps.secrets.delete(secretKeys.idpPrivateKey);
      this.deps.activity.record({
        kind: 'session',
        summary: before
          ? `Identity provider changed from ${before.issuer} to ${after.issuer}: signed out, and the old client credentials removed from the keychain`
          : `Identity provider set to ${after.issuer}`,
        outcome: 'info',
      });
    }
    if (input.idp?.clientSecret && after) {
      await this.deps.secrets.set(
        secretKeys.idpClientSecret,
        sealCredential(input.idp.clientSecret, { issuer: after.issuer, clientId: after.clientId }),
      );
    }
    if (JSON.stringify(after ?? null) !== JSON.stringify(before ?? null)) await this.deps.reconfigure();
    this.deps.activity.record({ kind: 'session', summary: 'Settings changed', outcome: 'info' });
    this.deps.statusChanged();
    return this.getSettings();
  }

  /**
   * Ends the session of an IdP that is being replaced: through its engine when one is running (revokes the refresh token
   * at that IdP, then wipes the session and the cached server tokens), otherwise straight from the keychain.
   */
  private async endIdpSession(engine: IdpEngine | undefined): Promise<void> {
    if (engine) {
      await engine.identity.signOut();
      await engine.tokens.clear();
    }
    await this.deps.secrets.delete(secretKeys.idpSession);
    await this.deps.secrets.deleteAll(secretKeys.tokenPrefix);
  }

  private requireEngine(): IdpEngine {
    const engine = this.deps.engine();
    if (!engine) throw notConfigured();
    return engine;
  }
}

function settingsOf(config: LanyardConfig, locked: string[]): Settings {
  return {
    ...(config.idp
      ? {
          idp: {
            issuer: config.idp.issuer,
            clientId: config.idp.clientId,
            clientAuthMethod: config.idp.clientAuth.method,
            ...(config.idp.redirectPort ? { redirectPort: config.idp.redirectPort } : {}),
          },
        }
      : {}),
    gatewayPort: config.gateway.port,
    toolNameSeparator: config.gateway.toolNameSeparator,
    allowedOrigins: config.gateway.allowedOrigins,
    startAtLogin: config.ui?.startAtLogin ?? false,
    locked,
  };
}
