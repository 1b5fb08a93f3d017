/**
 * The dashboard's pages and hash routing (`#/servers`): a reload keeps the page, Back works in the browser, and a
 * fragment change is an in-page navigation the Electron shell's navigation guard allows. Pure.
 */
import type { DashboardPage } from '../../../shared/contract';

export type Page = Exclude<DashboardPage, 'home'> | 'sign-in';

export interface PageInfo {
  page: Page;
  title: string;
  /** In the sidebar; sign-in is reached through the account area instead. */
  nav: boolean;
}

export const PAGES: readonly PageInfo[] = [
  { page: 'sign-in', title: 'Sign in', nav: false },
  { page: 'servers', title: 'Servers', nav: true },
  { page: 'add-server', title: 'Add server', nav: true },
  { page: 'connect', title: 'Connect an IDE', nav: true },
  { page: 'activity', title: 'Activity', nav: true },
  { page: 'review', title: 'Review', nav: true },
  { page: 'settings', title: 'Settings', nav: true },
  { page: 'remote', title: 'Remote', nav: true },
];

const KNOWN = new Set<string>(PAGES.map((p) => p.page));

export function pageTitle(page: Page): string {
  return PAGES.find((p) => p.page === page)?.title ?? 'Lanyard';
}

/** `#/servers` → 'servers'; unknown or empty → undefined (the caller picks the home page). */
export function parseHash(hash: string): Page | undefined {
  const name = hash.replace(/^#\/?/, '').split(/[/?]/)[0] ?? '';
  return KNOWN.has(name) ? (name as Page) : undefined;
}

export function hashOf(page: Page): string {
  return `#/${page}`;
}

/** Where "home" goes: sign-in until the user is signed in (or has to set up the IdP), the server list after. */
export function homePage(session: { status: string } | undefined): Page {
  if (session === undefined) return 'servers';
  return session.status === 'signed_in' ? 'servers' : 'sign-in';
}

/** A page asked for by the shell (deep link, tray) → the page to show. */
export function resolvePage(page: DashboardPage, session: { status: string } | undefined): Page {
  return page === 'home' ? homePage(session) : page;
}
