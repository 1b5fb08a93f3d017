/**
 * Formatting for people: times, durations, hosts. Pure functions of their inputs (the clock is a parameter), so the
 * renderer's unit tests pin every wording under Node.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "just now", "5 min ago", "in 3 h", "yesterday", "3 days ago", then a date. */
export function relativeTime(at: number, now: number): string {
  const delta = at - now;
  const abs = Math.abs(delta);
  const future = delta > 0;
  if (abs < 45_000) return future ? 'in a few seconds' : 'just now';
  if (abs < HOUR) {
    const m = Math.max(1, Math.round(abs / MINUTE));
    return future ? `in ${m} min` : `${m} min ago`;
  }
  if (abs < DAY) {
    const h = Math.round(abs / HOUR);
    return future ? `in ${h} h` : `${h} h ago`;
  }
  const d = Math.round(abs / DAY);
  if (d === 1) return future ? 'tomorrow' : 'yesterday';
  if (d < 7) return future ? `in ${d} days` : `${d} days ago`;
  return shortDate(at);
}

/** "12 Mar 2025", in UTC so it does not depend on the machine's zone (tests, screenshots). */
export function shortDate(at: number): string {
  const d = new Date(at);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${d.getUTCDate()} ${months[d.getUTCMonth()] ?? ''} ${d.getUTCFullYear()}`;
}

/** "14:05:09" local time, for activity rows. */
export function clockTime(at: number): string {
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** "85 ms", "1.2 s", "2 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** A token's expiry as a person reads it. */
export function expiryLabel(expiresAt: number | undefined, now: number): string {
  if (expiresAt === undefined) return 'No token yet';
  if (expiresAt <= now) return `Expired ${relativeTime(expiresAt, now)}`;
  return `Expires ${relativeTime(expiresAt, now)}`;
}

/** `https://mcp.example.com:8443/mcp` → `mcp.example.com:8443`; the text itself when it is not a URL. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** An issuer without its scheme: `https://acme.okta.com/oauth2/default` → `acme.okta.com/oauth2/default`. */
export function issuerLabel(issuer: string): string {
  try {
    const u = new URL(issuer);
    const p = u.pathname.replace(/\/$/, '');
    return `${u.host}${p}`;
  } catch {
    return issuer;
  }
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
