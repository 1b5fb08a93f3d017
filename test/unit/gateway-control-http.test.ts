/**
 * The control API's HTTP transport (`POST /api/<method>`) reads bodies with the gateway's bounded reader: an oversized
 * body is a 413 on the typed error (declared or chunked), invalid JSON a 400, an empty body the empty input.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlService } from '../../electron/broker/control/control-service';
import { createControlHttpHandler } from '../../electron/broker/control/http-api';
import { postChunked } from '../helpers/chunked-post';

const LIMIT = 256 * 1024;
let server: Server;
let base = '';
let calls = 0;

beforeAll(async () => {
  const control = {
    async signOut() {
      calls++;
      return { ok: true };
    },
  } as unknown as ControlService;
  const handle = createControlHttpHandler(control);
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => {
    server.close(r);
    server.closeAllConnections();
  });
});

describe('control API bodies', () => {
  it('an empty body is the empty input; invalid JSON is 400', async () => {
    const empty = await fetch(`${base}/api/signOut`, { method: 'POST' });
    expect(await empty.json()).toEqual({ ok: true, value: { ok: true } });
    const bad = await fetch(`${base}/api/signOut`, { method: 'POST', body: '{' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ ok: false, error: { message: expect.stringMatching(/not valid JSON/) } });
  });

  it('an oversized body is 413 with the error, by Content-Length and while it streams, and the method never runs', async () => {
    const before = calls;
    const declared = await fetch(`${base}/api/signOut`, { method: 'POST', body: `"${'x'.repeat(LIMIT)}"` });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({
      ok: false,
      error: { message: expect.stringMatching(/too large/), fix: expect.any(String) },
    });
    const chunked = await postChunked(`${base}/api/signOut`, {}, [Buffer.alloc(LIMIT / 2, 'x'), Buffer.alloc(LIMIT / 2 + 1, 'x')], {
      end: false,
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/too large/) } });
    expect(calls).toBe(before);
  });
});
