/**
 * The stdio bridge's line guard: malformed lines get a JSON-RPC error instead of silence, valid messages pass
 * unchanged, and framing survives split chunks, CRLF and multi-byte characters.
 */
import { describe, expect, it } from 'vitest';
import { LineGuard } from '../../electron/cli/stdio';

async function run(chunks: Array<string | Buffer>): Promise<{ passed: string; errors: Array<{ code: number; id: unknown }> }> {
  const guard = new LineGuard();
  const errors: Array<{ code: number; id: unknown }> = [];
  guard.onInvalid = (code, _message, id) => errors.push({ code, id });
  let passed = '';
  guard.on('data', (d: Buffer) => (passed += d.toString('utf8')));
  const ended = new Promise((r) => guard.on('end', r));
  for (const c of chunks) guard.write(c);
  guard.end();
  await ended;
  return { passed, errors };
}

describe('stdio line guard', () => {
  it('passes JSON-RPC messages through unchanged, one per line', async () => {
    const a = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}';
    const b = '{"jsonrpc":"2.0","method":"notifications/initialized"}';
    expect(await run([`${a}\n${b}\n`])).toEqual({ passed: `${a}\n${b}\n`, errors: [] });
  });

  it('answers malformed lines with -32700 and non-messages with -32600 (keeping the id when there is one)', async () => {
    const { passed, errors } = await run([
      '{"jsonrpc":\n',
      'hello\n',
      '[1,2]\n',
      '{"id":5,"method":"x"}\n',
      '42\n',
      '\n',
      '{"jsonrpc":"2.0","id":2,"method":"ping"}\n',
    ]);
    expect(passed).toBe('{"jsonrpc":"2.0","id":2,"method":"ping"}\n');
    expect(errors).toEqual([
      { code: -32700, id: undefined },
      { code: -32700, id: undefined },
      { code: -32600, id: undefined },
      { code: -32600, id: 5 },
      { code: -32600, id: undefined },
    ]);
  });

  it('reassembles lines split across chunks, even inside a multi-byte character, and strips CR', async () => {
    const line = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"text":"héllo ✓"}}';
    const bytes = Buffer.from(`${line}\r\n`, 'utf8');
    const cut = bytes.indexOf(Buffer.from('✓')) + 1;
    expect(await run([bytes.subarray(0, 10), bytes.subarray(10, cut), bytes.subarray(cut)])).toEqual({ passed: `${line}\n`, errors: [] });
  });

  it('delivers a last message that has no newline when stdin ends', async () => {
    expect((await run(['{"jsonrpc":"2.0","id":3,"method":"ping"}'])).passed).toBe('{"jsonrpc":"2.0","id":3,"method":"ping"}\n');
  });
});
