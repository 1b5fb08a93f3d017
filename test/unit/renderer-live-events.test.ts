/**
 * The browser dashboard's live events (renderer/src/api/client.ts): after its event stream drops and reconnects, the
 * page reads the activity it missed meanwhile (the broker re-sends status on every connect, but not past activity).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ActivityEvent } from '../../shared/contract';

class FakeEventSource {
  static last: FakeEventSource | undefined;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  private readonly handlers = new Map<string, Array<(e: { data: string }) => void>>();
  constructor(readonly url: string) {
    FakeEventSource.last = this;
  }
  addEventListener(name: string, l: (e: { data: string }) => void): void {
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), l]);
  }
  fire(name: string, data: unknown): void {
    for (const l of this.handlers.get(name) ?? []) l({ data: JSON.stringify(data) });
  }
}

const entry = (id: number, summary: string): ActivityEvent => ({ id, at: 1_700_000_000_000 + id, kind: 'server', summary, outcome: 'ok' });

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('browser client live events', () => {
  it('reads the activity it missed while its event stream was down', async () => {
    let recent: ActivityEvent[] = [];
    const fetchMock = vi.fn(async (url: string) => {
      if (!url.endsWith('/api/recentActivity')) throw new Error(`unexpected ${url}`);
      return new Response(JSON.stringify({ ok: true, value: recent }), { headers: { 'content-type': 'application/json' } });
    });
    vi.stubGlobal('window', { fetch: fetchMock });
    vi.stubGlobal('EventSource', FakeEventSource);
    // Imported by a computed name: the module is typed for the DOM (tsconfig.web.json), this file for Node.
    const clientModule = '../../renderer/src/api/client';
    const { createLanyardClient } = (await import(/* @vite-ignore */ clientModule)) as {
      createLanyardClient(): { on(name: 'activity', listener: (e: ActivityEvent) => void): () => void };
    };
    const client = createLanyardClient();
    const seen: string[] = [];
    client.on('activity', (e) => seen.push(e.summary));
    const source = FakeEventSource.last!;
    source.onopen!();
    source.fire('activity', entry(1, 'live one'));
    expect(seen).toEqual(['live one']);
    expect(fetchMock).not.toHaveBeenCalled();

    // The stream drops; the broker records an entry nobody streams; the stream comes back.
    source.onerror!();
    recent = [entry(2, 'while disconnected'), entry(1, 'live one')];
    source.onopen!();
    await expect.poll(() => seen).toContain('while disconnected');
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });
});
