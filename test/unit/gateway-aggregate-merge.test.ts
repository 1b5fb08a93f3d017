import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../shared/errors';
import { LanyardError } from '../../electron/broker/errors';
import { signInTool, STATUS_TOOL, statusResult, statusTool } from '../../electron/broker/gateway/aggregate/builtin-tools';
import { toolErrorResult, toProtocolError } from '../../electron/broker/gateway/aggregate/errors';
import { mergePrompts, mergeTools, ResourceIndex } from '../../electron/broker/gateway/aggregate/merged';
import { ToolNamer } from '../../electron/broker/gateway/tool-names';
import type { ServerCatalog } from '../../electron/broker/gateway/upstream/catalog';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIwMHUtYWxpY2UifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

function catalog(serverId: string, parts: Partial<ServerCatalog> = {}): ServerCatalog {
  return {
    serverId,
    tools: [],
    prompts: [],
    resources: [],
    resourceTemplates: [],
    capabilities: { tools: {}, resources: {}, prompts: {} },
    loadedAt: 0,
    ...parts,
  };
}

const tool = (name: string) => ({ name, description: `does ${name}`, inputSchema: { type: 'object' as const, properties: {} } });

describe('merged lists', () => {
  it('prefixes tools and prompts per server, keeps everything else, and releases names of removed tools', () => {
    const namer = new ToolNamer();
    const tools = mergeTools([catalog('todo', { tools: [tool('a'), tool('b')] }), catalog('wiki', { tools: [tool('a')] })], namer);
    expect(tools.map((t) => t.name)).toEqual(['todo__a', 'todo__b', 'wiki__a']);
    expect(tools[0]).toMatchObject({ description: 'does a', inputSchema: { type: 'object' } });
    mergeTools([catalog('todo', { tools: [tool('b')] })], namer);
    expect(namer.resolve('todo__a')).toBeUndefined();
    expect(namer.resolve('todo__b')).toEqual({ serverId: 'todo', originalName: 'b' });
    const prompts = mergePrompts([catalog('todo', { prompts: [{ name: 'greet' }] })], new ToolNamer({ separator: '.' }));
    expect(prompts.map((p) => p.name)).toEqual(['todo.greet']);
  });

  it('routes resource URIs: listed first (first server wins), then templates, then the only server with resources', () => {
    const index = new ResourceIndex([
      catalog('todo', {
        resources: [
          { uri: 'sandbox://todo/readme', name: 'readme' },
          { uri: 'shared://same', name: 'same' },
        ],
        resourceTemplates: [{ uriTemplate: 'sandbox://todo/items/{id}', name: 'item' }],
      }),
      catalog('wiki', {
        resources: [{ uri: 'shared://same', name: 'same' }],
        resourceTemplates: [{ uriTemplate: 'wiki://pages/{+path}', name: 'page' }],
      }),
      catalog('tools-only', { capabilities: { tools: {} } }),
    ]);
    expect(index.resources).toHaveLength(3);
    expect(index.serverForUri('sandbox://todo/readme')).toBe('todo');
    expect(index.serverForUri('shared://same')).toBe('todo');
    expect(index.serverForUri('sandbox://todo/items/42')).toBe('todo');
    expect(index.serverForUri('wiki://pages/a/b/c')).toBe('wiki');
    expect(index.serverForUri('unknown://x')).toBeUndefined();
    expect(index.serverForTemplate('wiki://pages/{+path}')).toBe('wiki');
    expect(new ResourceIndex([catalog('solo'), catalog('none', { capabilities: {} })]).serverForUri('anything://x')).toBe('solo');
  });
});

describe("Lanyard's own tools", () => {
  it('lanyard_sign_in says how to sign in', () => {
    const t = signInTool('Click "Sign in" in the tray.');
    expect(t.name).toBe('lanyard_sign_in');
    expect(t.description).toContain('Click "Sign in" in the tray.');
  });

  it('lanyard_status names each unavailable server with its fix, redacted and bounded', () => {
    const t = statusTool([
      {
        id: 'wiki',
        name: 'Wiki',
        toolCount: undefined,
        health: {
          state: 'error',
          since: 0,
          lastError: { code: ErrorCodes.SERVER_UNREACHABLE, message: `Server "wiki" failed: Bearer ${JWT}`, fix: 'Check it.' },
        },
      },
      { id: 'slow', name: 'Slow', toolCount: undefined, health: { state: 'connecting', since: 0 } },
    ]);
    expect(t.name).toBe(STATUS_TOOL);
    expect(t.description).toContain('wiki');
    expect(t.description).toContain('Fix: Check it.');
    expect(t.description).toContain('slow: still connecting');
    expect(t.description).not.toContain('eyJ');
    expect(t.description!.length).toBeLessThanOrEqual(1_000);
    const result = statusResult([{ id: 'todo', name: 'Todo', toolCount: 3, health: { state: 'ready', since: 0 } }], true, 'hint');
    expect(result.content).toEqual([{ type: 'text', text: 'Signed in to Lanyard.\n- todo (Todo): ready, 3 tools' }]);
  });
});

describe('errors shown to the IDE', () => {
  it('a failed tools/call is a tool result with message, fix and code; never a token', () => {
    const { result, error } = toolErrorResult(
      'todo',
      new LanyardError(ErrorCodes.EXCHANGE_DENIED, 'Your IdP refused access to todo.', 'Ask your admin.', { serverId: 'todo' }),
    );
    expect(result.isError).toBe(true);
    expect(result.content).toEqual([
      { type: 'text', text: 'Your IdP refused access to todo.\nFix: Ask your admin.\n(Lanyard error code: exchange_denied)' },
    ]);
    expect(error.code).toBe(ErrorCodes.EXCHANGE_DENIED);
    const leaky = toolErrorResult('todo', new Error(`socket hang up Bearer ${JWT}`));
    expect(JSON.stringify(leaky)).not.toContain('eyJ');
  });

  it("other requests get a JSON-RPC error carrying the code and fix; a server's own error passes through", () => {
    const mapped = toProtocolError('wiki', new LanyardError(ErrorCodes.NOT_SIGNED_IN, 'Not signed in.', 'Sign in.'));
    expect(mapped.message).toBe('Not signed in. Fix: Sign in. (Lanyard error code: not_signed_in)');
    expect(mapped.data).toEqual({ code: ErrorCodes.NOT_SIGNED_IN, fix: 'Sign in.', serverId: 'wiki' });
  });
});
