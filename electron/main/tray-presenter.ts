/**
 * Status → what the tray shows: the icon variant, the tooltip and the menu, as plain data. Pure (no 'electron'), so
 * every state is unit-tested (test/unit/main-tray.test.ts); tray.ts turns the data into Electron objects.
 *
 * The icon has two variants so trouble shows at a glance, without opening the menu: `attention` when the user has
 * something to do (the sign-in expired, an enabled server is failing, the local endpoint is down while signed in).
 * Being signed out or not set up is a choice, not trouble: the normal icon, with the menu saying what to do.
 */
import { isNetworkErrorCode } from '../../shared/errors';
import type { DashboardPage, IdentityProfile, ServerStatus, Status } from '../../shared/contract';

export type TrayIconVariant = 'normal' | 'attention';
/** The colour of a server's dot in the menu. */
export type DotTone = 'ok' | 'busy' | 'error' | 'off';

export type TrayAction =
  | { type: 'open'; page: DashboardPage }
  | { type: 'sign-in' }
  | { type: 'sign-out' }
  /** An OAuth server waiting for the user's consent: opens its authorization in the browser (once). */
  | { type: 'authorize'; serverId: string }
  /** Another identity profile: the tray and dashboard switch to it (null: the default one). */
  | { type: 'identity'; name: string | null }
  | { type: 'quit' };

export type TrayMenuItem =
  { type: 'separator' } | { type: 'item'; id: string; label: string; enabled: boolean; dot?: DotTone; action?: TrayAction };

export interface TrayView {
  icon: TrayIconVariant;
  tooltip: string;
  items: TrayMenuItem[];
}

const HEALTH: Record<ServerStatus['health'], { label: string; tone: DotTone }> = {
  ready: { label: 'Ready', tone: 'ok' },
  idle: { label: 'Idle', tone: 'ok' },
  connecting: { label: 'Connecting…', tone: 'busy' },
  degraded: { label: 'Degraded', tone: 'error' },
  error: { label: 'Error', tone: 'error' },
  disabled: { label: 'Disabled', tone: 'off' },
};

/** Menus are one line per item: long names are cut, not wrapped. */
function clip(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function serverNeedsAttention(server: ServerStatus): boolean {
  if (!server.enabled) return false;
  // Waiting for the user (consent, a key) is something to do, like a failure: the icon says so without the menu.
  return server.health === 'error' || server.health === 'degraded' || server.action === 'authorize' || server.action === 'set_key';
}

/**
 * A server's menu line: what the user does about it when there is something (Authorize…, Set Key…, blocked), else
 * its health. Sign-in needs no line per server: the session item below says it once for all.
 */
function serverItem(server: ServerStatus): TrayMenuItem {
  const id = `server:${server.id}`;
  const name = clip(server.name);
  if (server.enabled && server.action === 'authorize')
    return {
      type: 'item',
      id,
      label: server.authState === 'authorizing' ? `${name} — Waiting for You in the Browser…` : `${name} — Authorize…`,
      enabled: true,
      dot: 'busy',
      action: { type: 'authorize', serverId: server.id },
    };
  if (server.enabled && server.action === 'set_key')
    return { type: 'item', id, label: `${name} — Set Key…`, enabled: true, dot: 'error', action: { type: 'open', page: 'servers' } };
  if (server.enabled && server.authState === 'blocked')
    return {
      type: 'item',
      id,
      label: `${name} — Blocked by Your Administrator`,
      enabled: true,
      dot: 'off',
      action: { type: 'open', page: 'servers' },
    };
  const health = HEALTH[server.health];
  // A failure on the way (the server, its IdP or AS down, the proxy, its PAC file, an untrusted certificate) says so:
  // the fix is about the network, not the server's credentials (the window shows the fix).
  const unreachable =
    (server.health === 'error' || server.health === 'degraded') && server.lastError && isNetworkErrorCode(server.lastError.code);
  return {
    type: 'item',
    id,
    label: `${name} — ${unreachable ? 'Unreachable' : health.label}`,
    enabled: true,
    dot: health.tone,
    action: { type: 'open', page: 'servers' },
  };
}

export function needsAttention(status: Status): boolean {
  if (status.session.status === 'expired') return true;
  if (status.servers.some(serverNeedsAttention)) return true;
  if (status.pendingToolReviews) return true;
  // Whatever the session: with the endpoint down (its port taken) no IDE reaches anything, signed in or not.
  return !status.gateway.running;
}

const IDENTITY_STATE: Record<IdentityProfile['status'], { label: string; tone: DotTone }> = {
  signed_in: { label: 'Signed In', tone: 'ok' },
  signing_in: { label: 'Signing In…', tone: 'busy' },
  expired: { label: 'Sign-In Expired', tone: 'error' },
  signed_out: { label: 'Not Signed In', tone: 'off' },
  not_configured: { label: 'Not Set Up', tone: 'off' },
};

/** An identity profile's line: `✓ work — alice@example.com` for the current one, its state dot for each. */
function identityItem(p: IdentityProfile): TrayMenuItem {
  const state = IDENTITY_STATE[p.status];
  const label = `${p.current ? '✓ ' : ''}${clip(p.name ?? 'Default', 20)} — ${p.user && p.status !== 'signed_out' ? clip(p.user, 32) : state.label}`;
  return {
    type: 'item',
    id: `identity:${p.name ?? ''}`,
    label,
    enabled: !p.current,
    dot: state.tone,
    action: { type: 'identity', name: p.name },
  };
}

function who(user: { email?: string | undefined; name?: string | undefined; sub: string }): string {
  return user.email ?? user.name ?? user.sub;
}

/** The tray before the broker answered (start-up): a working icon and a menu that can still open the window or quit. */
export function presentStarting(): TrayView {
  return {
    icon: 'normal',
    tooltip: 'Lanyard — starting…',
    items: [
      { type: 'item', id: 'session', label: 'Starting…', enabled: false },
      { type: 'separator' },
      { type: 'item', id: 'open', label: 'Open Dashboard', enabled: true, action: { type: 'open', page: 'home' } },
      { type: 'separator' },
      { type: 'item', id: 'quit', label: 'Quit Lanyard', enabled: true, action: { type: 'quit' } },
    ],
  };
}

export function presentTray(status: Status): TrayView {
  const { session } = status;
  const items: TrayMenuItem[] = [];
  let sessionLine: string;
  let sessionItem: TrayMenuItem;
  switch (session.status) {
    case 'signed_in':
      sessionLine = `Signed in as ${who(session.user)}`;
      sessionItem = { type: 'item', id: 'sign-out', label: 'Sign Out', enabled: true, action: { type: 'sign-out' } };
      break;
    case 'expired':
      sessionLine = `Sign-in expired (${who(session.user)})`;
      sessionItem = { type: 'item', id: 'sign-in', label: 'Sign In Again…', enabled: true, action: { type: 'sign-in' } };
      break;
    case 'signing_in':
      sessionLine = 'Signing in — finish in your browser';
      sessionItem = { type: 'item', id: 'sign-in', label: 'Signing In…', enabled: false };
      break;
    case 'signed_out':
      sessionLine = 'Not signed in';
      sessionItem = { type: 'item', id: 'sign-in', label: 'Sign In…', enabled: true, action: { type: 'sign-in' } };
      break;
    case 'not_configured':
      sessionLine = 'No identity provider set up';
      sessionItem = { type: 'item', id: 'settings', label: 'Set Up Sign-In…', enabled: true, action: { type: 'open', page: 'settings' } };
      break;
  }
  items.push({ type: 'item', id: 'session', label: clip(sessionLine, 48), enabled: false }, { type: 'separator' });
  // More than one identity: each profile with its state; picking one switches the tray and the dashboard to it.
  if (status.identities && status.identities.length > 1) {
    for (const p of status.identities) items.push(identityItem(p));
    items.push({ type: 'separator' });
  }

  if (status.servers.length === 0) {
    items.push({ type: 'item', id: 'no-servers', label: 'No servers yet', enabled: false });
  } else {
    for (const server of status.servers) items.push(serverItem(server));
  }
  // Tool pinning: changed or added tools wait, hidden from every IDE, until the user reviews them.
  const reviews = status.pendingToolReviews ?? 0;
  if (reviews > 0)
    items.push({
      type: 'item',
      id: 'tool-reviews',
      label: `${reviews} ${reviews === 1 ? 'Tool' : 'Tools'} to Review…`,
      enabled: true,
      dot: 'error',
      action: { type: 'open', page: 'review' },
    });
  items.push(
    { type: 'item', id: 'add-server', label: 'Add a Server…', enabled: true, action: { type: 'open', page: 'add-server' } },
    // Remote development: approve a pairing code shown in WSL, on an SSH host or in a dev container.
    { type: 'item', id: 'remote', label: 'Remote Devices…', enabled: true, action: { type: 'open', page: 'remote' } },
    { type: 'separator' },
    { type: 'item', id: 'open', label: 'Open Dashboard', enabled: true, action: { type: 'open', page: 'home' } },
    sessionItem,
    { type: 'separator' },
    { type: 'item', id: 'quit', label: 'Quit Lanyard', enabled: true, action: { type: 'quit' } },
  );

  return { icon: needsAttention(status) ? 'attention' : 'normal', tooltip: tooltipOf(status), items };
}

function tooltipOf(status: Status): string {
  const { session } = status;
  const parts: string[] = [];
  if (session.status === 'signed_in') parts.push(who(session.user));
  else if (session.status === 'expired') parts.push('sign-in expired');
  else if (session.status === 'signing_in') parts.push('signing in');
  else if (session.status === 'signed_out') parts.push('not signed in');
  else parts.push('not set up');
  const enabled = status.servers.filter((s) => s.enabled);
  const failing = enabled.filter(serverNeedsAttention).length;
  if (failing > 0) parts.push(`${failing} ${failing === 1 ? 'server needs' : 'servers need'} attention`);
  else if (enabled.length > 0) parts.push(`${enabled.length} ${enabled.length === 1 ? 'server' : 'servers'}`);
  if (!status.gateway.running) parts.push('local endpoint stopped');
  if (status.pendingToolReviews) parts.push(`${status.pendingToolReviews} ${status.pendingToolReviews === 1 ? 'tool' : 'tools'} to review`);
  return `Lanyard — ${parts.join(' · ')}`;
}
