/**
 * `lanyard://` deep links. The OS hands them to the app as a URL (macOS `open-url`) or as a command-line argument of
 * a second instance (Windows, Linux: `second-instance`); both end up in {@link parseDeepLink}. Pure: no 'electron'.
 *
 * A deep link is untrusted input from any web page or program on the machine: it may only ask the app to show
 * something, never to act (no sign-out, no config change) without the user confirming in the UI.
 */

export const DEEP_LINK_SCHEME = 'lanyard';

/** What a deep link asks for. Unknown actions are ignored, not guessed at. */
export type DeepLink = { action: 'open'; page: DashboardPage };

export type DashboardPage = 'home' | 'servers' | 'connect' | 'activity';
const PAGES: readonly DashboardPage[] = ['home', 'servers', 'connect', 'activity'];

/** Parses `lanyard://open[/<page>]`; anything else (other schemes, unknown actions, junk) gives null. */
export function parseDeepLink(raw: string): DeepLink | null {
  if (typeof raw !== 'string' || raw.length > 2048) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== `${DEEP_LINK_SCHEME}:`) return null;
  // lanyard://open/servers parses as host "open", path "/servers"; lanyard:open/servers as path "open/servers".
  const parts = [url.host, ...url.pathname.split('/')].filter((p) => p !== '');
  const [action, page = 'home', ...rest] = parts;
  if (action !== 'open' || rest.length > 0) return null;
  return PAGES.includes(page as DashboardPage) ? { action: 'open', page: page as DashboardPage } : null;
}

/** The deep link among a second instance's command-line arguments (Windows and Linux), if any. */
export function findDeepLinkArg(argv: readonly string[]): string | undefined {
  return argv.find((arg) => arg.toLowerCase().startsWith(`${DEEP_LINK_SCHEME}:`));
}
