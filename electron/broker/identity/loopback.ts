import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';

/** What the browser tab is told when the redirect lands: who signed in (IdP), or what was authorized (a server). */
export type LoopbackOutcome = { ok: true; user: string } | { ok: true; authorized: string } | { ok: false; message: string };

export interface LoopbackRedirect {
  /** The redirect_uri to register in the authorization request. */
  redirectUri: string;
  /** Resolves with the full callback URL once the browser lands on it; rejects on timeout or abort. */
  waitForCallback(): Promise<URL>;
  /** Answers the browser tab that is waiting (the page says whether the sign-in or the authorization worked). */
  respond(outcome: LoopbackOutcome): void;
  close(): Promise<void>;
}

/**
 * The errors a listener raises, so the same listener serves the IdP sign-in and a server's OAuth authorization with
 * the words (and error codes) of each. Defaults: the IdP sign-in's.
 */
export interface LoopbackErrors {
  timeout(): Error;
  cancelled(): Error;
  portInUse(port: number | undefined): Error;
}

const SIGN_IN_ERRORS: LoopbackErrors = {
  timeout: () =>
    new LanyardError(
      ErrorCodes.SIGN_IN_FAILED,
      'Sign-in timed out: the browser did not come back to Lanyard.',
      'Click "Sign in" again and finish the login in the browser tab that opens.',
    ),
  cancelled: () => new LanyardError(ErrorCodes.SIGN_IN_FAILED, 'Sign-in was cancelled.', 'Click "Sign in" when you are ready.'),
  portInUse: (port) =>
    new LanyardError(
      ErrorCodes.PORT_IN_USE,
      `The sign-in redirect port ${port} is already in use.`,
      'Close the program using that port, or change "idp.redirectPort" in the settings (the IdP must allow the new redirect URI).',
    ),
};

/**
 * A one-shot HTTP listener on 127.0.0.1 for the OIDC redirect of the IdP sign-in and the OAuth 2.1 redirect of a
 * server's authorization (electron/broker/oauth) (RFC 8252 §7.3: loopback IP literal, any port). The
 * port is ephemeral unless the IdP needs an exact redirect URI. Only GET /callback is answered; anything else is 404,
 * so a stray request cannot complete or cancel the sign-in.
 */
export async function openLoopbackRedirect(options: {
  port?: number | undefined;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  errors?: LoopbackErrors | undefined;
}): Promise<LoopbackRedirect> {
  const errors = options.errors ?? SIGN_IN_ERRORS;
  let resolveCallback!: (url: URL) => void;
  let rejectCallback!: (e: Error) => void;
  const callback = new Promise<URL>((resolve, reject) => {
    resolveCallback = resolve;
    rejectCallback = reject;
  });
  callback.catch(() => {});
  let pending: http.ServerResponse | undefined;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1`);
    if (req.method !== 'GET' || url.pathname !== '/callback' || pending) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
      return;
    }
    pending = res;
    resolveCallback(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}${req.url ?? ''}`));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? errors.portInUse(options.port) : e);
    });
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const timer = setTimeout(() => rejectCallback(errors.timeout()), options.timeoutMs);
  timer.unref();
  const onAbort = () => rejectCallback(errors.cancelled());
  options.signal?.addEventListener('abort', onAbort, { once: true });

  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    waitForCallback: () => callback,
    respond(outcome) {
      const res = pending;
      if (!res) return;
      pending = undefined;
      res.writeHead(outcome.ok ? 200 : 400, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      });
      res.end(resultPage(outcome));
    },
    async close() {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function resultPage(outcome: LoopbackOutcome): string {
  const title = !outcome.ok ? 'Sign-in did not complete' : 'user' in outcome ? 'You are signed in to Lanyard' : 'Lanyard is authorized';
  const body = !outcome.ok
    ? `${escapeHtml(outcome.message)} Return to Lanyard and try again.`
    : 'user' in outcome
      ? `Signed in as <strong>${escapeHtml(outcome.user)}</strong>. You can close this tab; your IDEs are connected.`
      : `Lanyard can now reach <strong>${escapeHtml(outcome.authorized)}</strong> for your IDEs. You can close this tab.`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>
body{font:16px system-ui,sans-serif;display:grid;place-items:center;min-height:100vh;margin:0;background:#f6f7f9;color:#1d2330}
main{background:#fff;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0001;max-width:32rem}
h1{font-size:1.25rem;margin:0 0 .5rem}@media(prefers-color-scheme:dark){body{background:#15181e;color:#e6e9ef}main{background:#1e222a}}
</style></head><body><main><h1>${outcome.ok ? '✓ ' : ''}${title}</h1><p>${body}</p></main></body></html>`;
}
