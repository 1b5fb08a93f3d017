import { postProbeInitialize } from '../util/initialize-probe';
import {
  checkResourceAllowed,
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
  IssuerMismatchError,
} from '@modelcontextprotocol/client';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, redactText } from '../errors';
import type { FetchLike } from '../util/http';
import { classifyNetworkError, describeNetworkError } from '../util/network-errors';
import { policyFetch } from '../util/policy-fetch';
import { checkOutboundUrl, safeOrigin } from '../util/url-policy';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';

/** Everything Lanyard learned about how to authorize at one MCP server. Contains no secret. */
export interface ServerAuthInfo {
  serverUrl: string;
  /** False when the server answered without asking for a token (nothing to broker). */
  authRequired: boolean;
  /** The PRM `resource`, verbatim (sent as `resource` in the exchange and used in the cache key). */
  resource: string;
  resourceMetadataUrl?: string | undefined;
  /** Scopes from the server's 401 challenge: authoritative for the first request. */
  challengedScopes: string[];
  scopesSupported: string[];
  /** The authorization server's issuer, verbatim from its (issuer-checked) metadata: the ID-JAG `audience`. */
  asIssuer: string;
  tokenEndpoint: string;
  tokenEndpointAuthMethods: string[];
  /** What the AS metadata says (absent lists are not a refusal; `lanyard doctor` reports them). */
  advertisesJwtBearer: boolean;
  advertisesIdJagProfile: boolean;
  discoveredAt: number;
  /** When the server was treated as open only because the Streamable HTTP probe got this status (404/405). */
  unverifiedOpenStatus?: number | undefined;
}

export interface DiscoverOptions {
  fetch: FetchLike;
  /** The AS issuer an admin pinned for this server: credentials are never sent to another (SEP-2352 binding). */
  expectedAsIssuer?: string | undefined;
  /** A challenge already received (from a 401/403 on a real request), so no probe request is needed. */
  challenge?: { resourceMetadataUrl?: string | undefined; scope?: string | undefined } | undefined;
  serverId?: string | undefined;
  now?: () => number;
}

/**
 * Discovers how to get a token for an MCP server (MCP authorization spec, RFC 9728, RFC 8414), with the SDK's helpers:
 * probe the server for its 401 challenge → protected-resource metadata (challenge URL, then the well-known paths) →
 * check its `resource` belongs to this server → pick the authorization server → its metadata with the issuer check →
 * check the AS really offers the jwt-bearer grant with the ID-JAG profile. Every failure is a LanyardError naming what
 * is wrong; nothing is sent to a party the metadata does not bind to this server.
 */
export async function discoverServerAuth(serverUrl: string, options: DiscoverOptions): Promise<ServerAuthInfo> {
  const serverId = options.serverId;
  const opt = serverId ? { serverId } : {};
  const now = options.now ?? Date.now;
  // Every URL the server's challenge and metadata lead to goes through the URL policy (util/url-policy.ts), judged
  // against the configured server URL, before any connection is made. The probe below goes to that URL itself.
  const guarded = policyFetch(options.fetch, {
    anchor: serverUrl,
    refuse: (target, reason) => refusedTarget(serverUrl, target, 'a URL from its challenge or metadata', reason, opt),
  });
  // The SDK's discovery helpers report a 5xx as a plain Error; the status they saw is read from here instead.
  const statuses = recordStatuses(guarded);
  let challenge = options.challenge;
  let probedWithoutChallenge = false;
  let probeStatus: number | undefined;
  const open = (): ServerAuthInfo => ({
    serverUrl,
    authRequired: false,
    resource: serverUrl,
    challengedScopes: [],
    scopesSupported: [],
    asIssuer: '',
    tokenEndpoint: '',
    tokenEndpointAuthMethods: [],
    advertisesJwtBearer: false,
    advertisesIdJagProfile: false,
    discoveredAt: now(),
  });
  if (!challenge) {
    const probe = await probeServer(serverUrl, options.fetch, serverId);
    probedWithoutChallenge = probe !== 'open' && !probe.challenged;
    probeStatus = probe === 'open' ? undefined : probe.status;
    if (probe === 'open') return open();
    challenge = probe;
  }

  let prm: Awaited<ReturnType<typeof discoverOAuthProtectedResourceMetadata>>;
  try {
    prm = await discoverOAuthProtectedResourceMetadata(
      serverUrl,
      challenge.resourceMetadataUrl ? { resourceMetadataUrl: challenge.resourceMetadataUrl } : {},
      statuses.fetch,
    );
  } catch (e) {
    if (e instanceof LanyardError) throw e;
    // A legacy (SSE-only) server refuses the Streamable HTTP probe with 404/405 and has no metadata: nothing asked
    // for a token, so treat it as open; a later 401 on the real transport re-runs discovery with its challenge.
    if (probedWithoutChallenge && !classifyNetworkError(e)) return { ...open(), unverifiedOpenStatus: probeStatus };
    throw unreachableOr(
      e,
      statuses.last(),
      serverUrl,
      opt,
      () =>
        new LanyardError(
          ErrorCodes.SERVER_NOT_XAA_CAPABLE,
          `${serverUrl} does not publish OAuth protected-resource metadata (RFC 9728), so Lanyard cannot tell which authorization server issues its tokens.`,
          "Ask the server's owner to enable MCP authorization; check that the URL is the MCP endpoint (often ending in /mcp).",
          { cause: e, ...opt },
        ),
    );
  }

  // RFC 9728 §3.3 (as relaxed by the SDK: same origin, path prefix): a server must not speak for another resource.
  if (!prm.resource || !checkResourceAllowed({ requestedResource: serverUrl, configuredResource: prm.resource })) {
    throw new LanyardError(
      ErrorCodes.SERVER_METADATA_INVALID,
      `The protected-resource metadata of ${serverUrl} names a different resource (${safe(prm.resource)}).`,
      'Lanyard will not use it, to avoid sending your credentials to the wrong party. Check the server URL or contact its owner.',
      opt,
    );
  }

  const candidates = prm.authorization_servers ?? [];
  if (candidates.length === 0) {
    throw new LanyardError(
      ErrorCodes.SERVER_NOT_XAA_CAPABLE,
      `${serverUrl} names no authorization server in its metadata.`,
      "Contact the server's owner.",
      opt,
    );
  }
  let asUrl: string | undefined;
  if (options.expectedAsIssuer) {
    asUrl = candidates.find((c) => sameIssuer(c, options.expectedAsIssuer!));
    if (!asUrl) {
      throw new LanyardError(
        ErrorCodes.SERVER_METADATA_INVALID,
        `${serverUrl} now points at authorization server ${safe(candidates.join(', '))}, not the expected ${options.expectedAsIssuer}.`,
        'Lanyard will not send your credentials to an unexpected authorization server. If the change is legitimate, update "expectedAsIssuer" for this server.',
        opt,
      );
    }
  } else {
    asUrl = candidates[0]!;
  }
  const asVerdict = checkOutboundUrl(asUrl, serverUrl);
  if (!asVerdict.ok) throw refusedTarget(serverUrl, asUrl, 'its authorization server', asVerdict.reason, opt);

  let metadata: Awaited<ReturnType<typeof discoverAuthorizationServerMetadata>>;
  try {
    metadata = await discoverAuthorizationServerMetadata(asUrl, { fetchFn: statuses.fetch });
  } catch (e) {
    if (e instanceof LanyardError) throw e;
    if (e instanceof IssuerMismatchError) {
      throw new LanyardError(
        ErrorCodes.SERVER_METADATA_INVALID,
        `The authorization server at ${safe(asUrl)} publishes metadata for a different issuer.`,
        "Lanyard refuses mismatched metadata (RFC 8414 §3.3). Contact the server's owner.",
        { cause: e, ...opt },
      );
    }
    throw unreachableOr(
      e,
      statuses.last(),
      asUrl,
      opt,
      () =>
        new LanyardError(
          ErrorCodes.SERVER_METADATA_INVALID,
          `The authorization server metadata at ${safe(asUrl)} is invalid.`,
          "Contact the server's owner.",
          { cause: e, ...opt },
        ),
    );
  }
  if (!metadata) {
    throw new LanyardError(
      ErrorCodes.SERVER_NOT_XAA_CAPABLE,
      `The authorization server ${safe(asUrl)} publishes no metadata (RFC 8414).`,
      "Contact the server's owner; cross-app access needs discoverable authorization server metadata.",
      opt,
    );
  }
  const tokenEndpoint = metadata.token_endpoint;
  if (!tokenEndpoint) {
    throw new LanyardError(
      ErrorCodes.SERVER_METADATA_INVALID,
      `The authorization server ${safe(metadata.issuer)} has no token endpoint.`,
      "Contact the server's owner.",
      opt,
    );
  }
  const tokenVerdict = checkOutboundUrl(tokenEndpoint, serverUrl);
  if (!tokenVerdict.ok) throw refusedTarget(serverUrl, tokenEndpoint, 'its token endpoint', tokenVerdict.reason, opt);
  // Both advertisements are SHOULD-level (§7.2 of the IETF OAuth Identity Assertion Authorization Grant draft,
  // https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/; docs/protocol.md "Discovery"),
  // so absence is not proof of non-support: Lanyard tries, and status/doctor report it. A list that is present and
  // leaves them out is an explicit "no".
  const grants = metadata.grant_types_supported as string[] | undefined;
  const profiles = (metadata as Record<string, unknown>).authorization_grant_profiles_supported as string[] | undefined;
  const missing: string[] = [];
  if (grants && !grants.includes(JWT_BEARER)) missing.push('the JWT-bearer grant (RFC 7523)');
  if (profiles && !profiles.includes(ID_JAG_PROFILE)) missing.push('the ID-JAG grant profile');
  if (missing.length > 0) {
    throw new LanyardError(
      ErrorCodes.SERVER_NOT_XAA_CAPABLE,
      `The authorization server ${metadata.issuer} does not offer ${missing.join(' or ')}, so it does not support Cross-App Access.`,
      "Ask the server's owner to enable Enterprise-Managed Authorization (ID-JAG) for your organization.",
      opt,
    );
  }

  return {
    serverUrl,
    authRequired: true,
    resource: prm.resource,
    resourceMetadataUrl: challenge.resourceMetadataUrl,
    challengedScopes: splitScopes(challenge.scope),
    scopesSupported: prm.scopes_supported ?? [],
    asIssuer: metadata.issuer,
    tokenEndpoint,
    tokenEndpointAuthMethods: (metadata.token_endpoint_auth_methods_supported as string[] | undefined) ?? [],
    advertisesJwtBearer: grants?.includes(JWT_BEARER) ?? false,
    advertisesIdJagProfile: profiles?.includes(ID_JAG_PROFILE) ?? false,
    discoveredAt: now(),
  };
}

/**
 * Sends an unauthenticated `initialize` to learn the server's challenge (resource_metadata, scope). A server that
 * answers 2xx needs no token.
 */
async function probeServer(
  serverUrl: string,
  fetchFn: FetchLike,
  serverId: string | undefined,
): Promise<'open' | { resourceMetadataUrl?: string; scope?: string; challenged?: boolean; status?: number }> {
  let response: Response;
  try {
    response = await postProbeInitialize(fetchFn, serverUrl, { clientName: 'lanyard-probe', redirect: 'manual' });
  } catch (e) {
    throw serverUnreachable(serverUrl, describeFailure(e), e, serverId ? { serverId } : {});
  }
  await response.body?.cancel().catch(() => {});
  if (response.status === 401 || response.status === 403) {
    const params = extractWWWAuthenticateParams(response);
    return {
      challenged: true,
      ...(params.resourceMetadataUrl ? { resourceMetadataUrl: params.resourceMetadataUrl.href } : {}),
      ...(params.scope ? { scope: params.scope } : {}),
    };
  }
  if (response.ok) return 'open';
  if (response.status >= 300 && response.status < 400) {
    throw new LanyardError(
      ErrorCodes.SERVER_METADATA_INVALID,
      `${serverUrl} redirects elsewhere (HTTP ${response.status}).`,
      'Use the final MCP endpoint URL; Lanyard does not follow redirects with credentials.',
      serverId ? { serverId } : {},
    );
  }
  if (response.status >= 500) throw serverUnreachable(serverUrl, `HTTP ${response.status}`, undefined, serverId ? { serverId } : {});
  // 404/405 etc.: not a Streamable HTTP endpoint (maybe legacy SSE, maybe a wrong URL); still try well-known PRM.
  return { status: response.status };
}

export function splitScopes(scope: string | undefined | null): string[] {
  return scope ? scope.split(/\s+/).filter(Boolean) : [];
}

/** Issuer identifiers compared as RFC 8414 issuers are in practice: equal, or equal but for one trailing slash. */
export function sameIssuer(a: string, b: string): boolean {
  return a === b || a.replace(/\/$/, '') === b.replace(/\/$/, '');
}

function safe(value: unknown): string {
  return redactText(String(value)).slice(0, 200);
}

/**
 * A URL the server's challenge or metadata names, refused by the URL policy. Names only the target's origin (a path or
 * query may carry secrets) and says who can fix it: the server's operator, not the user.
 */
function refusedTarget(serverUrl: string, target: string | URL, what: string, reason: string, opt: { serverId?: string }): LanyardError {
  return new LanyardError(
    ErrorCodes.SERVER_METADATA_INVALID,
    `The metadata of ${serverUrl} points at ${safeOrigin(target)} (${what}), which Lanyard will not contact: ${reason}.`,
    "Ask the server's operator to publish its metadata, authorization server and token endpoint over https, without redirects to other hosts. Lanyard follows a server's metadata to this machine or a private network only when the server itself is there.",
    opt,
  );
}

function serverUnreachable(url: string, reason: string, cause: unknown, opt: { serverId?: string }): LanyardError {
  return new LanyardError(
    ErrorCodes.SERVER_UNREACHABLE,
    `${url} could not be reached (${reason}).`,
    'Check the URL, your network or VPN; Lanyard retries by itself.',
    { cause, transient: true, ...opt },
  );
}

/** No answer, or a 5xx answer (the last status the SDK's helper saw), is "unreachable"; anything else is `otherwise`. */
function unreachableOr(
  e: unknown,
  lastStatus: number | undefined,
  url: string,
  opt: { serverId?: string },
  otherwise: () => LanyardError,
): LanyardError {
  const network = classifyNetworkError(e);
  if (network) return serverUnreachable(url, network.summary, e, opt);
  if (lastStatus !== undefined && lastStatus >= 500) return serverUnreachable(url, `HTTP ${lastStatus}`, e, opt);
  return otherwise();
}

function describeFailure(e: unknown): string {
  return describeNetworkError(e) ?? (e instanceof Error ? redactText(e.message).slice(0, 120) : String(e));
}

/** A fetch that remembers the status of the last response it returned. */
function recordStatuses(fetchFn: FetchLike): { fetch: FetchLike; last: () => number | undefined } {
  let last: number | undefined;
  return {
    fetch: async (input, init) => {
      last = undefined;
      const response = await fetchFn(input, init);
      last = response.status;
      return response;
    },
    last: () => last,
  };
}
