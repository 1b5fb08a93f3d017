/**
 * Remote: an IDE in WSL, on an SSH host or in a dev container using this laptop's Lanyard. The remote side runs
 * `lanyard remote pair` and shows a code; the code is typed here (it is never shown on this side, so a request someone
 * else made on a shared host cannot be approved by a click). Paired devices hold a token for the MCP endpoints only;
 * Revoke refuses it from the next request on.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { RemoteAccess } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import { errorInfoOf } from '../api/bridge';
import { PageHeader } from '../components/Layout';
import { Button, CodeBlock, EmptyState, ErrorNotice, Field } from '../components/ui';
import { relativeTime } from '../model/format';
import type { ViewContext } from '../view-context';

/** Waiting requests appear while the page is open: the remote side asks at any moment. */
const POLL_MS = 3_000;

export function RemoteView({ ctx }: { ctx: ViewContext }) {
  const [access, setAccess] = useState<RemoteAccess>();
  const [error, setError] = useState<ErrorInfo>();
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState<string>();

  const load = useCallback(async () => {
    try {
      setAccess(await ctx.client.api.listRemoteDevices({}));
    } catch (e) {
      setError(errorInfoOf(e));
    }
  }, [ctx.client]);

  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(timer);
  }, [load]);

  const approve = async (event: FormEvent) => {
    event.preventDefault();
    setBusy('approve');
    try {
      const device = await ctx.client.api.approvePairing({ code });
      ctx.notify('ok', `Paired "${device.label}".`);
      setCode('');
      setError(undefined);
      await load();
    } catch (e) {
      setError(errorInfoOf(e));
    } finally {
      setBusy(undefined);
    }
  };

  const revoke = async (id: string) => {
    setBusy(id);
    try {
      const device = await ctx.client.api.revokeRemoteDevice({ id });
      ctx.notify('ok', `Revoked "${device.label}": its token is refused from now on.`);
      await load();
    } catch (e) {
      setError(errorInfoOf(e));
    } finally {
      setBusy(undefined);
    }
  };

  const port = ctx.status.gateway.port;
  const devices = access?.devices ?? [];
  return (
    <div className="page">
      <PageHeader
        title="Remote development"
        subtitle="IDEs in WSL, on an SSH host or in a dev container can use this Lanyard: the sign-in and the keychain stay here, the remote side gets a token for the MCP endpoints only."
      />
      {error ? <ErrorNotice error={error} onDismiss={() => setError(undefined)} /> : null}
      <section className="card settings-section" aria-label="Approve a pairing code">
        <div className="settings-side">
          <h2 className="section-title">Approve a pairing</h2>
          <p className="muted">
            On the remote side, run <code>lanyard remote pair http://127.0.0.1:{port}</code> (port {port} forwarded, see the README), then
            type the code it shows. This side never shows the code: typing it proves the request is yours.
          </p>
        </div>
        <form className="settings-fields" onSubmit={(e) => void approve(e)}>
          <Field label="Pairing code shown on the remote side" hint="8 letters and digits, e.g. ABCD-EFGH; good for 5 minutes.">
            {({ id, describedBy }) => (
              <input
                id={id}
                className="input mono"
                value={code}
                autoComplete="off"
                spellCheck={false}
                maxLength={12}
                aria-describedby={describedBy}
                onChange={(e) => setCode(e.target.value)}
              />
            )}
          </Field>
          {access?.pending.length ? (
            <ul className="remote-devices muted small" aria-label="Waiting pairing requests">
              {access.pending.map((p) => (
                <li key={p.createdAt + p.label}>
                  {p.label} asked {relativeTime(Date.parse(p.createdAt), ctx.now)}
                </li>
              ))}
            </ul>
          ) : null}
          <div className="form-actions">
            <Button type="submit" variant="primary" busy={busy === 'approve'} disabled={code.trim().length < 8 || busy !== undefined}>
              Approve
            </Button>
          </div>
        </form>
      </section>
      <section className="card settings-section" aria-label="Paired devices">
        <div className="settings-side">
          <h2 className="section-title">Paired devices</h2>
          <p className="muted">Each holds a token for the MCP endpoints only. Revoke one and its next request is refused.</p>
        </div>
        <div className="settings-fields">
          {devices.length === 0 ? (
            <EmptyState icon="laptop" title="No remote device is paired">
              <p>On the remote side:</p>
              <CodeBlock label="Pair" code={`lanyard remote pair http://127.0.0.1:${port}`} />
            </EmptyState>
          ) : (
            <ul className="remote-devices">
              {devices.map((d) => (
                <li key={d.id}>
                  <div>
                    <strong>{d.label}</strong> <code className="tag">{d.id}</code>
                    <p className="muted small">
                      {d.revokedAt
                        ? `Revoked ${relativeTime(Date.parse(d.revokedAt), ctx.now)}`
                        : `Paired ${relativeTime(Date.parse(d.createdAt), ctx.now)} · ${d.lastUsedAt ? `last used ${relativeTime(Date.parse(d.lastUsedAt), ctx.now)}` : 'not used yet'}`}
                    </p>
                  </div>
                  {d.revokedAt ? null : (
                    <Button variant="danger" size="sm" busy={busy === d.id} disabled={busy !== undefined} onClick={() => void revoke(d.id)}>
                      Revoke
                    </Button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </div>
      </section>
    </div>
  );
}
