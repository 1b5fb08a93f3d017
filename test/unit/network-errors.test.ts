import { createServer, type AddressInfo, type Socket } from 'node:net';
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { classifyNetworkError } from '../../electron/broker/util/network-errors';

/** A Node system error as a socket call raises it (code, syscall), with a message that names nothing. */
const systemError = (code: string) => Object.assign(new Error('opaque'), { code, syscall: 'connect' });
/** undici's shape: TypeError('fetch failed') with the real failure as its cause. */
const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });

describe('classifyNetworkError', () => {
  it.each([
    ['ECONNREFUSED', 'refused'],
    ['ECONNRESET', 'reset'],
    ['UND_ERR_SOCKET', 'reset'],
    ['ENOTFOUND', 'dns'],
    ['EAI_AGAIN', 'dns'],
    ['ETIMEDOUT', 'timeout'],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout'],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout'],
    ['EHOSTUNREACH', 'unreachable'],
    ['CERT_HAS_EXPIRED', 'tls'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls'],
    ['EPROTO', 'other'],
  ])('%s under fetch failed is %s, and the summary names the code', (code, kind) => {
    const failure = classifyNetworkError(fetchFailed(systemError(code)));
    expect(failure).toMatchObject({ kind, code });
    expect(failure?.summary).toContain(code);
  });

  it('follows the cause chain through wrappers and into an AggregateError (happy-eyeballs connection attempts)', () => {
    const aggregate = new AggregateError([systemError('ECONNREFUSED'), systemError('ECONNREFUSED')], 'all attempts failed');
    const wrapped = new Error('outer', { cause: fetchFailed(aggregate) });
    expect(classifyNetworkError(wrapped)).toMatchObject({ kind: 'refused', code: 'ECONNREFUSED' });
  });

  it('a deadline (TimeoutError) and a cancellation (AbortError), also when a library wraps them', () => {
    expect(classifyNetworkError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))?.kind).toBe('timeout');
    expect(classifyNetworkError(new DOMException('This operation was aborted', 'AbortError'))?.kind).toBe('aborted');
    // openid-client wraps its own request timeout as ClientError(OAUTH_TIMEOUT) with the DOMException as cause.
    const wrapped = Object.assign(new oidc.ClientError('operation timed out', { cause: new DOMException('t', 'TimeoutError') }), {
      code: 'OAUTH_TIMEOUT',
    });
    expect(classifyNetworkError(wrapped)?.kind).toBe('timeout');
  });

  it('a fetch failure with a cause it has no words for is still the network', () => {
    expect(classifyNetworkError(fetchFailed(new Error('something')))).toEqual({ kind: 'other', summary: 'network error' });
  });

  it('never reads message text: errors that only mention the network are not network errors', () => {
    expect(classifyNetworkError(new Error('connect ECONNREFUSED 127.0.0.1:9'))).toBeUndefined();
    expect(classifyNetworkError(new TypeError('fetch failed'))).toBeUndefined();
    expect(classifyNetworkError(new Error('HTTP 503 trying to load metadata'))).toBeUndefined();
    expect(classifyNetworkError(new LanyardError(ErrorCodes.IDP_UNREACHABLE, 'timed out', 'retry'))).toBeUndefined();
    expect(classifyNetworkError(Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL' }))).toBeUndefined();
    expect(classifyNetworkError('ECONNREFUSED')).toBeUndefined();
    expect(classifyNetworkError(undefined)).toBeUndefined();
  });

  it('a real refused connection from fetch', async () => {
    // Bind a port, then close it: nothing listens there for the request.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await fetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    expect(classifyNetworkError(error)).toMatchObject({ kind: 'refused', code: 'ECONNREFUSED' });
  });

  it('a real deadline from AbortSignal.timeout on a server that never answers', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const error = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(200) }).catch((e: unknown) => e);
      expect(classifyNetworkError(error)?.kind).toBe('timeout');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
