import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';
import type { FetchLike } from '../util/http';
import { UNTRUSTED_FIX } from './net-errors';

/**
 * The Electron app's fetch for the request/response hops (IdP, authorization servers, discovery, probes): a Chromium
 * session's fetch, which applies the system proxy settings, PAC files and the OS trust store — what the rest of the
 * desktop uses. The broker stays plain Node: electron/main hands the session's fetch in, and this only turns Chromium's
 * `net::ERR_*` failures into the network's own errors (their names are Chromium's stable error identifiers).
 */

type ChromiumFailure = { code: (typeof ErrorCodes)[keyof typeof ErrorCodes]; message: (host: string) => string; fix: string };

const PROXY_FIX = "Check the system's proxy settings (or the PAC file they name) and that the proxy is running.";

const FAILURES: Record<string, ChromiumFailure> = {
  ERR_CERT_AUTHORITY_INVALID: {
    code: ErrorCodes.TLS_UNTRUSTED,
    message: (h) => `The certificate presented for ${h} is not trusted.`,
    fix: UNTRUSTED_FIX,
  },
  ERR_CERT_DATE_INVALID: {
    code: ErrorCodes.TLS_UNTRUSTED,
    message: (h) => `The certificate presented for ${h} has expired or is not valid yet.`,
    fix: "Check the computer's clock; if it is right, the server (or your company's TLS-inspecting proxy) must renew its certificate.",
  },
  ERR_CERT_COMMON_NAME_INVALID: {
    code: ErrorCodes.TLS_UNTRUSTED,
    message: (h) => `The certificate presented for ${h} is for another host name.`,
    fix: "Check the URL in Lanyard's settings; if it is right, the server's certificate is wrong: tell its owner or your IT team.",
  },
  ERR_PROXY_CONNECTION_FAILED: {
    code: ErrorCodes.PROXY_UNREACHABLE,
    message: (h) => `The system proxy could not be reached (on the way to ${h}).`,
    fix: PROXY_FIX,
  },
  ERR_PAC_SCRIPT_FAILED: {
    code: ErrorCodes.PAC_FAILED,
    message: (h) => `The proxy auto-configuration (PAC) file failed for ${h}.`,
    fix: PROXY_FIX,
  },
  ERR_MANDATORY_PROXY_CONFIGURATION_FAILED: {
    code: ErrorCodes.PAC_FAILED,
    message: (h) => `The mandatory proxy configuration (PAC) could not be loaded (on the way to ${h}).`,
    fix: PROXY_FIX,
  },
  ERR_PROXY_AUTH_UNSUPPORTED: {
    code: ErrorCodes.PROXY_AUTH_REQUIRED,
    message: (h) => `The system proxy asks for credentials Lanyard cannot give (on the way to ${h}).`,
    fix: 'Ask your IT team to allow Lanyard through the proxy, or set HTTPS_PROXY with credentials and use `lanyard serve`.',
  },
  ERR_PROXY_AUTH_REQUESTED: {
    code: ErrorCodes.PROXY_AUTH_REQUIRED,
    message: (h) => `The system proxy asks for credentials (HTTP 407) before it lets Lanyard reach ${h}.`,
    fix: 'Ask your IT team to allow Lanyard through the proxy, or set HTTPS_PROXY with credentials and use `lanyard serve`.',
  },
};

export function chromiumFetch(sessionFetch: (input: string, init?: RequestInit) => Promise<Response>): FetchLike {
  return async (input, init) => {
    const url = String(input);
    try {
      return await sessionFetch(url, init);
    } catch (e) {
      const id = e instanceof Error ? /net::(ERR_[A-Z_]+)/.exec(e.message)?.[1] : undefined;
      const failure = id ? FAILURES[id] : undefined;
      if (!failure) throw e;
      let host = url;
      try {
        host = new URL(url).host;
      } catch {
        // keep the input as given
      }
      throw new LanyardError(failure.code, `${failure.message(host)} (${id})`, failure.fix, { cause: e });
    }
  };
}
