/**
 * Servers: each configured MCP server with its health, its auth path and where it stands on it (with the one action
 * it needs: Sign in, Authorize or Set key — or why the administrator blocks it), tools, token, IdP quota and last error.
 */
import { useEffect, useId, useState, type FormEvent } from 'react';
import type { ServerStatus, TestResult } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import type { ViewContext } from '../view-context';
import { errorInfoOf } from '../api/bridge';
import { Icon } from '../components/Icon';
import { KeyHeaderFields } from '../components/KeyHeaderFields';
import { PageHeader } from '../components/Layout';
import { Button, ConfirmDialog, EmptyState, ErrorNotice, Notice, StatusDot, Switch } from '../components/ui';
import { reviewCountText } from '../model/review';
import { keyFormFor, serverRowModel, serversSummary, submitKeyForm, type AuthModel, type KeyForm, type QuotaModel } from '../model/servers';

type Tool = { name: string; exposedName: string; description?: string | undefined };

export function ServersView({ ctx, onSignIn }: { ctx: ViewContext; onSignIn: () => void }) {
  const { status } = ctx;
  const summary = serversSummary(status);
  const session = status.session.status;
  return (
    <div className="page">
      <PageHeader
        title="Servers"
        subtitle={summary.text}
        actions={
          <Button variant="primary" icon="plus" onClick={() => ctx.go('add-server')}>
            Add server
          </Button>
        }
      />
      {status.pendingToolReviews ? (
        <Notice tone="warn" icon="shield" title={reviewCountText(status.pendingToolReviews)}>
          <p className="notice-text">A server changed or added tools. Lanyard hides them from your IDEs until you review them.</p>
          <div className="notice-actions">
            <Button size="sm" variant="primary" onClick={() => ctx.go('review')}>
              Review changes
            </Button>
          </div>
        </Notice>
      ) : null}
      {session === 'expired' ? (
        <Notice tone="error" icon="key" title="Your sign-in has expired">
          <p className="notice-text">No server can get new tokens until you sign in again.</p>
          <div className="notice-actions">
            <Button size="sm" variant="primary" onClick={onSignIn}>
              Sign in again
            </Button>
          </div>
        </Notice>
      ) : session === 'signed_out' || session === 'not_configured' ? (
        <Notice tone="info" title="You are not signed in">
          <p className="notice-text">Servers that use Cross-App Access need your company sign-in before they can get tokens.</p>
          <div className="notice-actions">
            <Button size="sm" variant="primary" onClick={onSignIn}>
              Sign in
            </Button>
          </div>
        </Notice>
      ) : null}
      {status.servers.length === 0 ? (
        <EmptyState icon="servers" title="No servers yet">
          <p>Add your company’s MCP servers by URL. Lanyard checks whether each supports Cross-App Access before adding it.</p>
          <Button variant="primary" icon="plus" onClick={() => ctx.go('add-server')}>
            Add your first server
          </Button>
        </EmptyState>
      ) : (
        <ul className="server-list" aria-label="Configured servers">
          {status.servers.map((server) => (
            <li key={server.id}>
              <ServerCard server={server} ctx={ctx} onSignIn={onSignIn} />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function QuotaMeter({ quota }: { quota: QuotaModel }) {
  return (
    <div className="quota">
      <span className="quota-label">This month</span>
      <div
        className={`meter meter-${quota.tone}`}
        role="meter"
        aria-valuemin={0}
        aria-valuemax={quota.quota}
        aria-valuenow={quota.used}
        aria-valuetext={`${quota.used} of ${quota.quota} ID-JAGs this month`}
        aria-label="ID-JAGs used this month"
      >
        <span style={{ width: `${quota.percent}%` }} />
      </div>
      <span className="quota-value">{quota.label}</span>
    </div>
  );
}

/** The card's auth strip: path, state, the one action (or why there is none), and the browser fallback link. */
function AuthStrip({ auth, name, busy, onAction }: { auth: AuthModel; name: string; busy: boolean; onAction: () => void }) {
  return (
    <section className={`auth auth-${auth.tone}`} aria-label={`Access to ${name}`}>
      <Icon name={auth.blocked ? 'shield' : auth.tone === 'ok' ? 'check' : 'key'} size={18} />
      <div className="auth-body">
        <p className="auth-line">
          <strong className="auth-path">{auth.path}</strong>
          <span className="auth-sep" aria-hidden="true">
            ·
          </span>
          <span className="auth-state">{auth.state}</span>
          {auth.pinned ? (
            <span className="badge badge-managed auth-pin" title="Your administrator’s managed configuration sets this path">
              <Icon name="pin" size={12} /> {auth.pinned}
            </span>
          ) : null}
        </p>
        {auth.waiting ? (
          <p className="auth-waiting" role="status">
            <span className="spinner" aria-hidden="true" /> {auth.waiting}
          </p>
        ) : null}
        <p className="auth-detail">{auth.detail}</p>
        {auth.fix ? (
          <p className="notice-fix">
            <span className="fix-label">Fix</span> {auth.fix}
          </p>
        ) : null}
        {auth.authorizeUrl ? (
          <p className="auth-link">
            Browser did not open?{' '}
            <a href={auth.authorizeUrl} target="_blank" rel="noreferrer noopener">
              Open the authorization page
            </a>
          </p>
        ) : null}
      </div>
      {auth.action ? (
        <Button
          size="sm"
          variant={auth.action.kind === 'authorize' && auth.waiting ? 'secondary' : 'primary'}
          icon={auth.action.kind === 'set_key' ? 'key' : auth.action.kind === 'authorize' ? 'external' : 'user'}
          busy={busy}
          onClick={onAction}
          aria-label={`${auth.action.label} — ${name}`}
        >
          {auth.action.label}
        </Button>
      ) : null}
    </section>
  );
}

/** Set key: the value goes to setServerKey and is cleared from the form at once; it is never shown back. */
function KeyFormCard({ server, onDone, ctx }: { server: ServerStatus; onDone: () => void; ctx: ViewContext }) {
  const [form, setForm] = useState<KeyForm>(() => keyFormFor(server));
  const [errors, setErrors] = useState<Partial<Record<keyof KeyForm, string>>>({});
  const [saving, setSaving] = useState(false);
  const [failure, setFailure] = useState<ErrorInfo>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const submission = submitKeyForm(server, form);
    setForm(submission.form);
    setErrors(submission.errors);
    if (!submission.input) return;
    setSaving(true);
    setFailure(undefined);
    try {
      await ctx.client.api.setServerKey(submission.input);
      ctx.notify('ok', `Key for ${server.name} saved in the keychain`);
      onDone();
    } catch (e) {
      setFailure(errorInfoOf(e));
    } finally {
      setSaving(false);
    }
  };
  return (
    <form className="key-form" onSubmit={(e) => void submit(e)} noValidate aria-label={`Set the API key for ${server.name}`}>
      <div className="grid-2">
        <KeyHeaderFields
          headerName={form.headerName}
          keyValue={form.value}
          onHeaderName={(headerName) => setForm((f) => ({ ...f, headerName }))}
          onKeyValue={(value) => setForm((f) => ({ ...f, value }))}
          headerError={errors.headerName}
          keyError={errors.value}
          autoFocusKey
        />
      </div>
      {failure ? <ErrorNotice error={failure} onDismiss={() => setFailure(undefined)} /> : null}
      <div className="form-actions">
        <Button onClick={onDone}>Cancel</Button>
        <Button type="submit" variant="primary" icon="key" busy={saving}>
          Save key
        </Button>
      </div>
    </form>
  );
}

function ServerCard({ server, ctx, onSignIn }: { server: ServerStatus; ctx: ViewContext; onSignIn: () => void }) {
  const headingId = useId();
  const toolsId = useId();
  const [toggling, setToggling] = useState(false);
  const [testing, setTesting] = useState(false);
  const [test, setTest] = useState<TestResult>();
  const [actionError, setActionError] = useState<ErrorInfo>();
  const [toolsOpen, setToolsOpen] = useState(false);
  const [tools, setTools] = useState<Tool[]>();
  const [toolsError, setToolsError] = useState<ErrorInfo>();
  const [toolsLoading, setToolsLoading] = useState(false);
  const [confirmRemove, setConfirmRemove] = useState(false);
  const [removing, setRemoving] = useState(false);
  const [keyFormOpen, setKeyFormOpen] = useState(false);
  const [authorizing, setAuthorizing] = useState(false);
  const [authorizeUrl, setAuthorizeUrl] = useState<string>();
  const row = serverRowModel(server, ctx.now, { toolCount: tools?.length ?? test?.toolCount, authorizeUrl });
  // A link is spent once its browser step ended (authorized, denied, timed out): a new attempt brings a new one.
  useEffect(() => {
    if (server.authState !== 'authorizing') setAuthorizeUrl(undefined);
  }, [server.authState]);

  /** Starts (or joins) the server's one browser authorization; the status event reports how it ends. */
  const authorize = async () => {
    setAuthorizing(true);
    setActionError(undefined);
    try {
      const { authorizeUrl: url } = await ctx.client.api.authorizeServer({ id: server.id });
      setAuthorizeUrl(url);
    } catch (e) {
      setActionError(errorInfoOf(e));
    } finally {
      setAuthorizing(false);
    }
  };

  const onAction = () => {
    switch (row.auth.action?.kind) {
      case 'sign_in':
        onSignIn();
        break;
      case 'authorize':
        void authorize();
        break;
      case 'set_key':
        setKeyFormOpen(true);
        break;
    }
  };

  const toggle = async (enabled: boolean) => {
    setToggling(true);
    setActionError(undefined);
    try {
      await ctx.client.api.setServerEnabled({ id: server.id, enabled });
      ctx.notify('ok', `${server.name} ${enabled ? 'enabled' : 'disabled'}`);
    } catch (e) {
      setActionError(errorInfoOf(e));
    } finally {
      setToggling(false);
    }
  };

  const runTest = async () => {
    setTesting(true);
    setActionError(undefined);
    setTest(undefined);
    try {
      setTest(await ctx.client.api.testServer({ id: server.id }));
      ctx.refresh();
    } catch (e) {
      setActionError(errorInfoOf(e));
    } finally {
      setTesting(false);
    }
  };

  const loadTools = async () => {
    setToolsLoading(true);
    setToolsError(undefined);
    try {
      setTools(await ctx.client.api.listTools({ id: server.id }));
      ctx.refresh();
    } catch (e) {
      setToolsError(errorInfoOf(e));
    } finally {
      setToolsLoading(false);
    }
  };

  const remove = async () => {
    setRemoving(true);
    try {
      await ctx.client.api.removeServer({ id: server.id });
      setConfirmRemove(false);
      ctx.notify('info', `${server.name} removed`);
    } catch (e) {
      setConfirmRemove(false);
      setActionError(errorInfoOf(e));
    } finally {
      setRemoving(false);
    }
  };

  return (
    <article
      className={`server-card${row.enabled ? '' : ' is-disabled'}${row.error || row.auth.blocked ? ' has-error' : ''}`}
      aria-labelledby={headingId}
    >
      <header className="server-head">
        <div className="server-ident">
          <StatusDot tone={row.tone} pulse={row.tone === 'busy'} />
          <div className="server-names">
            <h2 id={headingId} className="server-name">
              {row.name}
            </h2>
            <span className="server-url" title={row.url}>
              {row.url}
            </span>
          </div>
          <span className={`badge badge-${row.tone}`} title={row.healthDescription}>
            {row.healthLabel}
          </span>
          {row.managed ? (
            <span className="badge badge-managed" title="Managed by your administrator">
              <Icon name="lock" size={12} /> Managed
            </span>
          ) : null}
        </div>
        <div className="server-actions">
          <Button size="sm" icon="play" busy={testing} onClick={() => void runTest()} aria-label={`Test ${row.name}`}>
            Test
          </Button>
          <label className="switch-label">
            <span className="switch-text">{row.enabled ? 'Enabled' : 'Disabled'}</span>
            <Switch
              checked={row.enabled}
              busy={toggling}
              disabled={row.managed}
              label={`Enable ${row.name}`}
              onChange={(v) => void toggle(v)}
            />
          </label>
          <button
            type="button"
            className="icon-btn icon-btn-danger"
            disabled={row.managed}
            onClick={() => setConfirmRemove(true)}
            aria-label={`Remove ${row.name}`}
            title={row.lockedReason ?? 'Remove'}
          >
            <Icon name="trash" />
          </button>
        </div>
      </header>

      <AuthStrip auth={row.auth} name={row.name} busy={authorizing} onAction={onAction} />
      {keyFormOpen && row.auth.action?.kind === 'set_key' ? (
        <KeyFormCard server={server} ctx={ctx} onDone={() => setKeyFormOpen(false)} />
      ) : null}

      <dl className="facts">
        {row.facts.map((fact) => (
          <div key={fact.label}>
            <dt>{fact.label}</dt>
            <dd title={fact.title ?? fact.value}>{fact.value}</dd>
          </div>
        ))}
      </dl>

      {row.showQuota ? <QuotaMeter quota={row.quota} /> : null}
      {row.quotaWarning ? (
        <Notice tone="warn" title="Monthly ID-JAG quota">
          <p className="notice-text">{row.quotaWarning.message}</p>
          <p className="notice-fix">
            <span className="fix-label">Fix</span> {row.quotaWarning.fix}
          </p>
        </Notice>
      ) : null}

      {row.error ? <ErrorNotice title="Last error" error={row.error} /> : null}
      {actionError ? <ErrorNotice error={actionError} onDismiss={() => setActionError(undefined)} /> : null}

      {test ? (
        <div className={`test-result ${test.ok ? 'test-ok' : 'test-fail'}`} role="status">
          <div className="test-head">
            <strong>{test.ok ? 'All checks passed' : 'The test found a problem'}</strong>
            <button type="button" className="icon-btn" onClick={() => setTest(undefined)} aria-label="Close test results">
              <Icon name="x" />
            </button>
          </div>
          <ol className="steps">
            {test.steps.map((step) => (
              <li key={step.name} className={step.ok ? 'step-ok' : 'step-fail'}>
                <span className="step-icon">
                  <Icon name={step.ok ? 'check' : 'x'} size={14} label={step.ok ? 'passed' : 'failed'} />
                </span>
                <span className="step-name">{step.name}</span>
                <span className="step-detail">{step.detail}</span>
                {step.error?.fix ? (
                  <span className="step-fix">
                    <span className="fix-label">Fix</span> {step.error.fix}
                  </span>
                ) : null}
              </li>
            ))}
          </ol>
        </div>
      ) : null}

      <div className="server-foot">
        <button
          type="button"
          className="disclosure"
          aria-expanded={toolsOpen}
          aria-controls={toolsId}
          onClick={() => {
            const next = !toolsOpen;
            setToolsOpen(next);
            if (next && tools === undefined) void loadTools();
          }}
        >
          <Icon name="chevron" size={14} className={toolsOpen ? 'rot90' : ''} />
          {toolsOpen ? 'Hide tools' : 'Show tools'}
        </button>
        <span className="server-id">
          id <code>{row.id}</code>
        </span>
      </div>
      {toolsOpen ? (
        <div id={toolsId} className="tools" aria-busy={toolsLoading}>
          {toolsLoading ? (
            <p className="muted">
              <span className="spinner" aria-hidden="true" /> Loading tools…
            </p>
          ) : toolsError ? (
            <ErrorNotice error={toolsError} />
          ) : tools && tools.length > 0 ? (
            <ul className="tool-list" aria-label={`Tools of ${row.name}`}>
              {tools.map((t) => (
                <li key={t.exposedName}>
                  <Icon name="tool" size={14} />
                  <code className="tool-name">{t.exposedName}</code>
                  {t.description ? <span className="tool-desc">{t.description}</span> : null}
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">This server exposes no tools.</p>
          )}
          {!toolsLoading ? (
            <Button size="sm" variant="ghost" icon="refresh" onClick={() => void loadTools()}>
              Refresh
            </Button>
          ) : null}
        </div>
      ) : null}

      <ConfirmDialog
        open={confirmRemove}
        title={`Remove ${row.name}?`}
        confirmLabel="Remove server"
        danger
        busy={removing}
        onConfirm={() => void remove()}
        onCancel={() => setConfirmRemove(false)}
      >
        <p>
          IDEs stop seeing its tools at once. Its cached tokens and client secret are deleted from the keychain. You can add it again later
          from <code>{row.host}</code>.
        </p>
      </ConfirmDialog>
    </article>
  );
}
