import type { IdeConnectDeps } from '../control/ide-control';
import { LANYARD_ENTRY, type StdioLauncher } from '../ide/targets';
import { resolveStdioLauncher } from '../ide/launcher';
import { identityPathPrefix } from './names';

/** The IDE entry of an identity profile: `lanyard-<profile>`, next to the default profile's `lanyard`. */
export function identityEntryName(profile: string): string {
  return `${LANYARD_ENTRY}-${profile}`;
}

/** The stdio launcher of an identity profile: the default profile's (same home, same CLI) with `--profile <name>`. */
export function identityLauncher(launcher: StdioLauncher, profile: string): StdioLauncher {
  return { ...launcher, args: [...launcher.args, '--profile', profile] };
}

/**
 * How an identity profile's broker writes IDE entries (`lanyard connect <ide> --profile`, the dashboard's Connect page
 * while that profile is selected): its own entry name, `lanyard stdio --profile <name>` started with the default
 * profile's home (where the running broker's runtime file is), and the `/p/<name>/mcp` endpoint for HTTP entries.
 */
export function identityIdeDeps(
  root: IdeConnectDeps | undefined,
  rootHome: string,
  profile: string,
  env?: NodeJS.ProcessEnv,
): IdeConnectDeps {
  const rootEndpoint = root?.endpoint;
  return {
    ...root,
    entryName: identityEntryName(profile),
    launcher: () => identityLauncher(root?.launcher?.() ?? resolveStdioLauncher({ home: rootHome, ...(env ? { env } : {}) }), profile),
    ...(rootEndpoint
      ? {
          endpoint: async () => {
            const endpoint = await rootEndpoint();
            return { ...endpoint, url: endpoint.url.replace(/\/mcp\/?$/, `${identityPathPrefix(profile)}/mcp`) };
          },
        }
      : {}),
  };
}
