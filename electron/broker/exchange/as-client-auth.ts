import { usesClientSecret, type ClientAuthMethod } from '../../../shared/auth-methods';
import type * as oidc from 'openid-client';
import type { JWK } from 'jose';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import { openidClientAuth } from '../util/client-auth';
import {
  describeParty,
  readBoundCredential,
  secretKeys,
  type BoundCredentialRead,
  type CredentialParty,
  type SecretStore,
} from '../secrets/secret-store';

export type AsClientAuthMethod = ClientAuthMethod;

/** Lanyard's client at one MCP server's authorization server: its id, method and the credential that method needs. */
export interface AsCredentials {
  clientId: string;
  method: AsClientAuthMethod;
  clientSecret?: string | undefined;
  privateJwk?: JWK | undefined;
}

/**
 * Lanyard's client authentication at a server's authorization server, in one place: which keychain entry holds the
 * credential for each method (`loadAsCredentials`) and how it is presented (`asClientAuthentication`, openid-client's
 * four client-auth methods). A missing credential is reported before any grant is spent, and so is one that was stored
 * for another authorization server or client id (secrets/secret-store.ts `readBoundCredential`): a server whose metadata
 * starts naming another authorization server never gets the secret meant for the first one.
 */
export async function loadAsCredentials(
  secrets: SecretStore,
  server: { id: string; asClient: { clientId: string; method: AsClientAuthMethod } },
  /** The issuer of the authorization server the credential is about to be sent to (discovered from the server). */
  asIssuer: string,
): Promise<AsCredentials> {
  const client = server.asClient;
  const credentials: AsCredentials = { clientId: client.clientId, method: client.method };
  const party = { issuer: asIssuer, clientId: client.clientId };
  if (usesClientSecret(client.method)) {
    const read = await readBoundCredential(secrets, secretKeys.serverClientSecret(server.id), party);
    credentials.clientSecret = credentialOrThrow(read, 'client secret', server.id, party);
  } else if (client.method === 'private_key_jwt') {
    const read = await readBoundCredential(secrets, secretKeys.serverPrivateKey(server.id), party);
    credentials.privateJwk = JSON.parse(credentialOrThrow(read, 'private key', server.id, party)) as JWK;
  }
  return credentials;
}

/** The credential's value, or why it is not used: missing, or stored for another authorization server or client. */
function credentialOrThrow(
  read: BoundCredentialRead,
  what: 'client secret' | 'private key',
  serverId: string,
  party: CredentialParty,
): string {
  if (read.state === 'ok') return read.value;
  // Servers cannot be edited in place: a new credential is given by adding the server again.
  const reEnter = `Remove the server and add it again with the ${what} for ${describeParty(party)} (\`lanyard servers remove ${serverId}\`, then \`lanyard servers add … --client-id ${party.clientId}${what === 'client secret' ? ' --client-secret-stdin' : ''}\`), or in the dashboard.`;
  if (read.state === 'missing') {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `Server "${serverId}" authenticates with a ${what} at ${party.issuer}, and none is in the keychain.`,
      reEnter,
      { serverId },
    );
  }
  if (read.boundTo.clientId === party.clientId && read.boundTo.issuer !== undefined) {
    // Same client, another authorization server: the server's metadata moved (or was tampered with).
    throw new LanyardError(
      ErrorCodes.SERVER_METADATA_INVALID,
      `Server "${serverId}" now names the authorization server ${party.issuer}, but its ${what} belongs to ${read.boundTo.issuer}; Lanyard does not send it to another authorization server.`,
      `If the server really moved to ${party.issuer}, ${reEnter.charAt(0).toLowerCase()}${reEnter.slice(1)} Otherwise contact the server's owner.`,
      { serverId },
    );
  }
  throw new LanyardError(
    ErrorCodes.CONFIG_INVALID,
    `Server "${serverId}"'s ${what} belongs to ${describeParty(read.boundTo)}, not to ${describeParty(party)}; Lanyard does not send it to another client.`,
    reEnter,
    { serverId },
  );
}

/** The credentials as openid-client client authentication (RFC 6749 §2.3, RFC 7523 §2.2 for private_key_jwt). */
export function asClientAuthentication(credentials: AsCredentials): Promise<oidc.ClientAuth> {
  return openidClientAuth(credentials.method, { secret: credentials.clientSecret, privateJwk: credentials.privateJwk });
}
