import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

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
      child.once('error', () => {
        // Other tools show the opener's raw ENOENT here; say what it means and what to do.
        options.err(`(No browser could be started here: ${command} is not available. Open the address above on any machine.)\n`);
        resolve();
      });
      child.once('spawn', () => {
        child.unref();
        resolve();
      });
    } catch {
      resolve();
    }
  });
}

/**
 * Why no browser can be opened on this machine, or undefined when one probably can: on Linux, no display (an SSH
 * session, a container, a server) or no `xdg-open` (nor WSL's `wslview`) on the PATH. `lanyard login` then signs in
 * with a link for another machine and the redirect address pasted back, instead of launching an opener that fails.
 * macOS and Windows always have their opener.
 */
export function browserUnavailable(env: Record<string, string | undefined>, platform: NodeJS.Platform): string | undefined {
  // LANYARD_NO_BROWSER already means "print links instead of opening them": the loopback sign-in waits as before.
  if (platform !== 'linux' || env.LANYARD_NO_BROWSER) return undefined;
  const wsl = Boolean(env.WSL_DISTRO_NAME || env.WSL_INTEROP);
  if (!wsl && !env.DISPLAY && !env.WAYLAND_DISPLAY) return 'there is no display here (an SSH session, a container or a server)';
  const openers = wsl ? ['wslview', 'xdg-open'] : ['xdg-open'];
  if (!openers.some((name) => onPath(name, env.PATH))) return `${openers.join(' or ')} is not installed here`;
  return undefined;
}

function onPath(name: string, searchPath: string | undefined): boolean {
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}
