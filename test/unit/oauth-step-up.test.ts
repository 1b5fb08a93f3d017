import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { createOAuthSessions, MAX_STEP_UPS_PER_SCOPE_SET } from '../../electron/broker/oauth/oauth-sessions';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';

/**
 * Step-up on 403 insufficient_scope (the OAuth path's engine): the next authorization asks for the union of what was
 * asked before and what the server now wants, and a server that keeps asking for the same scopes gets a clear
 * INSUFFICIENT_SCOPE instead of an endless row of browser tabs.
 */
describe('OAuth path step-up', () => {
  const server = { id: 'docs', url: 'https://docs.example.com/mcp' };
  const make = (now: () => number = Date.now) =>
    createOAuthSessions({ secrets: new MemorySecretStore(), openUrl: () => {}, clientMetadataUrl: () => undefined, now });

  it('stops after a bounded number of step-ups for the same scopes, then allows them again later', async () => {
    let now = 1_000_000;
    const sessions = make(() => now);
    for (let i = 0; i < MAX_STEP_UPS_PER_SCOPE_SET; i++) await sessions.stepUp(server, 'admin');
    await expect(sessions.stepUp(server, 'admin')).rejects.toMatchObject({
      code: ErrorCodes.INSUFFICIENT_SCOPE,
      fix: expect.stringMatching(/scopes/),
    });
    now += 11 * 60_000;
    await expect(sessions.stepUp(server, 'admin')).resolves.toBeUndefined();
  });
});
