import { execFile } from 'node:child_process';

/**
 * The desktop's own PAC setting, for Lanyard running headless on a developer's desktop (`lanyard serve`, `lanyard
 * stdio`): where the operating system exposes it with a command that only reads it.
 *
 *   - GNOME (and desktops using its settings): `gsettings get org.gnome.system.proxy mode` is 'auto', and
 *     `autoconfig-url` holds the URL;
 *   - macOS: `scutil --proxy` shows `ProxyAutoConfigEnable : 1` and `ProxyAutoConfigURLString : <url>`;
 *   - Windows: `reg query "HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings" /v AutoConfigURL`.
 *
 * Not read: the desktop's manual proxy settings (set HTTPS_PROXY), KDE's own settings file, WPAD discovery ("detect
 * settings automatically") — and nothing here runs when the config or the environment already names a proxy or a PAC.
 * The Electron app needs none of this: Chromium reads all of them.
 */

export interface SystemPac {
  location: string;
  /** Where it was read, for doctor ("GNOME proxy settings"). */
  from: string;
}

export type ReadCommand = (file: string, args: string[]) => Promise<string>;

const TIMEOUT_MS = 3_000;

/** Runs a read-only command; its output, or '' when it is missing, fails or takes too long. */
export const runReadCommand: ReadCommand = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: TIMEOUT_MS, windowsHide: true, encoding: 'utf8' }, (error, stdout) => resolve(error ? '' : stdout));
  });

const usable = (value: string | undefined): string | undefined => {
  const v = value?.trim();
  return v && /^(https?|file):\/\//i.test(v) ? v : undefined;
};

/** gsettings prints strings quoted, GVariant style: 'auto'. */
const unquote = (text: string) => text.trim().replace(/^'(.*)'$/s, '$1');

export async function readSystemPac(platform: NodeJS.Platform, run: ReadCommand = runReadCommand): Promise<SystemPac | undefined> {
  if (platform === 'darwin') {
    const out = await run('/usr/sbin/scutil', ['--proxy']);
    if (!/ProxyAutoConfigEnable\s*:\s*1/.test(out)) return undefined;
    const location = usable(/ProxyAutoConfigURLString\s*:\s*(\S+)/.exec(out)?.[1]);
    return location ? { location, from: 'macOS proxy settings' } : undefined;
  }
  if (platform === 'win32') {
    const out = await run('reg', ['query', 'HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings', '/v', 'AutoConfigURL']);
    const location = usable(/AutoConfigURL\s+REG_SZ\s+(\S+)/i.exec(out)?.[1]);
    return location ? { location, from: 'Windows proxy settings' } : undefined;
  }
  if (platform === 'linux' || platform === 'freebsd' || platform === 'openbsd') {
    const mode = unquote(await run('gsettings', ['get', 'org.gnome.system.proxy', 'mode']));
    if (mode !== 'auto') return undefined;
    const location = usable(unquote(await run('gsettings', ['get', 'org.gnome.system.proxy', 'autoconfig-url'])));
    return location ? { location, from: 'GNOME proxy settings' } : undefined;
  }
  return undefined;
}
