import { createHash } from 'node:crypto';
import type { OAuthDiscoveryState, StoredOAuthClientInformation } from '@modelcontextprotocol/client';
import type { JWK } from 'jose';
import type { SecretStore } from '../secrets/secret-store';

/**
 * Where the OAuth 2.1 path keeps what it must remember across restarts, all of it in the keychain (SecretStore),
 * nothing in the config file or a log:
 *
 * - `oauth:grant:<hash>` — the grant (access token, refresh token, DPoP key), keyed by the party it belongs to: the
 *   authorization server's issuer, Lanyard's client id there and the RFC 8707 resource. A grant read back for another
 *   party (the server now names another authorization server, another client id) is not served.
 * - `server:<id>:oauth` — which grant is this server's, and the discovery it was obtained with (metadata only, no
 *   secret), so getToken and refresh work after a restart without discovery and without a browser.
 * - `server:<id>:oauth_client` — the client Lanyard registered dynamically at the server's authorization server
 *   (its secret, when the AS issued one), stamped with that issuer.
 */

/** The party a grant belongs to. */
export interface GrantParty {
  issuer: string;
  clientId: string;
  resource: string;
}

export interface StoredGrant {
  v: 1;
  boundTo: GrantParty;
  accessToken: string;
  /** `Bearer` or `DPoP` (RFC 9449 §5). */
  tokenType: string;
  refreshToken?: string | undefined;
  /** Epoch ms on this machine's clock. */
  issuedAt: number;
  /** Absent when the authorization server gave no `expires_in`: served until the server answers 401. */
  expiresAt?: number | undefined;
  scopes: string[];
  /** The DPoP private key the tokens are bound to (RFC 9449), when the authorization server issued DPoP tokens. */
  dpopKey?: JWK | undefined;
}

/** Non-secret bookkeeping of one server's OAuth path. */
export interface ServerRecord {
  v: 1;
  party: GrantParty;
  discovery: OAuthDiscoveryState;
  /** How Lanyard is known at the authorization server: decides where the client's secret (if any) is read from. */
  clientKind: 'pre-registered' | 'metadata-document' | 'registered';
}

export const oauthKeys = {
  serverRecord: (serverId: string) => `server:${serverId}:oauth`,
  registeredClient: (serverId: string) => `server:${serverId}:oauth_client`,
  /** The pre-registered client's secret (set by `servers add --oauth-client-id`, the dashboard or managed provisioning). */
  preRegisteredSecret: (serverId: string) => `server:${serverId}:oauth_client_secret`,
  grant: (party: GrantParty) =>
    `oauth:grant:${createHash('sha256').update(`${party.issuer}\n${party.clientId}\n${party.resource}`).digest('base64url').slice(0, 32)}`,
  grantPrefix: 'oauth:grant:',
} as const;

export const sameParty = (a: GrantParty, b: GrantParty): boolean =>
  a.issuer === b.issuer && a.clientId === b.clientId && a.resource === b.resource;

/** Reads and writes the entries above; every value is JSON, every read tolerates a damaged entry (as absent). */
export class GrantStore {
  constructor(private readonly secrets: SecretStore) {}

  async readRecord(serverId: string): Promise<ServerRecord | undefined> {
    const parsed = parse<ServerRecord>(await this.secrets.get(oauthKeys.serverRecord(serverId)));
    return parsed?.v === 1 && parsed.party && parsed.discovery && parsed.clientKind ? parsed : undefined;
  }

  async writeRecord(serverId: string, record: ServerRecord): Promise<void> {
    await this.secrets.set(oauthKeys.serverRecord(serverId), JSON.stringify(record));
  }

  /** The grant for `party`, and only for it. */
  async readGrant(party: GrantParty): Promise<StoredGrant | undefined> {
    const parsed = parse<StoredGrant>(await this.secrets.get(oauthKeys.grant(party)));
    if (parsed?.v !== 1 || typeof parsed.accessToken !== 'string' || !parsed.boundTo || !sameParty(parsed.boundTo, party)) return undefined;
    return parsed;
  }

  async writeGrant(grant: StoredGrant): Promise<void> {
    await this.secrets.set(oauthKeys.grant(grant.boundTo), JSON.stringify(grant));
  }

  async deleteGrant(party: GrantParty): Promise<void> {
    await this.secrets.delete(oauthKeys.grant(party));
  }

  async readClient(serverId: string): Promise<StoredOAuthClientInformation | undefined> {
    const parsed = parse<StoredOAuthClientInformation>(await this.secrets.get(oauthKeys.registeredClient(serverId)));
    return parsed && typeof parsed.client_id === 'string' ? parsed : undefined;
  }

  async writeClient(serverId: string, client: StoredOAuthClientInformation): Promise<void> {
    await this.secrets.set(oauthKeys.registeredClient(serverId), JSON.stringify(client));
  }

  /** Wipes everything the OAuth path stored for this server (the grant under its party, the record, the registered client). */
  async wipe(serverId: string, party: GrantParty | undefined): Promise<void> {
    if (party) await this.deleteGrant(party);
    await this.secrets.delete(oauthKeys.serverRecord(serverId));
    await this.secrets.delete(oauthKeys.registeredClient(serverId));
  }
}

function parse<T>(raw: string | undefined): T | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}
