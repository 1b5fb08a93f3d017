/**
 * Removing a server drops everything Lanyard held for it: adding it back with the same id and URL starts clean (a new
 * token exchange, no old token or status), through the control API as the dashboard and `lanyard servers` use it.
 * Run with `bash scripts/keyring-session.sh npx vitest run test/integration/server-readd.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent, ServerStatus } from '../../shared/contract';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerOnSandbox, textOf, type BrokerOnSandbox } from '../reliability/harness';

let sandbox: Sandbox;
let lanyard: BrokerOnSandbox;

/** One control method over `POST /api/<method>` with the local token. */
async function control<T>(method: string, input: unknown): Promise<T> {
  const res = await lanyard.post(`/api/${method}`, input ?? {});
  const result = (await res.json()) as { ok: true; value: T } | { ok: false; error: { code: string; message: string } };
  if (!result.ok) throw new Error(`${method}: ${result.error.code} ${result.error.message}`);
  return result.value;
}

/** How many access tokens Lanyard obtained for `todo` (each is one ID-JAG exchange), from the activity view. */
async function todoMints(): Promise<number> {
  const activity = await control<ActivityEvent[]>('recentActivity', { limit: 500 });
  return activity.filter((e) => e.serverId === 'todo' && e.summary.startsWith('New token for todo')).length;
}

async function echo(text: string): Promise<string> {
  const ide = await lanyard.ide();
  try {
    return textOf(await ide.callTool({ name: 'todo__echo', arguments: { text } }));
  } finally {
    await ide.close();
  }
}

beforeAll(async () => {
  sandbox = await startSandbox();
  lanyard = await startBrokerOnSandbox(sandbox);
  await lanyard.signIn('alice');
}, 60_000);

afterAll(async () => {
  await lanyard?.dispose();
  await sandbox?.stop();
});

describe('remove a server, then add it again with the same id and URL', () => {
  it('exchanges a new token and shows no state from before', async () => {
    const todo = sandbox.lanyardConfig().servers.find((s) => s.id === 'todo')!;
    const clientSecret = sandbox.lanyardSecrets()['server:todo:client_secret']!;
    expect(await echo('first')).toBe('echo: first');
    expect(await todoMints()).toBe(1);

    await control('removeServer', { id: 'todo' });
    const added = await control<ServerStatus>('addServer', {
      id: 'todo',
      url: todo.url,
      name: todo.name,
      clientId: todo.asClient.clientId,
      clientAuthMethod: todo.asClient.method,
      clientSecret,
    });
    // Nothing carried over: no token, no expiry, no error from the old entry.
    expect(added.tokenExpiresAt).toBeUndefined();
    expect(added.lastError).toBeUndefined();

    expect(await echo('again')).toBe('echo: again');
    // A new exchange for the new entry: the old entry's cached token was not served.
    expect(await todoMints()).toBe(2);
  }, 60_000);
});
