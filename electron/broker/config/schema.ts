import { z } from 'zod';
import { DISPLAY_UNSAFE_MESSAGE, displayUnsafe } from '../../../shared/display-safe';
import { ClientAuthMethodSchema } from '../../../shared/auth-methods';
import { AuthPathSchema, headerNameProblem } from '../../../shared/auth-paths';
import { SERVER_ID_PATTERN, SERVER_ID_RULE } from '../../../shared/server-id';
import { isLoopbackHost } from '../util/url';
import { AuditConfigSchema, SecretScanConfigSchema } from '../governance/config';
import { ProfilesConfigSchema } from '../governance/profiles/schema';

/**
 * Lanyard's settings file (`<home>/config.json`), validated with zod on every read and before every write.
 *
 * Nothing secret lives here: client secrets and private keys are in the OS keychain under the names given below, so
 * the file can be shown, diffed, backed up and managed by IT. Objects are strict: an unknown key is an error naming
 * it, because a misspelt setting silently ignored is worse than a refusal.
 */

/**
 * The local MCP endpoint's default port (`http://127.0.0.1:47821/mcp`). Fixed so IDE configs written once keep
 * working across restarts; chosen from the unassigned range above the common dev-server ports. 0 picks any free port
 * (tests).
 */
export const DEFAULT_GATEWAY_PORT = 47821;
export const DEFAULT_IDP_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
export const DEFAULT_TOOL_NAME_SEPARATOR = '__';
export { SERVER_ID_PATTERN } from '../../../shared/server-id';

const HTTPS_RULE = 'must be an https URL (http is allowed only for 127.0.0.1/localhost)';

/** Why `value` is not acceptable as an endpoint Lanyard sends credentials to, or undefined when it is. */
export function urlProblem(value: string, options: { allowQuery?: boolean } = {}): string | undefined {
  if (value.trim() !== value || /\s/.test(value)) return 'must not contain spaces';
  if (displayUnsafe(value)) return DISPLAY_UNSAFE_MESSAGE;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL such as https://mcp.example.com/mcp';
  }
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname)))) return HTTPS_RULE;
  if (url.username !== '' || url.password !== '') return 'must not contain a username or password (credentials belong in the OS keychain)';
  // `#` can only start a fragment; URL drops an empty one, so test the text.
  if (value.includes('#')) return 'must not contain a #fragment';
  if (options.allowQuery === false && value.includes('?')) return 'must not contain a ?query (an issuer identifier has none)';
  return undefined;
}

const endpointUrl = (options: { allowQuery?: boolean } = {}) =>
  z.string().superRefine((value, ctx) => {
    const problem = urlProblem(value, options);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value });
  });

/** RFC 6749 §3.3 scope-token: printable ASCII without space, `"` or `\`. */
const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, { error: 'must be one scope name (no spaces, quotes or backslashes)' });

/**
 * A string a person will read (a name, a client id): printed by the CLI and shown by the dashboard, so it may not
 * carry control characters or bidi overrides that would rewrite what is displayed around it (shared/display-safe.ts).
 */
export const displayString = () => z.string().refine((s) => !displayUnsafe(s), { error: DISPLAY_UNSAFE_MESSAGE });

const nonEmpty = displayString().trim().min(1, { error: 'must not be empty' });

const port = (rule: string, ok: (n: number) => boolean) => z.int().refine(ok, { error: rule });

/**
 * How Lanyard authenticates to the IdP. `none` is Okta's "client ID only" for local agents. The secret for
 * client_secret_basic/post is in the keychain under `idp:client_secret`; the private JWK for private_key_jwt under
 * `idp:private_key` — never in this file.
 */
export const IdpClientAuthSchema = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('none') }),
  z.strictObject({ method: ClientAuthMethodSchema.extract(['client_secret_basic', 'client_secret_post']) }),
  z.strictObject({ method: z.literal('private_key_jwt'), keyId: nonEmpty.optional() }),
]);

export const IdpConfigSchema = z.strictObject({
  /** The IdP's issuer identifier exactly as its discovery document states it. */
  issuer: endpointUrl({ allowQuery: false }),
  clientId: nonEmpty,
  clientAuth: IdpClientAuthSchema.default(() => ({ method: 'none' as const })),
  scopes: z
    .array(scopeToken)
    .refine((s) => s.includes('openid'), { error: "must include 'openid' (Lanyard signs in with OpenID Connect)" })
    .default(() => [...DEFAULT_IDP_SCOPES]),
  /** The loopback redirect port; absent or 0 = an ephemeral port per sign-in (RFC 8252 §7.3). */
  redirectPort: port('must be 0 (any free port) or between 1024 and 65535', (n) => n === 0 || (n >= 1024 && n <= 65535)).optional(),
  /** Overrides the token endpoint used for the RFC 8693 exchange (IdPs that expose it elsewhere). */
  tokenExchangeEndpoint: endpointUrl().optional(),
});

/** At a server's authorization server, the same four methods as at the IdP. */
export const AsClientAuthMethodSchema = ClientAuthMethodSchema;

/**
 * Lanyard's client at a server's authorization server. Its secret is in the keychain under
 * `server:<id>:client_secret`, its private JWK under `server:<id>:private_key`.
 */
export const AsClientSchema = z.strictObject({
  clientId: nonEmpty,
  method: AsClientAuthMethodSchema.default('none'),
  keyId: nonEmpty.optional(),
});

/**
 * Lanyard's client at a server's authorization server for the OAuth 2.1 path, when the administrator pre-registered
 * one. Without it Lanyard identifies itself by its Client ID Metadata Document, else by dynamic registration. The
 * secret (client_secret_*) is in the keychain under `server:<id>:oauth_client_secret`.
 */
export const OAuthClientSchema = z.strictObject({
  clientId: nonEmpty,
  method: AsClientAuthMethodSchema.default('none'),
});

/** The header the `header` path injects. Its value is in the keychain under `server:<id>:header`, never here. */
export const HeaderAuthSchema = z.strictObject({
  name: z.string().superRefine((value, ctx) => {
    const problem = headerNameProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value });
  }),
});

export const ServerConfigSchema = z.strictObject({
  /** Stable id: the tool-name prefix (`<id>__tool`) and the relay path (`/mcp/<id>`). */
  id: z.string().regex(SERVER_ID_PATTERN, { error: `must be ${SERVER_ID_RULE}` }),
  name: nonEmpty.max(80, { error: 'must be at most 80 characters' }),
  /** The MCP endpoint (Streamable HTTP). */
  url: endpointUrl(),
  enabled: z.boolean().default(true),
  asClient: AsClientSchema.optional(),
  /** Scopes to request in addition to what the server's metadata advertises. */
  scopes: z.array(scopeToken).optional(),
  /** Pins the authorization server: discovery that names another issuer is refused. */
  expectedAsIssuer: endpointUrl({ allowQuery: false }).optional(),
  /**
   * How Lanyard authenticates to this server (shared/auth-paths.ts), as the probe chose it. Absent: chosen at first use
   * in the fixed order. In the managed configuration it pins the path: no other is ever tried.
   */
  authPath: AuthPathSchema.optional(),
  /**
   * false: only Cross-App Access (or no authentication, if the server needs none) — never an interactive or API-key
   * fallback. The managed configuration's top-level `fallback` sets it for every server.
   */
  fallback: z.boolean().optional(),
  oauthClient: OAuthClientSchema.optional(),
  header: HeaderAuthSchema.optional(),
});

const ORIGIN_RULE = 'must be an origin such as https://app.example.com (scheme, host and optional port; no path or trailing slash)';

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    // Non-special schemes (vscode-webview://…) have an opaque origin "null": compare the parts instead.
    const origin = url.origin === 'null' ? `${url.protocol}//${url.host}` : url.origin;
    return url.host !== '' && origin === value;
  } catch {
    return false;
  }
}

export const GatewayConfigSchema = z.strictObject({
  port: port('must be 0 (any free port, tests only) or between 1024 and 65535', (n) => n === 0 || (n >= 1024 && n <= 65535)).default(
    DEFAULT_GATEWAY_PORT,
  ),
  /**
   * Joins server id and tool name in the aggregated `/mcp` endpoint. It must contain `_` or `.`: server ids may
   * contain `-`, so a hyphen-only separator could not be split back unambiguously.
   */
  toolNameSeparator: z
    .string()
    .refine((s) => /^[_.-]{1,4}$/.test(s) && /[_.]/.test(s), {
      error: "must be 1-4 of the characters '_', '.', '-' and contain '_' or '.'",
    })
    .default(DEFAULT_TOOL_NAME_SEPARATOR),
  /** Extra browser origins allowed to call the local endpoint (DNS-rebinding defence keeps all others out). */
  allowedOrigins: z.array(z.string().refine(isOrigin, { error: ORIGIN_RULE })).default(() => []),
});

/** The OAuth 2.1 path's settings shared by every server. */
export const OAuthConfigSchema = z.strictObject({
  /**
   * The https URL of Lanyard's Client ID Metadata Document, used as its client_id at authorization servers that
   * advertise `client_id_metadata_document_supported` (draft-ietf-oauth-client-id-metadata-document). Usually set by
   * the managed configuration to a document the company hosts.
   */
  clientMetadataUrl: endpointUrl().optional(),
});

/**
 * The outbound network (electron/broker/net/; README "Corporate networks"): a proxy and NO_PROXY list that override the
 * environment's HTTPS_PROXY / NO_PROXY, and the company's CA bundle, added to the default roots for every hop. Proxy
 * credentials never go here (the config is not a secret store): they stay in HTTPS_PROXY's environment.
 */
export const NetworkConfigSchema = z.strictObject({
  proxy: z
    .string()
    .refine(
      (value) => {
        try {
          const url = new URL(value);
          return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '' && !url.username && !url.password;
        } catch {
          return false;
        }
      },
      { error: 'must be an http:// or https:// proxy URL without user name or password (put credentials in HTTPS_PROXY instead)' },
    )
    .optional(),
  noProxy: z.array(z.string().min(1)).optional(),
  caFile: z.string().min(1).optional(),
  /**
   * The company's proxy auto-configuration (PAC) file: an http(s) URL (fetched direct, with caFile's CA), a file: URL or
   * an absolute path. Evaluated in a WebAssembly sandbox (net/pac.ts) for every host `proxy` does not cover; `proxy`
   * wins over it, and it wins over HTTPS_PROXY / NO_PROXY. The Electron app otherwise follows the system's settings.
   */
  pac: z
    .string()
    .refine(
      (value) => {
        if (/^(\/|[A-Za-z]:[\\/]|\\\\)/.test(value)) return true;
        try {
          const url = new URL(value);
          if (url.protocol === 'file:') return true;
          return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '' && !url.username && !url.password;
        } catch {
          return false;
        }
      },
      { error: "must be the PAC file's http(s) URL (without user name or password), a file: URL or an absolute path" },
    )
    .optional(),
});

export const UiConfigSchema = z.strictObject({
  startAtLogin: z.boolean().optional(),
});

export const CONFIG_VERSION = 1;

export const LanyardConfigSchema = z.strictObject({
  version: z.literal(CONFIG_VERSION, {
    error: (issue) =>
      issue.input === undefined
        ? `is required (add "version": ${CONFIG_VERSION})`
        : typeof issue.input === 'number' && issue.input > CONFIG_VERSION
          ? `is ${issue.input}: this file was written by a newer Lanyard; update Lanyard or restore an older backup`
          : `must be ${CONFIG_VERSION}`,
  }),
  idp: IdpConfigSchema.optional(),
  servers: z
    .array(ServerConfigSchema)
    .superRefine(
      (servers, ctx) => {
        // Runs even when some entries are invalid (`when`), so a duplicate is reported together with other errors.
        const seen = new Map<string, number>();
        servers.forEach((server, index) => {
          const id = (server as { id?: unknown } | null)?.id;
          if (typeof id !== 'string') return;
          const first = seen.get(id);
          if (first === undefined) seen.set(id, index);
          else {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'id'],
              message: `duplicate server id "${id}" (also used by servers[${first}]); ids must be unique`,
              input: id,
            });
          }
        });
      },
      { when: (payload) => Array.isArray(payload.value) },
    )
    .default(() => []),
  gateway: GatewayConfigSchema.prefault({}),
  oauth: OAuthConfigSchema.optional(),
  ui: UiConfigSchema.optional(),
  /** Outbound secret scan of tool arguments: off, warn (default) or block, globally and per server. */
  secretScan: SecretScanConfigSchema.optional(),
  audit: AuditConfigSchema.optional(),
  /** Per-IDE tool profiles and budgets (governance/profiles/schema.ts); absent IDEs use their defaults. */
  profiles: ProfilesConfigSchema.optional(),
  network: NetworkConfigSchema.optional(),
});

export type LanyardConfig = z.output<typeof LanyardConfigSchema>;
/** What a config file may contain: defaults make most fields optional. */
export type LanyardConfigInput = z.input<typeof LanyardConfigSchema>;
export type IdpConfig = z.output<typeof IdpConfigSchema>;
export type IdpClientAuth = z.output<typeof IdpClientAuthSchema>;
export type ServerConfig = z.output<typeof ServerConfigSchema>;
export type AsClientConfig = z.output<typeof AsClientSchema>;
export type GatewayConfig = z.output<typeof GatewayConfigSchema>;
export type OAuthClientConfig = z.output<typeof OAuthClientSchema>;
export type HeaderAuthConfig = z.output<typeof HeaderAuthSchema>;
export type OAuthConfig = z.output<typeof OAuthConfigSchema>;
export type NetworkConfig = z.output<typeof NetworkConfigSchema>;
