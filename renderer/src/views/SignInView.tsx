/** Sign-in: one button that names the IdP; a waiting state while the browser is out; the expired state. */
import type { ErrorInfo } from '../../../shared/errors';
import type { ViewContext } from '../view-context';
import { Icon, Logo } from '../components/Icon';
import { Button, ErrorNotice } from '../components/ui';
import { signInModel } from '../model/session';
import { PasteRedirect } from './PasteRedirect';

export function SignInView({
  ctx,
  pending,
  error,
  onSignIn,
}: {
  ctx: ViewContext;
  pending: boolean;
  error: ErrorInfo | undefined;
  onSignIn: () => void;
}) {
  const model = signInModel(ctx.status, pending);
  return (
    <div className="page page-center">
      <div className={`signin signin-${model.state}`}>
        <div className="signin-mark">
          {model.state === 'expired' ? (
            <span className="signin-icon signin-icon-warn">
              <Icon name="key" size={26} />
            </span>
          ) : model.state === 'waiting' ? (
            <span className="signin-icon signin-icon-wait">
              <span className="spinner spinner-lg" aria-hidden="true" />
            </span>
          ) : (
            <Logo size={56} />
          )}
        </div>
        <h1 tabIndex={-1} className="page-title signin-title">
          {model.title}
        </h1>
        <p className="signin-text" aria-live="polite">
          {model.message}
        </p>
        {model.user && model.state === 'expired' ? (
          <p className="signin-user">
            <Icon name="user" size={14} /> {model.user}
          </p>
        ) : null}
        {model.state === 'not_configured' ? (
          <Button variant="primary" size="lg" icon="settings" onClick={() => ctx.go('settings')}>
            {model.button}
          </Button>
        ) : model.state === 'signed_in' ? (
          <Button variant="primary" size="lg" icon="servers" onClick={() => ctx.go('servers')}>
            Go to servers
          </Button>
        ) : model.button ? (
          <Button variant="primary" size="lg" className="signin-button" onClick={onSignIn}>
            {model.button}
          </Button>
        ) : null}
        {model.state === 'waiting' ? (
          <p className="signin-hint">
            No browser window? Check your taskbar
            {model.link ? (
              <>
                {' '}
                — or{' '}
                <a href={model.link} target="_blank" rel="noreferrer noopener">
                  open the sign-in page here
                </a>
                .
              </>
            ) : (
              ' — or look for a sign-in link in the terminal running Lanyard.'
            )}
          </p>
        ) : null}
        {model.state === 'waiting' && model.link ? <PasteRedirect ctx={ctx} /> : null}
        {error && model.state !== 'waiting' ? <ErrorNotice title="Sign-in did not finish" error={error} /> : null}
        {model.idpIssuer ? (
          <p className="signin-foot">
            <Icon name="lock" size={13} /> Your password goes only to <strong>{model.idpIssuer}</strong>. Lanyard keeps its tokens in the{' '}
            {ctx.status.secretStore.kind === 'os-keychain' ? 'OS keychain' : 'secret store'}, never in config files.
          </p>
        ) : null}
      </div>
    </div>
  );
}
