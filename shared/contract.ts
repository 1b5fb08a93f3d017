import { z } from 'zod';
import { ErrorCodes, type ErrorCode } from './errors';
import { ClientAuthMethodSchema } from './auth-methods';
import { AuthActionSchema, AuthPathSchema, AuthStateSchema } from './auth-paths';

/**
 * The one control contract between Lanyard's broker and every surface that drives it: the Electron IPC bridge
 * (`window.lanyard` in the app) and the HTTP + server-sent-events API behind the headless dashboard and the CLI.
 * Each method has a zod schema for its input and its output; both transports parse with them, so a malformed payload
 * is refused the same way everywhere. Nothing in here ever carries a token.
 */

const errorCodeValues = Object.values(ErrorCodes) as [ErrorCode, ...ErrorCode[]];
export const ErrorInfoSchema = z.object({
  code: z.enum(errorCodeValues),
  message: z.string(),
  fix: z.string(),
  serverId: z.string().optional(),
});

export const UserSchema = z.object({
  issuer: z.string(),
  sub: z.string(),
  email: z.string().optional(),
  name: z.string().optional(),
});

/** How a sign-in runs: the browser here; a browser elsewhere with its redirect address pasted back; device authorization. */
export const SignInModeSchema = z.enum(['browser', 'paste', 'device']);
/** A device sign-in (RFC 8628): where to go and the code to enter there, until `expiresAt` (no secret: not the device code). */
export const DevicePromptSchema = z.object({
  verificationUri: z.string(),
  verificationUriComplete: z.string().optional(),
  userCode: z.string(),
  expiresAt: z.number(),
});
export const SignInPromptSchema = z.union([
  z.object({ mode: z.enum(['browser', 'paste']), authorizeUrl: z.string() }),
  z.object({ mode: z.literal('device'), device: DevicePromptSchema }),
]);

export const SessionStatusSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('not_configured') }),
  z.object({ status: z.literal('signed_out') }),
  /** `authorizeUrl`: the IdP link the browser was sent to (no secret: PKCE challenge, state), for when it did not open. */
  z.object({
    status: z.literal('signing_in'),
    authorizeUrl: z.string().optional(),
    mode: SignInModeSchema.optional(),
    device: DevicePromptSchema.optional(),
  }),
  z.object({ status: z.literal('signed_in'), user: UserSchema, idTokenExpiresAt: z.number() }),
  z.object({ status: z.literal('expired'), user: UserSchema, error: ErrorInfoSchema }),
]);

export const ServerHealthSchema = z.enum(['disabled', 'idle', 'connecting', 'ready', 'degraded', 'error']);

export const ServerStatusSchema = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string(),
  enabled: z.boolean(),
  managed: z.boolean(),
  health: ServerHealthSchema,
  /** How Lanyard authenticates to it (shared/auth-paths.ts). `unknown` until probed. */
  authPath: z.union([AuthPathSchema, z.literal('unknown')]),
  /** Where the server stands on that path; `action` is the one thing the user can do about it, if any. */
  authState: AuthStateSchema,
  action: AuthActionSchema.optional(),
  /** True when the administrator's managed configuration pins the path or forbids falling back from it. */
  authPathPinned: z.boolean(),
  /** oauth, while `authorizing`: the authorization server's link the browser was sent to (no secret: state, PKCE challenge). */
  authorizeUrl: z.string().optional(),
  /** header: the name of the injected header (its value never leaves the keychain). */
  headerName: z.string().optional(),
  asIssuer: z.string().optional(),
  clientId: z.string().optional(),
  toolCount: z.number().optional(),
  scopes: z.array(z.string()),
  tokenExpiresAt: z.number().optional(),
  idJagsThisMonth: z.number(),
  idJagMonthlyQuota: z.number(),
  /** Set once this month's ID-JAGs for the signed-in user at the server's resource app reach the warning threshold. */
  idJagQuotaWarning: z.object({ message: z.string(), fix: z.string() }).optional(),
  lastError: ErrorInfoSchema.optional(),
});

export const IdeSessionSchema = z.object({
  id: z.string(),
  clientName: z.string(),
  clientVersion: z.string().optional(),
  transport: z.enum(['http', 'stdio']),
  endpoint: z.string(),
  connectedAt: z.number(),
  lastSeenAt: z.number(),
});

/**
 * An identity profile (another IdP account: a second tenant, a contractor account) next to the default one, with its
 * sign-in state. `name` is null for the default profile. Its endpoints are `/p/<name>/mcp`, `/p/<name>/api`.
 */
export const IdentityProfileSchema = z.object({
  name: z.string().nullable(),
  status: z.enum(['not_configured', 'signed_out', 'signing_in', 'signed_in', 'expired']),
  /** The signed-in (or expired) user's e-mail, else subject. */
  user: z.string().optional(),
  issuer: z.string().optional(),
  /** Defined by the administrator's managed configuration. */
  managed: z.boolean(),
  /** The profile this surface (the app's dashboard and tray) shows now. */
  current: z.boolean(),
});

export const StatusSchema = z.object({
  version: z.string(),
  session: SessionStatusSchema,
  idp: z.object({ issuer: z.string(), clientId: z.string(), managed: z.boolean() }).optional(),
  servers: z.array(ServerStatusSchema),
  gateway: z.object({ url: z.string(), port: z.number(), running: z.boolean() }),
  secretStore: z.object({ kind: z.enum(['os-keychain', 'file', 'memory']), description: z.string() }),
  ideSessions: z.array(IdeSessionSchema),
  /** Tool changes held back until a person reviews them (tool pinning); the tray shows "N tools to review". */
  pendingToolReviews: z.number().optional(),
  /**
   * Every identity profile and its sign-in state, when more than the default one exists; the rest of the status is the
   * `current` one's. Filled in by the desktop app's facade (the tray shows each); over HTTP, ask `listIdentityProfiles`.
   */
  identities: z.array(IdentityProfileSchema).optional(),
});

export const ActivityEventSchema = z.object({
  id: z.number(),
  at: z.number(),
  kind: z.enum(['tool_call', 'token', 'session', 'server', 'ide']),
  serverId: z.string().optional(),
  /** One line a person reads; built from names and codes only, never a token or tool arguments. */
  summary: z.string(),
  outcome: z.enum(['ok', 'error', 'info']),
  durationMs: z.number().optional(),
  error: ErrorInfoSchema.optional(),
});

export const ProbeResultSchema = z.object({
  url: z.string(),
  reachable: z.boolean(),
  authRequired: z.boolean().optional(),
  resource: z.string().optional(),
  asIssuer: z.string().optional(),
  scopes: z.array(z.string()),
  xaa: z.enum(['supported', 'not_advertised', 'unsupported', 'not_needed', 'unknown']),
  /** True when Lanyard needs a client id at the AS from the user (not known from managed config or defaults). */
  needsClientId: z.boolean(),
  suggestedId: z.string().optional(),
  suggestedName: z.string().optional(),
  /** The path Lanyard would use, the first in order that applies (and that policy allows). */
  path: AuthPathSchema.optional(),
  /** Every path in order, whether it applies and why (or why not) — what the probe says to the user. */
  paths: z.array(z.object({ path: AuthPathSchema, applies: z.boolean(), reason: z.string() })),
  error: ErrorInfoSchema.optional(),
});

export const TestResultSchema = z.object({
  serverId: z.string(),
  ok: z.boolean(),
  steps: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string(), error: ErrorInfoSchema.optional() })),
  toolCount: z.number().optional(),
});

export const AddServerInputSchema = z.object({
  url: z.string().min(1),
  id: z.string().optional(),
  name: z.string().optional(),
  clientId: z.string().optional(),
  clientAuthMethod: ClientAuthMethodSchema.optional(),
  /** Stored in the keychain, never in the config file. */
  clientSecret: z.string().optional(),
  scopes: z.array(z.string()).optional(),
  /** Force a path instead of the probe's choice (refused when policy forbids it). */
  authPath: AuthPathSchema.optional(),
  /** header path: the header's name and value; the value goes to the keychain only. */
  header: z.object({ name: z.string(), value: z.string() }).optional(),
  /** oauth path: a client pre-registered at the server's authorization server (else CIMD, else dynamic registration). */
  oauthClientId: z.string().optional(),
});

export const SettingsSchema = z.object({
  idp: z
    .object({
      issuer: z.string(),
      clientId: z.string(),
      clientAuthMethod: ClientAuthMethodSchema,
      redirectPort: z.number().optional(),
    })
    .optional(),
  gatewayPort: z.number(),
  toolNameSeparator: z.string(),
  allowedOrigins: z.array(z.string()),
  startAtLogin: z.boolean(),
  locked: z.array(z.string()),
});

export const SettingsUpdateSchema = z.object({
  idp: z
    .object({
      issuer: z.string(),
      clientId: z.string(),
      clientAuthMethod: ClientAuthMethodSchema.optional(),
      clientSecret: z.string().optional(),
      redirectPort: z.number().optional(),
    })
    .optional(),
  gatewayPort: z.number().optional(),
  toolNameSeparator: z.string().optional(),
  allowedOrigins: z.array(z.string()).optional(),
  startAtLogin: z.boolean().optional(),
});

export const IdeNameSchema = z.enum(['cursor', 'vscode', 'claude-code', 'claude-desktop', 'windsurf']);

export const ConnectIdeResultSchema = z.object({
  ide: IdeNameSchema,
  configPath: z.string(),
  backupPath: z.string().optional(),
  changed: z.boolean(),
  /** The IDE's install link for the `lanyard stdio` variant (Cursor, VS Code): never carries a token. */
  deepLink: z.string().optional(),
  /** The entry as written, with the local token masked. */
  snippet: z.string(),
  /** `stdio` for IDEs that only start local servers (Claude Desktop), whatever was asked. */
  transport: z.enum(['http', 'stdio']).optional(),
  /** The config file did not exist and was created. */
  created: z.boolean().optional(),
  /** What the user does, if anything, for the IDE to pick the change up (Lanyard never restarts an IDE). */
  reloadHint: z.string().optional(),
});

export const DisconnectIdeResultSchema = z.object({
  ide: IdeNameSchema,
  configPath: z.string(),
  changed: z.boolean(),
  /** restored-backup / deleted-file: the file is byte for byte as before `connectIde`; removed-entry: only Lanyard's entry went. */
  action: z.enum(['restored-backup', 'deleted-file', 'removed-entry', 'none']),
  backupPath: z.string().optional(),
  detail: z.string(),
});

/** After the local token rotated: the HTTP-mode IDE configs rewritten with the new one, and those that could not be. */
export const RotateLocalTokenResultSchema = z.object({
  rewritten: z.array(z.object({ ide: IdeNameSchema, configPath: z.string() })),
  failed: z.array(z.object({ ide: IdeNameSchema, configPath: z.string(), message: z.string() })),
});

/** One tool in a review: what changed, what the injection scan found, and both versions for the side-by-side diff. */
export const ToolReviewToolSchema = z.object({
  name: z.string(),
  change: z.enum(['changed', 'added', 'first-use', 'unpinned']),
  /** `sha256:…` of the new version: what an administrator puts in the managed `toolPins.pins` to approve it for everyone. */
  fingerprint: z.string(),
  /** The pinned fields that differ (name, title, description, inputSchema, outputSchema, annotations). */
  fields: z.array(z.string()),
  findings: z.array(z.object({ kind: z.string(), field: z.string(), detail: z.string() })),
  /** The approved definition (pretty JSON), absent for a tool that was never approved. */
  before: z.string().optional(),
  after: z.string(),
});

/** One item waiting for review: a tool, or (kind `catalog`) a server whose whole catalog changed at once. */
export const ToolReviewSchema = z.object({
  id: z.string(),
  serverId: z.string(),
  kind: z.enum(['tool', 'catalog']),
  summary: z.string(),
  detectedAt: z.number(),
  /** False when the administrator's locked pins decide, not the user. */
  approvable: z.boolean(),
  tools: z.array(ToolReviewToolSchema),
});
/** Which servers or tools a profile lets through: `allow` absent = all; `deny` wins. */
const AllowDenySchema = z.object({ allow: z.array(z.string()).optional(), deny: z.array(z.string()).optional() }).strict();

/**
 * An IDE's tool profile as the dashboard and `lanyard profiles` show it: the effective values (defaults filled in) and
 * the IDE's documented limits. Tools are `<server-id>/<tool name>` (the server's own name).
 */
export const ToolProfileSchema = z.object({
  ide: z.enum(['default', ...IdeNameSchema.options]),
  /** 0 = no budget. */
  budget: z.number(),
  maxNameLength: z.number(),
  /** The IDE's own documented tool limit, if it has one. */
  ideMaxTools: z.number().optional(),
  favourites: z.array(z.string()),
  servers: AllowDenySchema,
  tools: AllowDenySchema,
  /** The user changed it (else: the IDE's defaults). */
  customized: z.boolean(),
  /** Set by the administrator's managed configuration: read-only here. */
  managed: z.boolean(),
});

/** A profile change: the fields given replace the current ones; `reset` goes back to the IDE's defaults. */
export const ToolProfileUpdateSchema = z
  .object({
    ide: z.enum(['default', ...IdeNameSchema.options]),
    budget: z.number().int().optional(),
    maxNameLength: z.number().int().optional(),
    favourites: z.array(z.string()).optional(),
    servers: AllowDenySchema.optional(),
    tools: AllowDenySchema.optional(),
    reset: z.boolean().optional(),
  })
  .strict();

const none = z.object({}).strict();
const ok = z.object({ ok: z.literal(true) });

/** The audit ledger as the Activity view shows it (docs/architecture.md, "Audit ledger"). Never a token or arguments. */
export const AuditLogSchema = z.object({
  /** ok: appending; error: writes fail (records wait in memory); damaged: files were deleted or cut short; off: not recording. */
  state: z.enum(['ok', 'error', 'damaged', 'off']),
  message: z.string().optional(),
  /** The seq of the last record. */
  seq: z.number(),
  pending: z.number(),
  lost: z.number(),
  dir: z.string(),
  otlp: z
    .object({
      endpoint: z.string(),
      state: z.enum(['ok', 'failing']),
      exported: z.number(),
      failed: z.number(),
      lastError: z.string().optional(),
    })
    .optional(),
  chain: z
    .object({
      ok: z.boolean(),
      records: z.number(),
      ms: z.number(),
      firstBreak: z
        .object({
          problem: z.enum(['edited', 'removed', 'reordered', 'malformed']),
          seq: z.number(),
          file: z.string(),
          line: z.number(),
          message: z.string(),
        })
        .optional(),
    })
    .optional(),
  records: z.array(
    z.object({
      seq: z.number(),
      at: z.string(),
      type: z.enum(['call', 'token', 'note']),
      ide: z.string().optional(),
      server: z.string().optional(),
      /** `tools/call echo`, `token: access_token`, … */
      what: z.string(),
      outcome: z.string().optional(),
      code: z.string().optional(),
      ms: z.number().optional(),
    }),
  ),
});
export type AuditLog = z.output<typeof AuditLogSchema>;

/** A paired remote device (WSL, SSH host, dev container): never its token, which the broker keeps only as a hash. */
export const RemoteDeviceSchema = z.object({
  id: z.string(),
  label: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().optional(),
  revokedAt: z.string().optional(),
});

/** Remote development: the pairing requests waiting for their code, and the paired devices. */
export const RemoteAccessSchema = z.object({
  pending: z.array(z.object({ label: z.string(), createdAt: z.string(), expiresAt: z.string() })),
  devices: z.array(RemoteDeviceSchema),
});
export type RemoteDevice = z.output<typeof RemoteDeviceSchema>;
export type RemoteAccess = z.output<typeof RemoteAccessSchema>;

/** Every method: its input and output schema. The HTTP path is `/api/<method>` (POST, JSON body). */
export const ControlMethods = {
  status: { input: none, output: StatusSchema },
  signIn: { input: none, output: ok },
  signOut: { input: none, output: ok },
  /**
   * Starts (or joins) a sign-in and returns at once what the user must see: the link (`browser`: opened here too;
   * `paste`: for a browser on another machine) or the device code (`device`). awaitSignIn or the status reports the end.
   */
  beginSignIn: { input: z.object({ mode: SignInModeSchema.optional() }).strict(), output: SignInPromptSchema },
  /**
   * Completes a `paste` sign-in with the address the browser ended on (or its code=…&state=… part). That carries a
   * one-time code, useless without the PKCE verifier that never leaves the broker; it is never logged or echoed.
   */
  completeSignIn: { input: z.object({ redirectUrl: z.string().max(8192) }).strict(), output: ok },
  /** Waits for the sign-in in progress: ok once signed in, its error (expired code, denied, …) otherwise. */
  awaitSignIn: { input: none, output: ok },
  listServers: { input: none, output: z.array(ServerStatusSchema) },
  addServer: { input: AddServerInputSchema, output: ServerStatusSchema },
  removeServer: { input: z.object({ id: z.string() }).strict(), output: ok },
  setServerEnabled: { input: z.object({ id: z.string(), enabled: z.boolean() }).strict(), output: ServerStatusSchema },
  probeUrl: { input: z.object({ url: z.string() }).strict(), output: ProbeResultSchema },
  testServer: { input: z.object({ id: z.string() }).strict(), output: TestResultSchema },
  listTools: {
    input: z.object({ id: z.string() }).strict(),
    output: z.array(z.object({ name: z.string(), exposedName: z.string(), description: z.string().optional() })),
  },
  /** Writes the IDE's `lanyard` entry: the stdio bridge unless `stdio: false` asks for the HTTP entry (which holds the local token). */
  connectIde: { input: z.object({ ide: IdeNameSchema, stdio: z.boolean().optional() }).strict(), output: ConnectIdeResultSchema },
  disconnectIde: { input: z.object({ ide: IdeNameSchema }).strict(), output: DisconnectIdeResultSchema },
  /** A new local token at once (the old one stops working); HTTP-mode IDE configs Lanyard wrote are rewritten. */
  rotateLocalToken: { input: none, output: RotateLocalTokenResultSchema },
  recentActivity: {
    input: z.object({ limit: z.number().int().min(1).max(500).optional() }).strict(),
    output: z.array(ActivityEventSchema),
  },
  /**
   * oauth path: starts (or joins) the one browser authorization for this server and returns its link at once; the
   * status event reports the outcome.
   */
  authorizeServer: { input: z.object({ id: z.string() }).strict(), output: z.object({ authorizeUrl: z.string() }) },
  /** header path: stores (or replaces) the server's key in the keychain; `headerName` changes the header it goes in. */
  setServerKey: {
    input: z.object({ id: z.string(), value: z.string(), headerName: z.string().optional() }).strict(),
    output: ServerStatusSchema,
  },
  /** Tool changes held back for review (tool pinning and the injection scan). */
  toolReviews: { input: none, output: z.array(ToolReviewSchema) },
  /** Approves the pending version of the named tools of a server (all of its pending tools when `tools` is absent). */
  approveTools: {
    input: z.object({ serverId: z.string(), tools: z.array(z.string()).optional() }).strict(),
    output: z.object({ tools: z.array(z.string()) }),
  },
  /** Rejects them: they stay hidden, and the rejected version never comes back for review. */
  rejectTools: {
    input: z.object({ serverId: z.string(), tools: z.array(z.string()).optional() }).strict(),
    output: z.object({ tools: z.array(z.string()) }),
  },
  getSettings: { input: none, output: SettingsSchema },
  updateSettings: { input: SettingsUpdateSchema, output: SettingsSchema },
  /** The audit ledger: its writer's state, the newest records, and (with `verify`) whether the hash chain is intact. */
  auditLog: {
    input: z.object({ limit: z.number().int().min(1).max(500).optional(), verify: z.boolean().optional() }).strict(),
    output: AuditLogSchema,
  },
  /** Every IDE's tool profile (and `default`, plain `/mcp`). */
  getProfiles: { input: none, output: z.array(ToolProfileSchema) },
  /** Changes one IDE's profile (refused with MANAGED_LOCKED when the administrator sets it). */
  setProfile: { input: ToolProfileUpdateSchema, output: ToolProfileSchema },
  /** The default identity profile first, then every other one (created here or managed), each with its sign-in state. */
  listIdentityProfiles: { input: none, output: z.array(IdentityProfileSchema) },
  /**
   * Switches the identity profile the dashboard and tray show (null: the default one); every other method then acts on
   * it. The desktop app switches its IPC facade; the browser dashboard addresses `/p/<name>/api` from then on.
   */
  selectIdentityProfile: { input: z.object({ name: z.string().nullable() }).strict(), output: z.array(IdentityProfileSchema) },
  /** Remote development: waiting pairing requests (without their codes) and paired devices. */
  listRemoteDevices: { input: none, output: RemoteAccessSchema },
  /** Approves the pairing request whose code the remote side shows; a few wrong codes void every waiting request. */
  approvePairing: { input: z.object({ code: z.string().max(40) }).strict(), output: RemoteDeviceSchema },
  /** Revokes a paired device: its token is refused from the next request on. */
  revokeRemoteDevice: { input: z.object({ id: z.string().max(40) }).strict(), output: RemoteDeviceSchema },
} as const;

export type ControlMethodName = keyof typeof ControlMethods;
export type ControlInput<M extends ControlMethodName> = z.input<(typeof ControlMethods)[M]['input']>;
export type ControlOutput<M extends ControlMethodName> = z.output<(typeof ControlMethods)[M]['output']>;

/** Events pushed to every surface (IPC `webContents.send` in the app, SSE `/api/events` in the browser). */
export const ControlEvents = {
  status: StatusSchema,
  activity: ActivityEventSchema,
} as const;
export type ControlEventName = keyof typeof ControlEvents;
export type ControlEventPayload<E extends ControlEventName> = z.output<(typeof ControlEvents)[E]>;

/** What both transports implement: the broker side (ControlService) and the client side (IPC bridge, HTTP client). */
export type ControlApi = {
  [M in ControlMethodName]: (input: ControlInput<M>) => Promise<ControlOutput<M>>;
};

/** The result envelope on the wire: expected failures are values, not exceptions (docs/architecture.md "Errors"). */
export type ControlResult<T> = { ok: true; value: T } | { ok: false; error: z.output<typeof ErrorInfoSchema> };

export type Status = z.output<typeof StatusSchema>;
export type ServerStatus = z.output<typeof ServerStatusSchema>;
export type ActivityEvent = z.output<typeof ActivityEventSchema>;
export type ProbeResult = z.output<typeof ProbeResultSchema>;
export type TestResult = z.output<typeof TestResultSchema>;
export type Settings = z.output<typeof SettingsSchema>;
export type IdeName = z.output<typeof IdeNameSchema>;
export type ConnectIdeResult = z.output<typeof ConnectIdeResultSchema>;
export type DisconnectIdeResult = z.output<typeof DisconnectIdeResultSchema>;
export type RotateLocalTokenResult = z.output<typeof RotateLocalTokenResultSchema>;
export type SessionStatus = z.output<typeof SessionStatusSchema>;
export type SignInMode = z.output<typeof SignInModeSchema>;
export type SignInPrompt = z.output<typeof SignInPromptSchema>;
export type IdeSession = z.output<typeof IdeSessionSchema>;
export type ToolReview = z.output<typeof ToolReviewSchema>;
export type ToolReviewTool = z.output<typeof ToolReviewToolSchema>;
export type ToolProfile = z.output<typeof ToolProfileSchema>;
export type ToolProfileUpdate = z.input<typeof ToolProfileUpdateSchema>;
export type IdentityProfile = z.output<typeof IdentityProfileSchema>;

export const controlMethodNames = Object.keys(ControlMethods) as ControlMethodName[];

/**
 * The dashboard's pages, by the names deep links (`lanyard://open/<page>`), the tray and the renderer's router share.
 * `home` is "wherever makes sense now": sign-in when signed out, the server list otherwise.
 */
export const DashboardPageSchema = z.enum(['home', 'servers', 'add-server', 'connect', 'activity', 'settings', 'review', 'remote']);
export type DashboardPage = z.output<typeof DashboardPageSchema>;

/**
 * The one event only the desktop shell sends (over IPC, never over HTTP): show a page, optionally with the Add-server
 * form prefilled from a `lanyard://add-server` link. Prefill only — the user still reviews and confirms every field.
 */
export const NavigateSchema = z.object({
  page: DashboardPageSchema,
  addServer: z.object({ url: z.string(), name: z.string().optional(), clientId: z.string().optional() }).strict().optional(),
});
export type Navigate = z.output<typeof NavigateSchema>;
