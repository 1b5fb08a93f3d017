/**
 * A restart with cached tokens reaches its servers without discovering them again: the second broker on the same home
 * reads `<home>/discovery.json` (what the first one learnt: RFC 9728 / RFC 8414 metadata, transport, protocol era) and
 * makes no metadata request and no unauthenticated probe; a damaged file is ignored and discovery runs as on a first
 * start. Real sandbox (IdP, authorization servers, SDK MCP servers) and the real keychain:
 * `bash scripts/keyring-session.sh npx vitest run test/integration/discovery-restart.test.ts`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoveryStateFile } from '../../electron/broker/exchange/discovery-state';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerOnSandbox, textOf, type BrokerOnSandbox } from '../reliability/harness';

let sandbox: Sandbox;
const started: BrokerOnSandbox[] = [];

/** Every outbound URL the broker fetched (metadata, the IdP, the servers). */
function countingFetch() {
  const urls: string[] = [];
  const fetchFn = ((input: string | URL | Request, init?: RequestInit) => {
    urls.push(String(input instanceof Request ? input.url : input));
    return fetch(input, init);
  }) as typeof fetch;
  return { fetchFn, metadata: () => urls.filter((u) => u.includes('/.well-known/')) };
}

async function echoThrough(lanyard: BrokerOnSandbox, text: string): Promise<string> {
  const ide = await lanyard.ide();
  try {
    return textOf(await ide.callTool({ name: 'todo__echo', arguments: { text } }));
  } finally {
    await ide.close();
  }
}

beforeAll(async () => {
  sandbox = await startSandbox();
}, 60_000);

afterAll(async () => {
  for (const b of started.reverse()) await b.dispose().catch(() => undefined);
  await sandbox?.stop();
});

describe('discovery kept across a restart', () => {
  it('the restarted broker makes no metadata request and no unauthenticated probe; a damaged file is ignored', async () => {
    const servers = sandbox.lanyardConfig().servers.filter((s) => s.id === 'todo');
    const firstWire = countingFetch();
    const first = await startBrokerOnSandbox(sandbox, { servers, fetch: firstWire.fetchFn });
    started.push(first);
    await first.signIn('alice');
    expect(await echoThrough(first, 'one')).toBe('echo: one');
    expect(firstWire.metadata().length).toBeGreaterThan(0);
    await first.stop();
    const file = discoveryStateFile(first.home);
    const saved = await readFile(file, 'utf8');
    expect(JSON.parse(saved)).toMatchObject({ kind: 'lanyard-discovery', servers: { todo: { url: servers[0]!.url } } });

    // The servers as the first run left them in the config (with the auth path its probe recorded).
    const recorded = (JSON.parse(await readFile(path.join(first.home, 'config.json'), 'utf8')) as { servers: typeof servers }).servers;
    expect(recorded[0]).toMatchObject({ id: 'todo', authPath: 'xaa' });
    const probesBefore = sandbox.server('todo').mcp.counters.unauthorized;
    const secondWire = countingFetch();
    const second = await startBrokerOnSandbox(sandbox, { servers: recorded, fetch: secondWire.fetchFn, home: first.home });
    started.push(second);
    expect(await echoThrough(second, 'two')).toBe('echo: two');
    expect(secondWire.metadata()).toEqual([]);
    expect(sandbox.server('todo').mcp.counters.unauthorized).toBe(probesBefore);
    await second.stop();

    // A damaged file: a log line, discovery as on a first start, the call works.
    await writeFile(file, saved.slice(0, saved.length / 2));
    const thirdWire = countingFetch();
    const third = await startBrokerOnSandbox(sandbox, { servers: recorded, fetch: thirdWire.fetchFn, home: first.home });
    started.push(third);
    expect(await echoThrough(third, 'three')).toBe('echo: three');
    expect(thirdWire.metadata().length).toBeGreaterThan(0);
    expect(third.logs.some((l) => /discovery state file ignored/.test(l))).toBe(true);
    await third.stop();
  }, 90_000);
});
