import {
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  type JSONRPCMessage,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { Deadline } from '../../electron/broker/gateway/upstream/call-context';
import { classifyUpstreamError, STREAM_ENDED_MARK } from '../../electron/broker/gateway/upstream/errors';
import { GuardedTransport } from '../../electron/broker/gateway/upstream/guarded-transport';
import { backoffDelay } from '../../electron/broker/gateway/upstream/health';
import { mirrorCapabilities, prefixLogger } from '../../electron/broker/gateway/upstream/bound-peer';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIwMHUtYWxpY2UifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('backoffDelay', () => {
  it('doubles from 0.5 s to a 30 s cap, with jitter in the upper half', () => {
    expect(backoffDelay(0, undefined, () => 0)).toBe(250);
    expect(backoffDelay(0, undefined, () => 1)).toBe(500);
    expect(backoffDelay(3, undefined, () => 1)).toBe(4_000);
    expect(backoffDelay(20, undefined, () => 1)).toBe(30_000);
    expect(backoffDelay(1_000, undefined, () => 0)).toBe(15_000);
    for (let attempt = 0; attempt < 12; attempt++) {
      const d = backoffDelay(attempt);
      expect(d).toBeGreaterThanOrEqual(Math.min(30_000, 500 * 2 ** attempt) / 2);
      expect(d).toBeLessThanOrEqual(30_000);
    }
  });
});

describe('classifyUpstreamError', () => {
  it('sorts HTTP failures: 404 = session gone, 401/403 = credentials, 5xx/429 = transient transport', () => {
    const http = (status: number) =>
      new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, `Error POSTing to endpoint: ${JWT}`, { status, text: `Bearer ${JWT}` });
    expect(classifyUpstreamError('todo', http(404)).kind).toBe('session-gone');
    const unauthorized = classifyUpstreamError('todo', http(401));
    expect(unauthorized).toMatchObject({ kind: 'auth', error: { code: ErrorCodes.AS_GRANT_REJECTED } });
    expect(classifyUpstreamError('todo', http(403))).toMatchObject({ kind: 'auth', error: { code: ErrorCodes.INSUFFICIENT_SCOPE } });
    for (const status of [429, 500, 503]) {
      const failure = classifyUpstreamError('todo', http(status));
      expect(failure).toMatchObject({
        kind: 'transport',
        error: { code: ErrorCodes.SERVER_UNREACHABLE, transient: true, serverId: 'todo' },
      });
    }
    // Nothing from the body or the SDK message (which quote the exchange) reaches the message or the fix.
    for (const status of [400, 401, 403, 500]) {
      const failure = classifyUpstreamError('todo', http(status));
      if (failure.kind === 'transport' || failure.kind === 'auth') {
        expect(failure.error.message).not.toContain('eyJ');
        expect(failure.error.fix).not.toContain('eyJ');
      }
    }
  });

  it('names network failures by their system code', () => {
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
    });
    const failure = classifyUpstreamError('wiki', refused);
    expect(failure.kind).toBe('transport');
    if (failure.kind === 'transport') expect(failure.error.message).toBe('Server "wiki" refused the connection (is it running?).');
  });

  it("keeps the server's own JSON-RPC errors, but treats a synthesised stream end as a transport failure", () => {
    expect(classifyUpstreamError('todo', new ProtocolError(-32602, 'bad args')).kind).toBe('protocol');
    expect(classifyUpstreamError('todo', new ProtocolError(-32000, 'ended', { lanyard: STREAM_ENDED_MARK })).kind).toBe('transport');
  });

  it('timeouts, closed connections and token engine errors', () => {
    expect(classifyUpstreamError('todo', new SdkError(SdkErrorCode.RequestTimeout, 'Request timed out')).kind).toBe('timeout');
    expect(classifyUpstreamError('todo', new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed')).kind).toBe('transport');
    const notSignedIn = new LanyardError(ErrorCodes.NOT_SIGNED_IN, 'You are not signed in.', 'Sign in.');
    expect(classifyUpstreamError('todo', notSignedIn)).toEqual({ kind: 'auth', error: notSignedIn });
  });

  it('redacts whatever an unknown error says', () => {
    const failure = classifyUpstreamError('todo', new Error(`boom with Bearer ${JWT} and access_token=abc123def456`));
    expect(failure.kind).toBe('transport');
    if (failure.kind === 'transport') {
      expect(failure.error.message).not.toContain('eyJ');
      expect(failure.error.message).not.toContain('abc123def456');
    }
  });
});

class FakeTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;
  sent: Array<{ message: JSONRPCMessage; options?: TransportSendOptions | undefined }> = [];
  async start(): Promise<void> {}
  async close(): Promise<void> {
    this.onclose?.();
  }
  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    this.sent.push({ message, options });
  }
}

describe('GuardedTransport', () => {
  function setup() {
    const inner = new FakeTransport();
    const lost: string[] = [];
    const guarded = new GuardedTransport(inner, (reason) => lost.push(reason));
    const received: JSONRPCMessage[] = [];
    guarded.onmessage = (m) => received.push(m);
    return { inner, guarded, lost, received };
  }

  it('answers a request whose response stream ended without an answer, at once and marked', async () => {
    const { inner, guarded, received } = setup();
    await guarded.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'x' } });
    inner.sent[0]!.options!.onRequestStreamEnd!();
    expect(received).toEqual([
      { jsonrpc: '2.0', id: 7, error: { code: -32000, message: expect.any(String), data: { lanyard: STREAM_ENDED_MARK } } },
    ]);
  });

  it('adds nothing when the answer came, or when the request was cancelled', async () => {
    const { inner, guarded, received } = setup();
    await guarded.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } });
    inner.onmessage!({ jsonrpc: '2.0', id: 1, result: { content: [] } });
    inner.sent[0]!.options!.onRequestStreamEnd!();
    await guarded.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'y' } });
    await guarded.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } });
    inner.sent[1]!.options!.onRequestStreamEnd!();
    expect(received).toEqual([{ jsonrpc: '2.0', id: 1, result: { content: [] } }]);
  });

  it('reports a lost connection (SSE re-open exhausted, or closed by the other side), not per-message errors', async () => {
    const { inner, guarded, lost } = setup();
    inner.onerror!(new Error('SSE stream disconnected: TypeError: terminated'));
    expect(lost).toEqual([]);
    inner.onerror!(new Error('Maximum reconnection attempts (2) exceeded.'));
    expect(lost).toHaveLength(1);
    inner.onclose!();
    expect(lost).toHaveLength(2);
    await guarded.close();
    expect(lost).toHaveLength(2);
  });
});

describe('Deadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires after its budget, restarts on progress, and stops while the IDE is answering', () => {
    vi.useFakeTimers();
    const deadline = new Deadline(1_000);
    vi.advanceTimersByTime(900);
    deadline.reset();
    vi.advanceTimersByTime(900);
    expect(deadline.expired).toBe(false);
    deadline.pause();
    deadline.pause();
    vi.advanceTimersByTime(60_000);
    expect(deadline.expired).toBe(false);
    deadline.resume();
    vi.advanceTimersByTime(60_000);
    expect(deadline.expired).toBe(false);
    deadline.resume();
    vi.advanceTimersByTime(999);
    expect(deadline.expired).toBe(false);
    vi.advanceTimersByTime(2);
    expect(deadline.expired).toBe(true);
    expect(deadline.signal.aborted).toBe(true);
  });

  it('clear() ends it for good', () => {
    vi.useFakeTimers();
    const deadline = new Deadline(100);
    deadline.clear();
    deadline.reset();
    vi.advanceTimersByTime(1_000);
    expect(deadline.expired).toBe(false);
  });
});

describe('bound session capabilities and log names', () => {
  it("declares exactly the IDE's server→client capabilities, nothing more", () => {
    expect(mirrorCapabilities({})).toEqual({});
    expect(mirrorCapabilities({ sampling: {}, experimental: { x: {} } })).toEqual({ sampling: {} });
    expect(mirrorCapabilities({ elicitation: { form: {}, url: {} }, roots: { listChanged: true } })).toEqual({
      elicitation: { form: {}, url: {} },
      roots: { listChanged: true },
    });
  });

  it('prefixes the logger with the server id', () => {
    expect(prefixLogger('wiki', 'sandbox.wiki')).toBe('wiki/sandbox.wiki');
    expect(prefixLogger('wiki', undefined)).toBe('wiki');
  });
});
