import { AUTH_PATH_LABELS, AUTH_PATHS, actionFor, type AuthPath } from '../../shared/auth-paths';
import type { ProbeResult, ServerStatus } from '../../shared/contract';
import { outside, table } from './output';

/**
 * How the CLI shows a server's auth path: the probe's verdict for every path in order, and for a configured server its
 * path, its state and the one thing the user has to do about it (the same action the dashboard's button offers).
 */

/** What a person reads for a server's state. */
const STATE_TEXT: Record<ServerStatus['authState'], string> = {
  ready: 'ready',
  sign_in_required: 'sign-in needed',
  authorization_required: 'authorization needed',
  authorizing: 'waiting for the browser',
  key_required: 'key needed',
  blocked: 'blocked',
  error: 'error',
  unknown: 'not checked yet',
};

export function stateText(server: Pick<ServerStatus, 'authState' | 'enabled'>): string {
  return server.enabled ? STATE_TEXT[server.authState] : 'disabled';
}

/**
 * The one action a server needs, as a command to run, or the administrator's reason when policy blocks it. Undefined
 * when nothing is needed. Every part that came from outside Lanyard (the IdP's reason) is escaped for the terminal.
 */
export function actionText(
  server: Pick<ServerStatus, 'id' | 'authState' | 'action' | 'headerName' | 'lastError' | 'enabled' | 'authorizeUrl'>,
): string | undefined {
  if (!server.enabled) return `run \`lanyard servers enable ${server.id}\``;
  if (server.authState === 'blocked') return `blocked by your administrator: ${outside(server.lastError?.message ?? 'no reason given')}`;
  switch (server.action ?? actionFor(server.authState)) {
    case 'sign_in':
      return 'run `lanyard login`';
    case 'authorize':
      return server.authState === 'authorizing' && server.authorizeUrl
        ? `finish in the browser (${outside(server.authorizeUrl)}), or run \`lanyard servers authorize ${server.id}\``
        : `run \`lanyard servers authorize ${server.id}\``;
    case 'set_key':
      return `run \`lanyard servers set-key ${server.id}${server.headerName ? ` --header ${outside(server.headerName)}` : ''} --value-stdin\``;
    default:
      break;
  }
  if (server.authState === 'error' && server.lastError) return `${outside(server.lastError.message)} → ${outside(server.lastError.fix)}`;
  return undefined;
}

/** `xaa` → `xaa (Cross-App Access)`; `unknown` stays as it is. */
export function pathText(path: ServerStatus['authPath']): string {
  return path === 'unknown' ? 'unknown' : path;
}

/** The server table of `lanyard servers list` and `lanyard status`: id, name, URL, path, state, action. */
export function serverRows(servers: ServerStatus[]): string[][] {
  return servers.map((s) => [
    s.id,
    s.name,
    s.url,
    `${pathText(s.authPath)}${s.authPathPinned ? ' (pinned)' : ''}`,
    stateText(s),
    [s.managed ? '[managed]' : '', actionText(s) ?? ''].filter(Boolean).join(' '),
  ]);
}

/**
 * The probe as `lanyard servers add` prints it: every path in the fixed order, whether it applies and why, and which
 * one Lanyard uses. `chosen` is the path that will be recorded (the probe's, or the one `--auth` asked for).
 */
export function renderProbe(probe: ProbeResult, chosen: AuthPath | undefined): string {
  if (!probe.reachable)
    return `Probed ${outside(probe.url)}: no answer${probe.error ? ` (${outside(probe.error.message)})` : ''}; the path is chosen when the server is first used.\n`;
  const lines: string[] = [`Probed ${outside(probe.url)}:`];
  const byPath = new Map(probe.paths.map((p) => [p.path, p]));
  const rows: string[][] = [];
  for (const path of AUTH_PATHS) {
    const verdict = byPath.get(path);
    if (!verdict) continue;
    const mark = path === chosen ? '→' : verdict.applies ? '✓' : '✗';
    rows.push([mark, path, AUTH_PATH_LABELS[path], `${verdict.reason}${path === chosen ? '  ← chosen' : ''}`]);
  }
  if (rows.length) lines.push(table(rows).trimEnd());
  else if (probe.error) lines.push(`  ${outside(probe.error.message)}`);
  else lines.push('  (the probe said nothing about the paths)');
  if (chosen && !byPath.get(chosen)?.applies && probe.paths.length)
    lines.push(`  Using ${chosen} (${AUTH_PATH_LABELS[chosen]}) as asked, although the probe did not find it applies.`);
  return `${lines.join('\n')}\n`;
}
