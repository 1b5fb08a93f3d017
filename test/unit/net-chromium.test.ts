import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { chromiumFetch } from '../../electron/broker/net/chromium';

/** Chromium's fetch rejects with `net::ERR_*` in the message; the Electron app's hops turn those into the network's codes. */
const failing = (id: string) => chromiumFetch(() => Promise.reject(new Error(`net::${id}`)));

describe("the Electron app's Chromium fetch", () => {
  it.each([
    ['ERR_CERT_AUTHORITY_INVALID', ErrorCodes.TLS_UNTRUSTED, /network\.caFile|OS store/],
    ['ERR_CERT_DATE_INVALID', ErrorCodes.TLS_UNTRUSTED, /clock/],
    ['ERR_PROXY_CONNECTION_FAILED', ErrorCodes.PROXY_UNREACHABLE, /proxy/],
    ['ERR_PAC_SCRIPT_FAILED', ErrorCodes.PAC_FAILED, /PAC|proxy/],
    ['ERR_MANDATORY_PROXY_CONFIGURATION_FAILED', ErrorCodes.PAC_FAILED, /PAC/],
    ['ERR_PROXY_AUTH_REQUESTED', ErrorCodes.PROXY_AUTH_REQUIRED, /IT team/],
  ])('%s becomes %s with its fix', async (id, code, fix) => {
    const error = await failing(id)('https://idp.example.com/.well-known/openid-configuration').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LanyardError);
    expect((error as LanyardError).code).toBe(code);
    expect((error as LanyardError).message).toContain('idp.example.com');
    expect((error as LanyardError).fix).toMatch(fix);
  });

  it('passes answers and other failures through unchanged', async () => {
    const ok = await chromiumFetch(async () => new Response('hi', { status: 201 }))('https://a.example/');
    expect(ok.status).toBe(201);
    const other = new Error('net::ERR_CONNECTION_REFUSED');
    await expect(chromiumFetch(() => Promise.reject(other))('https://a.example/')).rejects.toBe(other);
  });
});
