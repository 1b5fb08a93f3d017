/**
 * Discovery kept across restarts (exchange/discovery-state.ts): a broker that restarts with a valid state file reaches
 * its servers without the metadata round trips, and a corrupt or foreign file is ignored with a log line, never a
 * crash. The token service runs as in the broker; its outbound fetch counts every request it makes.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiscoveryState, discoveryStateFile } from '../../electron/broker/exchange/discovery-state';
import type { ServerAuthInfo } from '../../electron/broker/exchange/discovery';
import { TokenService } from '../../electron/broker/exchange/token-service';
import { UsageCounter } from '../../electron/broker/exchange/usage';
import type { IdentitySession } from '../../electron/broker/identity/identity-session';
import type { SecretStore } from '../../electron/broker/secrets/secret-store';
import { createLogger } from '../../electron/broker/util/log';

const SERVER = { id: 'open', url: 'http://127.0.0.1:9/mcp' };

/** A fetch that answers like an MCP server needing no token (the probe's initialize gets 200) and counts requests. */
function openServerFetch() {
  const seen: string[] = [];
  const fetchFn = (async (input: string | URL | Request) => {
    seen.push(String(input instanceof Request ? input.url : input));
    return new Response('{"jsonrpc":"2.0","id":1,"result":{}}', { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return { fetchFn, seen };
}

function logLines() {
  const lines: string[] = [];
  return { log: createLogger({ level: 'debug', sink: (line) => lines.push(line) }), lines };
}

function tokenService(state: DiscoveryState, fetchFn: typeof fetch): TokenService {
  // The identity session is only asked for a token when a server needs one; this one does not.
  const identity = { onSubjectEnded: () => () => undefined, state: { status: 'signed_out' } } as unknown as IdentitySession;
  return new TokenService({
    identity,
    secrets: {} as SecretStore,
    usage: new UsageCounter(undefined),
    getServer: (id) => (id === SERVER.id ? SERVER : undefined),
    fetch: fetchFn,
    discoveryState: state,
  });
}

describe('discovery state across restarts', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(path.join(process.env.LANYARD_TEST_ROOT ?? tmpdir(), 'lanyard-discovery-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  async function firstRun(): Promise<void> {
    const state = new DiscoveryState(discoveryStateFile(home));
    await state.load();
    const { fetchFn, seen } = openServerFetch();
    expect(await tokenService(state, fetchFn).getToken(SERVER.id)).toBeNull();
    // The first run had to ask the server.
    expect(seen.length).toBeGreaterThan(0);
    await state.flush();
  }

  it('a restart with a valid state file reaches the server without a discovery round trip', async () => {
    await firstRun();
    const file = discoveryStateFile(home);
    if (process.platform !== 'win32') expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).not.toMatch(/access_token|Bearer /);

    const state = new DiscoveryState(file);
    await state.load();
    const { fetchFn, seen } = openServerFetch();
    const tokens = tokenService(state, fetchFn);
    expect(await tokens.getToken(SERVER.id)).toBeNull();
    expect(seen).toEqual([]);
    expect(tokens.status(SERVER.id).authRequired).toBe(false);
  });

  it('a record for another server URL is not used', async () => {
    await firstRun();
    const file = discoveryStateFile(home);
    const data = JSON.parse(await readFile(file, 'utf8')) as { servers: Record<string, { url: string; auth: ServerAuthInfo }> };
    data.servers[SERVER.id]!.url = 'http://127.0.0.1:9/other';
    await writeFile(file, JSON.stringify(data));
    const state = new DiscoveryState(file);
    await state.load();
    const { fetchFn, seen } = openServerFetch();
    await tokenService(state, fetchFn).getToken(SERVER.id);
    expect(seen.length).toBeGreaterThan(0);
  });

  it('a corrupt or foreign state file is ignored with a log line, and discovery runs as on a first start', async () => {
    const file = discoveryStateFile(home);
    for (const content of ['{"kind":"lanyard-discovery","v":1,"servers":', '{"kind":"something-else","v":7,"servers":{}}', '[1,2,3]']) {
      await writeFile(file, content);
      const { log, lines } = logLines();
      const state = new DiscoveryState(file, { log });
      await state.load();
      expect(lines.some((l) => /discovery state file ignored/.test(l))).toBe(true);
      const { fetchFn, seen } = openServerFetch();
      expect(await tokenService(state, fetchFn).getToken(SERVER.id)).toBeNull();
      expect(seen.length).toBeGreaterThan(0);
      // The next write replaces it with a valid file.
      await state.flush();
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ kind: 'lanyard-discovery', v: 1 });
    }
  });

  it('a record that fails its shape check is skipped, the others kept', async () => {
    await firstRun();
    const file = discoveryStateFile(home);
    const data = JSON.parse(await readFile(file, 'utf8')) as { servers: Record<string, unknown> };
    data.servers.broken = { url: 'http://127.0.0.1:9/x', auth: { serverUrl: 42 } };
    await writeFile(file, JSON.stringify(data));
    const state = new DiscoveryState(file);
    await state.load();
    expect(state.auth('broken', 'http://127.0.0.1:9/x', undefined)).toBeUndefined();
    expect(state.auth(SERVER.id, SERVER.url, undefined)?.authRequired).toBe(false);
  });

  it("keeps a managed server's auth path for the same URL; an unknown path in the file is skipped", async () => {
    const file = discoveryStateFile(home);
    const first = new DiscoveryState(file);
    await first.load();
    first.setAuthPath('managed', SERVER.url, 'xaa');
    first.setAuthPath('other', SERVER.url, 'header');
    first.setAuthPath('other', SERVER.url, undefined);
    await first.flush();
    const data = JSON.parse(await readFile(file, 'utf8')) as { servers: Record<string, unknown> };
    data.servers.odd = { url: SERVER.url, authPath: 'telepathy' };
    await writeFile(file, JSON.stringify(data));
    const second = new DiscoveryState(file);
    await second.load();
    expect(second.authPath('managed', SERVER.url)).toBe('xaa');
    expect(second.authPath('managed', 'http://127.0.0.1:9/moved')).toBeUndefined();
    expect(second.authPath('other', SERVER.url)).toBeUndefined();
    expect(second.authPath('odd', SERVER.url)).toBeUndefined();
  });

  it('keeps the transport and era verdict for the same URL only', async () => {
    const file = discoveryStateFile(home);
    const first = new DiscoveryState(file);
    await first.load();
    first.setTransport(SERVER.id, SERVER.url, { kind: 'streamable-http', era: { verdict: { kind: 'legacy' }, at: 1 } });
    await first.flush();
    const second = new DiscoveryState(file);
    await second.load();
    expect(second.transport(SERVER.id, SERVER.url)).toEqual({ kind: 'streamable-http', era: { verdict: { kind: 'legacy' }, at: 1 } });
    expect(second.transport(SERVER.id, 'http://127.0.0.1:9/moved')).toBeUndefined();
  });
});
