/**
 * V8 flags for the brokers Lanyard starts itself (`lanyard stdio` starting `lanyard serve` for the IDE). They must be
 * given on the command line: V8 sizes its young generation when the process starts, and `v8.setFlagsFromString` later
 * does not shrink it (measured: no change).
 *
 * `--max-semi-space-size=8`: each of the young generation's two semi-spaces stops growing at 8 MB instead of 16 MB,
 * so the young generation holds 16 MB instead of 32 MB once the scale run (50 servers × 100 tools listed) or any
 * sustained traffic has grown it: RSS after the scale lists about 131 → 119 MB (bench/results/evidence.md, alternated
 * runs). The call path's CPU per call with it stayed within run-to-run noise at c=1, 8 and 64 (three side-by-side runs),
 * where smaller caps cost measurably more: 1 MB took garbage collection from 12 % to 27 % of the broker's CPU, 4 MB
 * a fifth to a third more CPU per call at c=64. V8 rounds the size up to a power of two (6 behaves as 8). The benchmark
 * takes a candidate with `--broker-node-args=` and compares it side by side with `--experiment-node-args=`.
 *
 * A broker started by hand (`lanyard serve`) takes flags through NODE_OPTIONS; the Electron app's main process can
 * only take V8 flags at launch (`--js-flags` on its command line), not from its own code.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/** The flags to add to `execArgv` for a broker child: ours, unless the same flag is already there. */
export function brokerNodeArgs(execArgv: readonly string[]): string[] {
  const named = (flag: string) => flag.split('=')[0];
  return [...execArgv, ...BROKER_NODE_FLAGS.filter((f) => !execArgv.some((a) => named(a) === named(f)))];
}
