/**
 * The raw catalog listing's structural check (gateway/upstream/raw-list.ts): a list that IDEs can use passes; anything
 * that would fail the SDK client's result check is declined, so the SDK path lists it and reports it as before.
 */
import { describe, expect, it } from 'vitest';
import { wellFormed } from '../../electron/broker/gateway/upstream/raw-list';

const tool = {
  name: 'echo',
  description: 'Echo',
  inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

describe('raw list check', () => {
  it('passes well-formed lists of each kind, with cursors and caching hints', () => {
    expect(wellFormed('tools/list', { tools: [tool], nextCursor: 'n', ttlMs: 1000, cacheScope: 'public' })).toBe(true);
    expect(wellFormed('prompts/list', { prompts: [{ name: 'p', arguments: [{ name: 'a', required: true }] }] })).toBe(true);
    expect(wellFormed('resources/list', { resources: [{ name: 'r', uri: 'file:///r', mimeType: 'text/plain' }] })).toBe(true);
    expect(wellFormed('resources/templates/list', { resourceTemplates: [{ name: 't', uriTemplate: 'file:///{x}' }] })).toBe(true);
  });

  it('declines what the SDK would refuse: a missing or mistyped member, a list that is not an array', () => {
    expect(wellFormed('tools/list', { tools: [{ name: 'x' }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, inputSchema: { type: 'string' } }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, name: 42 }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, description: ['no'] }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [{ ...tool, inputSchema: { type: 'object', required: 'text' } }] })).toBe(false);
    expect(wellFormed('tools/list', { tools: [tool, null] })).toBe(false);
    expect(wellFormed('tools/list', { tools: {} })).toBe(false);
    expect(wellFormed('tools/list', { tools: [tool], nextCursor: 7 })).toBe(false);
    expect(wellFormed('prompts/list', { prompts: [{ name: 'p', arguments: [{}] }] })).toBe(false);
    expect(wellFormed('resources/list', { resources: [{ name: 'r' }] })).toBe(false);
    expect(wellFormed('resources/templates/list', { resourceTemplates: [{ name: 't', uri: 'file:///t' }] })).toBe(false);
    expect(wellFormed('completion/complete', { tools: [] })).toBe(false);
  });
});
