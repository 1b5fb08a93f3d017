/**
 * The dashboard: one React tree for the desktop window and the headless dashboard. It talks only to a LanyardClient
 * (api/client.ts), which is IPC in the app and HTTP + server-sent events in a browser.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { ActivityEvent, IdentityProfile, Navigate, Status } from '../../shared/contract';
import type { ErrorInfo } from '../../shared/errors';
import { errorInfoOf } from './api/bridge';
import type { LanyardClient, LiveState } from './api/client';
import { PageHeader, Sidebar } from './components/Layout';
import { Button, ConfirmDialog, ErrorNotice } from './components/ui';
import { mergeActivity } from './model/activity';
import { hashOf, homePage, pageTitle, parseHash, resolvePage, type Page } from './model/router';
import { serversSummary } from './model/servers';
import { userLabel } from './model/session';
import { ActivityView } from './views/ActivityView';
import { AddServerView } from './views/AddServerView';
import { ConnectView } from './views/ConnectView';
import { RemoteView } from './views/RemoteView';
import { ReviewView } from './views/ReviewView';
import { ServersView } from './views/ServersView';
import { SettingsView } from './views/SettingsView';
import { SignInView } from './views/SignInView';
import type { Toast, ViewContext } from './view-context';

function announcement(status: Status): string {
  const s = status.session;
  const who =
    s.status === 'signed_in'
      ? `Signed in as ${userLabel(s.user)}.`
      : s.status === 'expired'
        ? 'Your sign-in has expired.'
        : s.status === 'signing_in'
          ? 'Signing in.'
          : 'Not signed in.';
  return `${who} ${serversSummary(status).text}`;
}

export function App({ client }: { client: LanyardClient }) {
  const [status, setStatus] = useState<Status>();
  const [loadError, setLoadError] = useState<ErrorInfo>();
  const [activity, setActivity] = useState<ActivityEvent[]>([]);
  const [hashPage, setHashPage] = useState<Page | undefined>(() => parseHash(window.location.hash));
  const [prefill, setPrefill] = useState<{ value: NonNullable<Navigate['addServer']>; seq: number }>();
  const [now, setNow] = useState(() => Date.now());
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [live, setLive] = useState<LiveState>('connecting');
  const [signInPending, setSignInPending] = useState(false);
  const [signInError, setSignInError] = useState<ErrorInfo>();
  const [confirmSignOut, setConfirmSignOut] = useState(false);
  const [signingOut, setSigningOut] = useState(false);
  const [identities, setIdentities] = useState<IdentityProfile[]>([]);
  const statusRef = useRef<Status | undefined>(undefined);
  statusRef.current = status;
  const toastSeq = useRef(0);

  const notify = useCallback((tone: Toast['tone'], text: string) => {
    const id = ++toastSeq.current;
    setToasts((t) => [...t.slice(-3), { id, tone, text }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), tone === 'error' ? 8000 : 4000);
  }, []);

  const go = useCallback((page: Page) => {
    const hash = hashOf(page);
    if (window.location.hash !== hash) window.location.hash = hash;
    else setHashPage(page);
  }, []);

  const load = useCallback(async () => {
    try {
      const [s, recent] = await Promise.all([client.api.status({}), client.api.recentActivity({ limit: 200 })]);
      setStatus(s);
      setActivity((cur) => mergeActivity(cur, recent));
      setLoadError(undefined);
      setIdentities(s.identities ?? (await client.api.listIdentityProfiles({})));
    } catch (e) {
      setLoadError(errorInfoOf(e));
    }
  }, [client]);

  useEffect(() => {
    void load();
    const offs = [
      client.on('status', (s) => {
        setStatus(s);
        if (s.identities) setIdentities(s.identities);
        setLoadError(undefined);
        setNow(Date.now());
      }),
      client.on('activity', (e) => {
        setActivity((cur) => mergeActivity(cur, [e]));
        setNow(Date.now());
      }),
      client.on('navigate', (nav) => {
        if (nav.addServer) setPrefill((p) => ({ value: nav.addServer!, seq: (p?.seq ?? 0) + 1 }));
        go(resolvePage(nav.page, statusRef.current?.session));
      }),
      client.onLiveState(setLive),
    ];
    const onHash = () => setHashPage(parseHash(window.location.hash));
    window.addEventListener('hashchange', onHash);
    const tick = setInterval(() => setNow(Date.now()), 15_000);
    return () => {
      for (const off of offs) off();
      window.removeEventListener('hashchange', onHash);
      clearInterval(tick);
    };
  }, [client, go, load]);

  const page: Page = hashPage ?? homePage(status?.session);

  // Move focus to the new page's heading, so keyboard and screen-reader users land where the content changed.
  const firstPage = useRef(true);
  useEffect(() => {
    if (firstPage.current) {
      firstPage.current = false;
      return;
    }
    document.querySelector<HTMLElement>('.page-title')?.focus();
    document.title = `${pageTitle(page)} — Lanyard`;
  }, [page]);

  const signIn = useCallback(async () => {
    setSignInPending(true);
    setSignInError(undefined);
    try {
      await client.api.signIn({});
      notify('ok', 'Signed in');
      if (parseHash(window.location.hash) === 'sign-in' || parseHash(window.location.hash) === undefined) go('servers');
    } catch (e) {
      setSignInError(errorInfoOf(e));
    } finally {
      setSignInPending(false);
    }
  }, [client, go, notify]);

  const signOut = useCallback(async () => {
    setSigningOut(true);
    try {
      await client.api.signOut({});
      setConfirmSignOut(false);
      notify('info', 'Signed out. Tokens were removed from the keychain.');
      go('sign-in');
    } catch (e) {
      notify('error', errorInfoOf(e).message);
    } finally {
      setSigningOut(false);
    }
  }, [client, go, notify]);

  const liveText = useMemo(() => (status ? announcement(status) : ''), [status]);

  let content;
  if (status === undefined) {
    content = loadError ? (
      <div className="page">
        <PageHeader title={loadError.code === 'local_auth_failed' ? 'Sign in to the dashboard' : 'Can’t reach Lanyard'} />
        <ErrorNotice error={loadError} />
        <div className="row-actions">
          <Button variant="primary" icon="refresh" onClick={() => void load()}>
            Try again
          </Button>
        </div>
      </div>
    ) : (
      <div className="page loading" aria-busy="true">
        <span className="spinner spinner-lg" aria-hidden="true" />
        <p>Connecting to Lanyard…</p>
      </div>
    );
  } else {
    const ctx: ViewContext = { client, status, now, notify, go, refresh: () => void load() };
    switch (page) {
      case 'sign-in':
        content = <SignInView ctx={ctx} pending={signInPending} error={signInError} onSignIn={() => void signIn()} />;
        break;
      case 'servers':
        content = <ServersView ctx={ctx} onSignIn={() => go('sign-in')} />;
        break;
      case 'add-server':
        content = <AddServerView key={prefill?.seq ?? 0} ctx={ctx} prefill={prefill?.value} />;
        break;
      case 'connect':
        content = <ConnectView ctx={ctx} />;
        break;
      case 'activity':
        content = <ActivityView ctx={ctx} events={activity} live={live} />;
        break;
      case 'settings':
        content = <SettingsView ctx={ctx} />;
        break;
      case 'review':
        content = <ReviewView ctx={ctx} />;
        break;
      case 'remote':
        content = <RemoteView ctx={ctx} />;
        break;
    }
  }

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Sidebar
        page={page}
        status={status}
        live={live}
        kind={client.kind}
        onSignOut={() => setConfirmSignOut(true)}
        onSignIn={() => go('sign-in')}
        identities={identities}
        onSelectIdentity={(name) => {
          client.api.selectIdentityProfile({ name }).then(
            (list) => {
              setIdentities(list);
              setActivity([]);
              void load();
            },
            (e: unknown) => notify('error', errorInfoOf(e).message),
          );
        }}
      />
      <main id="main" className="main" tabIndex={-1}>
        {content}
      </main>
      <div className="visually-hidden" role="status" aria-live="polite">
        {liveText}
      </div>
      <ol className="toasts" aria-live="polite" aria-label="Notifications">
        {toasts.map((t) => (
          <li key={t.id} className={`toast toast-${t.tone}`} role={t.tone === 'error' ? 'alert' : undefined}>
            {t.text}
          </li>
        ))}
      </ol>
      <ConfirmDialog
        open={confirmSignOut}
        title="Sign out of Lanyard?"
        confirmLabel="Sign out"
        danger
        busy={signingOut}
        onConfirm={() => void signOut()}
        onCancel={() => setConfirmSignOut(false)}
      >
        <p>Your IDEs lose access to every server until you sign in again. Cached tokens are removed from the keychain.</p>
      </ConfirmDialog>
    </div>
  );
}
