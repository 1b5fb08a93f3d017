import { usesClientSecret } from '../../../shared/auth-methods';
import { SERVER_ID_RULE } from '../../../shared/server-id';
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { ControlApi } from '../../../shared/contract';
import { ErrorCodes, type ErrorInfo } from '../../../shared/errors';
import { LanyardError, toErrorInfo } from '../errors';
import {
  AsClientAuthMethodSchema,
  displayString,
  IdpConfigSchema,
  NetworkConfigSchema,
  OAuthConfigSchema,
  SERVER_ID_PATTERN,
  ServerConfigSchema,
  urlProblem,
  type LanyardConfig,
} from './schema';
import { ProfilesConfigSchema } from '../governance/profiles/schema';
import { configErrorMap, formatZodIssue } from './validate';
import { ManagedAuditConfigSchema, SecretScanConfigSchema } from '../governance/config';
import { IDENTITY_PROFILE_PATTERN } from '../identities/names';

/**
 * Managed configuration: a file an administrator deploys (MDM, GPO, Ansible…) that sets the identity provider and the
 * server list for everyone on the machine and can lock them, so a company's whole fleet is configured without each
 * developer typing an issuer URL.
 *
 *   macOS    /Library/Application Support/Lanyard/managed.json
 *   Windows  %ProgramData%\Lanyard\managed.json
 *   Linux    /etc/lanyard/managed.json
 *   any OS   $LANYARD_MANAGED_CONFIG (tests, and admins who deploy elsewhere)
 *
 * `{ "idp": {…}, "servers": [ … ], "lock": ["idp", "servers"] }` — `idp` and each server use the same schema (and the
 * same error messages) as the user's config.json. The managed values are laid over the user's file on every read and
 * never copied into it; locked fields refuse changes with MANAGED_LOCKED, and managed servers cannot be removed,
 * disabled or edited by the user. A managed file that exists but is invalid locks everything (fail closed: a policy
 * that cannot be read must not silently become "no policy") and is reported by status and `lanyard doctor`.
 *
 * The file binds every user of the machine, so it is trusted only when an administrator wrote it (`ownerProblem`):
 * otherwise a standard user could create it first (on Windows, ProgramData lets any user create files) and impose an
 * IdP and servers on everyone else. An untrusted file is ignored (state `untrusted`), and `lanyard doctor` says why.
 */

type Env = Record<string, string | undefined>;

/**
 * What `lock` can hold besides `idp` and `servers`:
 * - `authPaths`: the user may not change any server's auth path or fallback, nor the OAuth settings;
 * - `secretScan`: only the managed secret-scan settings count (the user's are ignored);
 * - `toolPins`: only the administrator's pins and policy decide which tools are shown;
 * - `profiles`: only the administrator's IDE profiles count;
 * - `network`: only the administrator's network settings count (proxy, noProxy, caFile, pac; the user's are ignored).
 */
export const LOCKABLE_FIELDS = ['idp', 'servers', 'authPaths', 'secretScan', 'toolPins', 'profiles', 'network'] as const;
export type LockableField = (typeof LOCKABLE_FIELDS)[number];

export const ManagedConfigSchema = z.strictObject({
  version: z.literal(1).optional(),
  idp: IdpConfigSchema.optional(),
  servers: z
    .array(ServerConfigSchema)
    .superRefine((servers, ctx) => {
      const seen = new Set<string>();
      servers.forEach((s, i) => {
        if (seen.has(s.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate server id "${s.id}"`, input: s.id });
        seen.add(s.id);
      });
    })
    .optional(),
  /** false: no server may fall back from Cross-App Access to OAuth or an API key (each server's `fallback`, for all). */
  fallback: z.boolean().optional(),
  /** The OAuth path's settings for everyone (e.g. the company-hosted Client ID Metadata Document URL). */
  oauth: OAuthConfigSchema.optional(),
  /** The outbound secret scan for everyone (lock it with `lock: ["secretScan"]`). */
  secretScan: SecretScanConfigSchema.optional(),
  /** The audit ledger: the OpenTelemetry collector records are also exported to. */
  audit: ManagedAuditConfigSchema.optional(),
  /**
   * Tool pinning: the policy (tofu, managed-only, off) and the administrator's pins, per server id and tool name, as
   * `sha256:<hex>` fingerprints (`lanyard tools review --json` shows them). Locked, only these pins decide.
   */
  toolPins: z
    .strictObject({
      policy: z.enum(['tofu', 'managed-only', 'off']).optional(),
      pins: z
        .record(z.string(), z.record(z.string(), z.string().regex(/^sha256:[0-9a-f]{64}$/, 'a pin is "sha256:" and 64 hex digits')))
        .optional(),
    })
    .optional(),
  /** IDE profiles for everyone: each named IDE's profile replaces the user's; with `profiles` locked the user's are ignored. */
  profiles: ProfilesConfigSchema.optional(),
  /** The company's proxy, NO_PROXY list and CA bundle for everyone (each field wins over the user's). */
  network: NetworkConfigSchema.optional(),
  /**
   * Identity profiles for everyone (`--profile <name>`, `/p/<name>/mcp`; identities/): each one's IdP and servers, and
   * which of them the user may not change. Company-wide settings above (network, oauth, secret scan, audit) apply to
   * every profile too.
   */
  identities: z
    .record(
      z.string().regex(IDENTITY_PROFILE_PATTERN, 'an identity profile name is 1 to 32 lower-case letters, digits, "-" or "_"'),
      z.strictObject({
        idp: IdpConfigSchema.optional(),
        servers: z.array(ServerConfigSchema).optional(),
        lock: z.array(z.enum(LOCKABLE_FIELDS)).default(() => []),
      }),
    )
    .optional(),
  lock: z.array(z.enum(LOCKABLE_FIELDS)).default(() => []),
});
export type ManagedConfig = z.output<typeof ManagedConfigSchema>;

export type ManagedState =
  | { state: 'absent'; path: string }
  | { state: 'ok'; path: string; config: ManagedConfig }
  | { state: 'invalid'; path: string; error: ErrorInfo }
  /** Present, but not written by an administrator: ignored as if absent (doctor and status say why). */
  | { state: 'untrusted'; path: string; error: ErrorInfo };

export interface ManagedTrust {
  /** POSIX owners that count as "an administrator" (default: root only). */
  trustedUids?: readonly number[];
  platform?: NodeJS.Platform;
  /** Windows: the file's owner and the principals allowed to write it, as SIDs (injectable for tests). */
  windowsAcl?: (file: string) => { owner: string; writers: string[] };
}

/**
 * Why `file` cannot be trusted as an administrator's policy, or undefined when it can.
 *
 * POSIX: the file (after resolving symlinks) must be owned by a trusted uid (root) and not writable by group or
 * others; its directory likewise; every directory above it owned by a trusted uid and not writable by others unless
 * sticky (as /tmp is: others cannot rename or replace a root-owned entry in it). Otherwise another user could have
 * created or could replace it.
 *
 * Windows: Node's stat has no owner, so the ACL is read through PowerShell's Get-Acl as SIDs (names are localised).
 * The owner must be SYSTEM, Administrators or TrustedInstaller, and no other principal may hold a write, modify,
 * full-control, change-permissions or take-ownership allow entry on the file. When that cannot be established
 * (PowerShell missing, blocked or timing out), the file is not trusted — fail closed: losing the managed settings is
 * recoverable, a planted policy is not. The directory's ACL is not checked on Windows (an inherited "Users may create
 * files" entry on ProgramData is normal there; the file's own owner and ACL are what tell who wrote it).
 */
export function ownerProblem(file: string, trust: ManagedTrust = {}): string | undefined {
  const platform = trust.platform ?? process.platform;
  if (platform === 'win32') return windowsOwnerProblem(file, trust.windowsAcl ?? readWindowsAcl);
  const trusted = trust.trustedUids ?? [0];
  const who = (uid: number) => (uid === 0 ? 'root' : `uid ${uid}`);
  let real: string;
  try {
    real = realpathSync(file);
  } catch (e) {
    return `its owner cannot be established (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const st = statSync(real);
  if (!trusted.includes(st.uid)) return `it is owned by ${who(st.uid)}, not by root`;
  if ((st.mode & 0o022) !== 0) return `it is writable by other users (mode ${(st.mode & 0o777).toString(8)})`;
  let dir = path.dirname(real);
  for (let first = true; ; first = false) {
    const d = statSync(dir);
    if (!trusted.includes(d.uid)) return `its directory ${dir} is owned by ${who(d.uid)}, not by root`;
    const sticky = (d.mode & 0o1000) !== 0;
    if ((first && (d.mode & 0o022) !== 0) || (!first && (d.mode & 0o002) !== 0 && !sticky))
      return `its directory ${dir} is writable by other users (mode ${(d.mode & 0o777).toString(8)})`;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** SYSTEM, BUILTIN\Administrators, NT SERVICE\TrustedInstaller. */
const WINDOWS_ADMIN_SIDS = ['S-1-5-18', 'S-1-5-32-544', 'S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464'];

function windowsOwnerProblem(file: string, readAcl: (file: string) => { owner: string; writers: string[] }): string | undefined {
  let acl: { owner: string; writers: string[] };
  try {
    acl = readAcl(file);
  } catch {
    return 'its owner cannot be established (reading its ACL with PowerShell failed)';
  }
  if (!WINDOWS_ADMIN_SIDS.includes(acl.owner)) return `it is owned by ${acl.owner}, not by an administrator`;
  const others = acl.writers.filter((sid) => !WINDOWS_ADMIN_SIDS.includes(sid));
  if (others.length > 0) return `it is writable by ${others.join(', ')}, not only by administrators`;
  return undefined;
}

/**
 * Owner SID and the SIDs with a write-class allow entry (write/append data, write attributes, delete, change
 * permissions, take ownership, generic write/all), via Get-Acl. The path travels in an environment variable, never
 * in the command text (no quoting to get wrong).
 */
function readWindowsAcl(file: string): { owner: string; writers: string[] } {
  const script = [
    '$a = Get-Acl -LiteralPath $env:LANYARD_MANAGED_ACL_PATH',
    '$o = $a.GetOwner([System.Security.Principal.SecurityIdentifier]).Value',
    '$w = $a.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier]) | Where-Object {',
    "  $_.AccessControlType -eq 'Allow' -and ($_.FileSystemRights -band 0x500D0116) -ne 0 } | ForEach-Object { $_.IdentityReference.Value }",
    'Write-Output (ConvertTo-Json -Compress @{ owner = $o; writers = @($w) })',
  ].join('\n');
  const out = execFileSync('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', script], {
    env: { ...process.env, LANYARD_MANAGED_ACL_PATH: file },
    encoding: 'utf8',
    timeout: 10_000,
    windowsHide: true,
  });
  const parsed = JSON.parse(out) as { owner?: unknown; writers?: unknown };
  if (typeof parsed.owner !== 'string' || !Array.isArray(parsed.writers)) throw new Error('unexpected Get-Acl output');
  return { owner: parsed.owner, writers: parsed.writers.filter((x): x is string => typeof x === 'string') };
}

/** The documented system location of the managed file on this OS (or `LANYARD_MANAGED_CONFIG`). */
export function managedConfigPath(env: Env = process.env, platform: NodeJS.Platform = process.platform): string {
  const override = env.LANYARD_MANAGED_CONFIG;
  if (override) return override;
  switch (platform) {
    case 'win32':
      return path.win32.join(env.ProgramData || env.PROGRAMDATA || 'C:\\ProgramData', 'Lanyard', 'managed.json');
    case 'darwin':
      return '/Library/Application Support/Lanyard/managed.json';
    default:
      return '/etc/lanyard/managed.json';
  }
}

/**
 * Reads and validates the managed file, once its owner says an administrator wrote it. Never throws: a broken or
 * untrusted file is a state, reported where status is shown.
 */
export function readManagedConfig(file: string, trust: ManagedTrust = {}): ManagedState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'absent', path: file };
    return { state: 'invalid', path: file, error: invalid(file, `cannot be read (${code ?? 'I/O error'})`) };
  }
  let problem: string | undefined;
  try {
    problem = ownerProblem(file, trust);
  } catch (e) {
    problem = `its owner cannot be established (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (problem !== undefined) {
    return {
      state: 'untrusted',
      path: file,
      error: {
        code: ErrorCodes.CONFIG_INVALID,
        message: `Lanyard ignores the managed configuration ${file}: ${problem}, so it may not have been written by an administrator.`,
        fix: 'If your IT team deployed it, ask them to make it owned by root (Administrators on Windows) and writable by no one else; otherwise delete it — another account on this machine may have planted it.',
      },
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { state: 'invalid', path: file, error: invalid(file, 'is not valid JSON') };
  }
  const parsed = ManagedConfigSchema.safeParse(raw, { error: configErrorMap });
  if (!parsed.success)
    return {
      state: 'invalid',
      path: file,
      error: invalid(file, `is invalid: ${parsed.error.issues.map(formatZodIssue).slice(0, 5).join('; ')}`),
    };
  return { state: 'ok', path: file, config: parsed.data };
}

function invalid(file: string, what: string): ErrorInfo {
  return {
    code: ErrorCodes.MANAGED_LOCKED,
    message: `Your administrator's managed configuration ${file} ${what}; until it is fixed, the identity provider and server list are locked.`,
    fix: 'Ask your IT team to correct the managed configuration (`lanyard doctor` shows what is wrong).',
  };
}

/**
 * The user's config with the managed values laid over it: the managed IdP replaces the user's; managed servers come
 * first and win over a user server with the same id or URL; with `servers` locked only the managed servers remain,
 * and with `idp` locked and no managed IdP, none is used. Managed `oauth` settings override the user's.
 */
export function mergeManagedConfig(user: LanyardConfig, managed: ManagedConfig): LanyardConfig {
  const managedServers = managed.servers ?? [];
  const ids = new Set(managedServers.map((s) => s.id));
  const urls = new Set(managedServers.map((s) => s.url));
  const own = managed.lock.includes('servers') ? [] : user.servers.filter((s) => !ids.has(s.id) && !urls.has(s.url));
  const idp = managed.idp ?? (managed.lock.includes('idp') ? undefined : user.idp);
  const merged: LanyardConfig = { ...user, servers: [...managedServers.map((s) => ({ ...s })), ...own] };
  if (idp) merged.idp = idp;
  else delete merged.idp;
  // The company's OAuth settings (its Client ID Metadata Document URL) win over the user's.
  if (managed.oauth) merged.oauth = { ...user.oauth, ...managed.oauth };
  const ownProfiles = managed.lock.includes('profiles') ? {} : user.profiles;
  if (managed.profiles || managed.lock.includes('profiles')) merged.profiles = { ...ownProfiles, ...managed.profiles };
  if (managed.lock.includes('network')) {
    if (managed.network) merged.network = { ...managed.network };
    else delete merged.network;
  } else if (managed.network) merged.network = { ...user.network, ...managed.network };
  return merged;
}

/** What status and doctor show about the managed configuration. */
export interface ManagedSummary {
  path: string;
  state: ManagedState['state'];
  locked: string[];
  managesIdp: boolean;
  serverIds: string[];
  /** For `invalid` (why everything is locked) and `untrusted` (why the file is ignored). */
  error?: ErrorInfo | undefined;
}

/**
 * The hooks the broker composes: `overlay` for the ConfigStore, `locked` and `managedServerIds` for the
 * ControlService. The file is re-read when it may have changed (at most once per `ttlMs`), so an admin's update
 * applies without a restart.
 */
export interface ManagedPolicy {
  readonly path: string;
  state(): ManagedState;
  overlay(config: LanyardConfig): LanyardConfig;
  locked(): string[];
  managedServerIds(): string[];
  summary(): ManagedSummary;
}

export function createManagedPolicy(
  options: { env?: Env; platform?: NodeJS.Platform; path?: string; ttlMs?: number; now?: () => number; trust?: ManagedTrust } = {},
): ManagedPolicy {
  const file = options.path ?? managedConfigPath(options.env, options.platform);
  // A file the user pointed Lanyard at themselves (LANYARD_MANAGED_CONFIG, or a path in code) may also be their own:
  // it binds only them. The system location binds every user of the machine, so there only root counts.
  const chosenByUser = options.path !== undefined || Boolean((options.env ?? process.env).LANYARD_MANAGED_CONFIG);
  const ownUid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const trust: ManagedTrust = {
    ...(options.platform ? { platform: options.platform } : {}),
    trustedUids: chosenByUser ? [0, ownUid] : [0],
    ...options.trust,
  };
  const ttl = options.ttlMs ?? 2000;
  const now = options.now ?? Date.now;
  let cached: { at: number; state: ManagedState } | undefined;
  const state = (): ManagedState => {
    if (!cached || now() - cached.at >= ttl) cached = { at: now(), state: readManagedConfig(file, trust) };
    return cached.state;
  };
  return managedPolicyOver(file, state);
}

/**
 * The policy an administrator's configuration gives, over any source of its state: the system file (above), or one
 * identity profile's share of it (identities/managed-identity.ts).
 */
export function managedPolicyOver(path: string, state: () => ManagedState): ManagedPolicy {
  let merged: { user: LanyardConfig; state: ManagedState; result: LanyardConfig } | undefined;
  const locked = (): string[] => {
    const s = state();
    if (s.state === 'invalid') return [...LOCKABLE_FIELDS];
    return s.state === 'ok' ? [...new Set(s.config.lock)] : [];
  };
  const managedServerIds = (): string[] => {
    const s = state();
    return s.state === 'ok' ? (s.config.servers ?? []).map((x) => x.id) : [];
  };
  return {
    path,
    state,
    overlay: (config) => {
      const s = state();
      if (s.state !== 'ok') return config;
      // The gateway loads the config on every call: the same user config under the same managed state merges once.
      if (merged?.user !== config || merged.state !== s) merged = { user: config, state: s, result: mergeManagedConfig(config, s.config) };
      return merged.result;
    },
    locked,
    managedServerIds,
    summary: () => {
      const s = state();
      return {
        path,
        state: s.state,
        locked: locked(),
        managesIdp: s.state === 'ok' && s.config.idp !== undefined,
        serverIds: managedServerIds(),
        ...(s.state === 'invalid' || s.state === 'untrusted' ? { error: s.error } : {}),
      };
    },
  };
}

/** No managed configuration at all (tests, library use). */
export const unmanaged: ManagedPolicy = {
  path: '',
  state: () => ({ state: 'absent', path: '' }),
  overlay: (config) => config,
  locked: () => [],
  managedServerIds: () => [],
  summary: () => ({ path: '', state: 'absent', locked: [], managesIdp: false, serverIds: [] }),
};

// ---------------------------------------------------------------------------------------------------------------------
// lanyard://configure?config=<base64url JSON>: a configuration offered to the user, who must accept it.

export const CONFIG_LINK_PREFIX = 'lanyard://configure';
const MAX_LINK_LENGTH = 16 * 1024;

const linkUrl = (options: { allowQuery?: boolean } = {}) =>
  z.string().superRefine((value, ctx) => {
    const problem = urlProblem(value, options);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value });
  });

/**
 * What a link may carry: exactly what the user could type into Settings and "Add server" — and never a secret (a link
 * passes through browsers, chat and logs). Unknown keys, `clientSecret` included, are refused.
 */
export const ConfigProposalSchema = z
  .strictObject({
    idp: z
      .strictObject({
        issuer: linkUrl({ allowQuery: false }),
        clientId: displayString().trim().min(1),
        clientAuthMethod: AsClientAuthMethodSchema.optional(),
        redirectPort: z.int().min(1024).max(65535).optional(),
      })
      .optional(),
    servers: z
      .array(
        z.strictObject({
          url: linkUrl(),
          id: z
            .string()
            .regex(SERVER_ID_PATTERN, { error: `must be ${SERVER_ID_RULE}` })
            .optional(),
          name: displayString().trim().min(1).max(80).optional(),
          clientId: displayString().trim().min(1).optional(),
          clientAuthMethod: AsClientAuthMethodSchema.optional(),
          scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/)).optional(),
        }),
      )
      .max(100)
      .optional(),
  })
  .refine((p) => p.idp !== undefined || (p.servers?.length ?? 0) > 0, { error: 'must contain "idp" or at least one server' });
export type ConfigProposal = z.output<typeof ConfigProposalSchema>;

/** Builds a `lanyard://configure` link (admins, docs and tests). */
export function encodeConfigLink(proposal: z.input<typeof ConfigProposalSchema>): string {
  return `${CONFIG_LINK_PREFIX}?config=${Buffer.from(JSON.stringify(proposal), 'utf8').toString('base64url')}`;
}

/**
 * Reads a `lanyard://configure?config=…` link into a validated proposal and the lines a person reads before accepting
 * it. Throws CONFIG_INVALID (what is wrong, never the payload) for anything else.
 */
export function parseConfigLink(url: string): { proposal: ConfigProposal; summary: string[] } {
  const refuse = (why: string) =>
    new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `This is not a Lanyard configuration link: ${why}.`,
      'Ask whoever sent it for a link that starts with lanyard://configure?config=',
    );
  if (typeof url !== 'string' || url.length > MAX_LINK_LENGTH) throw refuse('it is too long');
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw refuse('it is not a URL');
  }
  const action = [parsed.host, ...parsed.pathname.split('/')].filter(Boolean).join('/');
  if (parsed.protocol !== 'lanyard:' || action !== 'configure') throw refuse('it does not start with lanyard://configure');
  const payload = parsed.searchParams.get('config');
  if (!payload || !/^[A-Za-z0-9_-]+={0,2}$/.test(payload)) throw refuse('its "config" parameter is missing or not base64url');
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw refuse('its "config" parameter is not JSON');
  }
  const result = ConfigProposalSchema.safeParse(raw, { error: configErrorMap });
  if (!result.success) {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `The configuration in this link is invalid: ${result.error.issues.map(formatZodIssue).slice(0, 5).join('; ')}.`,
      'Ask whoever sent it for a corrected link. Links never carry secrets: a client secret is entered separately.',
    );
  }
  return { proposal: result.data, summary: summarizeProposal(result.data) };
}

/**
 * The lines a person reads before accepting a proposal. With `current` (the settings now), a change of identity provider
 * is said plainly, from which to which: accepting it signs the user out, and the new IdP's client secret (or key) must
 * be entered by the user — Lanyard never sends the old IdP's credentials to the new one.
 */
export function summarizeProposal(p: ConfigProposal, current?: { idp?: { issuer: string; clientId: string } | undefined }): string[] {
  const lines: string[] = [];
  const asks: string[] = [];
  if (p.idp) {
    const method = p.idp.clientAuthMethod ?? 'none';
    const target = `${p.idp.issuer} (client id ${p.idp.clientId}${method !== 'none' ? `, ${method}` : ''})`;
    const mustEnter = usesClientSecret(method)
      ? `you will be signed out and must enter ${p.idp.issuer}'s client secret`
      : method === 'private_key_jwt'
        ? `you will be signed out and must provide Lanyard's private key for ${p.idp.issuer}`
        : `you will be signed out and sign in again at ${p.idp.issuer}`;
    const now = current?.idp;
    if (now && now.issuer === p.idp.issuer && now.clientId === p.idp.clientId) {
      asks.push(`  • keep your identity provider ${target}, with these settings (you stay signed in)`);
    } else if (now) {
      lines.push(`This link changes your identity provider from ${now.issuer} (client id ${now.clientId}) to ${target}: ${mustEnter}.`);
    } else {
      asks.push(`  • sign you in with the identity provider ${target}`);
      asks.push(`    — this replaces the identity provider you use now, if any: ${mustEnter}`);
    }
  }
  for (const s of p.servers ?? []) {
    asks.push(
      `  • add the MCP server ${s.name ?? s.id ?? new URL(s.url).host} — ${s.url}${s.clientId ? ` (client id ${s.clientId})` : ''}`,
    );
  }
  if (asks.length > 0) lines.push(lines.length > 0 ? 'It also asks Lanyard to:' : 'This link asks Lanyard to:', ...asks);
  lines.push(
    'Accept it only if it comes from your IT team. It contains no secrets, and Lanyard never sends a secret you entered for one identity provider or server to another.',
  );
  return lines;
}

export interface ProposalResult {
  idpChanged: boolean;
  added: string[];
  skipped: Array<{ url: string; reason: string }>;
}

/**
 * Applies an accepted proposal through the control contract, so locks and validation are the same as for any other
 * change (a managed, locked IdP refuses with MANAGED_LOCKED). Servers already configured (same URL) are skipped.
 */
export async function applyConfigProposal(
  control: Pick<ControlApi, 'updateSettings' | 'addServer' | 'listServers'>,
  proposal: ConfigProposal,
): Promise<ProposalResult> {
  const result: ProposalResult = { idpChanged: false, added: [], skipped: [] };
  if (proposal.idp) {
    await control.updateSettings({
      idp: {
        issuer: proposal.idp.issuer,
        clientId: proposal.idp.clientId,
        ...(proposal.idp.clientAuthMethod ? { clientAuthMethod: proposal.idp.clientAuthMethod } : {}),
        ...(proposal.idp.redirectPort ? { redirectPort: proposal.idp.redirectPort } : {}),
      },
    });
    result.idpChanged = true;
  }
  const existing = new Set((await control.listServers({})).map((s) => s.url));
  for (const s of proposal.servers ?? []) {
    if (existing.has(s.url)) {
      result.skipped.push({ url: s.url, reason: 'already configured' });
      continue;
    }
    try {
      const added = await control.addServer({
        url: s.url,
        ...(s.id ? { id: s.id } : {}),
        ...(s.name ? { name: s.name } : {}),
        ...(s.clientId ? { clientId: s.clientId } : {}),
        ...(s.clientAuthMethod ? { clientAuthMethod: s.clientAuthMethod } : {}),
        ...(s.scopes ? { scopes: s.scopes } : {}),
      });
      result.added.push(added.id);
      existing.add(s.url);
    } catch (e) {
      result.skipped.push({ url: s.url, reason: toErrorInfo(e).message });
    }
  }
  return result;
}
