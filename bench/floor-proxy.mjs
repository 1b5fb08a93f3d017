/**
 * The floor, for the benchmark only: the least any Node HTTP hop can cost on this machine. A bare node:http byte pipe
 * in front of the sandbox server — no authentication, no JSON parse, no governance, no ledger: headers and body are
 * passed through as they are, over one keep-alive agent. The benchmark's `floor` row is measured through it side by
 * side with `direct`, so a share budget can be read against what a hop costs before Lanyard does any work.
 *
 *   node bench/floor-proxy.mjs <server MCP URL>      (prints the port it listens on, on 127.0.0.1)
 */
import { Agent, createServer, request } from 'node:http';

const target = new URL(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

const server = createServer((req, res) => {
  const upstream = request(
    { host: target.hostname, port: target.port, path: target.pathname, method: req.method, headers: req.headers, agent },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    res.statusCode = 502;
    res.end();
  });
  req.pipe(upstream);
});
// As long as the broker's own keep-alive, so neither side reconnects during a run.
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
