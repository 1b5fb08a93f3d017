/**
 * Add a server: paste a URL → Probe → every auth path in order with why it applies or not, the probe's choice
 * preselected → what the chosen path needs (a client ID, an optional pre-registered OAuth client, an API key) → Add.
 */
import { useState, type FormEvent } from 'react';
import { usesClientSecret } from '../../../shared/auth-methods';
import type { Navigate, ProbeResult } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import type { ViewContext } from '../view-context';
import { errorInfoOf } from '../api/bridge';
import { Icon } from '../components/Icon';
import { KeyHeaderFields } from '../components/KeyHeaderFields';
import { PageHeader } from '../components/Layout';
import { Button, Card, ErrorNotice, Field, Notice } from '../components/ui';
import {
  addServerUrlProblem,
  buildAddServerInput,
  emptyAddServerForm,
  pathChoices,
  probeVerdict,
  selectedPath,
  serverIdFor,
  type AddServerForm,
} from '../model/add-server';
import { CLIENT_AUTH_CHOICES, type ClientAuthMethod } from '../model/settings';

export function AddServerView({ ctx, prefill }: { ctx: ViewContext; prefill: Navigate['addServer'] | undefined }) {
  const [form, setForm] = useState<AddServerForm>(() => ({
    ...emptyAddServerForm(),
    ...(prefill ? { url: prefill.url, name: prefill.name ?? '', clientId: prefill.clientId ?? '' } : {}),
  }));
  const [probe, setProbe] = useState<ProbeResult>();
  const [probing, setProbing] = useState(false);
  const [adding, setAdding] = useState(false);
  const [errors, setErrors] = useState<Partial<Record<keyof AddServerForm, string>>>({});
  const [failure, setFailure] = useState<ErrorInfo>();
  const [showAuth, setShowAuth] = useState(false);

  const set = <K extends keyof AddServerForm>(key: K, value: AddServerForm[K]) => {
    setForm((f) => ({ ...f, [key]: value }));
    setErrors((e) => ({ ...e, [key]: undefined }));
    // A different URL makes the previous probe (and the path picked from it) meaningless.
    if (key === 'url') {
      setProbe(undefined);
      setForm((f) => ({ ...f, authPath: '' }));
    }
  };

  const runProbe = async (event?: FormEvent) => {
    event?.preventDefault();
    const problem = addServerUrlProblem(form.url);
    if (problem) {
      setErrors({ url: problem });
      return;
    }
    setProbing(true);
    setFailure(undefined);
    try {
      const result = await ctx.client.api.probeUrl({ url: form.url.trim() });
      setProbe(result);
      setForm((f) => ({ ...f, authPath: '' }));
      if (form.name.trim() === '' && result.suggestedName) setForm((f) => ({ ...f, name: result.suggestedName ?? '' }));
      if (usesClientSecret(form.clientAuthMethod)) setShowAuth(true);
    } catch (e) {
      setFailure(errorInfoOf(e));
    } finally {
      setProbing(false);
    }
  };

  const add = async (event: FormEvent) => {
    event.preventDefault();
    if (!probe) return;
    const built = buildAddServerInput(form, probe, takenIds);
    // Once built, the key and the client secret are on their way: the form no longer holds them.
    setForm(built.form);
    if (!built.input) {
      setErrors(built.errors);
      if (built.errors.clientSecret) setShowAuth(true);
      return;
    }
    setAdding(true);
    setFailure(undefined);
    try {
      const server = await ctx.client.api.addServer(built.input);
      ctx.notify('ok', `${server.name} added`);
      ctx.go('servers');
    } catch (e) {
      setFailure(errorInfoOf(e));
    } finally {
      setAdding(false);
    }
  };

  const verdict = probe ? probeVerdict(probe) : undefined;
  const takenIds = ctx.status.servers.map((s) => s.id);
  const id = probe ? serverIdFor(form.name, probe.suggestedId, takenIds) : undefined;
  const choices = probe ? pathChoices(probe) : [];
  const path = probe ? selectedPath(form, probe) : undefined;
  // Without reported paths (an older broker) the details are the Cross-App Access ones, as before.
  const xaaFields = probe !== undefined && (path === 'xaa' || (path === undefined && probe.paths.length === 0)) && probe.needsClientId;
  const addCard = probe !== undefined && verdict?.canAdd === true;

  return (
    <div className="page page-narrow">
      <PageHeader
        title="Add server"
        subtitle="Paste the address of an MCP server. Lanyard checks how it signs in before anything is saved."
      />
      {prefill ? (
        <Notice tone="info" icon="external" title="Opened from a link">
          <p className="notice-text">
            A <code>lanyard://</code> link filled in this form. Check the address — nothing is added until you click Add server.
          </p>
        </Notice>
      ) : null}

      <Card className="step-card">
        <form onSubmit={(e) => void runProbe(e)} noValidate>
          <div className="step-title">
            <span className="step-num">1</span> Server address
          </div>
          <Field label="MCP server URL" hint="The streamable HTTP endpoint, e.g. https://mcp.example.com/mcp" error={errors.url}>
            {({ id, describedBy }) => (
              <div className="input-row">
                <input
                  id={id}
                  className="input mono"
                  type="url"
                  inputMode="url"
                  autoComplete="off"
                  spellCheck={false}
                  placeholder="https://mcp.example.com/mcp"
                  value={form.url}
                  aria-describedby={describedBy}
                  aria-invalid={errors.url ? true : undefined}
                  onChange={(e) => set('url', e.target.value)}
                  autoFocus={!prefill}
                />
                <Button type="submit" variant={probe ? 'secondary' : 'primary'} icon="search" busy={probing}>
                  {probing ? 'Probing…' : probe ? 'Probe again' : 'Probe'}
                </Button>
              </div>
            )}
          </Field>
        </form>
      </Card>

      {failure && !addCard ? <ErrorNotice error={failure} onDismiss={() => setFailure(undefined)} /> : null}

      {probe && verdict ? (
        <Card className="step-card" aria-live="polite">
          <div className="step-title">
            <span className="step-num">2</span> What Lanyard found
          </div>
          <div className={`verdict verdict-${verdict.tone}`} role="status">
            <Icon name={verdict.tone === 'ok' ? 'check' : verdict.tone === 'error' ? 'x' : 'alert'} size={20} />
            <div>
              <strong className="verdict-title">{verdict.title}</strong>
              <p className="verdict-detail">{verdict.detail}</p>
              {verdict.fix ? (
                <p className="notice-fix">
                  <span className="fix-label">Fix</span> {verdict.fix}
                </p>
              ) : null}
            </div>
          </div>
          {verdict.asIssuer || verdict.resource || verdict.scopes ? (
            <dl className="facts facts-3">
              {verdict.asIssuer ? (
                <div>
                  <dt>Authorization server</dt>
                  <dd className="mono">{verdict.asIssuer}</dd>
                </div>
              ) : null}
              {verdict.resource ? (
                <div>
                  <dt>Resource</dt>
                  <dd className="mono">{verdict.resource}</dd>
                </div>
              ) : null}
              {verdict.scopes ? (
                <div>
                  <dt>Scopes</dt>
                  <dd className="mono">{verdict.scopes}</dd>
                </div>
              ) : null}
            </dl>
          ) : null}
          {choices.length > 0 ? (
            <fieldset className="paths">
              <legend>How Lanyard signs in to it</legend>
              {choices.map((choice) => (
                <label
                  key={choice.path}
                  className={`path-choice${choice.path === path ? ' is-selected' : ''}${choice.applies ? '' : ' is-disabled'}`}
                >
                  <input
                    type="radio"
                    name="auth-path"
                    value={choice.path}
                    checked={choice.path === path}
                    disabled={!choice.applies}
                    aria-describedby={`path-reason-${choice.path}`}
                    onChange={() => set('authPath', choice.path)}
                  />
                  <span className="path-choice-title">
                    {choice.label}
                    {choice.recommended ? <span className="badge badge-ok">Recommended</span> : null}
                    {!choice.applies ? <span className="badge badge-off">Does not apply</span> : null}
                  </span>
                  <span id={`path-reason-${choice.path}`} className="path-choice-reason">
                    {choice.reason}
                  </span>
                </label>
              ))}
            </fieldset>
          ) : null}
        </Card>
      ) : null}

      {addCard ? (
        <Card className="step-card">
          <form onSubmit={(e) => void add(e)} noValidate>
            <div className="step-title">
              <span className="step-num">3</span> Details
            </div>
            <div className="grid-2">
              <Field
                label="Name"
                hint={
                  id ? (
                    <>
                      Server id <code>{id}</code> — it prefixes this server’s tools in your IDEs.
                    </>
                  ) : (
                    'How the server appears in Lanyard and the tray.'
                  )
                }
                error={errors.name}
              >
                {({ id, describedBy }) => (
                  <input
                    id={id}
                    className="input"
                    value={form.name}
                    aria-describedby={describedBy}
                    onChange={(e) => set('name', e.target.value)}
                  />
                )}
              </Field>
              {xaaFields ? (
                <Field label="Client ID" hint="Lanyard’s client at this authorization server (from your IT team)." error={errors.clientId}>
                  {({ id, describedBy }) => (
                    <input
                      id={id}
                      className="input mono"
                      value={form.clientId}
                      spellCheck={false}
                      autoComplete="off"
                      required
                      aria-describedby={describedBy}
                      aria-invalid={errors.clientId ? true : undefined}
                      onChange={(e) => set('clientId', e.target.value)}
                    />
                  )}
                </Field>
              ) : null}
              {path === 'oauth' ? (
                <Field
                  label="OAuth client ID (optional)"
                  hint="Only if the server’s provider registered a client for Lanyard. Otherwise Lanyard identifies itself (client metadata document or dynamic registration)."
                  error={errors.oauthClientId}
                >
                  {({ id, describedBy }) => (
                    <input
                      id={id}
                      className="input mono"
                      value={form.oauthClientId}
                      spellCheck={false}
                      autoComplete="off"
                      aria-describedby={describedBy}
                      onChange={(e) => set('oauthClientId', e.target.value)}
                    />
                  )}
                </Field>
              ) : null}
            </div>
            {path === 'header' ? (
              <div className="grid-2 subsection">
                <KeyHeaderFields
                  headerName={form.headerName}
                  keyValue={form.headerValue}
                  onHeaderName={(v) => set('headerName', v)}
                  onKeyValue={(v) => set('headerValue', v)}
                  headerError={errors.headerName}
                  keyError={errors.headerValue}
                />
              </div>
            ) : null}
            {xaaFields ? (
              <div className="subsection">
                <button
                  type="button"
                  className="disclosure"
                  aria-expanded={showAuth}
                  aria-controls="client-auth"
                  onClick={() => setShowAuth((v) => !v)}
                >
                  <Icon name="chevron" size={14} className={showAuth ? 'rot90' : ''} /> Client authentication
                  <span className="muted"> · {CLIENT_AUTH_CHOICES.find((m) => m.id === form.clientAuthMethod)?.label}</span>
                </button>
                {showAuth ? (
                  <div id="client-auth" className="grid-2">
                    <Field label="Method">
                      {({ id }) => (
                        <select
                          id={id}
                          className="input"
                          value={form.clientAuthMethod}
                          onChange={(e) => set('clientAuthMethod', e.target.value as ClientAuthMethod)}
                        >
                          {CLIENT_AUTH_CHOICES.filter((m) => m.id !== 'private_key_jwt').map((m) => (
                            <option key={m.id} value={m.id}>
                              {m.label}
                            </option>
                          ))}
                        </select>
                      )}
                    </Field>
                    {usesClientSecret(form.clientAuthMethod) ? (
                      <Field label="Client secret" hint="Stored in the OS keychain, never in the config file." error={errors.clientSecret}>
                        {({ id, describedBy }) => (
                          <input
                            id={id}
                            className="input mono"
                            type="password"
                            autoComplete="off"
                            value={form.clientSecret}
                            aria-describedby={describedBy}
                            aria-invalid={errors.clientSecret ? true : undefined}
                            onChange={(e) => set('clientSecret', e.target.value)}
                          />
                        )}
                      </Field>
                    ) : null}
                  </div>
                ) : null}
              </div>
            ) : null}
            {failure ? (
              <div className="subsection">
                <ErrorNotice error={failure} onDismiss={() => setFailure(undefined)} />
              </div>
            ) : null}
            <div className="form-actions">
              <Button onClick={() => ctx.go('servers')}>Cancel</Button>
              <Button type="submit" variant="primary" icon="plus" busy={adding}>
                Add server
              </Button>
            </div>
          </form>
        </Card>
      ) : null}
    </div>
  );
}
