/** Settings: IdP, local endpoint, app. Fields the administrator manages are shown read-only, with the reason. */
import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { usesClientSecret } from '../../../shared/auth-methods';
import type { Settings } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import type { ViewContext } from '../view-context';
import { errorInfoOf } from '../api/bridge';
import { Icon } from '../components/Icon';
import { PageHeader } from '../components/Layout';
import { Button, Card, ErrorNotice, Field, Notice } from '../components/ui';
import { CLIENT_AUTH_CHOICES, isLocked, settingsForm, validateSettings, type ClientAuthMethod, type SettingsForm } from '../model/settings';

function Managed() {
  return (
    <span className="badge badge-managed">
      <Icon name="lock" size={12} /> Managed by your administrator
    </span>
  );
}

function Section({ title, description, locked, children }: { title: string; description: string; locked?: boolean; children: ReactNode }) {
  return (
    <Card className="settings-section">
      <div className="settings-side">
        <h2 className="section-title">{title}</h2>
        <p className="muted">{description}</p>
        {locked ? <Managed /> : null}
      </div>
      <div className="settings-fields">{children}</div>
    </Card>
  );
}

export function SettingsView({ ctx }: { ctx: ViewContext }) {
  const [settings, setSettings] = useState<Settings>();
  const [form, setForm] = useState<SettingsForm>();
  const [loadError, setLoadError] = useState<ErrorInfo>();
  const [saveError, setSaveError] = useState<ErrorInfo>();
  const [errors, setErrors] = useState<Partial<Record<keyof SettingsForm, string>>>({});
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    let cancelled = false;
    ctx.client.api.getSettings({}).then(
      (s) => {
        if (cancelled) return;
        setSettings(s);
        setForm(settingsForm(s));
      },
      (e: unknown) => !cancelled && setLoadError(errorInfoOf(e)),
    );
    return () => {
      cancelled = true;
    };
  }, [ctx.client]);

  if (loadError) {
    return (
      <div className="page page-narrow">
        <PageHeader title="Settings" />
        <ErrorNotice error={loadError} />
      </div>
    );
  }
  if (!settings || !form) {
    return (
      <div className="page loading" aria-busy="true">
        <span className="spinner spinner-lg" aria-hidden="true" />
      </div>
    );
  }

  const locked = settings.locked;
  const idpLocked = isLocked(locked, 'idp');
  const validation = validateSettings(form, settings);
  const set = <K extends keyof SettingsForm>(key: K, value: SettingsForm[K]) => {
    setForm({ ...form, [key]: value });
    setErrors((e) => ({ ...e, [key]: undefined }));
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (Object.keys(validation.errors).length > 0) {
      setErrors(validation.errors);
      return;
    }
    if (!validation.changed) return;
    setSaving(true);
    setSaveError(undefined);
    try {
      const next = await ctx.client.api.updateSettings(validation.update);
      setSettings(next);
      setForm(settingsForm(next));
      ctx.notify(
        'ok',
        validation.portChanged ? 'Saved. Restart Lanyard to move the endpoint, then reconnect your IDEs.' : 'Settings saved',
      );
    } catch (e) {
      setSaveError(errorInfoOf(e));
    } finally {
      setSaving(false);
    }
  };

  const input = (key: keyof SettingsForm, isLockedField: boolean, extra: { mono?: boolean; placeholder?: string; type?: string } = {}) =>
    function render({ id, describedBy }: { id: string; describedBy: string | undefined }) {
      return (
        <input
          id={id}
          className={`input${extra.mono ? ' mono' : ''}`}
          type={extra.type ?? 'text'}
          value={String(form[key])}
          readOnly={isLockedField}
          aria-readonly={isLockedField || undefined}
          placeholder={extra.placeholder}
          spellCheck={false}
          autoComplete="off"
          aria-describedby={describedBy}
          aria-invalid={errors[key] ? true : undefined}
          onChange={(e) => set(key, e.target.value as never)}
        />
      );
    };

  return (
    <form className="page" onSubmit={(e) => void save(e)} noValidate>
      <PageHeader title="Settings" subtitle="Stored in Lanyard’s config file. Secrets go to the OS keychain, never to the file." />

      <Section
        title="Identity provider"
        description="Where you sign in. Lanyard asks it for an ID-JAG for each server (Cross-App Access)."
        locked={idpLocked}
      >
        <Field
          label="Issuer URL"
          hint="For Okta: https://<your-org>.okta.com or an authorization server such as …/oauth2/default"
          error={errors.issuer}
        >
          {input('issuer', idpLocked, { mono: true, placeholder: 'https://acme.okta.com' })}
        </Field>
        <div className="grid-2">
          <Field label="Client ID" error={errors.clientId}>
            {input('clientId', idpLocked, { mono: true })}
          </Field>
          <Field label="Client authentication">
            {({ id }) => (
              <select
                id={id}
                className="input"
                value={form.clientAuthMethod}
                disabled={idpLocked}
                onChange={(e) => set('clientAuthMethod', e.target.value as ClientAuthMethod)}
              >
                {CLIENT_AUTH_CHOICES.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        {usesClientSecret(form.clientAuthMethod) && !idpLocked ? (
          <Field label="Client secret" hint="Leave empty to keep the stored secret." error={errors.clientSecret}>
            {input('clientSecret', false, { mono: true, type: 'password' })}
          </Field>
        ) : null}
        {form.clientAuthMethod === 'private_key_jwt' && !idpLocked ? (
          <p className="hint">
            <Icon name="info" size={13} /> The private key is provisioned into the keychain by your administrator or{' '}
            <code>lanyard login --key</code>.
          </p>
        ) : null}
      </Section>

      <Section
        title="Local endpoint"
        description="The one address every IDE uses. It listens on 127.0.0.1 only and needs Lanyard’s local token."
        locked={isLocked(locked, 'gateway.port') && isLocked(locked, 'gateway.toolNameSeparator')}
      >
        <div className="grid-2">
          <Field
            label="Port"
            hint={isLocked(locked, 'gateway.port') ? undefined : `Endpoint: http://127.0.0.1:${form.gatewayPort}/mcp`}
            error={errors.gatewayPort}
          >
            {input('gatewayPort', isLocked(locked, 'gateway.port'), { mono: true })}
          </Field>
          <Field label="Tool name separator" hint="Between server id and tool name: wiki__search" error={errors.toolNameSeparator}>
            {input('toolNameSeparator', isLocked(locked, 'gateway.toolNameSeparator'), { mono: true })}
          </Field>
        </div>
        <Field
          label="Allowed browser origins"
          hint="One per line. Web pages from these origins may call the endpoint; all others are refused."
          error={errors.allowedOrigins}
        >
          {({ id, describedBy }) => (
            <textarea
              id={id}
              className="input mono"
              rows={2}
              value={form.allowedOrigins}
              readOnly={isLocked(locked, 'gateway.allowedOrigins')}
              placeholder="https://app.example.com"
              spellCheck={false}
              aria-describedby={describedBy}
              onChange={(e) => set('allowedOrigins', e.target.value)}
            />
          )}
        </Field>
      </Section>

      <Section
        title="App"
        description={ctx.client.kind === 'app' ? 'How the tray app starts.' : 'Applies to the Lanyard tray app on this machine.'}
        locked={isLocked(locked, 'ui.startAtLogin')}
      >
        <label className="check">
          <input
            type="checkbox"
            checked={form.startAtLogin}
            disabled={isLocked(locked, 'ui.startAtLogin')}
            onChange={(e) => set('startAtLogin', e.target.checked)}
          />
          <span>
            <strong>Start Lanyard when I log in</strong>
            <span className="muted block">It starts in the tray, without opening a window.</span>
          </span>
        </label>
        <dl className="facts facts-compact">
          <div>
            <dt>Secrets</dt>
            <dd>{ctx.status.secretStore.description}</dd>
          </div>
          <div>
            <dt>Version</dt>
            <dd>{ctx.status.version}</dd>
          </div>
        </dl>
      </Section>

      {saveError ? <ErrorNotice title="Not saved" error={saveError} onDismiss={() => setSaveError(undefined)} /> : null}
      {validation.portChanged ? (
        <Notice tone="warn" title="Changing the port moves the endpoint">
          <p className="notice-text">IDE configs that point at the old port stop working; reconnect them after restarting Lanyard.</p>
        </Notice>
      ) : null}
      <div className={`form-bar${validation.changed ? ' dirty' : ''}`}>
        <span className="muted small" aria-live="polite">
          {validation.changed ? 'Unsaved changes' : 'All changes saved'}
        </span>
        <Button
          disabled={!validation.changed || saving}
          onClick={() => {
            setForm(settingsForm(settings));
            setErrors({});
          }}
        >
          Revert
        </Button>
        <Button type="submit" variant="primary" busy={saving} disabled={!validation.changed}>
          Save changes
        </Button>
      </div>
    </form>
  );
}
