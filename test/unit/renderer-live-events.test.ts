/**
 * The browser dashboard's live events (renderer/src/api/client.ts): after its event stream drops and reconnects, the
 * page reads the activity it missed meanwhile (the broker re-sends status on every connect, but not past activity).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ActivityEvent } from '../../shared/contract';

class FakeEventSource {
  static all: FakeEventSource[] = [];
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  private readonly handlers = new Map<string, Array<(e: { data: string }) => void>>();
  constructor(readonly url: string) {
    FakeEventSource.all.push(this);
  }
  addEventListener(name: string, l: (e: { data: string }) => void): void {
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), l]);
  }
  fire(name: string, data: unknown): void {
    for (const l of this.handlers.get(name) ?? []) l({ data: JSON.stringify(data) });
  }
  close(): void {
    this.closed = true;
  }
}

const entry = (id: number, summary: string): ActivityEvent => ({ id, at: 1_700_000_000_000 + id, kind: 'server', summary, outcome: 'ok' });

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('browser client live events', () => {
  it('reads the activity it missed while its event stream was down', async () => {
    let recent: ActivityEvent[] = [];
    let tickets = 0;
    const calls: string[] = [];
    const fetchMock = vi.fn(async (url: string) => {
      calls.push(url);
      const json = (value: unknown) => new Response(JSON.stringify(value), { headers: { 'content-type': 'application/json' } });
      if (url.endsWith('/dashboard/ticket')) return json({ ticket: `ticket-${++tickets}` });
      if (url.endsWith('/api/recentActivity')) return json({ ok: true, value: recent });
      throw new Error(`unexpected ${url}`);
    });
    // The page already holds its dashboard session (sessionStorage); the event stream opens with a one-time ticket.
    vi.stubGlobal('window', {
      fetch: fetchMock,
      location: { hash: '', pathname: '/', search: '' },
      sessionStorage: { getItem: () => 'session-id', setItem: () => undefined },
      history: { replaceState: () => undefined },
    });
    vi.stubGlobal('EventSource', FakeEventSource);
    // Imported by a computed name: the module is typed for the DOM (tsconfig.web.json), this file for Node.
    const clientModule = '../../renderer/src/api/client';
    const { createLanyardClient } = (await import(/* @vite-ignore */ clientModule)) as {
      createLanyardClient(): { on(name: 'activity', listener: (e: ActivityEvent) => void): () => void };
    };
    const client = createLanyardClient();
    const seen: string[] = [];
    client.on('activity', (e) => seen.push(e.summary));
    await expect.poll(() => FakeEventSource.all.length).toBe(1);
    const first = FakeEventSource.all[0]!;
    expect(first.url).toBe('/api/events?ticket=ticket-1');
    first.onopen!();
    first.fire('activity', entry(1, 'live one'));
    expect(seen).toEqual(['live one']);
    expect(calls.filter((u) => u.endsWith('/api/recentActivity'))).toHaveLength(0);

    // The stream drops; the broker records an entry nobody streams; the stream comes back with a new ticket.
    first.onerror!();
    expect(first.closed).toBe(true);
    recent = [entry(2, 'while disconnected'), entry(1, 'live one')];
    await expect.poll(() => FakeEventSource.all.length, { timeout: 5_000 }).toBe(2);
    const second = FakeEventSource.all[1]!;
    expect(second.url).toBe('/api/events?ticket=ticket-2');
    second.onopen!();
    await expect.poll(() => seen).toContain('while disconnected');
    expect(calls.filter((u) => u.endsWith('/api/recentActivity'))).toHaveLength(1);
  });
});
