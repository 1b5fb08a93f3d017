/**
 * The Add-server flow: paste a URL → probe → what the probe found (every auth path in order, whether it applies and
 * why, the one Lanyard would use preselected) → the fields the chosen path needs (a client ID for Cross-App Access
 * when the broker does not know one, an optional pre-registered client for OAuth, a header and its key for an API-key
 * server) → add. Pure.
 */
import { usesClientSecret } from '../../../shared/auth-methods';
import { AUTH_PATHS, headerNameProblem, type AuthPath } from '../../../shared/auth-paths';
import type { ControlInput, ProbeResult } from '../../../shared/contract';
import { isServerId } from '../../../shared/server-id';
import { hostOf, issuerLabel } from './format';
import { urlProblem, type ClientAuthMethod } from './settings';

export interface AddServerForm {
  url: string;
  name: string;
  /** Cross-App Access: Lanyard's client at the server's authorization server. */
  clientId: string;
  clientAuthMethod: ClientAuthMethod;
  clientSecret: string;
  /** The path the user picked; empty = the probe's choice. */
  authPath: AuthPath | '';
  /** API key: the header it goes in, and the key (kept only until the form is submitted). */
  headerName: string;
  headerValue: string;
  /** OAuth: a client pre-registered at the server's authorization server (optional). */
  oauthClientId: string;
}

export const emptyAddServerForm = (): AddServerForm => ({
  url: '',
  name: '',
  clientId: '',
  clientAuthMethod: 'none',
  clientSecret: '',
  authPath: '',
  headerName: '',
  headerValue: '',
  oauthClientId: '',
});

/** Header names offered for an API key; the user may type any other. */
export const KEY_HEADER_SUGGESTIONS = ['Authorization', 'X-API-Key'] as const;

export interface PathChoice {
  path: AuthPath;
  label: string;
  applies: boolean;
  reason: string;
  /** The probe's pick: the first path in order that applies and that policy allows. */
  recommended: boolean;
}

export const PATH_CHOICE_LABELS: Record<AuthPath, string> = {
  xaa: 'Cross-App Access',
  oauth: 'OAuth in your browser',
  header: 'API key',
  none: 'No authentication',
};

/** Every path the probe reported, in the fixed order, with whether it applies and why. */
export function pathChoices(probe: ProbeResult): PathChoice[] {
  return [...probe.paths]
    .sort((a, b) => AUTH_PATHS.indexOf(a.path) - AUTH_PATHS.indexOf(b.path))
    .map((p) => ({
      path: p.path,
      label: PATH_CHOICE_LABELS[p.path],
      applies: p.applies,
      reason: asSentence(p.reason),
      recommended: p.path === probe.path,
    }));
}

/** The broker's reasons are clauses ("advertises the ID-JAG grant…"); under a heading they read as sentences. */
function asSentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return trimmed;
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * The path the form is for: the user's pick when it applies, else the probe's. Undefined when the probe found none (or
 * the broker reported no paths, where the Cross-App Access fields are shown as before).
 */
export function selectedPath(form: Pick<AddServerForm, 'authPath'>, probe: ProbeResult): AuthPath | undefined {
  if (form.authPath !== '' && probe.paths.some((p) => p.path === form.authPath && p.applies)) return form.authPath;
  return probe.path;
}

export type VerdictTone = 'ok' | 'warn' | 'error' | 'info';

export interface ProbeVerdict {
  tone: VerdictTone;
  title: string;
  detail: string;
  /** Adding makes sense (it may still fail later for reasons only the IdP knows). */
  canAdd: boolean;
  asIssuer?: string;
  resource?: string;
  scopes?: string;
  fix?: string;
}

export function probeVerdict(probe: ProbeResult): ProbeVerdict {
  const details = {
    ...(probe.asIssuer ? { asIssuer: issuerLabel(probe.asIssuer) } : {}),
    ...(probe.resource ? { resource: probe.resource } : {}),
    ...(probe.scopes.length ? { scopes: probe.scopes.join(' ') } : {}),
  };
  if (!probe.reachable) {
    return {
      tone: 'error',
      title: `Could not reach ${hostOf(probe.url)}`,
      detail: probe.error?.message ?? 'The server did not answer.',
      canAdd: false,
      ...(probe.error ? { fix: probe.error.fix } : {}),
    };
  }
  if (probe.paths.length > 0 && probe.path === undefined) {
    const blocked = probe.error?.code === 'policy_blocked';
    return {
      ...details,
      tone: 'error',
      title: blocked ? 'Blocked by your administrator' : 'No way for Lanyard to reach this server',
      detail: probe.error?.message ?? 'None of the ways Lanyard signs in applies to this server (see each one below).',
      canAdd: false,
      ...(probe.error ? { fix: probe.error.fix } : {}),
    };
  }
  if (probe.path === 'oauth')
    return {
      ...details,
      tone: 'ok',
      title: 'OAuth: authorize once in your browser',
      detail:
        'This server has its own authorization server. After adding it, click Authorize once: every IDE then uses it, and Lanyard renews access on its own.',
      canAdd: true,
    };
  if (probe.path === 'header')
    return {
      ...details,
      tone: 'info',
      title: 'This server takes an API key',
      detail: 'Lanyard keeps the key in the OS keychain and adds it to every request; it never appears in a file or an IDE config.',
      canAdd: true,
    };
  if (probe.path === 'none')
    return {
      tone: 'ok',
      title: 'No sign-in needed',
      detail: 'This server answers without authorization; Lanyard relays it as is.',
      canAdd: true,
    };
  switch (probe.xaa) {
    case 'supported':
      return {
        ...details,
        tone: 'ok',
        title: 'Cross-App Access supported',
        detail: 'Its authorization server accepts ID-JAGs: Lanyard gets tokens with your company sign-in — no consent screen, no API key.',
        canAdd: true,
      };
    case 'not_needed':
      return {
        tone: 'ok',
        title: 'No sign-in needed',
        detail: 'This server answers without authorization; Lanyard relays it as is.',
        canAdd: true,
      };
    case 'not_advertised':
      return {
        ...details,
        tone: 'warn',
        title: 'Cross-App Access not advertised',
        detail:
          'The authorization server does not list the ID-JAG profile or the JWT-bearer grant in its metadata. Adding may work if it supports them anyway; token requests will say if not.',
        canAdd: true,
      };
    case 'unsupported':
      return {
        ...details,
        tone: 'error',
        title: 'Cross-App Access not supported',
        detail: probe.error?.message ?? 'This server’s authorization server cannot accept ID-JAGs.',
        canAdd: false,
        ...(probe.error ? { fix: probe.error.fix } : {}),
      };
    default:
      return {
        ...details,
        tone: 'warn',
        title: 'Could not tell whether Cross-App Access works',
        detail: probe.error?.message ?? 'The server’s metadata was incomplete.',
        canAdd: true,
        ...(probe.error ? { fix: probe.error.fix } : {}),
      };
  }
}

export function addServerUrlProblem(url: string): string | undefined {
  return urlProblem(url.trim());
}

/**
 * The id a server gets: from the name the user typed ("Acme Wiki" → `acme-wiki`), else the broker's suggestion from
 * the URL; unique among `taken`. IDEs see tools as `<id><separator><tool>`, so a name-based id reads better than
 * `local` for a server on 127.0.0.1.
 */
export function serverIdFor(name: string, suggested: string | undefined, taken: readonly string[]): string | undefined {
  const slug = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 28)
    .replace(/-+$/, '');
  const base = isServerId(slug) ? slug : suggested;
  if (base === undefined) return undefined;
  let id = base;
  for (let n = 2; taken.includes(id); n++) id = `${base}-${n}`;
  return id;
}

export type AddServerInput = ControlInput<'addServer'>;

/** The header an API key goes in unless the user says otherwise. */
export function defaultHeaderName(form: Pick<AddServerForm, 'headerName'>): string {
  return form.headerName.trim() || KEY_HEADER_SUGGESTIONS[0];
}

export interface AddServerSubmission {
  input?: AddServerInput;
  errors: Partial<Record<keyof AddServerForm, string>>;
  /** The form to keep: once the input is built, without the API key and the client secret (never kept, never shown back). */
  form: AddServerForm;
}

/** The addServer input for the chosen path, or the field errors that stop it. */
export function buildAddServerInput(form: AddServerForm, probe: ProbeResult, takenIds: readonly string[] = []): AddServerSubmission {
  const errors: Partial<Record<keyof AddServerForm, string>> = {};
  const urlError = addServerUrlProblem(form.url);
  if (urlError) errors.url = urlError;
  const path = selectedPath(form, probe);
  // Without reported paths (an older broker) the form is the Cross-App Access one, as the probe's xaa field says.
  const xaa = path === 'xaa' || (path === undefined && probe.paths.length === 0);
  const clientId = form.clientId.trim();
  if (xaa && probe.needsClientId && clientId === '')
    errors.clientId = 'This server’s authorization server needs Lanyard’s client ID there. Your IT team has it.';
  if (xaa && clientId !== '' && usesClientSecret(form.clientAuthMethod) && form.clientSecret === '')
    errors.clientSecret = 'Enter the client secret, or choose “None”.';
  const headerName = defaultHeaderName(form);
  const headerValue = form.headerValue.trim();
  if (path === 'header') {
    const problem = headerNameProblem(headerName);
    if (problem) errors.headerName = `The header name ${problem}.`;
    if (headerValue === '') errors.headerValue = 'Paste the API key the server’s provider gave you.';
  }
  if (Object.keys(errors).length > 0) return { errors, form };
  const name = form.name.trim() || probe.suggestedName;
  const input: AddServerInput = { url: form.url.trim() };
  if (name) input.name = name;
  const id = serverIdFor(form.name, probe.suggestedId, takenIds);
  if (id !== undefined) input.id = id;
  // The path the user saw chosen is recorded with the server, so its card says at once what it needs (Authorize, …).
  if (path !== undefined) input.authPath = path;
  if (xaa && clientId !== '') {
    input.clientId = clientId;
    input.clientAuthMethod = form.clientAuthMethod;
    if (usesClientSecret(form.clientAuthMethod)) input.clientSecret = form.clientSecret;
  }
  if (path === 'oauth' && form.oauthClientId.trim() !== '') input.oauthClientId = form.oauthClientId.trim();
  if (path === 'header') input.header = { name: headerName, value: headerValue };
  return { input, errors, form: { ...form, headerValue: '', clientSecret: '' } };
}
