/**
 * Hostile MCP 2026-07-28 input to `/mcp` (through the real front door): a seeded fuzzer (fuzz.ts, modernCase) sends
 * envelopes that are missing, malformed or name unknown versions, headers that disagree with the body, forged,
 * truncated, altered and foreign requestStates, and inputResponses of every wrong shape. Every request gets a proper
 * answer (no 5xx, no hang, a JSON-RPC error or result), a requestState minted for one IDE never completes a call for
 * another, parked calls stay bounded, and both eras still work afterwards. Replay a failure with
 * LANYARD_FUZZ_SEED=<seed>.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator } from '../../electron/broker/gateway/aggregate/aggregator';
import { startGatewayServer, type GatewayServer } from '../../electron/broker/gateway/http-server';
import { LocalAuth } from '../../electron/broker/gateway/local-auth';
import { createRelay } from '../../electron/broker/gateway/relay';
import { startSandbox, type Sandbox } from '../fixtures/sandbox';
import { createEngine, tempHome, type EngineHarness } from '../helpers/engine';
import { envelope as envelopeOf, headers2026 } from '../helpers/mcp2026';
import { modernCase, Rng } from './fuzz';

const SEED = Number(process.env.LANYARD_FUZZ_SEED ?? 0x2026728);
const CASES = 400;
const WORKERS = 8;
const HANG_MS = 8_000;

describe('hostile 2026-07-28 input to /mcp', () => {
  let sandbox: Sandbox;
  let engine: EngineHarness;
  let cleanupHome: () => Promise<void>;
  let aggregator: Aggregator;
  let gateway: GatewayServer;
  let localAuth: LocalAuth;

  beforeAll(async () => {
    sandbox = await startSandbox({ idp: { idTokenTtlSeconds: 3600 }, modernServers: true });
    const { home, cleanup } = await tempHome();
    cleanupHome = cleanup;
    engine = await createEngine(sandbox, { home });
    await engine.signIn('alice');
    const servers = sandbox.lanyardConfig().servers;
    localAuth = await LocalAuth.open(engine.secrets);
    aggregator = createAggregator({
      tokens: engine.tokens,
      getServers: () => servers,
      isSignedIn: () => engine.identity.state.status === 'signed_in',
      signInHint: () => 'Run `lanyard login`.',
      requestTimeoutMs: 5_000,
    });
    gateway = await startGatewayServer({
      port: 0,
      localAuth,
      aggregator,
      relay: createRelay({ getServer: (id) => servers.find((s) => s.id === id), tokens: engine.tokens }),
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await aggregator?.close();
    await engine?.secrets.deleteAll().catch(() => undefined);
    await sandbox?.stop();
    await cleanupHome?.();
  });

  async function post(headers: Record<string, string>, body: string): Promise<{ status: number; type: string; text: string } | 'hang'> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), HANG_MS);
    try {
      const response = await fetch(`${gateway.url}/mcp`, {
        method: 'POST',
        headers: { ...headers, Authorization: `Bearer ${localAuth.token}` },
        body,
        signal: controller.signal,
      });
      const type = response.headers.get('content-type') ?? '';
      if (type.startsWith('text/event-stream')) {
        // A listen stream stays open: its first event is the answer that matters here.
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        while (!text.includes('\n\n')) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
        controller.abort();
        const data = text.split('\n').find((l) => l.startsWith('data: '));
        return { status: response.status, type: 'application/json', text: data ? data.slice(6) : '{}' };
      }
      return { status: response.status, type, text: await response.text() };
    } catch (e) {
      if (controller.signal.aborted) return 'hang';
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  const envelope = (name: string) => envelopeOf(name, { elicitation: {}, sampling: {} }, '1');

  it(`answers ${CASES} fuzzed 2026-07-28 requests properly, never crosses IDEs, and keeps working`, async () => {
    // Real states, minted for "IDE A" (a 2025 server's elicitation, parked), for the fuzzer to replay and alter.
    const states: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await post(
        headers2026('tools/call', 'todo__ask_user'),
        JSON.stringify({
          jsonrpc: '2.0',
          id: i,
          method: 'tools/call',
          params: { name: 'todo__ask_user', arguments: { question: `q${i}` }, _meta: envelope('IDE A') },
        }),
      );
      if (r === 'hang') throw new Error('seeding call hung');
      const state = (JSON.parse(r.text) as { result?: { requestState?: string } }).result?.requestState;
      if (state) states.push(state);
    }
    expect(states.length).toBe(4);

    const rng = new Rng(SEED);
    const problems: string[] = [];
    let next = 0;
    const labels = new Map<string, number>();
    const worker = async () => {
      while (next < CASES) {
        const n = next++;
        const c = modernCase(rng, states);
        labels.set(c.label, (labels.get(c.label) ?? 0) + 1);
        const r = await post(c.headers, c.body);
        if (r === 'hang') {
          problems.push(`#${n} ${c.label}: no answer within ${HANG_MS} ms`);
          continue;
        }
        if (r.status >= 500) problems.push(`#${n} ${c.label}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
        if (r.status === 202) continue;
        let parsed: { jsonrpc?: string; result?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
        try {
          parsed = JSON.parse(r.text) as typeof parsed;
        } catch {
          problems.push(`#${n} ${c.label}: HTTP ${r.status}, not JSON: ${r.text.slice(0, 120)}`);
          continue;
        }
        // A listen stream's first message is its acknowledgement (a notification); anything else is a result or an error.
        const ok =
          parsed?.jsonrpc === '2.0' &&
          (parsed.result !== undefined ||
            (parsed as { method?: unknown }).method === 'notifications/subscriptions/acknowledged' ||
            (typeof parsed.error?.code === 'number' && typeof parsed.error.message === 'string'));
        if (!ok && !Array.isArray(parsed))
          problems.push(`#${n} ${c.label}: HTTP ${r.status} not a JSON-RPC answer: ${r.text.slice(0, 160)}`);
        // A state minted for IDE A, sent by anyone else, never completes a call (the methods that read a requestState:
        // a list ignores one, and is the same for everyone).
        const sent = JSON.parse(c.body) as {
          method?: string;
          params?: { requestState?: unknown; _meta?: Record<string, { name?: unknown }> };
        };
        const by = sent.params?._meta?.['io.modelcontextprotocol/clientInfo']?.name;
        const readsState = ['tools/call', 'prompts/get', 'resources/read'].includes(sent.method ?? '');
        if (readsState && states.includes(sent.params?.requestState as string) && by !== 'IDE A' && parsed?.result !== undefined)
          problems.push(`#${n} ${c.label}: IDE A's requestState completed a call for ${String(by)}`);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    expect(problems).toEqual([]);
    expect(labels.size).toBeGreaterThan(10);

    // Still working, both eras, afterwards.
    const modern = new Client({ name: 'after', version: '1' }, { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    const legacy = new Client({ name: 'after', version: '1' }, { capabilities: {} });
    for (const client of [modern, legacy]) {
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), {
          requestInit: { headers: { Authorization: `Bearer ${localAuth.token}` } },
        }),
      );
      const result = await client.callTool({ name: 'todo__echo', arguments: { text: 'still here' } });
      expect((result as { content: Array<{ text: string }> }).content[0]!.text).toBe('echo: still here');
      await client.close();
    }
  });
});
