/**
 * A hostile MCP server tries to plant browser state through the relay. `/mcp/<id>` answers on Lanyard's origin,
 * 127.0.0.1:<port>, and cookies are not isolated by port: a `Set-Cookie` relayed from a remote server would be stored
 * for 127.0.0.1 by any client with a cookie jar (a browser page on an allowed origin, an IDE on a browser's network
 * stack) and sent to every local port, the dashboard included (where a planted `lanyard_dashboard` cookie would fix
 * the dashboard session). The same goes for the other headers a client keeps or acts on: Clear-Site-Data, HSTS,
 * Alt-Svc, Refresh, Location, Link preloads, NEL/Report-To, Service-Worker-Allowed.
 *
 * The whole broker runs (`startHeadless`, real keychain, alice signed in at the sandbox IdP); the sandbox's todo
 * server adds those headers to every MCP response.
 *
 * Run: `bash scripts/keyring-session.sh npx vitest run test/security/relay-browser-state.test.ts`
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { startBrokerOnSandbox, type BrokerOnSandbox } from '../reliability/harness';

const PLANTED: Record<string, string | string[]> = {
  'Set-Cookie': ['lanyard_dashboard=planted-by-the-server; Path=/; HttpOnly', 'tracker=1; Path=/; Max-Age=31536000'],
  'Set-Cookie2': 'legacy=1',
  'Clear-Site-Data': '"cookies", "storage"',
  'Strict-Transport-Security': 'max-age=31536000',
  'Alt-Svc': 'h3=":443"; ma=86400',
  Refresh: '0; url=https://attacker.example/',
  Link: '<https://attacker.example/x.js>; rel=preload; as=script',
  NEL: '{"report_to":"attacker","max_age":31536000,"include_subdomains":true}',
  'Report-To': '{"group":"attacker","max_age":31536000,"endpoints":[{"url":"https://attacker.example/reports"}]}',
  'Service-Worker-Allowed': '/',
};

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'browser-page', version: '1' } },
};

let sandbox: Sandbox;
let lanyard: BrokerOnSandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 3600 } });
  lanyard = await startBrokerOnSandbox(sandbox);
  await lanyard.signIn('alice');
  sandbox.server('todo').mcp.setResponseHeaders(PLANTED);
});

afterAll(async () => {
  await lanyard?.dispose();
  await sandbox?.stop();
});

describe('a server planting browser state through /mcp/<id>', () => {
  it('really sends the headers (asked directly, even its 401 carries them)', async () => {
    const direct = await fetch(sandbox.server('todo').mcp.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INITIALIZE),
    });
    await direct.text();
    expect(direct.headers.getSetCookie()).toHaveLength(2);
    expect(direct.headers.get('clear-site-data')).not.toBeNull();
  });

  it('gets none of them to the client: the call succeeds, the cookies and the other browser-state headers are gone', async () => {
    const r = await lanyard.post('/mcp/todo', INITIALIZE, { Accept: 'application/json, text/event-stream' });
    const text = await r.text();
    // The exchange itself went through: the upstream answered the initialize, with its session id.
    expect(r.status).toBe(200);
    expect(text).toContain('"protocolVersion"');
    expect(r.headers.get('mcp-session-id')).toBeTruthy();
    expect(r.headers.getSetCookie()).toEqual([]);
    for (const name of Object.keys(PLANTED)) expect(r.headers.get(name), name).toBeNull();
  });

  it('an SDK client on /mcp/<id> keeps working (only headers an MCP exchange needs are relayed)', async () => {
    const client = await lanyard.ide('todo');
    const who = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
    expect(JSON.parse(who.content[0]!.text)).toMatchObject({ sub: '00u-alice', server: 'todo' });
  });
});
