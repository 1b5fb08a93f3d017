import type { ToolDefinition } from './fingerprint';
import { pinnedPart } from './fingerprint';

/**
 * The injection scan of a tool definition. A tool's name, title, description and schema texts go straight into the
 * model's context, so a server can hide instructions there ("tool poisoning"): text a person does not see (Unicode tag
 * characters, bidi overrides, zero-width runs), or text aimed at the model rather than at the user (ignore your
 * instructions, read ~/.ssh and pass it along, do not tell the user). A hit quarantines the tool until a person has
 * looked at it, so the rules aim at few false positives: each instruction rule needs the phrase that only makes sense
 * as an order to a model, not a word a benign description might use (see docs/architecture.md, Tool pinning, for the
 * measured rate).
 *
 * Every regular expression here is linear (no nested quantifiers over the same characters), so a definition of
 * several megabytes is scanned in one pass.
 */

export type FindingKind = 'invisible-tag' | 'bidi-override' | 'zero-width' | 'instruction';

export interface ScanFinding {
  kind: FindingKind;
  /** Where: `description`, `inputSchema.properties.path.description`, … */
  field: string;
  /** What was found, for a person: the rule and a short excerpt with invisible characters spelled out. */
  detail: string;
}

/** At most this many findings per tool: one is enough to quarantine it, a few say why. */
const MAX_FINDINGS = 8;
const EXCERPT_CHARS = 90;

/** Unicode tag characters (U+E0000–U+E007F): invisible, yet models read them as ASCII. */
const TAG_CHARS = /[\u{E0000}-\u{E007F}]/u;
/** Bidi embeddings, overrides and isolates: they reorder what is displayed (LRM/RLM marks alone are ordinary RTL text). */
const BIDI = /[\u202A-\u202E\u2066-\u2069]/;
/** Two or more invisible characters in a row (a single ZWJ/ZWNJ is ordinary in emoji and in Persian or Indic text). */
const ZERO_WIDTH_RUN = /[\u200B-\u200D\u2060-\u2064\u180E\uFEFF]{2,}/;
/** Zero-width characters that no language needs, counted one by one. */
const ZERO_WIDTH_ANY = /[\u200B\u2060-\u2064\u180E\uFEFF]/g;
const INVISIBLE_ALL = /[\u{E0000}-\u{E007F}\u202A-\u202E\u2066-\u2069\u200B-\u200D\u2060-\u2064\u180E\uFEFF]/gu;

/** Credential stores a tool description has no business pointing the model at. */
const CREDENTIAL_PATH =
  /(?:^|[\s"'`(~/\\])\.(?:ssh|aws|gnupg|kube|docker|azure|netrc|git-credentials)\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\/etc\/(?:shadow|sudoers)\b|\bmcp\.json\b|\bclaude_desktop_config\.json\b|\.config\/gcloud\b/;
const READ_VERB = /\b(?:read|cat|open|include|attach|pass|send|upload|copy|provide|contents?|forward|post|exfiltrat\w*|append)\b/;
const SENSITIVE_NOUN =
  /\b(?:secrets?|credentials?|tokens?|passwords?|api[ _-]?keys?|private keys?|ssh keys?|conversation|chat history|system prompt|environment variables|env vars)\b/;
const SEND_VERB = /\b(?:send|post|upload|forward|transmit|leak|copy)\b/;
const URL_LIKE = /\bhttps?:\/\/|\bwebhook\b/;

const INSTRUCTION_RULES: Array<{ re: RegExp; says: string }> = [
  {
    re: /\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|all|any|other|system|your|the user's)\b[^.!?\n]{0,20}?\b(?:instructions?|prompts?|directions|guidelines|directives)\b/,
    says: 'tells the model to ignore its instructions',
  },
  {
    re: /\b(?:do not|don't|dont|never|must not|should not|shouldn't)\s+(?:tell|inform|mention|reveal|notify|alert|disclose|let)\b[^.!?\n]{0,30}?\b(?:the )?user\b/,
    says: 'tells the model to keep something from the user',
  },
  {
    re: /\bwithout\s+(?:telling|informing|notifying|alerting)\s+(?:the\s+)?user\b/,
    says: 'tells the model to act without telling the user',
  },
  { re: /\b(?:hide|conceal)\b[^.!?\n]{0,25}?\bfrom the user\b/, says: 'tells the model to hide something from the user' },
  { re: /\buser (?:must|should) (?:not|never) (?:know|see|be told|notice)\b/, says: 'tells the model to keep something from the user' },
  {
    re: /<\s*\/?\s*(?:important|system|instructions?|secret|hidden)\s*>|<\|im_start\|>|\[inst\]|<<sys>>/,
    says: 'carries a prompt-role tag',
  },
  { re: /\bexfiltrat\w*/, says: 'mentions exfiltration' },
];

/** Scans the pinned fields of one tool. An empty array means nothing was found. */
export function scanTool(tool: ToolDefinition): ScanFinding[] {
  const findings: ScanFinding[] = [];
  walk(pinnedPart(tool), '', false, findings);
  return findings;
}

/** A finding's one-line summary, for a refusal message or a log line. */
export function describeFinding(f: ScanFinding): string {
  return `${f.field}: ${f.detail}`;
}

function walk(value: unknown, path: string, prose: boolean, out: ScanFinding[]): void {
  if (out.length >= MAX_FINDINGS) return;
  if (typeof value === 'string') {
    scanText(value, path || 'value', prose, out);
    return;
  }
  if (!value || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, `${path}[${i}]`, prose, out));
    return;
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const at = path ? `${path}.${key}` : key;
    // Property names reach the model too: invisible characters there are as suspicious as in a description.
    scanInvisible(key, `${at} (key)`, out);
    // Instructions are looked for in the texts written for the model: titles and descriptions at any depth, and a
    // schema's examples and defaults; names of types and patterns are not prose.
    walk(v, at, key === 'description' || key === 'title' || key === 'examples' || key === 'default', out);
  }
}

function scanText(text: string, field: string, prose: boolean, out: ScanFinding[]): void {
  scanInvisible(text, field, out);
  if (!prose || out.length >= MAX_FINDINGS) return;
  // Invisible characters cannot split a phrase to get past the rules; case and spacing do not matter either (whitespace
  // is only rewritten where it is not already one space: a multi-megabyte text is mostly single spaces).
  const plain = text
    .replace(INVISIBLE_ALL, '')
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\s{2,}|[^\S ]/g, ' ');
  for (const rule of INSTRUCTION_RULES) {
    const m = rule.re.exec(plain);
    if (m) push(out, { kind: 'instruction', field, detail: `${rule.says}: "${excerpt(plain, m.index, m[0].length)}"` });
  }
  for (const sentence of sentencesWith(plain, CREDENTIAL_PATH)) {
    if (READ_VERB.test(sentence.text))
      push(out, {
        kind: 'instruction',
        field,
        detail: `points the model at a credential file: "${excerpt(plain, sentence.at, sentence.text.length)}"`,
      });
  }
  for (const sentence of sentencesWith(plain, URL_LIKE)) {
    if (SEND_VERB.test(sentence.text) && SENSITIVE_NOUN.test(sentence.text))
      push(out, {
        kind: 'instruction',
        field,
        detail: `tells the model to send secrets to an address: "${excerpt(plain, sentence.at, sentence.text.length)}"`,
      });
  }
}

function scanInvisible(text: string, field: string, out: ScanFinding[]): void {
  if (TAG_CHARS.test(text)) {
    push(out, {
      kind: 'invisible-tag',
      field,
      detail: `contains invisible Unicode tag characters: "${excerpt(text, text.search(TAG_CHARS), 1)}"`,
    });
  }
  if (BIDI.test(text)) {
    push(out, {
      kind: 'bidi-override',
      field,
      detail: `contains a bidi override that reorders the text: "${excerpt(text, text.search(BIDI), 1)}"`,
    });
  }
  const run = ZERO_WIDTH_RUN.exec(text);
  const count = text.match(ZERO_WIDTH_ANY)?.length ?? 0;
  if (run || count >= 3) {
    const at = run ? run.index : text.search(/[\u200B\u2060-\u2064\u180E\uFEFF]/);
    push(out, { kind: 'zero-width', field, detail: `contains hidden zero-width characters: "${excerpt(text, at, 1)}"` });
  }
}

/** The sentences (split at . ! ? and newlines) that match `re`, with where each starts. */
function* sentencesWith(text: string, re: RegExp): Generator<{ text: string; at: number }> {
  if (!re.test(text)) return;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    // A dot inside a path or a file name (`~/.ssh`, `mcp.json`) does not end a sentence: only a dot before a space.
    const end = i === text.length || c === '!' || c === '?' || c === '\n' || (c === '.' && (i + 1 === text.length || text[i + 1] === ' '));
    if (!end) continue;
    const sentence = text.slice(start, i);
    if (re.test(sentence)) yield { text: sentence, at: start };
    start = i + 1;
  }
}

function push(out: ScanFinding[], finding: ScanFinding): void {
  if (out.length >= MAX_FINDINGS) return;
  if (out.some((f) => f.field === finding.field && f.kind === finding.kind && f.detail === finding.detail)) return;
  out.push(finding);
}

/** Up to EXCERPT_CHARS around a match, with invisible and control characters written as \u{…} so a person sees them. */
function excerpt(text: string, at: number, length: number): string {
  const from = Math.max(0, at - 20);
  const to = Math.min(text.length, Math.max(at + length, from + 1) + 20, from + EXCERPT_CHARS);
  let s = text.slice(from, to);
  // Control characters are spelled out too: an excerpt reaches terminals (`lanyard tools review`) and logs.
  s = s.replace(
    // eslint-disable-next-line no-control-regex
    /[\u{E0000}-\u{E007F}\u202A-\u202E\u2066-\u2069\u200B-\u200F\u2060-\u2064\u180E\uFEFF\u0000-\u001F\u007F-\u009F]/gu,
    (ch) => {
      const cp = ch.codePointAt(0)!;
      return `\\u{${cp.toString(16).toUpperCase()}}`;
    },
  );
  return `${from > 0 ? '…' : ''}${s}${to < text.length ? '…' : ''}`;
}
