import type { z } from 'zod';
import { LanyardConfigSchema, type LanyardConfig } from './schema';

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

/**
 * Plain-language messages for zod's generic issues. Refinements in schema.ts carry their own messages, which take
 * precedence. The value itself is never quoted (only its type): a user may have pasted a secret into the wrong field.
 */
export function configErrorMap(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const expected =
        issue.expected === 'int' ? 'a whole number' : issue.expected === 'array' ? 'a list' : withArticle(String(issue.expected));
      return `must be ${expected} (got ${typeName(issue.input)})`;
    }
    case 'invalid_value': {
      const values = (issue.values as readonly unknown[]).map((v) => JSON.stringify(v));
      return values.length === 1 ? `must be ${values[0]}` : `must be one of ${values.join(', ')}`;
    }
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (Array.isArray(options) && options.length > 0) return `must be one of ${options.map((v) => JSON.stringify(v)).join(', ')}`;
      return 'does not match any allowed form';
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'string') return min <= 1 ? 'must not be empty' : `must be at least ${min} characters`;
      if (issue.origin === 'array') return `must have at least ${min} ${min === 1 ? 'entry' : 'entries'}`;
      return `must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'string') return `must be at most ${max} characters`;
      if (issue.origin === 'array') return `must have at most ${max} entries`;
      return `must be at most ${max}`;
    }
    case 'unrecognized_keys':
      return 'unknown setting';
    case 'invalid_format':
      return 'has an invalid format';
    default:
      return undefined;
  }
}

/** Zod's path as a reader writes it: `servers[1].url`, `idp.clientAuth.method`, `gateway["odd key"]`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const name = String(segment);
      out += /^[A-Za-z_$][\w$]*$/.test(name) ? (out === '' ? name : `.${name}`) : `[${JSON.stringify(name)}]`;
    }
  }
  return out;
}

/** Secret-looking keys get a specific message: they must move to the keychain, not just be deleted. */
const SECRET_KEY = /secret|password|passwd|private.?key|token|credential|api.?key/i;

function unknownKeyMessage(key: string): string {
  return SECRET_KEY.test(key)
    ? 'secrets do not belong in config.json; remove it (Lanyard keeps secrets in the OS keychain)'
    : 'unknown setting (check the spelling or remove it)';
}

/**
 * One issue as one line, field path first: `servers[1].url: must be an https URL (http is allowed only for
 * 127.0.0.1/localhost)`. An unknown key is reported at its own path (`servers[0].enable: unknown setting …`).
 */
export function formatZodIssue(issue: Issue): string {
  if (issue.code === 'unrecognized_keys') {
    if (issue.keys.length === 1) {
      const key = issue.keys[0] ?? '';
      return `${formatIssuePath([...issue.path, key])}: ${unknownKeyMessage(key)}`;
    }
    const where = formatIssuePath(issue.path) || 'top level';
    const secret = issue.keys.some((k) => SECRET_KEY.test(k));
    return `${where}: unknown settings ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (${
      secret ? 'secrets do not belong in config.json; ' : ''
    }check the spelling or remove them)`;
  }
  return `${formatIssuePath(issue.path) || 'top level'}: ${issue.message}`;
}

export type ConfigParseResult = { ok: true; config: LanyardConfig } | { ok: false; issues: string[] };

/** Validates a config document (already JSON-parsed) and applies defaults. */
export function parseLanyardConfig(input: unknown): ConfigParseResult {
  const result = LanyardConfigSchema.safeParse(input, { error: configErrorMap });
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, issues: result.error.issues.map(formatZodIssue) };
}

function withArticle(noun: string): string {
  return /^[aeiou]/i.test(noun) ? `an ${noun}` : `a ${noun}`;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return withArticle(typeof value);
}
