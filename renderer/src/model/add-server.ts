/**
 * The Add-server flow: paste a URL → probe → what the probe found (the authorization server, whether Cross-App Access
 * works) → ask for a client ID only when needed → add. Pure.
 */
import { usesClientSecret } from '../../../shared/auth-methods';
import type { ProbeResult } from '../../../shared/contract';
import { isServerId } from '../../../shared/server-id';
import { hostOf, issuerLabel } from './format';
import { urlProblem, type ClientAuthMethod } from './settings';

export interface AddServerForm {
  url: string;
  name: string;
  clientId: string;
  clientAuthMethod: ClientAuthMethod;
  clientSecret: string;
}

export const emptyAddServerForm = (): AddServerForm => ({ url: '', name: '', clientId: '', clientAuthMethod: 'none', clientSecret: '' });

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

export interface AddServerInput {
  url: string;
  name?: string;
  id?: string;
  clientId?: string;
  clientAuthMethod?: ClientAuthMethod;
  clientSecret?: string;
}

/** The addServer input, or the field errors that stop it. */
export function buildAddServerInput(
  form: AddServerForm,
  probe: ProbeResult,
  takenIds: readonly string[] = [],
): { input?: AddServerInput; errors: Partial<Record<keyof AddServerForm, string>> } {
  const errors: Partial<Record<keyof AddServerForm, string>> = {};
  const urlError = addServerUrlProblem(form.url);
  if (urlError) errors.url = urlError;
  const clientId = form.clientId.trim();
  if (probe.needsClientId && clientId === '')
    errors.clientId = 'This server’s authorization server needs Lanyard’s client ID there. Your IT team has it.';
  if (clientId !== '' && usesClientSecret(form.clientAuthMethod) && form.clientSecret === '')
    errors.clientSecret = 'Enter the client secret, or choose “None”.';
  if (Object.keys(errors).length > 0) return { errors };
  const name = form.name.trim() || probe.suggestedName;
  const input: AddServerInput = { url: form.url.trim() };
  if (name) input.name = name;
  const id = serverIdFor(form.name, probe.suggestedId, takenIds);
  if (id !== undefined) input.id = id;
  if (clientId !== '') {
    input.clientId = clientId;
    input.clientAuthMethod = form.clientAuthMethod;
    if (usesClientSecret(form.clientAuthMethod)) input.clientSecret = form.clientSecret;
  }
  return { input, errors };
}
