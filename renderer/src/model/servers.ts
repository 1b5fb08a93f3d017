/**
 * View models for the Servers page: one row per configured server, built from the contract's ServerStatus, with its
 * auth path, where it stands on it and the one action that moves it forward. Pure.
 */
import { actionFor, AUTH_PATH_LABELS, headerNameProblem, type AuthAction } from '../../../shared/auth-paths';
import type { ServerStatus, Status } from '../../../shared/contract';
import { ErrorCodes, isNetworkErrorCode } from '../../../shared/errors';
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

/** The same words the tray and the CLI use for each path; `unknown` until the broker has probed the server. */
export function authPathLabel(path: ServerStatus['authPath']): string {
  return path === 'unknown' ? 'Not discovered yet' : AUTH_PATH_LABELS[path];
}

export const ACTION_LABELS: Record<AuthAction, string> = { sign_in: 'Sign in', authorize: 'Authorize', set_key: 'Set key' };

export const AUTHORIZING_TEXT = 'Waiting for you to authorize in the browser…';
export const BLOCKED_TITLE = 'Blocked by your administrator';
export const PINNED_LABEL = 'Pinned by your administrator';

export interface AuthModel {
  /** The path, in words (AUTH_PATH_LABELS). */
  path: string;
  /** Where the server stands on it, in a few words. */
  state: string;
  tone: Tone | 'warn';
  /** One sentence: what this state means for this server, or the broker's message about it. */
  detail: string;
  fix?: string;
  /** The one button the card shows, if any. */
  action?: { kind: AuthAction; label: string };
  /** oauth, while the browser step is under way. */
  waiting?: string;
  /** The authorization page, for when the browser did not open (no secret in it: state, PKCE challenge). */
  authorizeUrl?: string;
  /** The administrator pinned the path (or forbade falling back from it). */
  pinned?: string;
  blocked: boolean;
}

const READY_DETAIL: Record<ServerStatus['authPath'], string> = {
  xaa: 'Tokens come from your company sign-in — no consent screen, no key.',
  oauth: 'You authorized Lanyard at this server; it renews access without asking again.',
  header: 'The key is in the OS keychain; Lanyard adds it to every request.',
  none: 'This server needs no credentials.',
  unknown: 'Lanyard works out how to reach it on the first request.',
};

/**
 * The codes that say the same thing as a state (or why the server is in it): shown as that state's detail next to its
 * one action, not as a separate red error. A denied or cancelled authorization leaves the server needing one again.
 */
const STATE_CODES: Partial<Record<ServerStatus['authState'], readonly string[]>> = {
  sign_in_required: [ErrorCodes.NOT_SIGNED_IN, ErrorCodes.SESSION_EXPIRED],
  authorization_required: [ErrorCodes.AUTHORIZATION_REQUIRED, ErrorCodes.AUTHORIZATION_FAILED],
  key_required: [ErrorCodes.KEY_REQUIRED],
  blocked: [ErrorCodes.POLICY_BLOCKED],
};
const isStateError = (server: ServerStatus): boolean =>
  server.lastError !== undefined && (STATE_CODES[server.authState] ?? []).includes(server.lastError.code);

/**
 * The card's auth strip. `requestedLink`: the link `authorizeServer` returned, for a status that says `authorizing`
 * without carrying it.
 */
export function authModel(server: ServerStatus, requestedLink?: string): AuthModel {
  const state = server.authState;
  const ownError = isStateError(server) ? server.lastError : undefined;
  const model: AuthModel = { path: authPathLabel(server.authPath), state: '', tone: 'idle', detail: '', blocked: false };
  switch (state) {
    case 'ready':
      Object.assign(model, { state: 'Ready', tone: 'ok', detail: READY_DETAIL[server.authPath] });
      break;
    case 'sign_in_required':
      Object.assign(model, { state: 'Sign-in needed', tone: 'warn', detail: 'Sign in with your company account to get tokens for it.' });
      break;
    case 'authorization_required':
      Object.assign(model, {
        state: 'Authorization needed',
        tone: 'warn',
        detail: 'Authorize Lanyard once at this server, in your browser; every IDE then uses it.',
      });
      break;
    case 'authorizing':
      Object.assign(model, { state: 'Authorizing', tone: 'busy', detail: 'Finish the authorization in the browser window that opened.' });
      model.waiting = AUTHORIZING_TEXT;
      break;
    case 'key_required':
      Object.assign(model, {
        state: 'Key needed',
        tone: 'warn',
        detail: `Set the API key${server.headerName ? ` Lanyard sends in the ${server.headerName} header` : ''}; it goes to the OS keychain only.`,
      });
      break;
    case 'blocked':
      Object.assign(model, {
        state: BLOCKED_TITLE,
        tone: 'error',
        detail: server.lastError?.message ?? 'Your administrator’s policy does not allow Lanyard to reach this server.',
        blocked: true,
      });
      if (server.lastError?.fix) model.fix = server.lastError.fix;
      break;
    case 'error':
      Object.assign(model, {
        state: 'Error',
        tone: 'error',
        detail: server.lastError ? 'See the error below.' : 'Lanyard could not reach it on its path; Test shows where it fails.',
      });
      break;
    default:
      Object.assign(model, { state: 'Not checked yet', tone: 'idle', detail: READY_DETAIL.unknown });
  }
  if (ownError && state !== 'blocked') {
    model.detail = ownError.message;
    if (ownError.fix) model.fix = ownError.fix;
  }
  // A blocked server has nothing the user can do: never a button, whatever else the status says.
  const action = state === 'blocked' ? undefined : (server.action ?? actionFor(state));
  if (action) model.action = { kind: action, label: ACTION_LABELS[action] };
  // Only while the browser step runs: once it ended (done, denied, timed out) its link is spent.
  const link = state === 'authorizing' ? (server.authorizeUrl ?? requestedLink) : undefined;
  if (link && action === 'authorize') model.authorizeUrl = link;
  if (server.authPathPinned) model.pinned = PINNED_LABEL;
  return model;
}

/** The Set-key form on a header-path card. The value lives here only until it is sent. */
export interface KeyForm {
  value: string;
  headerName: string;
}

export const DEFAULT_KEY_HEADER = 'Authorization';

export const keyFormFor = (server: Pick<ServerStatus, 'headerName'>): KeyForm => ({
  value: '',
  headerName: server.headerName ?? DEFAULT_KEY_HEADER,
});

export interface KeySubmission {
  input?: { id: string; value: string; headerName?: string };
  errors: Partial<Record<keyof KeyForm, string>>;
  /** The form to keep: without the value once it is on its way (it is never shown back, nor kept). */
  form: KeyForm;
}

/** The setServerKey input from the form; `headerName` only when the user changed it. */
export function submitKeyForm(server: Pick<ServerStatus, 'id' | 'headerName'>, form: KeyForm): KeySubmission {
  const errors: KeySubmission['errors'] = {};
  const value = form.value.trim();
  // Empty means the default header, as on the add-server form.
  const headerName = form.headerName.trim() || DEFAULT_KEY_HEADER;
  if (value === '') errors.value = 'Paste the key the server’s provider gave you.';
  const headerProblem = headerNameProblem(headerName);
  if (headerProblem) errors.headerName = `The header name ${headerProblem}.`;
  if (Object.keys(errors).length > 0) return { errors, form };
  const input: NonNullable<KeySubmission['input']> = { id: server.id, value };
  if (headerName !== (server.headerName ?? '')) input.headerName = headerName;
  return { input, errors, form: { ...form, value: '' } };
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
  /** The card's facts, in order: where tokens come from (or the header a key goes in), tools, token (or key), scopes. */
  facts: Array<{ label: string; value: string; title?: string }>;
  auth: AuthModel;
  quota: QuotaModel;
  /** The IdP's monthly ID-JAG budget matters on the Cross-App Access path only. */
  showQuota: boolean;
  quotaWarning?: { message: string; fix: string };
  /** An error the auth strip does not already say. */
  error?: { message: string; fix: string; code: string };
  /** Why the toggle / remove are unavailable, if they are. */
  lockedReason?: string;
}

/**
 * `known.toolCount`: a count the page learned itself (it listed the tools, or a test connected) — shown when the
 * status has none yet, since the broker reports counts only once its own session to the server has them.
 */
export function serverRowModel(
  server: ServerStatus,
  now: number,
  known: { toolCount?: number | undefined; authorizeUrl?: string | undefined } = {},
): ServerRowModel {
  const toolCount = server.toolCount ?? known.toolCount;
  const health = HEALTH[server.health];
  // A failure on the way (network, proxy, PAC file, certificate): "Unreachable", with the error's fix.
  const unreachable =
    (server.health === 'error' || server.health === 'degraded') && server.lastError && isNetworkErrorCode(server.lastError.code)
      ? server.lastError
      : undefined;
  const auth = authModel(server, known.authorizeUrl);
  const header = server.authPath === 'header';
  const asIssuer = server.asIssuer ? issuerLabel(server.asIssuer) : server.authPath === 'none' ? 'None' : '—';
  const token =
    server.authPath === 'none'
      ? 'Not needed'
      : header
        ? server.authState === 'ready'
          ? 'In the keychain'
          : 'Not set'
        : expiryLabel(server.tokenExpiresAt, now);
  const scopes = server.scopes.length ? server.scopes.join(' ') : '—';
  const toolText = toolCount === undefined ? '—' : plural(toolCount, 'tool');
  const row: ServerRowModel = {
    id: server.id,
    name: server.name,
    url: server.url,
    host: hostOf(server.url),
    enabled: server.enabled,
    managed: server.managed,
    tone: health.tone,
    // A refusal by policy is not a fault to retry: the badge says what it is.
    healthLabel: auth.blocked && server.enabled ? 'Blocked' : unreachable ? 'Unreachable' : health.label,
    healthDescription:
      auth.blocked && server.enabled
        ? 'Your administrator’s policy refuses it; see why below.'
        : unreachable
          ? unreachable.fix
          : health.description,
    authPath: auth.path,
    asIssuer,
    toolCount: toolText,
    token,
    scopes,
    facts: [
      header
        ? { label: 'Header', value: server.headerName ?? '—' }
        : { label: 'Authorization server', value: asIssuer, ...(server.asIssuer ? { title: server.asIssuer } : {}) },
      { label: 'Tools', value: toolText },
      { label: header ? 'API key' : 'Token', value: token },
      { label: 'Scopes', value: scopes },
    ],
    auth,
    quota: quotaModel(server.idJagsThisMonth, server.idJagMonthlyQuota),
    showQuota: server.authPath === 'xaa' || server.idJagsThisMonth > 0,
  };
  if (server.idJagQuotaWarning) row.quotaWarning = { message: server.idJagQuotaWarning.message, fix: server.idJagQuotaWarning.fix };
  // The strip already says what a state's own error says (e.g. "the server rejected the key" under "Key needed").
  const saidByStrip = server.authState === 'blocked' || isStateError(server);
  if (server.lastError && !saidByStrip)
    row.error = { message: server.lastError.message, fix: server.lastError.fix, code: server.lastError.code };
  if (server.managed) row.lockedReason = 'Managed by your administrator';
  return row;
}

export interface ServersSummary {
  total: number;
  enabled: number;
  ready: number;
  failing: number;
  /** Enabled servers waiting for the user: to sign in, authorize or set a key. */
  waiting: number;
  text: string;
}

/** One line over the list, also announced to screen readers when it changes. */
export function serversSummary(status: Pick<Status, 'servers'>): ServersSummary {
  const enabled = status.servers.filter((s) => s.enabled);
  const waiting = enabled.filter((s) => actionFor(s.authState) !== undefined).length;
  const ready = enabled.filter((s) => (s.health === 'ready' || s.health === 'idle') && actionFor(s.authState) === undefined).length;
  const failing = enabled.filter((s) => s.health === 'error' || s.health === 'degraded').length;
  let text: string;
  if (status.servers.length === 0) text = 'No servers yet.';
  else if (failing > 0) text = `${plural(failing, 'server needs', 'servers need')} attention · ${ready} of ${enabled.length} working`;
  else
    text = `${ready} of ${plural(enabled.length, 'enabled server')} working${status.servers.length > enabled.length ? ` · ${status.servers.length - enabled.length} disabled` : ''}`;
  if (waiting > 0) text += ` · ${waiting} waiting for you`;
  return { total: status.servers.length, enabled: enabled.length, ready, failing, waiting, text };
}
