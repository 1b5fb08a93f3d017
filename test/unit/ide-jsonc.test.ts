/**
 * The JSONC reader/editor behind every IDE config write: parses what VS Code accepts (comments, trailing commas, BOM),
 * and its insertion and removal of one member are exact inverses on every layout users have.
 */
import { describe, expect, it } from 'vitest';
import {
  applyEdits,
  detectStyle,
  findMember,
  JsoncSyntaxError,
  parseJsonc,
  removeMemberEdit,
  setMemberEdit,
  toValue,
  type ObjectNode,
} from '../../electron/broker/ide/jsonc';

const root = (text: string) => parseJsonc(text) as ObjectNode;
const servers = (text: string, key = 'mcpServers') => findMember(root(text), key)!.value as ObjectNode;
const entry = { url: 'http://127.0.0.1:47821/mcp', headers: { Authorization: 'Bearer t' } };

function insertThenRemove(text: string, key = 'mcpServers') {
  const inserted = applyEdits(text, setMemberEdit(text, servers(text, key), 'lanyard', entry));
  const parsed = toValue(parseJsonc(inserted)!) as Record<string, Record<string, unknown>>;
  const removed = applyEdits(inserted, removeMemberEdit(inserted, servers(inserted, key), 'lanyard')!);
  return { inserted, parsed, removed };
}

describe('parseJsonc', () => {
  it('reads comments, trailing commas and a BOM like VS Code does', () => {
    const text = '\uFEFF{\n  // servers\n  "servers": { "a": { "url": "https://x/mcp", }, /* b */ },\n  "inputs": [1, 2,],\n}\n';
    expect(toValue(parseJsonc(text)!)).toEqual({ servers: { a: { url: 'https://x/mcp' } }, inputs: [1, 2] });
  });

  it('keeps escapes and numbers exact', () => {
    expect(toValue(parseJsonc('{"a": "q\\"\\u00e9\\\\", "n": -1.5e3, "t": true, "z": null}')!)).toEqual({
      a: 'q"é\\',
      n: -1500,
      t: true,
      z: null,
    });
  });

  it('returns undefined for an empty or comment-only document', () => {
    expect(parseJsonc('')).toBeUndefined();
    expect(parseJsonc('  // nothing yet\n')).toBeUndefined();
  });

  it('names the line and column of a syntax error, never the text', () => {
    const error = (() => {
      try {
        parseJsonc('{\n  "a": 1\n  "secret-sk-123": 2\n}');
      } catch (e) {
        return e;
      }
    })() as JsoncSyntaxError;
    expect(error).toBeInstanceOf(JsoncSyntaxError);
    expect(error.line).toBe(3);
    expect(error.message).toMatch(/line 3, column 3/);
    expect(error.message).not.toContain('secret');
  });

  it.each(['{"a": }', '{"a" 1}', '[1 2]', '{"a": 1', '"unterminated', '/* open', '{} {}', "{'a': 1}"])('refuses %j', (text) => {
    expect(() => parseJsonc(text)).toThrow(JsoncSyntaxError);
  });
});

describe('detectStyle', () => {
  it('finds tabs, 2, 3 or 4 spaces and CRLF', () => {
    expect(detectStyle('{\n\t"a": {\n\t\t"b": 1\n\t}\n}')).toEqual({ indent: '\t', eol: '\n' });
    expect(detectStyle('{\r\n   "a": {\r\n      "b": 1\r\n   }\r\n}')).toEqual({ indent: '   ', eol: '\r\n' });
    expect(detectStyle('{\n    "a": 1\n}')).toEqual({ indent: '    ', eol: '\n' });
    expect(detectStyle('{"a": 1}')).toEqual({ indent: '  ', eol: '\n' });
  });
});

describe('insert and remove one member: exact inverses', () => {
  const layouts: Record<string, string> = {
    'two spaces': '{\n  "mcpServers": {\n    "other": { "command": "node", "args": ["x.js"] }\n  }\n}\n',
    'four spaces, CRLF':
      '{\r\n    "mcpServers": {\r\n        "other": {\r\n            "url": "https://a/mcp"\r\n        }\r\n    }\r\n}\r\n',
    tabs: '{\n\t"mcpServers": {\n\t\t"a": {"url": "https://a/mcp"},\n\t\t"b": {"url": "https://b/mcp"}\n\t}\n}',
    'odd three spaces': '{\n   "theme": "dark",\n   "mcpServers": {\n      "a": { "url": "https://a/mcp" }\n   },\n   "after": true\n}\n',
    'comment after the last member': '{\n  "mcpServers": {\n    "a": { "url": "https://a/mcp" } // keep me here\n  }\n}\n',
    'trailing commas': '{\n  "mcpServers": {\n    "a": { "url": "https://a/mcp" },\n  },\n}\n',
    'empty object': '{\n  "mcpServers": {}\n}\n',
    'empty object with a comment': '{\n  "mcpServers": {\n    // add servers here\n  }\n}\n',
    'single line': '{"mcpServers": {"a": {"url": "https://a/mcp"}}}',
    'single line, empty': '{"mcpServers": {}}',
    'single line, trailing comma': '{"mcpServers": {"a": 1,}}',
  };

  it.each(Object.entries(layouts))('%s', (_name, text) => {
    const { inserted, parsed, removed } = insertThenRemove(text);
    expect(parsed.mcpServers!.lanyard).toEqual(entry);
    expect(removed).toBe(text);
    // Everything outside the inserted text is untouched.
    expect(inserted.length).toBeGreaterThan(text.length);
  });

  it('lays the new member out like its siblings', () => {
    const text = layouts['four spaces, CRLF']!;
    const inserted = applyEdits(text, setMemberEdit(text, servers(text), 'lanyard', entry));
    expect(inserted).toContain(
      ',\r\n        "lanyard": {\r\n            "url": "http://127.0.0.1:47821/mcp",\r\n            "headers": {\r\n                "Authorization": "Bearer t"\r\n            }\r\n        }\r\n    }',
    );
  });

  it('keeps a comment on the last line with its own member', () => {
    const text = layouts['comment after the last member']!;
    const inserted = applyEdits(text, setMemberEdit(text, servers(text), 'lanyard', entry));
    expect(inserted).toContain('"a": { "url": "https://a/mcp" }, // keep me here\n    "lanyard": {');
  });

  it('adds a missing container to the root and removes it again', () => {
    const text = '{\n  // settings\n  "theme": "dark"\n}\n';
    const doc = root(text);
    const inserted = applyEdits(text, setMemberEdit(text, doc, 'servers', { lanyard: entry }));
    expect((toValue(parseJsonc(inserted)!) as { servers: unknown }).servers).toEqual({ lanyard: entry });
    const withoutEntry = applyEdits(inserted, removeMemberEdit(inserted, servers(inserted, 'servers'), 'lanyard')!);
    const back = applyEdits(withoutEntry, removeMemberEdit(withoutEntry, root(withoutEntry), 'servers')!);
    expect(back).toBe(text);
  });

  it('replaces an existing value in place, laid out at its indentation', () => {
    const text = '{\n  "mcpServers": {\n    "lanyard": { "url": "http://127.0.0.1:1/mcp" }, // old\n    "b": {}\n  }\n}';
    const out = applyEdits(text, setMemberEdit(text, servers(text), 'lanyard', { url: 'x' }));
    expect(out).toBe('{\n  "mcpServers": {\n    "lanyard": {\n      "url": "x"\n    }, // old\n    "b": {}\n  }\n}');
    const inline = '{"mcpServers": {"lanyard": {"url": "old"}, "b": 1}}';
    expect(applyEdits(inline, setMemberEdit(inline, servers(inline), 'lanyard', { url: 'x' }))).toBe(
      '{"mcpServers": {"lanyard": {"url":"x"}, "b": 1}}',
    );
  });

  it('removes a member from the middle or the start, keeping the others and their comments', () => {
    const text = '{\n  "s": {\n    // first\n    "a": 1,\n    "lanyard": 2,\n    "b": 3\n  }\n}';
    expect(applyEdits(text, removeMemberEdit(text, servers(text, 's'), 'lanyard')!)).toBe(
      '{\n  "s": {\n    // first\n    "a": 1,\n    "b": 3\n  }\n}',
    );
    expect(applyEdits(text, removeMemberEdit(text, servers(text, 's'), 'a')!)).toBe(
      '{\n  "s": {\n    // first\n    "lanyard": 2,\n    "b": 3\n  }\n}',
    );
    expect(removeMemberEdit(text, servers(text, 's'), 'missing')).toBeUndefined();
  });
});
