/**
 * V8 flags for the brokers Lanyard starts itself (`lanyard stdio` starting `lanyard serve` for the IDE). They must be
 * given on the command line: V8 sizes its young generation when the process starts, and `v8.setFlagsFromString` later
 * does not shrink it (measured: no change).
 *
 * None at present, on the figures (bench/results/evidence.md): `--max-semi-space-size=1` (each young-generation
 * semi-space capped at 1 MB instead of growing to 16 MB under load) saves about 6 MB at idle and 25 MB after the
 * 50 × 100 scale run, but garbage collection went from 12 % to 27 % of the broker's CPU on the call path (about 14 %
 * more CPU per call), and the call-path budgets are the ones every IDE call pays. `--optimize-for-size` was measured
 * too. The benchmark takes a candidate with `--broker-node-args=` and compares it side by side with
 * `--experiment-node-args=`.
 *
 * A broker started by hand (`lanyard serve`) would take the same flags through NODE_OPTIONS.
 */
export const BROKER_NODE_FLAGS: readonly string[] = [];

/** The flags to add to `execArgv` for a broker child: ours, unless the same flag is already there. */
export function brokerNodeArgs(execArgv: readonly string[]): string[] {
  const named = (flag: string) => flag.split('=')[0];
  return [...execArgv, ...BROKER_NODE_FLAGS.filter((f) => !execArgv.some((a) => named(a) === named(f)))];
}
