/**
 * A small JSON-with-comments reader and *textual* editor for IDE config files.
 *
 * Why not `JSON.parse` + `JSON.stringify`: VS Code's `mcp.json` is JSONC (comments, trailing commas), and every IDE
 * file is the user's own. Re-serializing would drop their comments, reorder nothing but re-indent everything and
 * change line endings. Instead we parse to a tree that remembers where every value sits in the text, and splice only
 * the one member Lanyard owns; every other byte of the file stays as it was. The removal is the exact inverse of the
 * insertion, so connect-then-disconnect leaves the file byte-for-byte unchanged even without the backup.
 *
 * Parse errors name a line and column, never the text (a user may have pasted a secret into the file).
 */

export type JsonNode = ObjectNode | ArrayNode | ScalarNode;

interface NodeBase {
  /** Offset of the value's first character. */
  start: number;
  /** Offset just past the value's last character. */
  end: number;
}

export interface ObjectNode extends NodeBase {
  kind: 'object';
  members: MemberNode[];
}

export interface MemberNode {
  key: string;
  /** Offset of the key's opening quote. */
  start: number;
  value: JsonNode;
  /** Offset of the comma that follows the value, if there is one (JSONC allows one after the last member too). */
  comma: number | undefined;
}

export interface ArrayNode extends NodeBase {
  kind: 'array';
  items: JsonNode[];
}

export interface ScalarNode extends NodeBase {
  kind: 'string' | 'number' | 'boolean' | 'null';
  value: string | number | boolean | null;
}

/** The text is not JSON(C). Carries a position only. */
export class JsoncSyntaxError extends Error {
  override readonly name = 'JsoncSyntaxError';
  constructor(
    readonly line: number,
    readonly column: number,
    what: string,
  ) {
    super(`${what} at line ${line}, column ${column}`);
  }
}

/** Parses JSONC: `//` and `/* *\/` comments, trailing commas, a leading BOM. An empty document gives `undefined`. */
export function parseJsonc(text: string): JsonNode | undefined {
  const parser = new Parser(text);
  parser.skipTrivia();
  if (parser.atEnd()) return undefined;
  const node = parser.value();
  parser.skipTrivia();
  if (!parser.atEnd()) parser.fail('unexpected content after the end of the document');
  return node;
}

/** The plain value of a node (what `JSON.parse` would give for the same text without comments). */
export function toValue(node: JsonNode): unknown {
  switch (node.kind) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const m of node.members) out[m.key] = toValue(m.value);
      return out;
    }
    case 'array':
      return node.items.map(toValue);
    default:
      return node.value;
  }
}

/** The member of an object with this key (the last one when a key repeats, as JSON.parse does). */
export function findMember(node: ObjectNode, key: string): MemberNode | undefined {
  for (let i = node.members.length - 1; i >= 0; i--) if (node.members[i]!.key === key) return node.members[i];
  return undefined;
}

class Parser {
  pos = 0;
  constructor(private readonly text: string) {
    if (text.charCodeAt(0) === 0xfeff) this.pos = 1;
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  fail(what: string, at: number = this.pos): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.text.length; i++) {
      if (this.text[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    throw new JsoncSyntaxError(line, at - lineStart + 1, what);
  }

  skipTrivia(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t[this.pos]!;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\uFEFF') {
        this.pos++;
      } else if (c === '/' && t[this.pos + 1] === '/') {
        while (this.pos < t.length && t[this.pos] !== '\n') this.pos++;
      } else if (c === '/' && t[this.pos + 1] === '*') {
        const close = t.indexOf('*/', this.pos + 2);
        if (close < 0) this.fail('unterminated comment');
        this.pos = close + 2;
      } else {
        return;
      }
    }
  }

  value(): JsonNode {
    this.skipTrivia();
    const c = this.text[this.pos];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') {
      const start = this.pos;
      const value = this.string();
      return { kind: 'string', start, end: this.pos, value };
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        const start = this.pos;
        this.pos += word.length;
        return { kind: value === null ? 'null' : 'boolean', start, end: this.pos, value };
      }
    }
    return this.fail(c === undefined ? 'unexpected end of the document' : 'unexpected character');
  }

  object(): ObjectNode {
    const start = this.pos;
    this.pos++; // {
    const members: MemberNode[] = [];
    for (;;) {
      this.skipTrivia();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return { kind: 'object', start, end: this.pos, members };
      }
      if (this.text[this.pos] !== '"') this.fail(this.atEnd() ? 'unterminated object' : 'expected a quoted key');
      const memberStart = this.pos;
      const key = this.string();
      this.skipTrivia();
      if (this.text[this.pos] !== ':') this.fail("expected ':' after a key");
      this.pos++;
      const value = this.value();
      this.skipTrivia();
      const member: MemberNode = { key, start: memberStart, value, comma: undefined };
      members.push(member);
      if (this.text[this.pos] === ',') {
        member.comma = this.pos;
        this.pos++;
      } else if (this.text[this.pos] !== '}') {
        this.fail(this.atEnd() ? 'unterminated object' : "expected ',' or '}'");
      }
    }
  }

  array(): ArrayNode {
    const start = this.pos;
    this.pos++; // [
    const items: JsonNode[] = [];
    for (;;) {
      this.skipTrivia();
      if (this.text[this.pos] === ']') {
        this.pos++;
        return { kind: 'array', start, end: this.pos, items };
      }
      items.push(this.value());
      this.skipTrivia();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== ']') this.fail(this.atEnd() ? 'unterminated array' : "expected ',' or ']'");
    }
  }

  string(): string {
    const start = this.pos;
    this.pos++; // opening quote
    const t = this.text;
    while (this.pos < t.length) {
      const c = t[this.pos]!;
      if (c === '"') {
        this.pos++;
        try {
          return JSON.parse(t.slice(start, this.pos)) as string;
        } catch {
          this.fail('invalid string', start);
        }
      }
      if (c === '\\') this.pos += 2;
      else if (c === '\n') this.fail('unterminated string', start);
      else this.pos++;
    }
    return this.fail('unterminated string', start);
  }

  number(): ScalarNode {
    const start = this.pos;
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 64));
    if (!m) this.fail('invalid number');
    this.pos += m[0].length;
    return { kind: 'number', start, end: this.pos, value: Number(m[0]) };
  }
}

/** How a file is laid out, so inserted text looks like the user's own. */
export interface TextStyle {
  /** One level of indentation: a tab, or N spaces. */
  indent: string;
  eol: '\n' | '\r\n';
}

/** The file's line ending and indentation unit (the smallest indentation of an indented line; two spaces by default). */
export function detectStyle(text: string): TextStyle {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  let indent: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const m = /^([ \t]+)\S/.exec(line);
    if (!m) continue;
    const lead = m[1]!;
    if (lead.startsWith('\t')) {
      indent ??= '\t';
      continue;
    }
    if (indent === undefined || (indent !== '\t' && lead.length < indent.length)) indent = lead;
  }
  return { indent: indent ?? '  ', eol };
}

/** `JSON.stringify` laid out in the file's style, continuation lines indented by `base`. */
export function serialize(value: unknown, style: TextStyle, base: string): string {
  return JSON.stringify(value, null, style.indent)
    .split('\n')
    .join(style.eol + base);
}

/** One replacement of `[start, end)` by `text`. */
export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

/** Applies non-overlapping edits (in any order) to `text`. */
export function applyEdits(text: string, edits: TextEdit[]): string {
  let out = text;
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  return out;
}

function lineStartOf(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** The end of the line containing `offset` (before its `\r\n` or `\n`). */
function lineEndOf(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  if (nl < 0) return text.length;
  return nl > 0 && text[nl - 1] === '\r' ? nl - 1 : nl;
}

/** The whitespace that starts the line containing `offset`. */
function indentOfLine(text: string, offset: number): string {
  const start = lineStartOf(text, offset);
  return /^[ \t]*/.exec(text.slice(start))![0];
}

/** True when only whitespace separates the start of `offset`'s line from `offset`. */
function startsLine(text: string, offset: number): boolean {
  return /^[ \t]*$/.test(text.slice(lineStartOf(text, offset), offset));
}

/** True when the rest of the line after `offset` is whitespace or a comment that ends on that line. */
function restOfLineIsTrivia(text: string, offset: number): boolean {
  const rest = text.slice(offset, lineEndOf(text, offset));
  return /^\s*(\/\/.*|\/\*.*?\*\/\s*)?$/.test(rest);
}

/** The indentation of `node`'s members: the first member's own, else one level deeper than the object's line. */
function memberIndent(text: string, node: ObjectNode, style: TextStyle): string {
  const first = node.members[0];
  if (first && startsLine(text, first.start)) return indentOfLine(text, first.start);
  return indentOfLine(text, node.start) + style.indent;
}

function isSingleLine(text: string, node: JsonNode): boolean {
  return !text.slice(node.start, node.end).includes('\n');
}

/**
 * The edit that sets `key` to `value` in `node`: the value's text is replaced when the key exists, otherwise a member
 * is added after the last one (before a comment on that line stays with its member), in the object's own layout.
 */
export function setMemberEdit(
  text: string,
  node: ObjectNode,
  key: string,
  value: unknown,
  style: TextStyle = detectStyle(text),
): TextEdit[] {
  const existing = findMember(node, key);
  if (existing) {
    const base = startsLine(text, existing.start) ? indentOfLine(text, existing.start) : memberIndent(text, node, style);
    const single = isSingleLine(text, existing.value) && isSingleLine(text, node);
    return [{ start: existing.value.start, end: existing.value.end, text: single ? JSON.stringify(value) : serialize(value, style, base) }];
  }
  const keyText = JSON.stringify(key);
  const last = node.members[node.members.length - 1];
  // `{"a": 1}` on one line stays on one line (and `{}` too when the whole file is one line).
  if (isSingleLine(text, node) && (last || !text.includes('\n'))) {
    const member = `${keyText}: ${JSON.stringify(value)}`;
    if (!last) return [{ start: node.start + 1, end: node.end - 1, text: member }];
    if (last.comma !== undefined) return [{ start: last.comma + 1, end: last.comma + 1, text: ` ${member},` }];
    return [{ start: last.value.end, end: last.value.end, text: `, ${member}` }];
  }
  const indent = memberIndent(text, node, style);
  const member = `${keyText}: ${serialize(value, style, indent)}`;
  if (!last) {
    const closingIndent = indentOfLine(text, node.start);
    const inner = text.slice(node.start + 1, node.end - 1);
    if (/^\s*$/.test(inner)) {
      // `{}` or `{\n  }`: the member goes on its own line between the braces.
      return [{ start: node.start + 1, end: node.end - 1, text: `${style.eol}${indent}${member}${style.eol}${closingIndent}` }];
    }
    // Only comments inside: keep them, add the member after the opening brace's line.
    const at = lineEndOf(text, node.start);
    return [{ start: at, end: at, text: `${style.eol}${indent}${member}` }];
  }
  const trailingComma = last.comma !== undefined;
  const after = trailingComma ? last.comma! + 1 : last.value.end;
  const at = restOfLineIsTrivia(text, after) ? lineEndOf(text, after) : after;
  const edits: TextEdit[] = [{ start: at, end: at, text: `${style.eol}${indent}${member}${trailingComma ? ',' : ''}` }];
  if (!trailingComma) edits.push({ start: last.value.end, end: last.value.end, text: ',' });
  return edits;
}

/**
 * The edit that removes `key` from `node` — the inverse of {@link setMemberEdit}'s insertion: the member's line (or
 * its inline text), and the comma it added to the previous member. Undefined when the key is absent.
 */
export function removeMemberEdit(text: string, node: ObjectNode, key: string): TextEdit[] | undefined {
  const index = node.members.findIndex((m) => m.key === key);
  if (index < 0) return undefined;
  const member = node.members[index]!;
  const previous = index > 0 ? node.members[index - 1] : undefined;
  const next = node.members[index + 1];
  const memberEnd = member.comma !== undefined ? member.comma + 1 : member.value.end;
  const edits: TextEdit[] = [];

  if (isSingleLine(text, node)) {
    if (!previous && !next) return [{ start: node.start + 1, end: node.end - 1, text: '' }];
    if (next) return [{ start: member.start, end: next.start, text: '' }];
    // The last of several: from just after the previous member's comma (trailing-comma style) or from that comma.
    const from = member.comma !== undefined ? previous!.comma! + 1 : (previous!.comma ?? previous!.value.end);
    return [{ start: from, end: memberEnd, text: '' }];
  }

  let start = member.start;
  const end = memberEnd;
  if (startsLine(text, member.start)) {
    // Remove the whole line: from the end of the previous line through the member.
    const lineStart = lineStartOf(text, member.start);
    start = lineStart > 0 ? lineStart - (text[lineStart - 2] === '\r' ? 2 : 1) : lineStart;
    if (start < node.start + 1) start = node.start + 1;
  }
  if (!next && previous && member.comma === undefined && previous.comma !== undefined) {
    // It was the last member and the file has no trailing commas: the comma after the previous one goes too.
    edits.push({ start: previous.comma, end: previous.comma + 1, text: '' });
  }
  if (!previous && !next) {
    // The only member: leave the braces as `{}` when nothing but whitespace remains.
    const before = text.slice(node.start + 1, start);
    const afterText = text.slice(end, node.end - 1);
    if (/^\s*$/.test(before) && /^\s*$/.test(afterText)) return [{ start: node.start + 1, end: node.end - 1, text: '' }];
  }
  edits.push({ start, end, text: '' });
  return edits;
}
