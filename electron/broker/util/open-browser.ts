import { spawn } from 'node:child_process';

/**
 * Opens a URL in the user's default browser (the system browser, never an embedded view: RFC 8252 §8.12), the way a
 * headless broker can: `open` on macOS, `start` on Windows, `xdg-open` elsewhere. Always also reports the URL through
 * `announce`, so a user on SSH/WSL without a browser can open it by hand.
 */
export function systemBrowserOpener(
  announce: (url: string) => void,
  platform: NodeJS.Platform = process.platform,
): (url: string) => Promise<void> {
  return async (url: string) => {
    const u = new URL(url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('Only http(s) URLs are opened.');
    announce(url);
    const [command, args] =
      platform === 'darwin'
        ? ['open', [url]]
        : platform === 'win32'
          ? ['cmd', ['/c', 'start', '""', url.replace(/&/g, '^&')]]
          : ['xdg-open', [url]];
    await new Promise<void>((resolve) => {
      try {
        const child = spawn(command, args, { stdio: 'ignore', detached: true });
        child.on('error', () => resolve()); // no browser here: the announced URL is the way
        child.on('spawn', () => {
          child.unref();
          resolve();
        });
      } catch {
        resolve();
      }
    });
  };
}
