/**
 * ControlService pushes status after listing a server's tools: the dashboard learns the tool count from that push,
 * and the push the gateway made when the server became ready came before its tools were listed.
 */
import { describe, expect, it } from 'vitest';
import type { Status } from '../../shared/contract';
import { ActivityLog } from '../../electron/broker/activity/activity-log';
import { ConfigStore, type ConfigBackend } from '../../electron/broker/config/store';
import { ControlService, type GatewayView } from '../../electron/broker/control/control-service';
import { MemorySecretStore } from '../../electron/broker/secrets/memory-store';

describe('ControlService status push', () => {
  it('pushes the tool count a listing found, with no other change to trigger it', async () => {
    let doc: unknown;
    const backend: ConfigBackend = { path: '/nonexistent/config.json', read: () => doc, write: (v) => void (doc = structuredClone(v)) };
    let toolCount: number | undefined;
    const gateway: GatewayView = {
      url: 'http://127.0.0.1:1',
      port: 1,
      ideSessions: () => [],
      // As the aggregator: ready (connected) before its catalog exists; the count appears once the tools are listed.
      serverHealth: () => ({ health: 'ready', ...(toolCount !== undefined ? { toolCount } : {}) }),
      listTools: async () => {
        await new Promise((r) => setTimeout(r, 120));
        toolCount = 2;
        return [
          { name: 'a', exposedName: 'todo__a' },
          { name: 'b', exposedName: 'todo__b' },
        ];
      },
      serversChanged: () => undefined,
    };
    const control = new ControlService({
      version: 'test',
      config: new ConfigStore(backend),
      secrets: new MemorySecretStore(),
      activity: new ActivityLog(),
      engine: () => undefined,
      gateway: () => gateway,
      reconfigure: async () => undefined,
    });
    await control.addServer({ url: 'https://todo.example.com/mcp', id: 'todo', name: 'Todo', clientId: 'c' });
    const pushed: Status[] = [];
    control.onEvent((event, payload) => {
      if (event === 'status') pushed.push(payload as Status);
    });
    // The push for the add itself (no tool count yet) goes out first.
    await expect.poll(() => pushed.length).toBeGreaterThan(0);
    expect(pushed.at(-1)!.servers[0]!.toolCount).toBeUndefined();

    await control.listTools({ id: 'todo' });
    await expect.poll(() => pushed.at(-1)!.servers[0]!.toolCount, { timeout: 2_000 }).toBe(2);
  });
});
