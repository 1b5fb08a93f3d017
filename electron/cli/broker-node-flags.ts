/**
 * V8 flags for the brokers Lanyard starts itself (`lanyard stdio` starting `lanyard serve` for the IDE). They must be
 * given on the command line: V8 sizes its young generation when the process starts, and `v8.setFlagsFromString` later
 * does not shrink it (measured: no change).
 *
 * `--max-semi-space-size=1` caps each young-generation semi-space at 1 MB (V8's default lets it grow to 16 MB under
 * load): a broker mostly waits, and the memory a burst of calls grew into stayed resident. Measured
 * (bench/results/evidence.md, `npm run bench -- --broker-node-args=…`): about 6 MB less at idle and 25 MB less after
 * the 50 × 100 scale run, with no cost on the call path above the noise of a shared machine. `--optimize-for-size` was
 * measured too and not taken (2 MB more saved, at the cost of V8's optimizing heuristics on the call path).
 *
 * A broker started by hand (`lanyard serve`) takes the same flags through NODE_OPTIONS.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/** The flags to add to `execArgv` for a broker child: ours, unless the same flag is already there. */
export function brokerNodeArgs(execArgv: readonly string[]): string[] {
  const named = (flag: string) => flag.split('=')[0];
  return [...execArgv, ...BROKER_NODE_FLAGS.filter((f) => !execArgv.some((a) => named(a) === named(f)))];
}
