import { IdeNameSchema, type IdeName } from '../../../../shared/contract';

/**
 * How an IDE is identified: by the endpoint `lanyard connect` wrote for it. HTTP entries point at
 * `http://127.0.0.1:<port>/ide/<ide>/mcp` and stdio entries run `lanyard stdio --ide <ide>`, which bridges to the same
 * path. `/ide/…` cannot collide with the relay's `/mcp/<server-id>`; plain `/mcp` stays the default profile, so
 * entries written by older versions keep working until `connect` rewrites them.
 */

const IDE_PATH = /^\/ide\/([a-z0-9-]{1,40})\/mcp\/?$/;

/** `/ide/<ide>/mcp` */
export function ideMcpPath(ide: IdeName): string {
  return `/ide/${ide}/mcp`;
}

/** The IDE a request path names, or undefined (not an IDE path, or an IDE Lanyard does not know). */
export function ideFromPath(pathname: string): IdeName | undefined {
  const m = IDE_PATH.exec(pathname);
  if (!m) return undefined;
  const parsed = IdeNameSchema.safeParse(m[1]);
  return parsed.success ? parsed.data : undefined;
}

/** The IDE's own URL from the gateway's `/mcp` URL (`http://127.0.0.1:47821/mcp` → `…/ide/cursor/mcp`). */
export function ideMcpUrl(mcpUrl: string, ide: IdeName): string {
  const url = new URL(mcpUrl);
  // An identity profile's endpoint keeps its prefix: /p/<profile>/mcp → /p/<profile>/ide/<ide>/mcp.
  url.pathname = `${/^(\/p\/[^/]+)\//.exec(url.pathname)?.[1] ?? ''}${ideMcpPath(ide)}`;
  return url.toString();
}

/** `lanyard stdio` arguments that name the IDE (appended to the launcher's `stdio`). */
export function ideStdioArgs(ide: IdeName): string[] {
  return ['--ide', ide];
}
