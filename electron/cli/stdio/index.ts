/**
 * `lanyard stdio`, one job per file: the command line (command.ts), the bridge's lifecycle (bridge.ts), finding or
 * starting the broker (find-broker.ts), stdin framing and checks (line-guard.ts), the HTTP side (broker-link.ts) and
 * its SSE reader (sse.ts).
 */
export { runStdioBridge, type StdioBridgeOptions } from './bridge';
export { stdioCommand } from './command';
export { LineGuard, LineReader } from './line-guard';
