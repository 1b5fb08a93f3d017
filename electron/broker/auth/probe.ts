import { postProbeInitialize } from '../util/initialize-probe';
import {
  checkResourceAllowed,
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from '@modelcontextprotocol/client';
import { AUTH_PATHS, type AuthPath } from '../../../shared/auth-paths';
import type { ErrorInfo } from '../../../shared/errors';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError, redactText, toErrorInfo } from '../errors';
import { ID_JAG_PROFILE, JWT_BEARER, sameIssuer, splitScopes } from '../exchange/discovery';
import type { FetchLike } from '../util/http';
import { describeNetworkError } from '../util/network-errors';
import { policyFetch } from '../util/policy-fetch';
import { safeOrigin } from '../util/url-policy';

/** One path's verdict, in the words the probe shows to the user. */
export interface PathVerdict {
  path: AuthPath;
  applies: boolean;
  reason: string;
}

export interface PathProbe {
  url: string;
  reachable: boolean;
  authRequired?: boolean | undefined;
  resource?: string | undefined;
  asIssuer?: string | undefined;
  scopes: string[];
  /** Cross-App Access as the server's AS advertises it. */
  xaa: 'supported' | 'not_advertised' | 'unsupported' | 'not_needed' | 'unknown';
  /** Every path in order. */
  paths: PathVerdict[];
  /** The first path that applies and that `allowed` permits. */
  path?: AuthPath | undefined;
  error?: ErrorInfo | undefined;
}

export interface ProbeOptions {
  fetch: FetchLike;
  /** Whether an identity provider is configured (Cross-App Access needs one). */
  idpConfigured: boolean;
  /** The paths policy allows, in order (default: all). */
  allowed?: readonly AuthPath[];
  /** The server has a key stored or a header configured: the header path applies even behind OAuth metadata. */
  hasKey?: boolean;
  /** The authorization server an admin pinned for the server: no other is contacted, not even for its metadata. */
  expectedAsIssuer?: string | undefined;
}

/**
 * Which auth paths apply to an MCP server, in the fixed order xaa → oauth → header → none, and why the others do not
 * (docs/architecture.md, "Auth paths"). One unauthenticated `initialize` learns the challenge; RFC 9728 protected
 * resource metadata and RFC 8414 / OIDC authorization server metadata (the SDK's discovery helpers, with their
 * fallbacks) say what the authorization server offers. Every URL the metadata leads to passes the URL policy first.
 */
export async function probeAuthPaths(url: string, options: ProbeOptions): Promise<PathProbe> {
  const allowed = options.allowed ?? AUTH_PATHS;
  const verdicts: Partial<Record<AuthPath, PathVerdict>> = {};
  const set = (path: AuthPath, applies: boolean, reason: string) => (verdicts[path] = { path, applies, reason });
  const result = (extra: Partial<PathProbe>): PathProbe => {
    const paths = AUTH_PATHS.map((p) => verdicts[p] ?? { path: p, applies: false, reason: 'not checked' });
    const chosen = paths.find((v) => v.applies && allowed.includes(v.path))?.path;
    return { url, reachable: true, scopes: [], xaa: 'unknown', ...extra, paths, ...(chosen ? { path: chosen } : {}) };
  };
  const guarded = policyFetch(options.fetch, {
    anchor: url,
    refuse: (target, reason) =>
      new LanyardError(
        ErrorCodes.SERVER_METADATA_INVALID,
        `The metadata of ${url} points at ${safeOrigin(target)}, which Lanyard will not contact: ${reason}.`,
        "Ask the server's operator to publish its metadata and authorization server over https, without redirects to other hosts.",
      ),
  });

  let response: Response;
  try {
    response = await postProbeInitialize(guarded, url, { clientName: 'lanyard-probe', redirect: 'manual' });
  } catch (e) {
    const error =
      e instanceof LanyardError
        ? e.toInfo()
        : new LanyardError(
            ErrorCodes.SERVER_UNREACHABLE,
            `${url} could not be reached (${describeNetworkError(e) ?? (e instanceof Error ? redactText(e.message).slice(0, 120) : 'error')}).`,
            'Check the URL, your network or VPN.',
          ).toInfo();
    for (const p of AUTH_PATHS) set(p, false, 'could not be checked: the server did not answer');
    return { ...result({ reachable: false, error }), path: undefined };
  }
  await response.body?.cancel().catch(() => {});

  if (response.ok) {
    const skip = 'not needed: the server answered without asking for credentials';
    set('xaa', false, skip);
    set('oauth', false, skip);
    set('header', false, skip);
    set('none', true, 'the server answered without asking for credentials');
    return result({ authRequired: false, xaa: 'not_needed' });
  }
  const challenged = response.status === 401 || response.status === 403;
  const params = challenged ? extractWWWAuthenticateParams(response) : {};
  set(
    'none',
    false,
    challenged ? `the server answered ${response.status}: it wants credentials` : `the server answered HTTP ${response.status}`,
  );

  // RFC 9728: from the challenge's resource_metadata, else the well-known locations.
  let prm: Awaited<ReturnType<typeof discoverOAuthProtectedResourceMetadata>> | undefined;
  try {
    prm = await discoverOAuthProtectedResourceMetadata(
      url,
      params.resourceMetadataUrl ? { resourceMetadataUrl: params.resourceMetadataUrl } : {},
      guarded,
    );
  } catch (e) {
    if (e instanceof LanyardError) return failed(e);
    prm = undefined;
  }
  if (!prm) {
    const why = challenged
      ? `no authorization metadata: the server answered ${response.status} without resource_metadata (RFC 9728)`
      : `no authorization metadata, and the server answered HTTP ${response.status} to an MCP request`;
    set('xaa', false, why);
    set('oauth', false, why);
    set('header', challenged, challenged ? `${why} — an API key is likely` : `${why}; check that this is the MCP endpoint`);
    return result({
      authRequired: challenged,
      xaa: 'unsupported',
      ...(challenged
        ? {}
        : {
            error: new LanyardError(
              ErrorCodes.SERVER_NOT_XAA_CAPABLE,
              `${url} answered HTTP ${response.status} and publishes no authorization metadata.`,
              'Check that this is the MCP endpoint (often ending in /mcp or /sse).',
            ).toInfo(),
          }),
    });
  }
  if (!prm.resource || !checkResourceAllowed({ requestedResource: url, configuredResource: prm.resource })) {
    return failed(
      new LanyardError(
        ErrorCodes.SERVER_METADATA_INVALID,
        `The protected-resource metadata of ${url} names a different resource (${redactText(String(prm.resource)).slice(0, 200)}).`,
        'Lanyard will not use it, to avoid sending your credentials to the wrong party. Check the server URL or contact its owner.',
      ),
    );
  }
  const candidates = prm.authorization_servers ?? [];
  const expected = options.expectedAsIssuer;
  const asUrl = expected ? candidates.find((c) => sameIssuer(c, expected)) : candidates[0];
  if (expected && !asUrl) {
    return failed(
      new LanyardError(
        ErrorCodes.SERVER_METADATA_INVALID,
        `${url} now points at authorization server ${redactText(candidates.join(', ')).slice(0, 200) || '(none)'}, not the expected ${expected}.`,
        'Lanyard will not contact an unexpected authorization server. If the change is legitimate, update "expectedAsIssuer" for this server.',
      ),
    );
  }
  const scopes = params.scope ? splitScopes(params.scope) : (prm.scopes_supported ?? []);
  const keyReason = options.hasKey
    ? 'a key is stored for this server'
    : 'the server publishes OAuth authorization metadata, so it expects a token rather than a static key';
  set('header', Boolean(options.hasKey), keyReason);
  if (!asUrl) {
    set('xaa', false, 'its metadata names no authorization server');
    set('oauth', false, 'its metadata names no authorization server');
    return result({ authRequired: true, resource: prm.resource, scopes, xaa: 'unsupported' });
  }
  let as: Awaited<ReturnType<typeof discoverAuthorizationServerMetadata>>;
  try {
    as = await discoverAuthorizationServerMetadata(asUrl, { fetchFn: guarded });
  } catch (e) {
    if (e instanceof LanyardError) return failed(e);
    as = undefined;
  }
  if (!as) {
    const why = `its authorization server (${safeOrigin(asUrl)}) publishes no usable metadata (RFC 8414)`;
    set('xaa', false, why);
    set('oauth', false, why);
    return result({ authRequired: true, resource: prm.resource, scopes, xaa: 'unsupported' });
  }
  const meta = as as Record<string, unknown>;
  const grants = meta.grant_types_supported as string[] | undefined;
  const profiles = meta.authorization_grant_profiles_supported as string[] | undefined;
  const advertisesXaa = (grants ? grants.includes(JWT_BEARER) : true) && (profiles?.includes(ID_JAG_PROFILE) ?? false);
  const explicitNo = (grants && !grants.includes(JWT_BEARER)) || (profiles && !profiles.includes(ID_JAG_PROFILE));
  if (advertisesXaa)
    set(
      'xaa',
      options.idpConfigured,
      options.idpConfigured
        ? 'advertises the ID-JAG grant at its authorization server'
        : 'advertises the ID-JAG grant at its authorization server, but no identity provider is configured in Lanyard',
    );
  else
    set(
      'xaa',
      false,
      explicitNo
        ? 'its authorization server does not offer the ID-JAG grant (Cross-App Access)'
        : 'its authorization server does not advertise the ID-JAG grant (Cross-App Access)',
    );
  const responseTypes = meta.response_types_supported as string[] | undefined;
  const pkce = meta.code_challenge_methods_supported as string[] | undefined;
  const codeGrant = (grants ? grants.includes('authorization_code') : true) && (responseTypes?.includes('code') ?? true);
  if (!as.authorization_endpoint || !codeGrant) set('oauth', false, 'its authorization server offers no authorization code flow');
  else if (!pkce?.includes('S256'))
    set('oauth', false, 'its authorization server does not advertise PKCE (S256), which OAuth 2.1 and MCP require');
  else set('oauth', true, 'its authorization server offers authorization code + PKCE');
  return result({
    authRequired: true,
    resource: prm.resource,
    asIssuer: as.issuer,
    scopes,
    xaa: advertisesXaa ? 'supported' : explicitNo ? 'unsupported' : 'not_advertised',
  });

  function failed(e: LanyardError): PathProbe {
    for (const p of AUTH_PATHS) if (!verdicts[p]) set(p, false, `could not be checked: ${e.message}`);
    return { ...result({ error: toErrorInfo(e) }), path: undefined };
  }
}
