/**
 * The Settings form: its fields from the contract's Settings, which of them the administrator locked, client-side
 * checks that mirror the config schema (the broker validates again and has the last word), and the minimal update.
 * Pure.
 */
import { CLIENT_AUTH_METHODS, usesClientSecret, type ClientAuthMethod } from '../../../shared/auth-methods';
import type { Settings } from '../../../shared/contract';

export type { ClientAuthMethod };

/** A label for every method: keyed by the shared list, so a new method cannot reach a picker without one. */
const CLIENT_AUTH_LABELS: Record<ClientAuthMethod, string> = {
  none: 'None (client ID only)',
  client_secret_basic: 'Client secret (HTTP Basic)',
  client_secret_post: 'Client secret (form post)',
  private_key_jwt: 'Private key JWT',
};

/** The pickers' options, in the shared list's order. */
export const CLIENT_AUTH_CHOICES: ReadonlyArray<{ id: ClientAuthMethod; label: string }> = CLIENT_AUTH_METHODS.map((id) => ({
  id,
  label: CLIENT_AUTH_LABELS[id],
}));

export type SettingsField = 'idp' | 'gateway.port' | 'gateway.toolNameSeparator' | 'gateway.allowedOrigins' | 'ui.startAtLogin';

/** A field is locked when the managed configuration names it or any parent of it (`gateway` locks `gateway.port`). */
export function isLocked(locked: readonly string[], field: SettingsField): boolean {
  const parts = field.split('.');
  return parts.some((_, i) => locked.includes(parts.slice(0, i + 1).join('.')));
}

export interface SettingsForm {
  issuer: string;
  clientId: string;
  clientAuthMethod: ClientAuthMethod;
  /** Write-only: empty keeps the stored secret. */
  clientSecret: string;
  gatewayPort: string;
  toolNameSeparator: string;
  /** One origin per line. */
  allowedOrigins: string;
  startAtLogin: boolean;
}

export function settingsForm(settings: Settings): SettingsForm {
  return {
    issuer: settings.idp?.issuer ?? '',
    clientId: settings.idp?.clientId ?? '',
    clientAuthMethod: settings.idp?.clientAuthMethod ?? 'none',
    clientSecret: '',
    gatewayPort: String(settings.gatewayPort),
    toolNameSeparator: settings.toolNameSeparator,
    allowedOrigins: settings.allowedOrigins.join('\n'),
    startAtLogin: settings.startAtLogin,
  };
}

const isLoopback = (host: string) => host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** The rule the broker applies to every endpoint it sends credentials to (config schema urlProblem). */
export function urlProblem(value: string, options: { allowQuery?: boolean } = {}): string | undefined {
  if (value.trim() === '') return 'Enter a URL.';
  if (/\s/.test(value)) return 'Remove the spaces.';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'Enter an absolute URL such as https://acme.okta.com.';
  }
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname))))
    return 'Use https (http only for 127.0.0.1 or localhost).';
  if (url.username !== '' || url.password !== '') return 'Remove the user name and password from the URL.';
  if (value.includes('#')) return 'Remove the #fragment.';
  if (options.allowQuery === false && value.includes('?')) return 'An issuer has no ?query.';
  return undefined;
}

function originProblem(value: string): string | undefined {
  try {
    const url = new URL(value);
    const origin = url.origin === 'null' ? `${url.protocol}//${url.host}` : url.origin;
    return url.host !== '' && origin === value ? undefined : `“${value}” is not an origin (scheme://host[:port], no path).`;
  } catch {
    return `“${value}” is not an origin (scheme://host[:port], no path).`;
  }
}

export type SettingsUpdate = {
  idp?: { issuer: string; clientId: string; clientAuthMethod?: ClientAuthMethod; clientSecret?: string };
  gatewayPort?: number;
  toolNameSeparator?: string;
  allowedOrigins?: string[];
  startAtLogin?: boolean;
};

export interface SettingsValidation {
  errors: Partial<Record<keyof SettingsForm, string>>;
  /** Only what changed and is not locked; empty when there is nothing to save. */
  update: SettingsUpdate;
  changed: boolean;
  /** Changing the port moves the endpoint every IDE config points at. */
  portChanged: boolean;
}

export function validateSettings(form: SettingsForm, current: Settings): SettingsValidation {
  const errors: SettingsValidation['errors'] = {};
  const update: SettingsUpdate = {};
  const locked = current.locked;

  if (!isLocked(locked, 'idp')) {
    const issuer = form.issuer.trim();
    const clientId = form.clientId.trim();
    const idpChanged =
      issuer !== (current.idp?.issuer ?? '') ||
      clientId !== (current.idp?.clientId ?? '') ||
      form.clientAuthMethod !== (current.idp?.clientAuthMethod ?? 'none') ||
      form.clientSecret !== '';
    if (idpChanged) {
      const issuerError = urlProblem(issuer, { allowQuery: false });
      if (issuerError) errors.issuer = issuerError;
      if (clientId === '') errors.clientId = 'Enter the client ID your IT team gave you.';
      // A stored secret is bound to the issuer and client id it was entered for and wiped when either changes, so a
      // new IdP (or client) needs its own secret, as a new method does.
      const partyChanged = issuer !== (current.idp?.issuer ?? '') || clientId !== (current.idp?.clientId ?? '');
      if (
        usesClientSecret(form.clientAuthMethod) &&
        form.clientSecret === '' &&
        (partyChanged || current.idp?.clientAuthMethod !== form.clientAuthMethod)
      ) {
        errors.clientSecret = partyChanged
          ? 'Enter the client secret for this identity provider: the stored one belongs to the previous one and is never sent here.'
          : 'Enter the client secret for this method.';
      }
      update.idp = {
        issuer,
        clientId,
        clientAuthMethod: form.clientAuthMethod,
        ...(form.clientSecret !== '' && usesClientSecret(form.clientAuthMethod) ? { clientSecret: form.clientSecret } : {}),
      };
    }
  }

  let portChanged = false;
  // Unchanged is always fine (the config may hold 0, "any free port", in tests and demos).
  if (!isLocked(locked, 'gateway.port') && form.gatewayPort.trim() !== String(current.gatewayPort)) {
    const port = Number(form.gatewayPort.trim());
    if (!/^\d+$/.test(form.gatewayPort.trim()) || !Number.isInteger(port) || port < 1024 || port > 65535)
      errors.gatewayPort = 'Use a port between 1024 and 65535.';
    else {
      update.gatewayPort = port;
      portChanged = true;
    }
  }

  if (!isLocked(locked, 'gateway.toolNameSeparator') && form.toolNameSeparator !== current.toolNameSeparator) {
    if (!/^[_.-]{1,4}$/.test(form.toolNameSeparator) || !/[_.]/.test(form.toolNameSeparator)) {
      errors.toolNameSeparator = 'Use 1–4 of _ . - including at least one _ or .';
    } else update.toolNameSeparator = form.toolNameSeparator;
  }

  if (!isLocked(locked, 'gateway.allowedOrigins')) {
    const origins = form.allowedOrigins
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    const problem = origins.map(originProblem).find((p) => p !== undefined);
    if (problem) errors.allowedOrigins = problem;
    else if (origins.join('\n') !== current.allowedOrigins.join('\n')) update.allowedOrigins = origins;
  }

  if (!isLocked(locked, 'ui.startAtLogin') && form.startAtLogin !== current.startAtLogin) update.startAtLogin = form.startAtLogin;

  return { errors, update, changed: Object.keys(update).length > 0, portChanged };
}
