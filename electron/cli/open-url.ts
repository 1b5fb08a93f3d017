import { spawn } from 'node:child_process';

/**
 * Opens a URL in the user's default browser (or the IDE an install link names) with the OS's own opener — `open`
 * (macOS), `start` (Windows), `xdg-open` (Linux) — and always prints it to stderr too: on SSH, WSL or a server there is
 * no browser to open, and the user copies the address instead. Never fails: a missing opener is not an error.
 *
 * Only the schemes Lanyard itself produces are opened (https, loopback http for a local IdP, and the IDEs' install
 * links); anything else is printed only, so a URL from a server can never launch an arbitrary handler.
 */
export async function openInBrowser(
  url: string,
  options: { platform: NodeJS.Platform; env: Record<string, string | undefined>; err: (text: string) => void },
): Promise<void> {
  options.err(`Opening ${url}\n(If nothing opens, copy that address into your browser.)\n`);
  if (options.env.LANYARD_NO_BROWSER) return;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return;
  }
  const loopbackHttp = parsed.protocol === 'http:' && /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(parsed.hostname);
  if (!(parsed.protocol === 'https:' || loopbackHttp || parsed.protocol === 'cursor:' || parsed.protocol === 'vscode:')) return;
  const [command, args, verbatim] =
    options.platform === 'darwin'
      ? ['open', [url], false]
      : options.platform === 'win32'
        ? // `start` is a cmd built-in; the empty title argument keeps a quoted URL from being taken as the title, and
          // ^-escaping keeps cmd from splitting the URL at `&`.
          ['cmd', ['/d', '/s', '/c', `start "" "${url.replace(/[&^|<>]/g, '^$&')}"`], true]
        : ['xdg-open', [url], false];
  await new Promise<void>((resolve) => {
    try {
      const child = spawn(command as string, args as string[], {
        detached: true,
        stdio: 'ignore',
        windowsVerbatimArguments: verbatim as boolean,
      });
      child.once('error', () => resolve());
      child.once('spawn', () => {
        child.unref();
        resolve();
      });
    } catch {
      resolve();
    }
  });
}
