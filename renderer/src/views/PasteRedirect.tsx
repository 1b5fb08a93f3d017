/**
 * The sign-in's paste field, for a broker whose machine has no browser (a headless `lanyard serve` on a build box or in
 * a container): the IdP link opens in this browser, which then lands on the broker's loopback address and cannot load
 * it; pasting that address here completes the sign-in (completeSignIn). A wrong paste shows its fix and can be retried.
 */
import { useState, type FormEvent } from 'react';
import type { ErrorInfo } from '../../../shared/errors';
import { errorInfoOf } from '../api/bridge';
import { Button, ErrorNotice, Field } from '../components/ui';
import type { ViewContext } from '../view-context';

export function PasteRedirect({ ctx }: { ctx: ViewContext }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo>();

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!value.trim()) return;
    setBusy(true);
    setError(undefined);
    try {
      await ctx.client.api.completeSignIn({ redirectUrl: value.trim() });
      setValue('');
      ctx.notify('ok', 'Signed in');
    } catch (err) {
      setError(errorInfoOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="signin-paste" onSubmit={(e) => void submit(e)}>
      <Field
        label="Browser on another machine?"
        hint="After signing in, it shows an http://127.0.0.1:…/callback address that does not load. Paste that whole address here."
      >
        {({ id, describedBy }) => (
          <div className="input-row">
            <input
              id={id}
              className="input mono"
              type="text"
              autoComplete="off"
              spellCheck={false}
              placeholder="http://127.0.0.1:…/callback?code=…&state=…"
              value={value}
              aria-describedby={describedBy}
              onChange={(e) => setValue(e.target.value)}
            />
            <Button type="submit" variant="secondary" busy={busy}>
              Finish sign-in
            </Button>
          </div>
        )}
      </Field>
      {error ? <ErrorNotice title="That address did not sign you in" error={error} /> : null}
    </form>
  );
}
