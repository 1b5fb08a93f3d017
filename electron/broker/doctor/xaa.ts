import type { TestResult } from '../../../shared/contract';
import type { ServerConfig } from '../config/schema';
import { toErrorInfo } from '../errors';
import { discoverServerAuth, ID_JAG_PROFILE, JWT_BEARER, type ServerAuthInfo } from '../exchange/discovery';
import type { FetchLike } from '../util/http';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { err, fail, failWith, pass, skip, type DoctorCheck, type DoctorEngine, type DoctorOptions } from './types';

/**
 * The Cross-App Access path's hops after the protected-resource metadata: the authorization server's metadata (issuer,
 * jwt-bearer grant, ID-JAG profile), then the token chain split in its two legs — the ID-JAG from the IdP (RFC 8693)
 * and the access token for it at the authorization server (RFC 7523).
 *
 * Both legs come from one `getToken`, not a forced mint: a cached token that is still valid proves the chain worked and
 * is reported with its expiry; a new ID-JAG is requested only when none is cached. Okta counts every ID-JAG against a
 * monthly quota (250 per user per resource app), and a diagnostic should not spend it.
 */

/** RFC 8414 metadata with the issuer check (through the engine's own discovery), plus what it advertises. */
export async function checkXaaAuthorizationServer(
  server: ServerConfig,
  fetchFn: FetchLike,
): Promise<{ check: DoctorCheck; info?: ServerAuthInfo }> {
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
      check: failWith(
        id,
        hop,
        ErrorCodes.SERVER_NOT_XAA_CAPABLE,
        `The authorization server ${info.asIssuer} does not advertise ${missing.join(' or ')}.`,
        "Ask the server's owner to advertise it in the authorization server's metadata (Enterprise-Managed Authorization / ID-JAG); Lanyard still attempts the exchange (see the next line).",
        server.id,
      ),
      info,
    };
  }
  return {
    check: { id, hop, ok: true, detail: `${info.asIssuer}: issuer matches its metadata; jwt-bearer grant and ID-JAG profile advertised` },
    info,
  };
}

/** Failures of the authorization server's leg; every other failure happened at the IdP, before an ID-JAG existed. */
const AS_LEG: readonly string[] = [
  ErrorCodes.AS_GRANT_REJECTED,
  ErrorCodes.AS_CLIENT_REJECTED,
  ErrorCodes.AS_UNREACHABLE,
  ErrorCodes.INSUFFICIENT_SCOPE,
  ErrorCodes.SERVER_METADATA_INVALID,
  ErrorCodes.SERVER_NOT_XAA_CAPABLE,
];

export interface XaaTokenChecks {
  idJag: DoctorCheck;
  grant: DoctorCheck;
  /** The running broker's test of the server, when it ran one (its MCP step is the next line). */
  test?: TestResult | undefined;
}

/** The two lines of a failed chain: the leg that failed, and the other one passed or skipped. */
function chainFailure(serverId: string, error: ErrorInfo): XaaTokenChecks {
  const ids = lineIds(serverId);
  if (AS_LEG.includes(error.code))
    return {
      idJag: pass(ids.idJag.id, ids.idJag.hop, 'the IdP issued an ID-JAG for this server'),
      grant: fail(ids.grant.id, ids.grant.hop, error),
    };
  return {
    idJag: fail(ids.idJag.id, ids.idJag.hop, error),
    grant: skip(ids.grant.id, ids.grant.hop, 'no ID-JAG to present'),
  };
}

function lineIds(serverId: string) {
  return {
    idJag: { id: `server.${serverId}.id-jag`, hop: `${serverId}: ID-JAG` },
    grant: { id: `server.${serverId}.grant`, hop: `${serverId}: AS grant` },
  };
}

/** Both legs skipped with the same reason. */
export function skipTokens(serverId: string, why: string): XaaTokenChecks {
  const ids = lineIds(serverId);
  return { idJag: skip(ids.idJag.id, ids.idJag.hop, why), grant: skip(ids.grant.id, ids.grant.hop, why) };
}

/** The ID-JAG and AS-grant lines, through the running broker when there is one (it holds the rotating tokens). */
export async function checkXaaTokens(
  server: ServerConfig,
  options: DoctorOptions,
  engine: DoctorEngine | undefined,
): Promise<XaaTokenChecks> {
  const ids = lineIds(server.id);
  if (options.broker) {
    let result;
    try {
      result = await options.broker.testServer({ id: server.id });
    } catch (e) {
      return chainFailure(server.id, toErrorInfo(e));
    }
    const failed = result.steps.find((s) => !s.ok && (s.name === 'Discovery' || s.name === 'Token' || s.name === 'Identity provider'));
    if (failed)
      return chainFailure(server.id, failed.error ?? err(ErrorCodes.INTERNAL, failed.detail, 'Run `lanyard doctor` again.', server.id));
    const token = result.steps.find((s) => s.name === 'Token');
    return {
      idJag: pass(ids.idJag.id, ids.idJag.hop, 'the IdP issues ID-JAGs for this server (checked through the running broker)'),
      grant: pass(ids.grant.id, ids.grant.hop, `${token?.detail ?? 'token obtained'} (through the running broker)`),
      test: result,
    };
  }
  if (!engine) return skipTokens(server.id, 'no engine');
  let minted = false;
  const off = engine.tokens.onEvent((event) => {
    if (event.type === 'token_minted' && event.serverId === server.id) minted = true;
  });
  try {
    const token = await engine.tokens.getToken(server.id);
    if (!token)
      return {
        idJag: { ...pass(ids.idJag.id, ids.idJag.hop, 'none needed'), skipped: true },
        grant: { ...pass(ids.grant.id, ids.grant.hop, 'none needed'), skipped: true },
      };
    const scopes = token.scopes.join(' ') || 'no scopes';
    const until = new Date(token.expiresAt).toISOString();
    if (minted)
      return {
        idJag: pass(ids.idJag.id, ids.idJag.hop, 'the IdP issued an ID-JAG for this server'),
        grant: pass(ids.grant.id, ids.grant.hop, `exchanged: a new access token (${scopes}) valid until ${until}`),
      };
    return {
      idJag: { ...pass(ids.idJag.id, ids.idJag.hop, 'not needed now: a cached access token is valid (no ID-JAG spent)'), skipped: true },
      grant: pass(ids.grant.id, ids.grant.hop, `a cached access token (${scopes}) is valid until ${until}; no new grant was spent`),
    };
  } catch (e) {
    return chainFailure(server.id, toErrorInfo(e));
  } finally {
    off();
  }
}
