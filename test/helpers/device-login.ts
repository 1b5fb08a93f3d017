/**
 * The person on another device for a device sign-in (RFC 8628): opens the sandbox IdP's verification address, enters
 * the user code, confirms (or denies) it, and signs in on the IdP's login page — plain HTTP with cookies, as
 * SandboxIdp.completeLogin does for the browser sign-in. Returns the text of the page it ends on.
 */
import { CookieJar, decodeEntities, pageText, SANDBOX_USERS } from '../fixtures/sandbox/idp';

export async function approveDeviceCode(
  verificationUri: string,
  userCode: string,
  options: { username?: string; deny?: boolean } = {},
): Promise<string> {
  const username = options.username ?? 'alice';
  const password = SANDBOX_USERS.find((u) => u.username === username)?.password ?? '';
  const origin = new URL(verificationUri).origin;
  const jar = new CookieJar();
  let url = new URL(verificationUri);
  let method = 'GET';
  let body: string | undefined;
  let enteredCode = false;
  let confirmed = false;
  let signedIn = false;

  for (let hop = 0; hop < 25; hop++) {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, redirect: 'manual', ...(body === undefined ? {} : { body }) });
    jar.store(res.headers.getSetCookie());
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const next = new URL(res.headers.get('location') ?? '', url);
      if (next.origin !== origin) throw new Error(`approveDeviceCode: redirected off the IdP to ${next.origin}`);
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await res.text();
    const form = /<form[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
    const fields = new URLSearchParams();
    for (const m of (form?.[2] ?? '').matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g))
      fields.set(m[1]!, decodeEntities(m[2]!));
    if (res.status === 200 && form && /name="password"/.test(html)) {
      if (signedIn) throw new Error(`approveDeviceCode: the IdP rejected the sign-in: ${pageText(html).slice(0, 200)}`);
      fields.set('username', username);
      fields.set('password', password);
      signedIn = true;
    } else if (res.status === 200 && form && /name="user_code"[^>]*placeholder/.test(html) && !enteredCode) {
      fields.set('user_code', userCode);
      enteredCode = true;
    } else if (res.status === 200 && form && fields.has('confirm') && !confirmed) {
      if (options.deny) fields.set('abort', 'yes');
      confirmed = true;
    } else if (res.status === 200 && form && fields.has('xsrf') && !enteredCode) {
      // The verification_uri_complete answer: an auto-submitting form carrying the code.
      enteredCode = true;
    } else {
      return pageText(html);
    }
    url = new URL(decodeEntities(form[1]!), url);
    method = 'POST';
    body = fields.toString();
  }
  throw new Error('approveDeviceCode: too many steps');
}
