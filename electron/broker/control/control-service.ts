import type {
  ActivityEvent,
  ConnectIdeResult,
  ControlApi,
  ControlEventName,
  ControlEventPayload,
  DisconnectIdeResult,
  IdeName,
  IdeSession,
  ProbeResult,
  RemoteAccess,
  RemoteDevice,
  RotateLocalTokenResult,
  ServerStatus,
  SessionStatus,
  Settings,
  SignInMode,
  SignInPrompt,
  Status,
  TestResult,
  ToolReview,
  ToolProfile,
  ToolProfileUpdate,
  IdentityProfile,
} from '../../../shared/contract';
import { Emitter } from '../../../shared/emitter';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import type { ActivityLog } from '../activity/activity-log';
import { AuthRouter } from '../auth/router';
import type { ConfigStore } from '../config/store';
import type { TokenService } from '../exchange/token-service';
import type { LocalAuth } from '../gateway/local-auth';
import { ProfileControl } from '../governance/profiles/control';
import type { IdentitySession } from '../identity/identity-session';
import type { SecretStore } from '../secrets/secret-store';
import { silentLogger, type Logger } from '../util/log';
import { IdeControl, type IdeConnectDeps } from './ide-control';
import { ServerControl, type ServerGatewayView } from './server-control';
import { SettingsControl } from './settings-control';
import type { ToolGate } from '../governance/pins/gate';
import { noToolGate } from '../governance/pins/control';
import { defaultIdentityProfile } from '../identities/summary';
import { RemoteControl } from '../remote/control';
import type { PairingService } from '../remote/pairing';

export type { IdeConnectDeps } from './ide-control';
export { suggestId, suggestName } from './server-control';

/** What the control service needs from the running gateway (absent while it is not started). */
export interface GatewayView extends ServerGatewayView {
  url: string;
  port: number;
  ideSessions(): IdeSession[];
}

export interface ControlServiceDeps {
  version: string;
  config: ConfigStore;
  secrets: SecretStore;
  activity: ActivityLog;
  /** The current identity session and token service (replaced when the IdP settings change). */
  engine: () => { identity: IdentitySession; tokens: TokenService } | undefined;
  gateway: () => GatewayView | undefined;
  /** Which config fields an administrator's managed configuration locks (e.g. 'idp', 'servers'). */
  locked?: () => string[];
  managedServerIds?: () => string[];
  /**
   * Each server's auth path (auth/router.ts), shared with the gateway. Default: one built from these deps, without the
   * OAuth path and without managed policy beyond the locks (tests, library use).
   */
  auth?: AuthRouter;
  /** Applies config changes that need the engine rebuilt (IdP settings). */
  reconfigure: () => Promise<void>;
  /** Where IDE config files are and how IDEs start Lanyard (`connectIde`); defaults suit the CLI and `lanyard serve`. */
  ide?: IdeConnectDeps;
  log?: Logger;
  /** The audit ledger's panel (governance/audit-view.ts); without it the ledger reads as off. */
  audit?: ControlApi['auditLog'];
  /** The identity profiles with their sign-in state, `current` marking the named one (identities/); default: none. */
  identities?: (current: string | null) => Promise<IdentityProfile[]>;
  /** Tool pinning: the reviews waiting for a person (governance/pins/). */
  toolGate?: ToolGate;
  /** Remote development: pairing and paired devices (remote/); the running broker's, or one over the devices file. */
  remote?: () => Promise<PairingService>;
}

type Listener = <E extends ControlEventName>(event: E, payload: ControlEventPayload<E>) => void;

/** One pushed event: its name and its payload, paired so the payload's type follows the name. */
type ControlEvent = { [E in ControlEventName]: { name: E; payload: ControlEventPayload<E> } }[ControlEventName];

/**
 * The one implementation of the control contract (shared/contract.ts). The Electron IPC bridge and the HTTP API are
 * thin transports over this class. Inputs arrive already parsed by the transport; outputs never contain a token.
 *
 * A facade: the methods live in one class per domain (servers, IDEs, settings and session), each given only the
 * dependencies it needs; this class composes them, assembles the status and pushes events.
 */
export class ControlService implements ControlApi {
  private readonly log: Logger;
  private readonly events: Emitter<ControlEvent>;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly servers: ServerControl;
  private readonly ides: IdeControl;
  private readonly settings: SettingsControl;
  /** IDE tool profiles (governance/profiles/control.ts). */
  private readonly profiles: ProfileControl;
  readonly auth: AuthRouter;

  constructor(private readonly deps: ControlServiceDeps) {
    this.log = (deps.log ?? silentLogger).child('control');
    this.events = new Emitter((e) => this.log.warn('control listener failed', { error: e }));
    const locks = { locked: () => deps.locked?.() ?? [], managedServerIds: () => deps.managedServerIds?.() ?? [] };
    const statusChanged = (): void => this.statusChanged();
    this.auth =
      deps.auth ??
      new AuthRouter({
        config: () => deps.config.load(),
        locked: locks.locked,
        engine: deps.engine,
        secrets: deps.secrets,
        log: this.log,
      });
    this.servers = new ServerControl({
      ...locks,
      version: deps.version,
      config: deps.config,
      secrets: deps.secrets,
      activity: deps.activity,
      engine: deps.engine,
      auth: this.auth,
      gateway: deps.gateway,
      statusChanged,
    });
    this.ides = new IdeControl({
      config: deps.config,
      secrets: deps.secrets,
      activity: deps.activity,
      gateway: deps.gateway,
      ide: deps.ide,
      log: this.log,
    });
    this.settings = new SettingsControl({
      locked: locks.locked,
      config: deps.config,
      secrets: deps.secrets,
      activity: deps.activity,
      engine: deps.engine,
      reconfigure: deps.reconfigure,
      statusChanged,
    });
    this.profiles = new ProfileControl({ config: deps.config, locked: locks.locked, activity: deps.activity });
    deps.activity.onEvent((event) => this.events.emit({ name: 'activity', payload: event }));
  }

  onEvent(listener: Listener): () => void {
    return this.events.on(({ name, payload }) => listener(name, payload));
  }

  /** Coalesces bursts of changes (200 token events) into one status push. */
  statusChanged(): void {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      if (this.events.size === 0) return;
      this.status().then(
        (status) => this.events.emit({ name: 'status', payload: status }),
        (e: unknown) => this.log.warn('status push failed', { error: e }),
      );
    }, 50);
    this.statusTimer.unref();
  }

  async status(): Promise<Status> {
    const config = this.deps.config.load();
    const engine = this.deps.engine();
    const gateway = this.deps.gateway();
    const locked = this.deps.locked?.() ?? [];
    await this.auth.loadKeys(config.servers);
    return {
      version: this.deps.version,
      session: sessionOf(engine?.identity),
      ...(config.idp ? { idp: { issuer: config.idp.issuer, clientId: config.idp.clientId, managed: locked.includes('idp') } } : {}),
      servers: config.servers.map((s) => this.servers.serverStatus(s)),
      gateway: {
        url: gateway ? `${gateway.url}/mcp` : `http://127.0.0.1:${config.gateway.port}/mcp`,
        port: gateway?.port ?? config.gateway.port,
        running: Boolean(gateway),
      },
      secretStore: { kind: this.deps.secrets.kind, description: this.deps.secrets.description },
      ideSessions: gateway?.ideSessions() ?? [],
      pendingToolReviews: this.deps.toolGate?.pendingCount() ?? 0,
    };
  }

  /** Tool changes held back for review (governance/pins/gate.ts). */
  async toolReviews(): Promise<ToolReview[]> {
    return (this.deps.toolGate ?? noToolGate).reviews();
  }

  async approveTools(input: { serverId: string; tools?: string[] | undefined }): Promise<{ tools: string[] }> {
    return { tools: (this.deps.toolGate ?? noToolGate).approve(input.serverId, input.tools) };
  }

  async rejectTools(input: { serverId: string; tools?: string[] | undefined }): Promise<{ tools: string[] }> {
    return { tools: (this.deps.toolGate ?? noToolGate).reject(input.serverId, input.tools) };
  }

  signIn(): Promise<{ ok: true }> {
    return this.settings.signIn();
  }

  signOut(): Promise<{ ok: true }> {
    return this.settings.signOut();
  }

  beginSignIn(input: { mode?: SignInMode | undefined }): Promise<SignInPrompt> {
    return this.settings.beginSignIn(input);
  }

  completeSignIn(input: { redirectUrl: string }): Promise<{ ok: true }> {
    return this.settings.completeSignIn(input);
  }

  awaitSignIn(): Promise<{ ok: true }> {
    return this.settings.awaitSignIn();
  }

  listServers(): Promise<ServerStatus[]> {
    return this.servers.listServers();
  }

  addServer(input: Parameters<ControlApi['addServer']>[0]): Promise<ServerStatus> {
    return this.servers.addServer(input);
  }

  removeServer(input: { id: string }): Promise<{ ok: true }> {
    return this.servers.removeServer(input);
  }

  setServerEnabled(input: { id: string; enabled: boolean }): Promise<ServerStatus> {
    return this.servers.setServerEnabled(input);
  }

  probeUrl(input: { url: string }): Promise<ProbeResult> {
    return this.servers.probeUrl(input);
  }

  testServer(input: { id: string }): Promise<TestResult> {
    return this.servers.testServer(input);
  }

  authorizeServer(input: { id: string }): Promise<{ authorizeUrl: string }> {
    return this.servers.authorizeServer(input);
  }

  setServerKey(input: { id: string; value: string; headerName?: string | undefined }): Promise<ServerStatus> {
    return this.servers.setServerKey(input);
  }

  listTools(input: { id: string }): Promise<Array<{ name: string; exposedName: string; description?: string }>> {
    return this.servers.listTools(input);
  }

  /** Writes the IDE's `lanyard` entry (see IdeControl.connectIde). */
  connectIde(input: { ide: IdeName; stdio?: boolean | undefined }): Promise<ConnectIdeResult> {
    return this.ides.connectIde(input);
  }

  /** Undoes `connectIde` (see IdeControl.disconnectIde). */
  disconnectIde(input: { ide: IdeName }): Promise<DisconnectIdeResult> {
    return this.ides.disconnectIde(input);
  }

  /** Hands over the running gateway's LocalAuth (see IdeControl.useLocalAuth). Returns the detach function. */
  useLocalAuth(auth: LocalAuth): () => void {
    return this.ides.useLocalAuth(auth);
  }

  /** `lanyard token rotate` (see IdeControl.rotateLocalToken). */
  rotateLocalToken(): Promise<RotateLocalTokenResult> {
    return this.ides.rotateLocalToken();
  }

  async recentActivity(input: { limit?: number | undefined }): Promise<ActivityEvent[]> {
    return this.deps.activity.recent(input.limit ?? 100);
  }

  getSettings(): Promise<Settings> {
    return this.settings.getSettings();
  }

  /** The default identity profile and every other one (identities/), with their sign-in state. */
  async listIdentityProfiles(): Promise<IdentityProfile[]> {
    return this.deps.identities ? this.deps.identities(null) : [defaultIdentityProfile(await this.status())];
  }

  /**
   * This service serves one profile and holds no selection: it checks the name and answers the list with it marked, for
   * a surface that switches by addressing `/p/<name>/api` (the browser dashboard). The desktop app's facade switches.
   */
  async selectIdentityProfile(input: { name: string | null }): Promise<IdentityProfile[]> {
    const list = this.deps.identities ? await this.deps.identities(input.name) : [defaultIdentityProfile(await this.status())];
    if (!list.some((p) => p.name === input.name)) {
      throw new LanyardError(
        ErrorCodes.IDENTITY_PROFILE_UNKNOWN,
        `There is no identity profile "${String(input.name).slice(0, 40)}".`,
        'Pick one of the profiles the switcher lists, or create it with `lanyard login --profile <name> --issuer <url> --client-id <id>`.',
      );
    }
    return list;
  }

  auditLog(input: Parameters<ControlApi['auditLog']>[0]): ReturnType<ControlApi['auditLog']> {
    if (this.deps.audit) return this.deps.audit(input);
    return Promise.resolve({ state: 'off', seq: 0, pending: 0, lost: 0, dir: '', records: [] });
  }

  /** Changes the settings; a new IdP also ends the old one's session (see SettingsControl.updateSettings). */
  updateSettings(input: Parameters<ControlApi['updateSettings']>[0]): Promise<Settings> {
    return this.settings.updateSettings(input);
  }

  getProfiles(): Promise<ToolProfile[]> {
    return this.profiles.getProfiles();
  }

  /** Changes one IDE's tool profile; its sessions get list_changed through the config watcher. */
  setProfile(input: ToolProfileUpdate): Promise<ToolProfile> {
    return this.profiles.setProfile(input);
  }

  listRemoteDevices(): Promise<RemoteAccess> {
    return new RemoteControl(this.deps.remote).list();
  }

  approvePairing(input: { code: string }): Promise<RemoteDevice> {
    return new RemoteControl(this.deps.remote).approve(input.code);
  }

  revokeRemoteDevice(input: { id: string }): Promise<RemoteDevice> {
    return new RemoteControl(this.deps.remote).revoke(input.id);
  }
}

function sessionOf(identity: IdentitySession | undefined): SessionStatus {
  if (!identity) return { status: 'not_configured' };
  const s = identity.state;
  switch (s.status) {
    case 'signed_in':
      return { status: 'signed_in', user: cleanUser(s.user), idTokenExpiresAt: s.idTokenExpiresAt };
    case 'expired':
      return { status: 'expired', user: cleanUser(s.user), error: s.error };
    case 'signing_in':
      return {
        status: 'signing_in',
        ...(s.authorizeUrl ? { authorizeUrl: s.authorizeUrl } : {}),
        ...(s.mode ? { mode: s.mode } : {}),
        ...(s.device ? { device: { ...s.device } } : {}),
      };
    default:
      return { status: s.status };
  }
}

function cleanUser(u: { issuer: string; sub: string; email?: string | undefined; name?: string | undefined }) {
  return { issuer: u.issuer, sub: u.sub, ...(u.email ? { email: u.email } : {}), ...(u.name ? { name: u.name } : {}) };
}
