/**
 * IDE profiles under hostile sizes: a catalog of 20,000 tools (one with a description of several megabytes), and
 * search queries of megabytes from a model. Each is answered, bounded in time and size, and nothing crashes.
 */
import type { Tool } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { CALL_TOOL, ProfileRegistry, SEARCH_TOOLS } from '../../electron/broker/governance/profiles';
import { ToolNamer } from '../../electron/broker/gateway/tool-names';

function catalog(count: number) {
  const namer = new ToolNamer({ separator: '__', maxLength: 64 });
  const tools: Tool[] = [];
  for (let i = 0; i < count; i++) {
    const serverId = `srv-${i % 50}`;
    tools.push({
      name: namer.expose(serverId, `operation_number_${i}_with_a_rather_long_descriptive_name_for_the_model`),
      description:
        i === 7 ? `Deletes everything. ${'A'.repeat(4 * 1024 * 1024)}` : `Operation ${i}: does thing ${i % 97} to object ${i % 31}`,
      inputSchema: { type: 'object', properties: { id: { type: 'string' } } },
    });
  }
  return { tools, originOf: (n: string) => namer.resolve(n) };
}

describe('profiles with hostile sizes', () => {
  const big = catalog(20_000);
  const registry = new ProfileRegistry({
    config: () => ({ cursor: { budget: 40 } }),
    separator: '__',
    originOf: big.originOf,
    list: async () => ({ tools: big.tools }),
  });

  it('20,000 tools: the Cursor list is its budget, names at its limit, in bounded time', async () => {
    const started = performance.now();
    const { tools } = registry.view('cursor').shape({ tools: big.tools });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(tools.map((t) => t.name)).toEqual([SEARCH_TOOLS, CALL_TOOL]);
    const shaped = await registry.current('cursor');
    expect(shaped.entries).toHaveLength(20_000);
    expect(new Set(shaped.entries.map((e) => e.searchable.name)).size).toBe(20_000);
    for (const e of shaped.entries) expect(e.searchable.name.length).toBeLessThanOrEqual(51);
  });

  it('a search query of megabytes is cut, answered, and the answer stays small', async () => {
    const query = `does thing 42 ${'x'.repeat(8 * 1024 * 1024)} ${'word '.repeat(200_000)}`;
    const started = performance.now();
    const routed = await registry.route('cursor', { name: SEARCH_TOOLS, arguments: { query, limit: 1e9 } });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(routed.kind).toBe('result');
    const result = (routed as { result: { content: Array<{ text: string }>; structuredContent: { tools: unknown[] } } }).result;
    expect(result.structuredContent.tools.length).toBeLessThanOrEqual(50);
    // The multi-megabyte description never comes back whole.
    expect(result.content[0]!.text.length).toBeLessThan(200_000);
  });

  it('the tool with a description of megabytes is found, its description cut in the answer', async () => {
    const routed = await registry.route('cursor', { name: SEARCH_TOOLS, arguments: { query: 'deletes everything', limit: 1 } });
    const tools = (routed as { result: { structuredContent: { tools: Array<{ name: string; description: string }> } } }).result
      .structuredContent.tools;
    expect(tools[0]!.name).toContain('operation_number_7');
    expect(tools[0]!.description.length).toBeLessThanOrEqual(1_000);
  });

  it('nonsense arguments to the meta-tools are tool errors, never exceptions', async () => {
    for (const args of [
      { query: 42 },
      { query: { $where: 'x' } },
      { query: 'a', limit: -5 },
      { query: 'a', limit: Number.NaN },
      {},
    ] as Array<Record<string, unknown>>) {
      const r = await registry.route('cursor', { name: SEARCH_TOOLS, arguments: args });
      expect(r.kind).toBe('result');
    }
    for (const args of [{ name: 7 }, { name: 'x'.repeat(5_000_000) }, { name: 'srv-1__nope', arguments: 'rm -rf' }] as Array<
      Record<string, unknown>
    >) {
      const r = await registry.route('cursor', { name: CALL_TOOL, arguments: args });
      expect(r).toMatchObject({ kind: 'result', result: { isError: true } });
      expect(JSON.stringify(r).length).toBeLessThan(2_000);
    }
  });
});
