import { createServer } from 'node:net';
import { checkResourceAllowed, discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from '@modelcontextprotocol/client';
import type { ControlApi } from '../../../shared/contract';
import { ErrorCodes, isErrorCode, type ErrorCode, type ErrorInfo } from '../../../shared/errors';
import type { ManagedPolicy } from '../config/managed';
import type { LanyardConfig, ServerConfig } from '../config/schema';
import type { ConfigStore } from '../config/store';
import { LanyardError, redactText, toErrorInfo } from '../errors';
import { discoverServerAuth, ID_JAG_PROFILE, JWT_BEARER, type ServerAuthInfo } from '../exchange/discovery';
import type { TokenService } from '../exchange/token-service';
import { readRuntimeFile, type RuntimeLookup } from '../gateway/runtime-file';
import type { IdentitySession } from '../identity/identity-session';
import { probeSecretStore, type SecretStore } from '../secrets/secret-store';
import { withTimeout, type FetchLike } from '../util/http';
import { describePortOwner, findPortOwner, portInUseFix, readStartupFailure } from '../startup-failure';
import { describeNetworkError } from '../util/network-errors';

/**
 * `lanyard doctor`: one pass/fail line per hop between the IDE and each MCP server, each failure with its fix —
 * keychain, managed and user configuration, IdP discovery (issuer match, token exchange advertised), sign-in state and
 * ID-token freshness, each server's protected-resource metadata, its authorization server's metadata (issuer match,
 * jwt-bearer grant, id-jag profile), a real exchange that calls no tool, and the local endpoint and its port.
 *
 * Two modes for the hops that hold the user's tokens. With no broker running, an in-process engine restores the
 * session from the keychain and may refresh it. With a broker running, those hops go through the broker's control API
 * instead: a second process refreshing the same rotating refresh token would invalidate the broker's copy.
 *
 * The exchange hop calls `getToken`, not a forced mint: a cached token that is still valid proves the chain worked and
 * is reported with its expiry; a new ID-JAG is requested only when none is cached. Okta counts every ID-JAG against a
 * monthly quota (250 per user per resource app), and a diagnostic should not spend it.
 */

export interface DoctorCheck {
  /** Stable id: `keychain`, `config`, `idp.discovery`, `server.<id>.as`, … */
  id: string;
  /** What a person reads in the first column. */
  hop: string;
  ok: boolean;
  detail: string;
  error?: ErrorInfo;
  /** Not run because an earlier hop failed or it does not apply; never counted as a failure. */
  skipped?: boolean;
}

export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
}

export interface DoctorEngine {
  identity: IdentitySession;
  tokens: TokenService;
}

export interface DoctorOptions {
  home: string;
  config: ConfigStore;
  secrets: SecretStore;
  managed?: ManagedPolicy | undefined;
  /** The in-process engine (when no broker runs); undefined when no IdP is configured. May touch the keychain. */
  engine?: (() => Promise<DoctorEngine | undefined>) | undefined;
  /** The running broker: sign-in and exchange are checked through it. */
  broker?: Pick<ControlApi, 'status' | 'testServer'> | undefined;
  /** Only this server (and the hops it needs). */
  serverId?: string | undefined;
  fetch?: FetchLike;
  timeoutMs?: number;
  runtime?: () => Promise<RuntimeLookup>;
  portProbe?: (port: number) => Promise<'free' | 'in-use'>;
  now?: () => number;
}

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const add = (check: DoctorCheck) => {
    checks.push(check);
    return check;
  };
  const fetchFn = withTimeout(options.fetch ?? fetch, options.timeoutMs ?? 10_000);
  const now = options.now ?? Date.now;

  // Keychain: a real write/read-back/delete round trip.
  const probe = await probeSecretStore(options.secrets);
  const keychain = add(
    probe.ok
      ? { id: 'keychain', hop: 'Keychain', ok: true, detail: `${probe.backend}: a test secret was written, read back and deleted` }
      : { id: 'keychain', hop: 'Keychain', ok: false, detail: probe.error.message, error: probe.error },
  );

  // Managed configuration.
  if (options.managed) {
    const m = options.managed.summary();
    if (m.state === 'invalid' || m.state === 'untrusted')
      add({ id: 'managed', hop: 'Managed configuration', ok: false, detail: m.error!.message, error: m.error! });
    else if (m.state === 'ok') {
      const parts = [
        m.managesIdp ? 'sets the identity provider' : undefined,
        m.serverIds.length ? `sets ${m.serverIds.length} server(s)` : undefined,
        m.locked.length ? `locks ${m.locked.join(' and ')}` : undefined,
      ].filter(Boolean);
      add({ id: 'managed', hop: 'Managed configuration', ok: true, detail: `${m.path}: ${parts.join('; ') || 'present, sets nothing'}` });
    } else add({ id: 'managed', hop: 'Managed configuration', ok: true, detail: `none (an administrator can deploy ${m.path})` });
  }

  // Configuration.
  let config: LanyardConfig | undefined;
  try {
    config = options.config.load();
    add({
      id: 'config',
      hop: 'Configuration',
      ok: true,
      detail: `${options.config.path}: valid (${config.servers.length} server(s), ${config.idp ? 'identity provider set' : 'no identity provider'})`,
    });
  } catch (e) {
    const error = toErrorInfo(e);
    add({ id: 'config', hop: 'Configuration', ok: false, detail: error.message, error });
  }

  // Identity provider.
  let idpOk = false;
  if (config && !config.idp) {
    const error = err(
      ErrorCodes.CONFIG_INVALID,
      'No identity provider is configured.',
      'Set it with `lanyard login --issuer <url> --client-id <id>` (or in Settings), or ask your IT team for the managed configuration.',
    );
    add({ id: 'idp.discovery', hop: 'IdP discovery', ok: false, detail: error.message, error });
  } else if (config?.idp) {
    const discovered = await checkIdpDiscovery(config.idp.issuer, fetchFn);
    add(discovered.check);
    if (discovered.metadata) add(checkTokenExchange(config.idp.issuer, discovered.metadata));
    idpOk = discovered.check.ok;
  }

  // Sign-in state and ID-token freshness.
  let engine: DoctorEngine | undefined;
  let signedIn = false;
  if (config?.idp) {
    const session = await checkSession({ options, keychainOk: keychain.ok, idpOk, now, setEngine: (e) => (engine = e) });
    add(session);
    signedIn = session.ok;
  } else {
    add(skip('session', 'Sign-in', 'no identity provider is configured'));
  }

  // Each server: protected-resource metadata, authorization-server metadata, a real exchange.
  const servers = selectServers(config, options.serverId, add);
  for (const server of servers) {
    const label = server.id;
    if (!server.enabled && options.serverId === undefined) {
      add(skip(`server.${server.id}`, `${label}`, 'disabled (check it with `lanyard doctor --server ' + server.id + '`)'));
      continue;
    }
    const prm = await checkProtectedResource(server, fetchFn);
    add(prm.check);
    if (!prm.check.ok) {
      add(skip(`server.${server.id}.as`, `${label}: authorization server`, 'protected-resource metadata failed'));
      add(skip(`server.${server.id}.exchange`, `${label}: token exchange`, 'protected-resource metadata failed'));
      continue;
    }
    if (!prm.authRequired) {
      add({
        id: `server.${server.id}.as`,
        hop: `${label}: authorization server`,
        ok: true,
        detail: 'none needed: the server answers without authorization',
        skipped: true,
      });
      add({ id: `server.${server.id}.exchange`, hop: `${label}: token exchange`, ok: true, detail: 'none needed', skipped: true });
      continue;
    }
    const as = await checkAuthorizationServer(server, fetchFn);
    add(as.check);
    if (!as.info) {
      add(skip(`server.${server.id}.exchange`, `${label}: token exchange`, 'authorization-server metadata failed'));
      continue;
    }
    if (!signedIn) {
      add(skip(`server.${server.id}.exchange`, `${label}: token exchange`, 'sign in first (`lanyard login`)'));
      continue;
    }
    add(await checkExchange(server, options, engine));
  }

  // The local endpoint and its port.
  add(await checkEndpoint(options, config));

  return { ok: checks.every((c) => c.ok || c.skipped === true), checks };
}

function err(code: ErrorCode, message: string, fix: string, serverId?: string): ErrorInfo {
  return { code, message, fix, ...(serverId ? { serverId } : {}) };
}

function fail(id: string, hop: string, error: ErrorInfo): DoctorCheck {
  return { id, hop, ok: false, detail: error.message, error };
}

function skip(id: string, hop: string, why: string): DoctorCheck {
  return { id, hop, ok: false, skipped: true, detail: `skipped: ${why}` };
}

function selectServers(
  config: LanyardConfig | undefined,
  serverId: string | undefined,
  add: (c: DoctorCheck) => DoctorCheck,
): ServerConfig[] {
  if (!config) return [];
  if (serverId === undefined) return config.servers;
  const server = config.servers.find((s) => s.id === serverId);
  if (!server)
    add(
      fail(
        `server.${serverId}`,
        serverId,
        err(
          ErrorCodes.SERVER_UNKNOWN,
          `No server "${serverId}" is configured.`,
          'Run `lanyard servers list` to see the configured servers.',
          serverId,
        ),
      ),
    );
  return server ? [server] : [];
}

/** The IdP's metadata, found the way openid-client does: OIDC path-appended, then RFC 8414 path-inserted. */
async function checkIdpDiscovery(issuer: string, fetchFn: FetchLike): Promise<{ check: DoctorCheck; metadata?: Record<string, unknown> }> {
  const hop = 'IdP discovery';
  const base = issuer.replace(/\/$/, '');
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/$/, '');
  const urls = [`${base}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`];
  const statuses: string[] = [];
  for (const url of urls) {
    let response: Response;
    try {
      response = await fetchFn(url, { headers: { accept: 'application/json' }, redirect: 'manual' });
    } catch (e) {
      const error = err(
        ErrorCodes.IDP_UNREACHABLE,
        `The identity provider at ${issuer} could not be reached (${describe(e)}).`,
        'Check idp.issuer, your network and VPN, then run `lanyard doctor` again.',
      );
      return { check: fail('idp.discovery', hop, error) };
    }
    statuses.push(`HTTP ${response.status}`);
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      continue;
    }
    const metadata = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!metadata || typeof metadata.issuer !== 'string') continue;
    if (metadata.issuer !== issuer) {
      const error = err(
        ErrorCodes.CONFIG_INVALID,
        `The identity provider's metadata names the issuer ${redactText(metadata.issuer).slice(0, 200)}, not the configured ${issuer}; Lanyard refuses mismatched metadata (OpenID Connect Discovery §4.3).`,
        `Set idp.issuer to exactly the issuer your IdP publishes (Okta: https://<your-org>.okta.com, no trailing slash), then sign in again.`,
      );
      return { check: fail('idp.discovery', hop, error) };
    }
    if (typeof metadata.token_endpoint !== 'string') {
      return {
        check: fail(
          'idp.discovery',
          hop,
          err(
            ErrorCodes.CONFIG_INVALID,
            `The identity provider's metadata at ${url} has no token endpoint.`,
            'Check idp.issuer: it must be the issuer of an OAuth authorization server.',
          ),
        ),
      };
    }
    return { check: { id: 'idp.discovery', hop, ok: true, detail: `${issuer}: metadata found, issuer matches` }, metadata };
  }
  const error = err(
    ErrorCodes.CONFIG_INVALID,
    `No OpenID Connect or OAuth metadata at ${issuer} (${statuses.join(', ')}).`,
    'Check idp.issuer: it must be the exact issuer URL (Okta: https://<your-org>.okta.com — the org authorization server, not /oauth2/default).',
  );
  return { check: fail('idp.discovery', hop, error) };
}

function checkTokenExchange(issuer: string, metadata: Record<string, unknown>): DoctorCheck {
  const hop = 'IdP token exchange';
  const grants = metadata.grant_types_supported;
  if (!Array.isArray(grants)) {
    return {
      id: 'idp.token-exchange',
      hop,
      ok: true,
      detail: 'the IdP does not list its grant types; Lanyard will try the token exchange (RFC 8693)',
    };
  }
  if (grants.includes(TOKEN_EXCHANGE_GRANT))
    return { id: 'idp.token-exchange', hop, ok: true, detail: 'token exchange (RFC 8693) advertised' };
  return fail(
    'idp.token-exchange',
    hop,
    err(
      ErrorCodes.IDP_NOT_XAA_CAPABLE,
      `${issuer} does not advertise token exchange (${TOKEN_EXCHANGE_GRANT} is not in grant_types_supported), so it cannot issue ID-JAGs.`,
      'Use the IdP that issues ID-JAGs (Okta: the org authorization server https://<org>.okta.com with Cross App Access enabled).',
    ),
  );
}

async function checkSession(args: {
  options: DoctorOptions;
  keychainOk: boolean;
  idpOk: boolean;
  now: () => number;
  setEngine: (e: DoctorEngine) => void;
}): Promise<DoctorCheck> {
  const hop = 'Sign-in';
  const { options, now } = args;
  if (options.broker) {
    let status;
    try {
      status = await options.broker.status({});
    } catch (e) {
      return fail('session', hop, toErrorInfo(e));
    }
    const s = status.session;
    if (s.status === 'signed_in') {
      const left = s.idTokenExpiresAt - now();
      return {
        id: 'session',
        hop,
        ok: true,
        detail: `signed in as ${s.user.email ?? s.user.sub}; ${left > 0 ? `ID token valid for ${minutes(left)}` : 'ID token expired; Lanyard refreshes it on the next call'} (checked through the running broker)`,
      };
    }
    return sessionFailure(s.status, s.status === 'expired' ? s.error : undefined);
  }
  if (!args.keychainOk) return skip('session', hop, 'the keychain is unavailable, so the sign-in cannot be read');
  let engine: DoctorEngine | undefined;
  try {
    engine = await options.engine?.();
  } catch (e) {
    return fail('session', hop, toErrorInfo(e));
  }
  if (!engine) return skip('session', hop, 'no identity provider is configured');
  args.setEngine(engine);
  const state = engine.identity.state;
  if (state.status !== 'signed_in') return sessionFailure(state.status, state.status === 'expired' ? state.error : undefined);
  if (!args.idpOk)
    return {
      id: 'session',
      hop,
      ok: true,
      detail: `signed in as ${state.user.email ?? state.user.sub} (token freshness not checked: IdP discovery failed)`,
    };
  const before = state.idTokenExpiresAt;
  try {
    await engine.identity.getIdToken();
  } catch (e) {
    return fail('session', hop, toErrorInfo(e));
  }
  const after = engine.identity.state;
  const expiresAt = after.status === 'signed_in' ? after.idTokenExpiresAt : before;
  return {
    id: 'session',
    hop,
    ok: true,
    detail: `signed in as ${state.user.email ?? state.user.sub}; ID token valid for ${minutes(expiresAt - now())}${expiresAt !== before ? ' (refreshed just now with the refresh token)' : ''}`,
  };
}

function sessionFailure(status: string, error: ErrorInfo | undefined): DoctorCheck {
  if (status === 'expired')
    return fail('session', 'Sign-in', error ?? err(ErrorCodes.SESSION_EXPIRED, 'Your sign-in has expired.', 'Run `lanyard login`.'));
  if (status === 'signing_in')
    return {
      id: 'session',
      hop: 'Sign-in',
      ok: false,
      detail: 'a sign-in is in progress in the browser',
      error: err(ErrorCodes.NOT_SIGNED_IN, 'A sign-in is in progress.', 'Finish it in the browser, then run `lanyard doctor` again.'),
    };
  return fail(
    'session',
    'Sign-in',
    err(
      ErrorCodes.NOT_SIGNED_IN,
      'You are not signed in to your identity provider.',
      'Run `lanyard login` (or click "Sign in" in the Lanyard tray or dashboard).',
    ),
  );
}

/** RFC 9728: the server's 401 challenge, then its protected-resource metadata, bound to this server's URL. */
async function checkProtectedResource(server: ServerConfig, fetchFn: FetchLike): Promise<{ check: DoctorCheck; authRequired: boolean }> {
  const id = `server.${server.id}.prm`;
  const hop = `${server.id}: protected resource`;
  let response: Response;
  try {
    response = await fetchFn(server.url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'lanyard-doctor', version: '0' } },
      }),
    });
  } catch (e) {
    return {
      check: fail(
        id,
        hop,
        err(
          ErrorCodes.SERVER_UNREACHABLE,
          `${server.url} could not be reached (${describe(e)}).`,
          'Check the URL, your network or VPN.',
          server.id,
        ),
      ),
      authRequired: true,
    };
  }
  await response.body?.cancel().catch(() => {});
  if (response.ok)
    return { check: { id, hop, ok: true, detail: `${server.url} answers without authorization (nothing to broker)` }, authRequired: false };
  if (response.status >= 500) {
    return {
      check: fail(
        id,
        hop,
        err(
          ErrorCodes.SERVER_UNREACHABLE,
          `${server.url} answered HTTP ${response.status}.`,
          'The server is failing; try again later or contact its owner.',
          server.id,
        ),
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
      check: fail(
        id,
        hop,
        err(
          ErrorCodes.SERVER_NOT_XAA_CAPABLE,
          `${server.url} publishes no OAuth protected-resource metadata (RFC 9728): ${describe(e)}.`,
          "Check that the URL is the MCP endpoint (often ending in /mcp); otherwise ask the server's owner to enable MCP authorization.",
          server.id,
        ),
      ),
      authRequired: true,
    };
  }
  if (!prm.resource || !checkResourceAllowed({ requestedResource: server.url, configuredResource: prm.resource })) {
    return {
      check: fail(
        id,
        hop,
        err(
          ErrorCodes.SERVER_METADATA_INVALID,
          `${server.url}'s metadata names another resource (${redactText(String(prm.resource)).slice(0, 200)}).`,
          'Lanyard will not send credentials for it; check the URL or contact the server’s owner.',
          server.id,
        ),
      ),
      authRequired: true,
    };
  }
  const servers = prm.authorization_servers ?? [];
  if (servers.length === 0) {
    return {
      check: fail(
        id,
        hop,
        err(
          ErrorCodes.SERVER_NOT_XAA_CAPABLE,
          `${server.url}'s metadata names no authorization server.`,
          "Contact the server's owner.",
          server.id,
        ),
      ),
      authRequired: true,
    };
  }
  const scopes = prm.scopes_supported?.length ? `; scopes ${prm.scopes_supported.join(' ')}` : '';
  return {
    check: { id, hop, ok: true, detail: `resource ${prm.resource}; authorization server ${servers[0]}${scopes}` },
    authRequired: true,
  };
}

/** RFC 8414 metadata with the issuer check (through the engine's own discovery), plus what it advertises. */
async function checkAuthorizationServer(server: ServerConfig, fetchFn: FetchLike): Promise<{ check: DoctorCheck; info?: ServerAuthInfo }> {
  const id = `server.${server.id}.as`;
  const hop = `${server.id}: authorization server`;
  let info: ServerAuthInfo;
  try {
    info = await discoverServerAuth(server.url, { fetch: fetchFn, expectedAsIssuer: server.expectedAsIssuer, serverId: server.id });
  } catch (e) {
    return { check: fail(id, hop, toErrorInfo(e)) };
  }
  const missing: string[] = [];
  if (!info.advertisesJwtBearer) missing.push(`the JWT-bearer grant (${JWT_BEARER} in grant_types_supported)`);
  if (!info.advertisesIdJagProfile) missing.push(`the ID-JAG grant profile (${ID_JAG_PROFILE} in authorization_grant_profiles_supported)`);
  if (missing.length > 0) {
    return {
      check: fail(
        id,
        hop,
        err(
          ErrorCodes.SERVER_NOT_XAA_CAPABLE,
          `The authorization server ${info.asIssuer} does not advertise ${missing.join(' or ')}.`,
          "Ask the server's owner to advertise it in the authorization server's metadata (Enterprise-Managed Authorization / ID-JAG); Lanyard still attempts the exchange (see the next line).",
          server.id,
        ),
      ),
      info,
    };
  }
  return {
    check: { id, hop, ok: true, detail: `${info.asIssuer}: issuer matches its metadata; jwt-bearer grant and ID-JAG profile advertised` },
    info,
  };
}

async function checkExchange(server: ServerConfig, options: DoctorOptions, engine: DoctorEngine | undefined): Promise<DoctorCheck> {
  const id = `server.${server.id}.exchange`;
  const hop = `${server.id}: token exchange`;
  if (options.broker) {
    let result;
    try {
      result = await options.broker.testServer({ id: server.id });
    } catch (e) {
      return fail(id, hop, toErrorInfo(e));
    }
    const failed = result.steps.find((s) => !s.ok && (s.name === 'Discovery' || s.name === 'Token' || s.name === 'Identity provider'));
    if (failed) return fail(id, hop, failed.error ?? err(ErrorCodes.INTERNAL, failed.detail, 'Run `lanyard doctor` again.', server.id));
    const token = result.steps.find((s) => s.name === 'Token');
    return { id, hop, ok: true, detail: `${token?.detail ?? 'token obtained'} (through the running broker)` };
  }
  if (!engine) return skip(id, hop, 'no engine');
  let minted = false;
  const off = engine.tokens.onEvent((event) => {
    if (event.type === 'token_minted' && event.serverId === server.id) minted = true;
  });
  try {
    const token = await engine.tokens.getToken(server.id);
    if (!token) return { id, hop, ok: true, detail: 'no token needed' };
    const scopes = token.scopes.join(' ') || 'no scopes';
    const until = new Date(token.expiresAt).toISOString();
    return {
      id,
      hop,
      ok: true,
      detail: minted
        ? `exchanged: a new access token (${scopes}) valid until ${until}`
        : `a cached access token (${scopes}) is valid until ${until}; no new grant was spent`,
    };
  } catch (e) {
    return fail(id, hop, toErrorInfo(e));
  } finally {
    off();
  }
}

async function checkEndpoint(options: DoctorOptions, config: LanyardConfig | undefined): Promise<DoctorCheck> {
  const id = 'endpoint';
  const hop = 'Local endpoint';
  const lookup = await (options.runtime ?? (() => readRuntimeFile(options.home)))();
  const configured = config?.gateway.port;
  switch (lookup.state) {
    case 'running': {
      const info = lookup.info;
      try {
        const response = await withTimeout(options.fetch ?? fetch, 3000)(`${info.url}/healthz`);
        const body = (await response.json().catch(() => undefined)) as { ok?: unknown } | undefined;
        if (!response.ok || body?.ok !== true) throw new Error(`HTTP ${response.status}`);
      } catch (e) {
        return fail(
          id,
          hop,
          err(
            ErrorCodes.BROKER_NOT_RUNNING,
            `Lanyard (pid ${info.pid}) should be listening on ${info.url}, but /healthz did not answer (${describe(e)}).`,
            'Quit Lanyard (tray → Quit, or stop `lanyard serve`) and start it again.',
          ),
        );
      }
      if (configured !== undefined && configured !== 0 && configured !== info.port) {
        return fail(
          id,
          hop,
          err(
            ErrorCodes.CONFIG_INVALID,
            `Lanyard listens on port ${info.port}, but gateway.port is ${configured}, where IDE configs point.`,
            `Restart Lanyard so it listens on ${configured}, or run \`lanyard connect <ide>\` again.`,
          ),
        );
      }
      return {
        id,
        hop,
        ok: true,
        detail: `Lanyard ${info.version || ''} (pid ${info.pid}) answers on ${info.url}/mcp; port ${info.port} is ours`.replace('  ', ' '),
      };
    }
    case 'stale':
      return fail(
        id,
        hop,
        err(
          ErrorCodes.BROKER_NOT_RUNNING,
          `Lanyard stopped unexpectedly: its runtime file names pid ${lookup.info.pid}, which is gone.`,
          'Start Lanyard again (the app, or `lanyard serve`); IDEs that use `lanyard stdio` start it by themselves.',
        ),
      );
    case 'invalid':
      return fail(
        id,
        hop,
        err(
          ErrorCodes.LOCAL_AUTH_FAILED,
          `Lanyard's runtime file is not trusted: ${lookup.problem}.`,
          `Delete it; Lanyard writes a new one (0600) when it starts.`,
        ),
      );
    case 'absent': {
      // Why the last start failed (written by `lanyard serve`, e.g. when `lanyard stdio` started it detached).
      const lastStart = await readStartupFailure(options.home);
      const lastStartFailed = (failure: NonNullable<typeof lastStart>): DoctorCheck =>
        fail(
          id,
          hop,
          err(
            isErrorCode(failure.code) ? failure.code : ErrorCodes.INTERNAL,
            `Lanyard's last start (${failure.at}) failed: ${failure.message}`,
            failure.fix,
          ),
        );
      if (configured === undefined || configured === 0) {
        if (lastStart && lastStart.code !== ErrorCodes.PORT_IN_USE) return lastStartFailed(lastStart);
        return { id, hop, ok: true, detail: 'not running (any free port is used when it starts)' };
      }
      const state = await (options.portProbe ?? probePort)(configured);
      if (state === 'in-use') {
        const owner = await findPortOwner(configured, { home: options.home, askIt: false });
        return fail(
          id,
          hop,
          err(
            ErrorCodes.PORT_IN_USE,
            `Lanyard is not running, and port ${configured} (gateway.port) is taken by ${describePortOwner(owner)}.`,
            portInUseFix(configured, owner),
          ),
        );
      }
      if (lastStart && lastStart.code !== ErrorCodes.PORT_IN_USE) return lastStartFailed(lastStart);
      return {
        id,
        hop,
        ok: true,
        detail: `not running; port ${configured} is free for it (IDEs using \`lanyard stdio\` start it; HTTP configs need the app or \`lanyard serve\`)`,
      };
    }
  }
}

/** Whether 127.0.0.1:port can be bound right now. */
export function probePort(port: number): Promise<'free' | 'in-use'> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve('in-use'));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve('free')));
  });
}

function minutes(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m >= 120 ? `${Math.round(m / 60)} h` : `${Math.max(m, 0)} min`;
}

function describe(e: unknown): string {
  if (e instanceof LanyardError) return e.message;
  const network = describeNetworkError(e);
  if (network) return network;
  return e instanceof Error ? redactText(e.message).slice(0, 160) : String(e);
}
