/**
 * The doctor's report for a terminal: one line per hop with its mark, the fix under a failure, the count — and text from
 * outside Lanyard (a server's name, metadata, an IdP's error) shown escaped, never acting on the terminal.
 */
import { describe, expect, it } from 'vitest';
import { formatDoctorReport } from '../../electron/broker/doctor/format';

describe('formatDoctorReport', () => {
  it('marks each hop, puts the fix under a failure, counts, and escapes control characters from outside text', () => {
    const text = formatDoctorReport({
      ok: false,
      checks: [
        { id: 'server.evil.path', hop: 'evil: auth path', ok: true, detail: 'header — API key (recorded in the configuration)' },
        { id: 'server.evil.key', hop: 'evil: key in keychain', ok: true, detail: 'a key for the X-Api-Key header is stored (not shown)' },
        {
          id: 'server.evil.mcp',
          hop: 'evil: MCP',
          ok: false,
          detail: 'Evil\u001b[2J\u001b[H 1.0 said no\u202e',
          error: { code: 'key_required', message: 'x', fix: 'Set the key\u0007 again.' },
        },
        { id: 'server.evil.refresh', hop: 'evil: refresh', ok: false, skipped: true, detail: 'skipped: authorize first' },
      ],
    });
    for (const raw of ['\u001b', '\u0007', '\u202e']) expect(text).not.toContain(raw);
    expect(text).toContain('✗ evil: MCP              Evil\\x1b[2J\\x1b[H 1.0 said no\\u202e\n');
    expect(text).toContain('→ Set the key\\x07 again.');
    expect(text).toMatch(/^– evil: refresh\s+skipped: authorize first$/m);
    expect(text).toMatch(/1 check failed, 1 skipped\. Fix the first ✗ first: later hops depend on it\.\n$/);
  });
});
