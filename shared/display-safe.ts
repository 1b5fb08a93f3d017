/**
 * Text that came from outside (a configuration link, an IdP, an MCP server, an IDE's clientInfo) and is shown to a
 * person — in a terminal, a dialog or the dashboard. Control characters in it can rewrite what the person reads: CR and
 * ESC sequences move the cursor and erase a terminal line (so an attacker's issuer can be replaced by a fake one on
 * the confirmation line), newlines forge extra lines, and bidi overrides reorder what is displayed.
 *
 * Two tools, used at the two ends: `displayUnsafe` refuses such characters where a display string is stored (the
 * config schema, the configure-link schema), and `printable` escapes them wherever outside text is printed, so text
 * that was never validated (an error description, a client name) cannot act on the terminal either.
 */

/**
 * C0 controls (incl. TAB, CR, LF, ESC), DEL, C1 controls (incl. the 8-bit CSI U+009B), the line/paragraph separators,
 * and the bidi marks, embeddings, overrides and isolates (Unicode TR9) that reorder displayed text.
 */
// eslint-disable-next-line no-control-regex
export const UNSAFE_DISPLAY_CHARS = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/;
// eslint-disable-next-line no-control-regex
const UNSAFE_DISPLAY_CHARS_GLOBAL = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;

/** The message a schema gives for a display string with such a character. */
export const DISPLAY_UNSAFE_MESSAGE = 'must not contain control characters (newlines, tabs, escape sequences) or bidi overrides';

/** True when `value` contains a character that could change how text around it is displayed. */
export function displayUnsafe(value: string): boolean {
  return UNSAFE_DISPLAY_CHARS.test(value);
}

/**
 * `value` with every such character replaced by a visible escape (`\x1b`, `\r`, `\u202e`), so it prints as what it
 * is. Idempotent on safe text; never throws.
 */
export function printable(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return text.replace(UNSAFE_DISPLAY_CHARS_GLOBAL, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
