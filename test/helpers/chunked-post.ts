import { request } from 'node:http';

/**
 * POSTs `chunks` with chunked transfer encoding (no Content-Length), one every `gapMs`, and stops sending as soon as
 * the server answers. With `end: false` the body is left open after the last chunk (a body meant to cross a limit:
 * nothing more is sent that a server which answered and closed would have to reset). Resolves with the status and body the server sent, so a test can assert the answer itself
 * rather than "the request failed somehow". (fetch cannot: once the server answers early and closes, undici reports
 * the unfinished upload as a network error and drops the response.)
 */
export function postChunked(
  url: string,
  headers: Record<string, string>,
  chunks: readonly Uint8Array[],
  options: { gapMs?: number; end?: boolean } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(url, { method: 'POST', headers: { ...headers, 'Transfer-Encoding': 'chunked' } }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    void (async () => {
      for (const chunk of chunks) {
        if (answered || req.destroyed) return;
        req.write(chunk);
        await new Promise((r) => setTimeout(r, options.gapMs ?? 10));
      }
      if (options.end !== false && !answered && !req.destroyed) req.end();
    })();
  });
}
