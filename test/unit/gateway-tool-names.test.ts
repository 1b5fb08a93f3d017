import { describe, expect, it } from 'vitest';
import { splitExposedName, ToolNamer } from '../../electron/broker/gateway/tool-names';

const SAFE = /^[A-Za-z0-9_.-]+$/;

describe('ToolNamer', () => {
  it('joins server id and name with the separator when that fits', () => {
    const namer = new ToolNamer();
    expect(namer.expose('todo', 'whoami')).toBe('todo__whoami');
    expect(namer.resolve('todo__whoami')).toEqual({ serverId: 'todo', originalName: 'whoami' });
    expect(namer.resolve('todo__nothing')).toBeUndefined();
  });

  it('keeps a name of exactly the limit, and shortens one past it to the limit with a readable prefix and a hash', () => {
    const namer = new ToolNamer({ maxLength: 64 });
    const exact = 'a'.repeat(64 - 'srv__'.length);
    expect(namer.expose('srv', exact)).toBe(`srv__${exact}`);
    const long = `${exact}b`;
    const short = namer.expose('srv', long);
    expect(short).toHaveLength(64);
    expect(short).toMatch(/^srv__a+_[0-9a-z]{6}$/);
    expect(namer.resolve(short)).toEqual({ serverId: 'srv', originalName: long });
  });

  it('honours a smaller limit (Cursor drops tools over 60 characters)', () => {
    const namer = new ToolNamer({ maxLength: 60 });
    const name = namer.expose('atlassian-confluence', 'search_pages_by_label_and_space_with_pagination');
    expect(name.length).toBeLessThanOrEqual(60);
    expect(name.startsWith('atlassian-confluence__search_pages')).toBe(true);
  });

  it('is deterministic across instances (restarts keep IDE allow-lists valid) and distinct per full name', () => {
    const long1 = 'x'.repeat(80);
    const long2 = `${'x'.repeat(79)}y`;
    const a = new ToolNamer();
    const b = new ToolNamer();
    expect(a.expose('one', long1)).toBe(b.expose('one', long1));
    expect(a.expose('one', long1)).not.toBe(a.expose('one', long2));
    // The same tool name on two servers gets two names (the hash covers the server id).
    expect(a.expose('one', long1)).not.toBe(a.expose('two', long1));
  });

  it('never hands one name to two origins, even when a real name looks like a shortened one', () => {
    const long = 'q'.repeat(90);
    const shortened = new ToolNamer().expose('srv', long);
    const namer = new ToolNamer();
    // A tool literally named like the shortened form registers first and keeps its name.
    const literal = shortened.slice('srv__'.length);
    expect(namer.expose('srv', literal)).toBe(shortened);
    const other = namer.expose('srv', long);
    expect(other).not.toBe(shortened);
    expect(other.length).toBeLessThanOrEqual(64);
    expect(namer.resolve(shortened)).toEqual({ serverId: 'srv', originalName: literal });
    expect(namer.resolve(other)).toEqual({ serverId: 'srv', originalName: long });
  });

  it('rewrites names with characters IDEs refuse (unicode, spaces) into safe, distinct, reversible names', () => {
    const namer = new ToolNamer();
    const names = ['café', 'cafe\u0301', '日本語のツール', 'rocket 🚀', 'rocket 🚀🚀', 'with space'];
    const exposed = names.map((n) => namer.expose('i18n', n));
    for (const [i, e] of exposed.entries()) {
      expect(e).toMatch(SAFE);
      expect(e.length).toBeLessThanOrEqual(64);
      expect(e.startsWith('i18n__')).toBe(true);
      expect(namer.resolve(e)).toEqual({ serverId: 'i18n', originalName: names[i] });
    }
    expect(new Set(exposed).size).toBe(names.length);
    // One replacement per code point: the emoji (a surrogate pair) becomes a single '_'.
    expect(namer.expose('i18n', 'a🚀b')).toMatch(/^i18n__a_b_[0-9a-z]{6}$/);
    // Long and unicode at once.
    const both = namer.expose('i18n', 'é'.repeat(100));
    expect(both).toHaveLength(64);
    expect(both).toMatch(SAFE);
  });

  it('works with every allowed separator and splits back without a map', () => {
    for (const separator of ['__', '_', '.', '..', '_-', '-_', '-.-', '_._']) {
      const namer = new ToolNamer({ separator });
      for (const serverId of ['todo', 'a-', 'x-y-z', 'a1', 'abcdefghijklmnopqrstuvwxyz012345']) {
        for (const tool of ['run', '_leading', 'dotted.name', 'a-b_c', '__double']) {
          const exposed = namer.expose(serverId, tool);
          expect(splitExposedName(exposed, separator), `${serverId} ${separator} ${tool}`).toEqual({ serverId, originalName: tool });
          expect(new ToolNamer({ separator }).resolveOrSplit(exposed)).toEqual({ serverId, originalName: tool });
        }
      }
    }
  });

  it('does not split names that were shortened or that have no server id shape', () => {
    const namer = new ToolNamer();
    const shortened = namer.expose('srv', 'z'.repeat(100));
    expect(new ToolNamer().resolveOrSplit(shortened)).toBeUndefined();
    expect(splitExposedName('nounderscore')).toBeUndefined();
    expect(splitExposedName('UPPER__tool')).toBeUndefined();
    expect(splitExposedName('srv__')).toBeUndefined();
    expect(splitExposedName('__tool')).toBeUndefined();
  });

  it('refuses separators that could not be split back and limits too small to be readable', () => {
    expect(() => new ToolNamer({ separator: '-' })).toThrow(RangeError);
    expect(() => new ToolNamer({ separator: '--' })).toThrow(RangeError);
    expect(() => new ToolNamer({ separator: '/' })).toThrow(RangeError);
    expect(() => new ToolNamer({ separator: '_____' })).toThrow(RangeError);
    expect(() => new ToolNamer({ maxLength: 10 })).toThrow(RangeError);
  });

  it('retain() forgets the names of removed tools or servers', () => {
    const namer = new ToolNamer();
    namer.expose('a', 'one');
    namer.expose('a', 'two');
    namer.expose('b', 'one');
    namer.retain('a', new Set(['two']));
    expect(namer.resolve('a__one')).toBeUndefined();
    expect(namer.resolve('a__two')).toBeDefined();
    namer.retain('b');
    expect(namer.resolve('b__one')).toBeUndefined();
    expect(namer.resolve('a__two')).toBeDefined();
  });

  it('names 5 000 tools quickly (the aggregated list is rebuilt on every change)', () => {
    const namer = new ToolNamer();
    const started = performance.now();
    for (let s = 0; s < 50; s++) for (let t = 0; t < 100; t++) namer.expose(`gen-${s}`, `tool_${t}_${'x'.repeat(t % 3 === 0 ? 70 : 5)}`);
    const cold = performance.now() - started;
    const again = performance.now();
    for (let s = 0; s < 50; s++) for (let t = 0; t < 100; t++) namer.expose(`gen-${s}`, `tool_${t}_${'x'.repeat(t % 3 === 0 ? 70 : 5)}`);
    const warm = performance.now() - again;
    // Generous bounds: this guards against accidental quadratic work, not a benchmark.
    expect(cold).toBeLessThan(1_000);
    expect(warm).toBeLessThan(200);
  });
});
