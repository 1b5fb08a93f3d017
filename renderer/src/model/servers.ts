/**
 * View models for the Servers page: one row per configured server, built from the contract's ServerStatus. Pure.
 */
import type { ServerStatus, Status } from '../../../shared/contract';
import { expiryLabel, hostOf, issuerLabel, plural } from './format';

export type Tone = 'ok' | 'busy' | 'error' | 'off' | 'idle';

export const HEALTH: Record<ServerStatus['health'], { label: string; tone: Tone; description: string }> = {
  ready: { label: 'Ready', tone: 'ok', description: 'Connected; tools are available to your IDEs.' },
  idle: { label: 'Idle', tone: 'idle', description: 'Connects on the first request from an IDE.' },
  connecting: { label: 'Connecting', tone: 'busy', description: 'Getting a token and opening a session…' },
  degraded: { label: 'Degraded', tone: 'error', description: 'Reachable, but some requests fail.' },
  error: { label: 'Error', tone: 'error', description: 'Not usable until the problem below is fixed.' },
  disabled: { label: 'Disabled', tone: 'off', description: 'Hidden from your IDEs.' },
};

export function authPathLabel(path: ServerStatus['authPath']): string {
  switch (path) {
    case 'xaa':
      return 'Cross-App Access';
    case 'none':
      return 'No sign-in needed';
    default:
      return 'Not discovered yet';
  }
}

export interface QuotaModel {
  used: number;
  quota: number;
  /** 0–100, rounded; at least 1 when anything was used, so a sliver always shows. */
  percent: number;
  tone: 'ok' | 'warn' | 'error';
  label: string;
}

/**
 * The IdP's monthly ID-JAG budget for this server (Okta: 250 per user per resource app per month). Amber from 80%,
 * red when exhausted: past the quota the IdP refuses new grants until the month turns.
 */
export function quotaModel(used: number, quota: number): QuotaModel {
  const safeQuota = quota > 0 ? quota : 1;
  const raw = (used / safeQuota) * 100;
  const percent = Math.min(100, used > 0 ? Math.max(1, Math.round(raw)) : 0);
  // From the rounded figure the user sees, so "80%" is never shown in the calm colour.
  const tone = used >= safeQuota ? 'error' : percent >= 80 ? 'warn' : 'ok';
  return { used, quota, percent, tone, label: `${used} / ${quota} ID-JAGs` };
}

export interface ServerRowModel {
  id: string;
  name: string;
  url: string;
  host: string;
  enabled: boolean;
  managed: boolean;
  tone: Tone;
  healthLabel: string;
  healthDescription: string;
  authPath: string;
  asIssuer: string;
  toolCount: string;
  token: string;
  scopes: string;
  quota: QuotaModel;
  error?: { message: string; fix: string; code: string };
  /** Why the toggle / remove are unavailable, if they are. */
  lockedReason?: string;
}

/**
 * `known.toolCount`: a count the page learned itself (it listed the tools, or a test connected) — shown when the
 * status has none yet, since the broker reports counts only once its own session to the server has them.
 */
export function serverRowModel(server: ServerStatus, now: number, known: { toolCount?: number | undefined } = {}): ServerRowModel {
  const toolCount = server.toolCount ?? known.toolCount;
  const health = HEALTH[server.health];
  const row: ServerRowModel = {
    id: server.id,
    name: server.name,
    url: server.url,
    host: hostOf(server.url),
    enabled: server.enabled,
    managed: server.managed,
    tone: health.tone,
    healthLabel: health.label,
    healthDescription: health.description,
    authPath: authPathLabel(server.authPath),
    asIssuer: server.asIssuer ? issuerLabel(server.asIssuer) : server.authPath === 'none' ? 'None' : '—',
    toolCount: toolCount === undefined ? '—' : plural(toolCount, 'tool'),
    token: server.authPath === 'none' ? 'Not needed' : expiryLabel(server.tokenExpiresAt, now),
    scopes: server.scopes.length ? server.scopes.join(' ') : '—',
    quota: quotaModel(server.idJagsThisMonth, server.idJagMonthlyQuota),
  };
  if (server.lastError) row.error = { message: server.lastError.message, fix: server.lastError.fix, code: server.lastError.code };
  if (server.managed) row.lockedReason = 'Managed by your administrator';
  return row;
}

export interface ServersSummary {
  total: number;
  enabled: number;
  ready: number;
  failing: number;
  text: string;
}

/** One line over the list, also announced to screen readers when it changes. */
export function serversSummary(status: Pick<Status, 'servers'>): ServersSummary {
  const enabled = status.servers.filter((s) => s.enabled);
  const ready = enabled.filter((s) => s.health === 'ready' || s.health === 'idle').length;
  const failing = enabled.filter((s) => s.health === 'error' || s.health === 'degraded').length;
  let text: string;
  if (status.servers.length === 0) text = 'No servers yet.';
  else if (failing > 0) text = `${plural(failing, 'server needs', 'servers need')} attention · ${ready} of ${enabled.length} working`;
  else
    text = `${ready} of ${plural(enabled.length, 'enabled server')} working${status.servers.length > enabled.length ? ` · ${status.servers.length - enabled.length} disabled` : ''}`;
  return { total: status.servers.length, enabled: enabled.length, ready, failing, text };
}
