/**
 * `lanyard://` deep links. The OS hands them to the app as a URL (macOS `open-url`) or as a command-line argument of
 * a second instance (Windows, Linux: `second-instance`); both end up in {@link parseDeepLink}. Pure: no 'electron'.
 *
 * A deep link is untrusted input from any web page or program on the machine: it may only ask the app to show
 * something, never to act (no sign-out, no config change, no server added) without the user confirming in the UI.
 *
 *   lanyard://open[/<page>]                                   show a dashboard page
 *   lanyard://add-server?url=<https url>[&name=..][&client_id=..]   open the Add-server form, prefilled
 */
import type { DashboardPage, Navigate } from '../../shared/contract';
import { displayUnsafe } from '../../shared/display-safe';
import { isLoopbackHost } from './security';

export const DEEP_LINK_SCHEME = 'lanyard';

/** What a deep link asks for. Unknown actions are ignored, not guessed at. */
export type DeepLink = { action: 'open'; page: DashboardPage } | { action: 'add-server'; url: string; name?: string; clientId?: string };

const PAGES: readonly DashboardPage[] = ['home', 'servers', 'add-server', 'connect', 'activity', 'settings'];
const ADD_SERVER_PARAMS = new Set(['url', 'name', 'client_id']);
const MAX_LINK = 2048;
const MAX_NAME = 80;
const MAX_CLIENT_ID = 200;

/** Parses a `lanyard:` link; anything else (other schemes, unknown actions or parameters, junk) gives null. */
export function parseDeepLink(raw: string): DeepLink | null {
  if (typeof raw !== 'string' || raw.length > MAX_LINK) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== `${DEEP_LINK_SCHEME}:` || url.username !== '' || url.password !== '' || url.hash !== '') return null;
  // lanyard://open/servers parses as host "open", path "/servers"; lanyard:open/servers as path "open/servers".
  const parts = [url.host, ...url.pathname.split('/')].filter((p) => p !== '');
  const [action, ...rest] = parts;
  if (action === 'open') {
    if (url.search !== '' || rest.length > 1) return null;
    const page = rest[0] ?? 'home';
    return PAGES.includes(page as DashboardPage) ? { action: 'open', page: page as DashboardPage } : null;
  }
  if (action === 'add-server') return rest.length === 0 ? parseAddServer(url.searchParams) : null;
  return null;
}

function parseAddServer(params: URLSearchParams): DeepLink | null {
  // Each parameter at most once and nothing unexpected: a link that carries more than we understand is refused whole.
  const keys = [...params.keys()];
  if (keys.some((k) => !ADD_SERVER_PARAMS.has(k)) || new Set(keys).size !== keys.length) return null;
  const serverUrl = params.get('url');
  if (serverUrl === null || !isServerUrl(serverUrl)) return null;
  const link: DeepLink = { action: 'add-server', url: serverUrl };
  const name = params.get('name');
  if (name !== null) {
    if (!isPlainText(name, MAX_NAME)) return null;
    link.name = name.trim();
  }
  const clientId = params.get('client_id');
  if (clientId !== null) {
    // RFC 6749 client_id: VSCHAR (printable ASCII). No spaces, nothing that could pass for markup.
    if (clientId.length === 0 || clientId.length > MAX_CLIENT_ID || !/^[\x21-\x7E]+$/.test(clientId) || /[<>"'`]/.test(clientId))
      return null;
    link.clientId = clientId;
  }
  return link;
}

/**
 * The MCP server URL a link may prefill: https, or http to this machine only (the same rule the config file applies),
 * no credentials, no fragment.
 */
function isServerUrl(value: string): boolean {
  if (value.length > 1024 || value.trim() !== value || /\s/.test(value) || value.includes('#')) return false;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username !== '' || url.password !== '') return false;
  return url.protocol === 'https:' ? url.hostname !== '' : url.protocol === 'http:' && isLoopbackHost(url.hostname);
}

/** A short display name: printable, no control or bidi-override characters (they could disguise the URL shown next to it). */
function isPlainText(value: string, max: number): boolean {
  const trimmed = value.trim();
  // The shared rule for display strings, plus angle brackets: the name is shown next to markup-like text in dialogs.
  return trimmed.length > 0 && trimmed.length <= max && !displayUnsafe(trimmed) && !/[<>]/.test(trimmed);
}

/** What the renderer is told to show for a link. */
export function navigationFor(link: DeepLink): Navigate {
  if (link.action === 'open') return { page: link.page };
  return {
    page: 'add-server',
    addServer: {
      url: link.url,
      ...(link.name !== undefined ? { name: link.name } : {}),
      ...(link.clientId !== undefined ? { clientId: link.clientId } : {}),
    },
  };
}

/** The deep link among a second instance's command-line arguments (Windows and Linux), if any. */
export function findDeepLinkArg(argv: readonly string[]): string | undefined {
  return argv.find((arg) => arg.toLowerCase().startsWith(`${DEEP_LINK_SCHEME}:`));
}
