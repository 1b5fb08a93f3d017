/**
 * The window's frame: the sidebar (brand, navigation, the account area) and the page header every view uses.
 */
import type { ReactNode } from 'react';
import type { IdentityProfile, Status } from '../../../shared/contract';
import { hashOf, PAGES, type Page } from '../model/router';
import { serversSummary } from '../model/servers';
import { idpHostOf, userLabel } from '../model/session';
import type { LiveState } from '../api/client';
import { Icon, Logo, type IconName } from './Icon';
import { StatusDot } from './ui';

const NAV_ICONS: Record<Page, IconName> = {
  'sign-in': 'user',
  servers: 'servers',
  'add-server': 'plus',
  connect: 'plug',
  activity: 'activity',
  settings: 'settings',
  review: 'shield',
  remote: 'laptop',
};

function initials(label: string): string {
  const name = label.split('@')[0] ?? label;
  const parts = name.split(/[.\s_-]+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts[1]?.[0] ?? '')).toUpperCase();
}

export function Sidebar({
  page,
  status,
  live,
  kind,
  onSignOut,
  onSignIn,
  identities = [],
  onSelectIdentity,
}: {
  page: Page;
  status: Status | undefined;
  live: LiveState;
  kind: 'app' | 'browser';
  onSignOut: () => void;
  onSignIn: () => void;
  /** Every identity profile (the switcher shows when there is more than the default one). */
  identities?: IdentityProfile[];
  onSelectIdentity?: (name: string | null) => void;
}) {
  const session = status?.session;
  const summary = status ? serversSummary(status) : undefined;
  return (
    <aside className="sidebar">
      <div className="brand">
        <Logo />
        <div>
          <div className="brand-name">Lanyard</div>
          <div className="brand-sub">{kind === 'app' ? 'MCP access broker' : 'Dashboard · 127.0.0.1'}</div>
        </div>
      </div>
      <nav aria-label="Main">
        <ul className="nav">
          {PAGES.filter((p) => p.nav).map((p) => (
            <li key={p.page}>
              <a
                className={`nav-item${p.page === page ? ' active' : ''}`}
                href={hashOf(p.page)}
                aria-current={p.page === page ? 'page' : undefined}
              >
                <Icon name={NAV_ICONS[p.page]} size={17} />
                <span>{p.title}</span>
                {p.page === 'servers' && summary && summary.failing > 0 ? (
                  <span className="nav-badge" aria-label={`${summary.failing} need attention`}>
                    {summary.failing}
                  </span>
                ) : null}
                {p.page === 'review' && status?.pendingToolReviews ? (
                  <span className="nav-badge" aria-label={`${status.pendingToolReviews} tools to review`}>
                    {status.pendingToolReviews}
                  </span>
                ) : null}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div className="sidebar-foot">
        {status && !status.gateway.running ? (
          <p className="sidebar-warn">
            <StatusDot tone="busy" /> Local endpoint stopped
          </p>
        ) : null}
        {live === 'reconnecting' ? (
          <p className="sidebar-warn" role="status">
            <StatusDot tone="busy" pulse /> Reconnecting…
          </p>
        ) : null}
        {identities.length > 1 ? <IdentitySwitcher identities={identities} onSelect={onSelectIdentity} /> : null}
        {session?.status === 'signed_in' ? (
          <div className="account">
            <span className="avatar" aria-hidden="true">
              {initials(userLabel(session.user))}
            </span>
            <div className="account-text">
              <span className="account-name" title={userLabel(session.user)}>
                {session.user.name ?? userLabel(session.user)}
              </span>
              <span className="account-state" title={session.user.email}>
                {session.user.email && session.user.name ? session.user.email : 'Signed in'}
              </span>
            </div>
            <button type="button" className="icon-btn" onClick={onSignOut} aria-label="Sign out" title="Sign out">
              <Icon name="signOut" />
            </button>
          </div>
        ) : session?.status === 'expired' ? (
          <button type="button" className="account account-button" onClick={onSignIn}>
            <span className="avatar avatar-expired" aria-hidden="true">
              {initials(userLabel(session.user))}
            </span>
            <span className="account-text">
              <span className="account-name">{session.user.name ?? userLabel(session.user)}</span>
              <span className="account-state expired">
                <StatusDot tone="error" /> Sign-in expired — sign in again
              </span>
            </span>
          </button>
        ) : (
          <a className="account" href={hashOf('sign-in')}>
            <span className="avatar avatar-empty" aria-hidden="true">
              <Icon name="user" size={16} />
            </span>
            <span className="account-text">
              <span className="account-name">{session?.status === 'signing_in' ? 'Signing in…' : 'Not signed in'}</span>
              <span className="account-state">{status?.idp ? idpHostOf(status.idp.issuer) : 'No identity provider set up'}</span>
            </span>
          </a>
        )}
        {status ? <div className="version">v{status.version}</div> : null}
      </div>
    </aside>
  );
}

const IDENTITY_STATE: Record<IdentityProfile['status'], string> = {
  signed_in: 'signed in',
  signing_in: 'signing in',
  expired: 'sign-in expired',
  signed_out: 'not signed in',
  not_configured: 'not set up',
};

/** More than one identity (a second tenant, a contractor account): which one this dashboard shows, and each one's state. */
function IdentitySwitcher({
  identities,
  onSelect,
}: {
  identities: IdentityProfile[];
  onSelect: ((name: string | null) => void) | undefined;
}) {
  const current = identities.find((p) => p.current);
  return (
    <label className="identity-switcher">
      <span className="account-state">Identity</span>
      <select
        value={current?.name ?? ''}
        onChange={(e) => onSelect?.(e.target.value === '' ? null : e.target.value)}
        aria-label="Identity profile"
      >
        {identities.map((p) => (
          <option key={p.name ?? ''} value={p.name ?? ''}>
            {`${p.name ?? 'Default'} — ${p.user && p.status === 'signed_in' ? p.user : IDENTITY_STATE[p.status]}`}
          </option>
        ))}
      </select>
    </label>
  );
}

export function PageHeader({ title, subtitle, actions }: { title: string; subtitle?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-head">
      <div>
        <h1 tabIndex={-1} className="page-title">
          {title}
        </h1>
        {subtitle ? <p className="page-sub">{subtitle}</p> : null}
      </div>
      {actions ? <div className="page-actions">{actions}</div> : null}
    </header>
  );
}
