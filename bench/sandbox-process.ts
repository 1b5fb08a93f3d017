/**
 * The sandbox enterprise (IdP, authorization servers, MCP servers) in its own process, for the benchmark: the MCP
 * servers a client talks to are never on the client's or the broker's event loop, as with a real remote server.
 *
 * Started by bench/lib/sandbox-client.ts with an IPC channel; argv[2] is a JSON SandboxOptions. It answers:
 *   ready (sent once)   → the Lanyard config and secrets for this sandbox, and each server's MCP URL
 *   counters            → what the IdP and the authorization servers counted (logins, refreshes, exchanges, grants)
 *   completeLogin       → drives the IdP's sign-in page for an authorize URL; returns the loopback callback URL
 *   dropSessions        → forgets every MCP session at every server (between benchmark cases)
 *   stop                → stops everything and exits
 */
import { startSandbox, type SandboxOptions } from '../test/fixtures/sandbox';
import type { SandboxCounters, SandboxReady, SandboxRequest, SandboxResponse } from './lib/sandbox-protocol';

const send = (message: SandboxResponse | { type: 'ready'; ready: SandboxReady }) => process.send?.(message);

const options = JSON.parse(process.argv[2] ?? '{}') as SandboxOptions;
const sandbox = await startSandbox(options);
const authServers = [...new Set(sandbox.servers.map((s) => s.as))];

function counters(): SandboxCounters {
  const idp = sandbox.idp.counters;
  return {
    logins: idp.logins,
    refreshes: idp.refreshes,
    exchanges: idp.exchanges,
    exchangeRejections: Object.values(idp.exchangeRejections).reduce((a, b) => a + b, 0),
    grants: authServers.reduce((sum, as) => sum + as.counters.grants, 0),
    toolCalls: sandbox.servers.reduce((sum, s) => sum + s.mcp.counters.toolCalls, 0),
    sessions: sandbox.servers.reduce((sum, s) => sum + s.mcp.counters.sessions, 0),
  };
}

process.on('message', (raw: unknown) => {
  const request = raw as SandboxRequest;
  const reply = (result: unknown) => send({ id: request.id, ok: true, result });
  const fail = (e: unknown) => send({ id: request.id, ok: false, error: e instanceof Error ? e.message : String(e) });
  void (async () => {
    switch (request.cmd) {
      case 'counters':
        return reply(counters());
      case 'completeLogin':
        return reply(await sandbox.idp.completeLogin(request.url, request.user ?? 'alice'));
      case 'dropSessions':
        for (const s of sandbox.servers) s.mcp.dropSessions();
        return reply(null);
      case 'stop':
        await sandbox.stop();
        reply(null);
        setTimeout(() => process.exit(0), 20);
        return;
    }
  })().catch(fail);
});
process.on('disconnect', () => {
  void sandbox.stop().finally(() => process.exit(0));
});

send({
  type: 'ready',
  ready: {
    config: sandbox.lanyardConfig(),
    secrets: sandbox.lanyardSecrets(),
    servers: sandbox.servers.map((s) => ({ id: s.id, url: s.mcp.url })),
    idpIssuer: sandbox.idp.issuer,
  },
});
