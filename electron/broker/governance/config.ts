import { z } from 'zod';

/**
 * Governance settings in config.json and in the administrator's managed configuration (docs/architecture.md,
 * "Governance"). Kept here, not in config/schema.ts, so the schema files only gain one line each.
 */

export const SECRET_SCAN_MODES = ['off', 'warn', 'block'] as const;
export type SecretScanMode = (typeof SECRET_SCAN_MODES)[number];
const mode = z.enum(SECRET_SCAN_MODES);

/** `secretScan`: the global mode and per-server overrides (server id → mode). Default: warn. */
export const SecretScanConfigSchema = z.strictObject({
  policy: mode.optional(),
  servers: z.record(z.string(), mode).optional(),
});
export type SecretScanConfig = z.output<typeof SecretScanConfigSchema>;

const httpUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password;
    } catch {
      return false;
    }
  },
  { error: 'must be an http(s) URL without credentials (put them in headers)' },
);

/** `audit` in the user's config: the salted hash of tool arguments (off by default). */
export const AuditConfigSchema = z.strictObject({
  hashArguments: z.boolean().optional(),
});

/** `audit` in the managed configuration: also the OpenTelemetry collector records are exported to (OTLP/HTTP logs). */
export const ManagedAuditConfigSchema = z.strictObject({
  hashArguments: z.boolean().optional(),
  otlp: z
    .strictObject({
      /** The collector's OTLP/HTTP logs endpoint, e.g. https://otel.example.com/v1/logs. */
      endpoint: httpUrl,
      /** Headers sent with every export (e.g. an API key of the collector). */
      headers: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
});
export type ManagedAuditConfig = z.output<typeof ManagedAuditConfigSchema>;

/**
 * The mode for one server. With `secretScan` locked by the administrator only the managed settings count; otherwise
 * the user's per-server, then the managed per-server, then the user's global, then the managed global mode; warn when
 * nobody set one.
 */
export function secretScanMode(
  serverId: string,
  user: SecretScanConfig | undefined,
  managed: SecretScanConfig | undefined,
  locked: boolean,
): SecretScanMode {
  const own = locked ? undefined : user;
  return own?.servers?.[serverId] ?? managed?.servers?.[serverId] ?? own?.policy ?? managed?.policy ?? 'warn';
}
