/**
 * An incremental reader of a Server-Sent Events stream (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * calls `onEvent` with each event's data (its `data:` lines joined) and the last event id seen. Comments, `event:` and
 * `retry:` fields are skipped; events without data (the priming events of resumable streams) too.
 */
export class SseReader {
  private buffer = '';
  /** How much of `buffer` is known to hold no newline. */
  private scanned = 0;
  private data: string[] = [];
  lastEventId: string | undefined;
  /** The stream's `retry:` field: how long to wait before resuming it. */
  retryMs: number | undefined;

  constructor(private readonly onEvent: (data: string) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let start = 0;
    for (let newline = this.buffer.indexOf('\n', this.scanned); newline >= 0; newline = this.buffer.indexOf('\n', start)) {
      const end = newline > start && this.buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      this.line(this.buffer.slice(start, end));
      start = newline + 1;
    }
    if (start > 0) this.buffer = this.buffer.slice(start);
    this.scanned = this.buffer.length;
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        const data = this.data.length === 1 ? this.data[0]! : this.data.join('\n');
        this.data = [];
        if (data.trim() !== '') this.onEvent(data);
      }
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id') this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}
