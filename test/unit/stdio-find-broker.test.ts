import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeRuntimeFile } from '../../electron/broker/gateway/runtime-file';
import { portInUseError, recordStartupFailure, type PortOwner } from '../../electron/broker/startup-failure';
import { BridgeError, findBroker } from '../../electron/cli/stdio/find-broker';

/**
 * `lanyard stdio` starts a broker when none answers. When the broker it started loses the port to another broker of the
 * same home (a `lanyard serve` or tray app coming back from a slow restart), the bridge uses that one: it neither fails
 * nor starts a third.
 */
let home: string;
let winner: Server | undefined;

beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'lanyard-find-broker-'));
});

afterEach(async () => {
  await new Promise<void>((resolve) => (winner ? winner.close(() => resolve()) : resolve()));
  winner = undefined;
  await rm(home, { recursive: true, force: true });
});

/** A broker that answers /healthz on a free port (its runtime file is written by the caller). */
async function listeningBroker(): Promise<number> {
  winner = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end('{"ok":true}'));
  await new Promise<void>((resolve) => winner!.listen(0, '127.0.0.1', resolve));
  return (winner.address() as { port: number }).port;
}

/** The broker the bridge starts loses the port to `owner`; `publish` then runs as the winner finishes its start. */
function losingStart(port: number, owner: PortOwner, publish?: () => Promise<void>) {
  let starts = 0;
  return {
    starts: () => starts,
    startBroker: async () => {
      starts++;
      await recordStartupFailure(home, portInUseError(port, owner));
      if (publish) setTimeout(() => void publish(), 100);
    },
  };
}

describe('findBroker when the broker it started loses the port', () => {
  it('connects to the broker of this home that won the port once it has written its runtime file', async () => {
    const port = await listeningBroker();
    const info = {
      pid: process.pid,
      port,
      url: `http://127.0.0.1:${port}`,
      startedAt: new Date().toISOString(),
      version: 't',
      token: 'a-local-token-for-tests',
    };
    const start = losingStart(port, { kind: 'lanyard', pid: process.pid, home }, () => writeRuntimeFile(home, info));
    expect(await findBroker({ home, startBroker: start.startBroker, startTimeoutMs: 5_000, pollMs: 20 })).toEqual(info);
    expect(start.starts()).toBe(1);
  });

  it('still fails at once when another program, or a Lanyard of another (or no known) home, holds the port', async () => {
    for (const owner of [
      { kind: 'program', name: 'nginx' },
      { kind: 'lanyard', home: path.join(home, 'other') },
      { kind: 'lanyard', pid: 4321 },
    ] satisfies PortOwner[]) {
      const start = losingStart(1234, owner);
      const began = Date.now();
      const error = await findBroker({ home, startBroker: start.startBroker, startTimeoutMs: 5_000, pollMs: 20 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BridgeError);
      expect((error as BridgeError).message).toMatch(/could not start: Port 1234 .* in use/);
      expect(Date.now() - began).toBeLessThan(2_000);
    }
  });
});
