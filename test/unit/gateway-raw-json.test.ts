import { describe, expect, it } from 'vitest';
import { scanMessage, SseReader } from '../../electron/broker/gateway/aggregate/raw-json';

const text = (b: Buffer, span: { start: number; end: number } | undefined) => (span ? b.toString('utf8', span.start, span.end) : undefined);

describe("the fast path's byte-level JSON-RPC reading", () => {
  it('finds the top-level id, result and error whatever the order, spacing or tricky strings inside', () => {
    const tricky = Buffer.from(
      ' { "result" : { "content":[{"type":"text","text":"a \\"quoted\\" } ] { \\\\"}], "isError" : true, "nested":{"id":"inner"} },\n "jsonrpc":"2.0", "id" : "lanyard-1" } ',
    );
    const shape = scanMessage(tricky)!;
    expect(text(tricky, shape.id)).toBe('"lanyard-1"');
    expect(shape.method).toBe(false);
    expect(shape.resultIsError).toBe(true);
    expect(JSON.parse(text(tricky, shape.result)!)).toMatchObject({ isError: true, nested: { id: 'inner' } });

    const first = Buffer.from('{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad é"}}');
    const e = scanMessage(first)!;
    expect(text(first, e.id)).toBe('7');
    expect(JSON.parse(text(first, e.error)!)).toEqual({ code: -32602, message: 'bad é' });

    const notification = scanMessage(Buffer.from('{"method":"notifications/progress","params":{"progressToken":"x","progress":1}}'))!;
    expect(notification.method).toBe(true);
    expect(notification.id).toBeUndefined();
    // isError only counts at the result's top level.
    expect(scanMessage(Buffer.from('{"result":{"structuredContent":{"isError":true}},"id":1}'))!.resultIsError).toBe(false);
  });

  it('refuses what is not one JSON object', () => {
    for (const bad of ['', '[1]', '{"id":1', '{"id":1}{"id":2}', '{"a":"unterminated}', 'null'])
      expect(scanMessage(Buffer.from(bad))).toBeUndefined();
  });

  it('reads SSE events split at any byte, with LF, CRLF or CR line ends, multi-line data and other event types', () => {
    const stream = Buffer.from(
      ': comment\r\nevent: message\r\nid: 1\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: other\ndata: {"skip":true}\n\ndata: {"b":2}\r\rretry: 10\n\ndata:{"c":3}\n\n',
    );
    for (let cut = 0; cut <= stream.length; cut++) {
      const seen: string[] = [];
      const reader = new SseReader((data) => seen.push(data.toString('utf8')));
      reader.push(stream.subarray(0, cut));
      reader.push(stream.subarray(cut));
      expect(seen, `cut at ${cut}`).toEqual(['{"a":\n1}', '{"b":2}', '{"c":3}']);
    }
  });
});
