/**
 * "Start at login" on Linux. Electron's app.setLoginItemSettings works on macOS and Windows only; Linux desktops
 * (GNOME, KDE, Xfce, ...) start what the XDG autostart directory lists instead:
 * `$XDG_CONFIG_HOME/autostart/<name>.desktop` (default `~/.config/autostart`), per the Desktop Application Autostart
 * Specification, https://specifications.freedesktop.org/autostart-spec/latest/. Plain Node (no Electron), so it is
 * unit-tested as it runs.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

export const AUTOSTART_FILE_NAME = 'lanyard.desktop';

export interface LinuxAutostartOptions {
  env?: Record<string, string | undefined>;
  /** What the desktop session runs: the AppImage when packaged as one (its mount path changes every run), else the binary. */
  executable: string;
  /** Extra arguments (a development build passes its entry script). */
  args?: readonly string[];
}

export interface LoginItem {
  get(): boolean;
  set(enabled: boolean): void;
  /** Where the entry lives (for messages and tests). */
  readonly file: string;
}

/** `$XDG_CONFIG_HOME/autostart` (an absolute XDG_CONFIG_HOME only, as the XDG Base Directory spec says), else `~/.config/autostart`. */
export function autostartDir(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const configHome = xdg !== undefined && xdg !== '' && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || homedir(), '.config');
  return path.join(configHome, 'autostart');
}

/** One Exec argument, quoted as the Desktop Entry spec requires (https://specifications.freedesktop.org/desktop-entry-spec/latest/exec-variables.html). */
function quoteExecArg(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg.replace(/%/g, '%%');
  return `"${arg.replace(/[\\"`$]/g, (c) => `\\${c}`).replace(/%/g, '%%')}"`;
}

export function desktopEntry(options: Pick<LinuxAutostartOptions, 'executable' | 'args'>): string {
  const exec = [options.executable, ...(options.args ?? [])].map(quoteExecArg).join(' ');
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=Lanyard',
    'Comment=Sign in once; every IDE reaches every MCP server through one local endpoint',
    `Exec=${exec}`,
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

/**
 * The autostart entry as a login item: `set(true)` writes it (atomically, 0644: the session manager reads it as the
 * user), `set(false)` removes it, `get()` says whether it exists and is not disabled (`Hidden=true`).
 */
export function linuxLoginItem(options: LinuxAutostartOptions): LoginItem {
  const file = path.join(autostartDir(options.env), AUTOSTART_FILE_NAME);
  return {
    file,
    get() {
      if (!existsSync(file)) return false;
      try {
        return !/^Hidden\s*=\s*true\s*$/m.test(readFileSync(file, 'utf8'));
      } catch {
        return false;
      }
    },
    set(enabled) {
      if (!enabled) {
        try {
          unlinkSync(file);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
        return;
      }
      mkdirSync(path.dirname(file), { recursive: true });
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, desktopEntry(options), { mode: 0o644 });
      renameSync(temp, file);
    },
  };
}
