import { redactText } from '../errors';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
}

/** Field names whose values are never written, whatever they hold. */
const SECRET_KEYS = /token|secret|assertion|password|authorization|cookie|code_verifier|^code$|private|jwk/i;

/**
 * Redacts a structured log record by construction: values under secret-looking keys are replaced, and every string is
 * passed through redactText() so a token that slipped into a message or an error description is still masked.
 */
export function redactFields(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = SECRET_KEYS.test(key) ? '[redacted]' : redactValue(value, depth);
  return out;
}

/** Strings are redacted, errors reduced to their redacted name and message, arrays and objects walked (bounded). */
function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value instanceof Error) return redactText(`${value.name}: ${value.message}`);
  if (Array.isArray(value)) return depth < 3 ? value.slice(0, 50).map((v) => redactValue(v, depth + 1)) : '[array]';
  // Deeper than that is not written at all: nothing unredacted may slip through at the bottom of a structure.
  if (value && typeof value === 'object') return depth < 3 ? redactFields(value as Record<string, unknown>, depth + 1) : '[object]';
  return value;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * A small structured logger writing JSON lines to a sink (stderr by default). Every record goes through redactFields,
 * so logging stays safe even when a caller passes an error whose message quotes an OAuth response.
 */
export function createLogger(options: { level?: LogLevel; sink?: (line: string) => void; scope?: string } = {}): Logger {
  const min = LEVELS[options.level ?? (process.env.LANYARD_LOG_LEVEL as LogLevel | undefined) ?? 'info'] ?? 20;
  const sink = options.sink ?? ((line: string) => process.stderr.write(`${line}\n`));
  const make = (scope: string | undefined): Logger => {
    const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
      if (LEVELS[level] < min) return;
      const record = {
        t: new Date().toISOString(),
        level,
        ...(scope ? { scope } : {}),
        msg: redactText(message),
        ...(fields ? redactFields(fields) : {}),
      };
      sink(JSON.stringify(record));
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (s) => make(scope ? `${scope}.${s}` : s),
    };
  };
  return make(options.scope);
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
