import { AUTH_PATH_LABELS, type AuthPath } from '../../../shared/auth-paths';
import type { ServerStatus, TestResult } from '../../../shared/contract';
import { ErrorCodes } from '../../../shared/errors';
import type { LanyardConfig, ServerConfig } from '../config/schema';
import { toErrorInfo } from '../errors';
import type { FetchLike } from '../util/http';
import { checkKey, credentialFetch, keyFetch } from './header';
import { checkMcp, mcpFromBroker } from './mcp';
import { checkClientIdentity, checkGrant, checkOAuthAuthorizationServer, checkRefresh, refreshFromBroker, skipOAuthAfter } from './oauth';
import { checkProtectedResource } from './resource';
import { fail, failWith, pass, skip, type DoctorCheck, type DoctorEngine, type DoctorOptions } from './types';
import { checkXaaAuthorizationServer, checkXaaTokens, skipTokens } from './xaa';

/**
 * Each server's lines: the auth path it is on (and who decided it), then one line per hop of that path —
 *   xaa     protected resource → authorization server → IdP session → ID-JAG → AS grant → MCP
 *   oauth   protected resource → authorization server → client identity → grant in keychain → refresh → MCP
 *   header  key in keychain → MCP accepts it
 *   none    MCP reachable
 * A hop after a failed one is skipped with the reason, so the first ✗ is the one to fix.
 */

export interface ServerChecksContext {
  options: DoctorOptions;
  config: LanyardConfig;
  fetchFn: FetchLike;
  engine: DoctorEngine | undefined;
  /** The user's IdP session: signed in, or the reason not. */
  session: { signedIn: boolean; who?: string | undefined };
  /** The running broker's view of the servers (its path and state), when one runs. */
  brokerServers?: ServerStatus[] | undefined;
}

export async function checkServer(server: ServerConfig, ctx: ServerChecksContext): Promise<DoctorCheck[]> {
  const path = await serverPath(server, ctx);
  const checks = [path.check];
  switch (path.path) {
    case 'xaa':
      checks.push(...(await xaaChecks(server, ctx)));
      break;
    case 'oauth':
      checks.push(...(await oauthChecks(server, ctx)));
      break;
    case 'header': {
      const key = await checkKey(server, ctx.options.secrets);
      checks.push(key.check);
      checks.push(
        key.present
          ? await checkMcp(server, 'header', keyFetch(server, ctx.options.secrets, ctx.fetchFn))
          : skip(`server.${server.id}.mcp`, `${server.id}: MCP`, 'no key to send'),
      );
      break;
    }
    case 'none':
      checks.push(await checkMcp(server, 'none', ctx.fetchFn));
      break;
    default:
      break;
  }
  return checks;
}

/** The path line: pinned by the administrator, recorded, chosen by a probe in the running broker, or probed now. */
async function serverPath(server: ServerConfig, ctx: ServerChecksContext): Promise<{ check: DoctorCheck; path?: AuthPath }> {
  const id = `server.${server.id}.path`;
  const hop = `${server.id}: auth path`;
  const auth = ctx.options.auth;
  const label = (p: AuthPath, why: string) => `${p} — ${AUTH_PATH_LABELS[p]} (${why})`;
  const pinned = auth?.policy(server).pinned;
  if (pinned) return { check: pass(id, hop, label(pinned, 'pinned by your administrator')), path: pinned };
  if (server.authPath) return { check: pass(id, hop, label(server.authPath, 'recorded in the configuration')), path: server.authPath };
  const fromBroker = ctx.brokerServers?.find((s) => s.id === server.id)?.authPath;
  const known = fromBroker && fromBroker !== 'unknown' ? fromBroker : auth?.pathOf(server.id);
  if (known) return { check: pass(id, hop, label(known, 'chosen by the probe')), path: known };
  // Not recorded yet: without the router, the Cross-App Access hops tell whether it needs authorization at all.
  if (!auth) return { check: pass(id, hop, label('xaa', 'not recorded yet; checked as Cross-App Access')), path: 'xaa' };
  let probe;
  try {
    probe = await auth.probe(server.url, server.id);
  } catch (e) {
    // The probe itself could not run (the keychain, where it looks for a key, is unavailable): the Cross-App Access
    // hops need no keychain to say what the server offers.
    return {
      check: pass(id, hop, label('xaa', `not recorded yet, and the probe failed (${toErrorInfo(e).message}); checked as Cross-App Access`)),
      path: 'xaa',
    };
  }
  if (probe.path) {
    const verdict = probe.paths.find((p) => p.path === probe.path);
    return {
      check: pass(id, hop, label(probe.path, `not recorded yet: the probe picks it${verdict ? ` — ${verdict.reason}` : ''}`)),
      path: probe.path,
    };
  }
  const why = probe.paths.map((p) => `${p.path}: ${p.reason}`).join('; ');
  // As the broker does at first use: with an identity provider, Cross-App Access's own hops say what the server lacks.
  if (probe.reachable && ctx.config.idp && (auth.policy(server).allowed ?? ['xaa']).includes('xaa'))
    return {
      check: pass(
        id,
        hop,
        label('xaa', `not recorded yet; no path applies by the server's metadata (${why}), so its hops say what it lacks`),
      ),
      path: 'xaa',
    };
  return {
    check: failWith(
      id,
      hop,
      probe.error?.code ?? (probe.reachable ? ErrorCodes.SERVER_NOT_XAA_CAPABLE : ErrorCodes.SERVER_UNREACHABLE),
      `No auth path applies to ${server.url}${why ? ` (${why})` : ''}.`,
      probe.error?.fix ?? `If it uses an API key, set it with \`lanyard servers set-key ${server.id} --header <name> --value-stdin\`.`,
      server.id,
    ),
  };
}

/** Lines of a path whose server answers without credentials: the authorization hops are not needed. */
function notNeeded(server: ServerConfig, ids: string[]): DoctorCheck[] {
  return ids.map((suffix) => ({
    id: `server.${server.id}.${suffix}`,
    hop: `${server.id}: ${suffix}`,
    ok: true,
    skipped: true,
    detail: 'none needed: the server answers without authorization',
  }));
}

async function xaaChecks(server: ServerConfig, ctx: ServerChecksContext): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [];
  const sid = server.id;
  const prm = await checkProtectedResource(server, ctx.fetchFn);
  out.push(prm.check);
  const skipRest = (why: string, from: 'as' | 'session' | 'tokens' | 'mcp') => {
    if (from === 'as') out.push(skip(`server.${sid}.as`, `${sid}: authorization server`, why));
    if (from === 'as' || from === 'session') out.push(skip(`server.${sid}.session`, `${sid}: IdP session`, why));
    if (from !== 'mcp') {
      const tokens = skipTokens(sid, why);
      out.push(tokens.idJag, tokens.grant);
    }
    out.push(skip(`server.${sid}.mcp`, `${sid}: MCP`, why));
    return out;
  };
  if (!prm.check.ok) return skipRest('protected-resource metadata failed', 'as');
  if (!prm.authRequired) {
    out.push(...notNeeded(server, ['as', 'session', 'id-jag', 'grant']));
    out.push(await checkMcp(server, 'none', ctx.fetchFn));
    return out;
  }
  const as = await checkXaaAuthorizationServer(server, ctx.fetchFn);
  out.push(as.check);
  if (!as.info) return skipRest('authorization-server metadata failed', 'session');
  if (!ctx.config.idp) {
    out.push(
      failWith(
        `server.${sid}.session`,
        `${sid}: IdP session`,
        ErrorCodes.CONFIG_INVALID,
        'Cross-App Access needs an identity provider, and none is configured.',
        'Set it with `lanyard login --issuer <url> --client-id <id>`, or ask your IT team for the managed configuration.',
        sid,
      ),
    );
    return skipRest('no identity provider', 'tokens');
  }
  if (!ctx.session.signedIn) {
    out.push(
      failWith(
        `server.${sid}.session`,
        `${sid}: IdP session`,
        ErrorCodes.NOT_SIGNED_IN,
        'You are not signed in to your identity provider.',
        'Run `lanyard login`.',
        sid,
      ),
    );
    return skipRest('sign in first (`lanyard login`)', 'tokens');
  }
  out.push(pass(`server.${sid}.session`, `${sid}: IdP session`, `signed in${ctx.session.who ? ` as ${ctx.session.who}` : ''}`));
  const tokens = await checkXaaTokens(server, ctx.options, ctx.engine);
  out.push(tokens.idJag, tokens.grant);
  if (!tokens.grant.ok) return skipRest('no access token', 'mcp');
  if (tokens.test) out.push(mcpFromBroker(server, tokens.test));
  else if (ctx.engine) out.push(await checkMcp(server, 'xaa', ctx.engine.tokens.authorizedFetch(server.id, ctx.fetchFn)));
  else out.push(skip(`server.${sid}.mcp`, `${sid}: MCP`, 'no engine'));
  return out;
}

async function oauthChecks(server: ServerConfig, ctx: ServerChecksContext): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [];
  const sid = server.id;
  const mcpSkip = (why: string) => skip(`server.${sid}.mcp`, `${sid}: MCP`, why);
  const prm = await checkProtectedResource(server, ctx.fetchFn);
  out.push(prm.check);
  if (!prm.check.ok || !prm.authorizationServer) {
    out.push(skip(`server.${sid}.as`, `${sid}: authorization server`, 'protected-resource metadata failed'));
    out.push(...skipOAuthAfter(sid, 'as', 'protected-resource metadata failed'), mcpSkip('protected-resource metadata failed'));
    return out;
  }
  const as = await checkOAuthAuthorizationServer(server, prm.authorizationServer, ctx.fetchFn);
  out.push(as.check);
  if (!as.check.ok || !as.metadata) {
    out.push(...skipOAuthAfter(sid, 'as', 'authorization-server metadata failed'), mcpSkip('authorization-server metadata failed'));
    return out;
  }
  const client = await checkClientIdentity(server, ctx.config, as.metadata, ctx.options.secrets);
  out.push(client);
  if (!client.ok) {
    out.push(...skipOAuthAfter(sid, 'client', 'no client identity'), mcpSkip('no client identity'));
    return out;
  }
  const auth = ctx.options.auth;
  if (ctx.options.broker) {
    const grant = checkGrant(
      server,
      ctx.brokerServers?.find((s) => s.id === sid),
    );
    out.push(grant);
    if (!grant.ok) {
      out.push(...skipOAuthAfter(sid, 'grant', 'authorize first'), mcpSkip('authorize first'));
      return out;
    }
    // The broker holds the rotating refresh token: its own test renews it when due; this process must not.
    let test: TestResult;
    try {
      test = await ctx.options.broker.testServer({ id: sid });
    } catch (e) {
      out.push(fail(`server.${sid}.refresh`, `${sid}: refresh`, toErrorInfo(e)), mcpSkip('the running broker did not answer'));
      return out;
    }
    const mcp = mcpFromBroker(server, test);
    const refresh = refreshFromBroker(sid, mcp.ok, mcp.error);
    out.push(refresh, refresh.ok ? mcp : mcpSkip('no access token'));
    return out;
  }
  const oauth = auth?.oauth;
  if (!auth || !oauth) {
    out.push(checkGrant(server, undefined), ...skipOAuthAfter(sid, 'grant', 'no OAuth path here'), mcpSkip('no OAuth path here'));
    return out;
  }
  // In this process the engine loads the grant from the keychain on first use: ask it for a token (it never opens a
  // browser), and place the outcome on the grant line (none, or refused: authorize again) or the refresh line.
  const state = oauth.status(sid);
  if (state.state === 'authorizing') {
    out.push(checkGrant(server, state), ...skipOAuthAfter(sid, 'grant', 'authorize first'), mcpSkip('authorize first'));
    return out;
  }
  const refresh = await checkRefresh(server, auth);
  const token = refresh.token;
  if (!token && refresh.check.error?.code === ErrorCodes.AUTHORIZATION_REQUIRED) {
    out.push(
      checkGrant(server, { ...oauth.status(sid), state: 'authorization_required', lastError: refresh.check.error }),
      ...skipOAuthAfter(sid, 'grant', 'authorize first'),
      mcpSkip('authorize first'),
    );
    return out;
  }
  out.push(checkGrant(server, { ...oauth.status(sid), state: 'authorized' }), refresh.check);
  if (!token) {
    out.push(mcpSkip('no access token'));
    return out;
  }
  // The engine presents the token as it was issued (a DPoP-bound one needs a proof per request); redirects are not
  // followed, so the credential reaches the server's own origin only.
  const noRedirect: FetchLike = (input, init) => ctx.fetchFn(input, { ...init, redirect: 'manual' });
  out.push(
    await checkMcp(
      server,
      'oauth',
      oauth.authorizedFetch
        ? oauth.authorizedFetch(auth.oauthRef(sid), noRedirect)
        : credentialFetch(server.url, async () => ['authorization', `Bearer ${token.accessToken}`], ctx.fetchFn),
    ),
  );
  return out;
}
