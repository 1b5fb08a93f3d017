import { ErrorCodes } from '../../../shared/errors';
import { headerSecretKey } from '../auth/router';
import type { ServerConfig } from '../config/schema';
import { toErrorInfo } from '../errors';
import type { SecretStore } from '../secrets/secret-store';
import type { FetchLike } from '../util/http';
import { fail, failWith, pass, type DoctorCheck } from './types';

/**
 * The API-key path's first hop: a key for the server is in the keychain. Only its presence is reported — never the key,
 * its length or any part of it.
 */
export async function checkKey(server: ServerConfig, secrets: SecretStore): Promise<{ check: DoctorCheck; present: boolean }> {
  const id = `server.${server.id}.key`;
  const hop = `${server.id}: key in keychain`;
  const setKey = `Run \`lanyard servers set-key ${server.id}${server.header ? '' : ' --header <name>'} --value-stdin\` (or Set key in the dashboard).`;
  if (!server.header)
    return {
      check: failWith(id, hop, ErrorCodes.KEY_REQUIRED, 'No header is configured for the key.', setKey, server.id),
      present: false,
    };
  let value: string | undefined;
  try {
    value = await secrets.get(headerSecretKey(server.id));
  } catch (e) {
    return { check: fail(id, hop, toErrorInfo(e)), present: false };
  }
  if (!value)
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.KEY_REQUIRED,
        `No key for the ${server.header.name} header is in the keychain.`,
        setKey,
        server.id,
      ),
      present: false,
    };
  return { check: pass(id, hop, `a key for the ${server.header.name} header is stored (not shown)`), present: true };
}

/**
 * A fetch that sends one credential header, for the doctor's own MCP check: only to the server's own origin, and a
 * redirect is not followed, so the credential reaches no other party.
 */
export function credentialFetch(serverUrl: string, header: () => Promise<[string, string] | undefined>, base: FetchLike): FetchLike {
  const origin = new URL(serverUrl).origin;
  return async (input, init) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : (input as Request).url);
    const headers = new Headers(init?.headers);
    if (url.origin === origin) {
      const pair = await header();
      if (pair) headers.set(pair[0], pair[1]);
    }
    return base(input, { ...init, headers, redirect: 'manual' });
  };
}

/** The stored key in its header. */
export function keyFetch(server: ServerConfig, secrets: SecretStore, base: FetchLike): FetchLike {
  return credentialFetch(
    server.url,
    async () => {
      const value = await secrets.get(headerSecretKey(server.id));
      return value && server.header ? [server.header.name, value] : undefined;
    },
    base,
  );
}
