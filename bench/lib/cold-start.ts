import { spawn } from 'node:child_process';
import { median, round } from './stats';

const INITIALIZE = `${JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cold-start', version: '1.0.0' } },
})}\n`;

/** Spawn → the initialize response on stdout, in ms; the IDE writes initialize right after spawning, as IDEs do. */
export function coldStartOnce(args: string[], env: Record<string, string>, unset: readonly string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const name of unset) delete childEnv[name];
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => finish(new Error('no initialize response within 15 s')), 15_000);
    const finish = (result: number | Error) => {
      clearTimeout(timer);
      child.stdin.end();
      child.kill('SIGTERM');
      if (typeof result === 'number') resolve(result);
      else reject(new Error(`${result.message}; stderr: ${err.trim().slice(-500)}`));
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const ms = performance.now() - t0;
      const message = JSON.parse(out.slice(0, nl)) as { id?: number; result?: unknown };
      finish(message.id === 1 && message.result ? ms : new Error(`unexpected first message ${out.slice(0, nl).slice(0, 200)}`));
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      if (!out) finish(new Error(`exited with ${code} before answering`));
    });
    child.stdin.write(INITIALIZE);
  });
}

export interface ColdStartCommand {
  name: string;
  args: string[];
  env: Record<string, string>;
  /** Variables of the benchmark's own environment the command does not get. */
  unset?: readonly string[];
}

/**
 * The floor under any bridge written for Node: a script that answers the first line with an initialize result and
 * does nothing else. What a bridge takes beyond it is its own start-up.
 */
export const NODE_FLOOR_ARGS = [
  '-e',
  `process.stdin.once('data', () => process.stdout.write('{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"floor","version":"0"}}}\\n'))`,
];

/**
 * Node settings in the benchmark's environment that slow every Node process's start before any of its code runs,
 * and have nothing to do with a loopback bridge. NODE_EXTRA_CA_CERTS makes Node 20 load its whole root store and the
 * extra file at start-up (about 60 ms on the reference machine, 24 → 83 ms for an empty script), whether or not the
 * process ever opens a TLS connection. The budget is measured without them; the figures with them are reported too.
 */
export const START_UP_ENV_COSTS = ['NODE_EXTRA_CA_CERTS'] as const;

/** Median cold start per command; the commands take turns so none gets a warmer page cache than the other. */
export async function measureColdStart(
  commands: ColdStartCommand[],
  runs: number,
): Promise<Record<string, { median_ms: number; samples: number[] }>> {
  const samples = new Map<string, number[]>(commands.map((c) => [c.name, []]));
  // One unrecorded start each: the first start reads every file from disk.
  for (const c of commands) await coldStartOnce(c.args, c.env, c.unset);
  for (let i = 0; i < runs; i++) {
    for (const c of i % 2 ? [...commands].reverse() : commands) samples.get(c.name)!.push(await coldStartOnce(c.args, c.env, c.unset));
  }
  return Object.fromEntries(
    commands.map((c) => [
      c.name,
      { median_ms: round(median(samples.get(c.name)!), 1), samples: samples.get(c.name)!.map((s) => round(s, 1)) },
    ]),
  );
}
