import { postProbeInitialize } from '../util/initialize-probe';
import { checkResourceAllowed, discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from '@modelcontextprotocol/client';
import { ErrorCodes } from '../../../shared/errors';
import type { ServerConfig } from '../config/schema';
import { redactText } from '../errors';
import type { FetchLike } from '../util/http';
import { describe, failWith, type DoctorCheck } from './types';

/**
 * The server's protected-resource metadata hop (RFC 9728), shared by the Cross-App Access and OAuth paths: the 401
 * challenge of an unauthenticated `initialize`, then the metadata it points at, bound to this server's URL.
 */

/** RFC 9728: the server's 401 challenge, then its protected-resource metadata, bound to this server's URL. */
export async function checkProtectedResource(
  server: ServerConfig,
  fetchFn: FetchLike,
): Promise<{ check: DoctorCheck; authRequired: boolean; authorizationServer?: string }> {
  const id = `server.${server.id}.prm`;
  const hop = `${server.id}: protected resource`;
  let response: Response;
  try {
    response = await postProbeInitialize(fetchFn, server.url, { clientName: 'lanyard-doctor', redirect: 'manual' });
  } catch (e) {
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_UNREACHABLE,
        `${server.url} could not be reached (${describe(e)}).`,
        'Check the URL, your network or VPN.',
        server.id,
      ),
      authRequired: true,
    };
  }
  await response.body?.cancel().catch(() => {});
  if (response.ok)
    return { check: { id, hop, ok: true, detail: `${server.url} answers without authorization (nothing to broker)` }, authRequired: false };
  if (response.status >= 500) {
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_UNREACHABLE,
        `${server.url} answered HTTP ${response.status}.`,
        'The server is failing; try again later or contact its owner.',
        server.id,
      ),
      authRequired: true,
    };
  }
  const challenge = response.status === 401 || response.status === 403 ? extractWWWAuthenticateParams(response) : {};
  let prm: Awaited<ReturnType<typeof discoverOAuthProtectedResourceMetadata>>;
  try {
    prm = await discoverOAuthProtectedResourceMetadata(
      server.url,
      challenge.resourceMetadataUrl ? { resourceMetadataUrl: challenge.resourceMetadataUrl } : {},
      fetchFn,
    );
  } catch (e) {
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_NOT_XAA_CAPABLE,
        `${server.url} publishes no OAuth protected-resource metadata (RFC 9728): ${describe(e)}.`,
        "Check that the URL is the MCP endpoint (often ending in /mcp); otherwise ask the server's owner to enable MCP authorization.",
        server.id,
      ),
      authRequired: true,
    };
  }
  if (!prm.resource || !checkResourceAllowed({ requestedResource: server.url, configuredResource: prm.resource })) {
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_METADATA_INVALID,
        `${server.url}'s metadata names another resource (${redactText(String(prm.resource)).slice(0, 200)}).`,
        'Lanyard will not send credentials for it; check the URL or contact the server’s owner.',
        server.id,
      ),
      authRequired: true,
    };
  }
  const servers = prm.authorization_servers ?? [];
  if (servers.length === 0) {
    return {
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_NOT_XAA_CAPABLE,
        `${server.url}'s metadata names no authorization server.`,
        "Contact the server's owner.",
        server.id,
      ),
      authRequired: true,
    };
  }
  const scopes = prm.scopes_supported?.length ? `; scopes ${prm.scopes_supported.join(' ')}` : '';
  return {
    check: { id, hop, ok: true, detail: `resource ${prm.resource}; authorization server ${servers[0]}${scopes}` },
    authRequired: true,
    authorizationServer: String(servers[0]),
  };
}
