/**
 * The V8 flags a broker Lanyard starts itself runs with (electron/cli/broker-node-flags.ts): its young generation stays
 * at 16 MB (two 8 MB semi-spaces) under allocation that grows a default Node's to 32 MB, and a flag the user gave
 * (NODE_OPTIONS, execArgv) wins over ours.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { brokerNodeArgs } from '../../electron/cli/broker-node-flags';

const run = promisify(execFile);

/** Allocates as a busy broker does (short-lived objects, some surviving a while), then prints new space's size in MB. */
const CHURN = `
const v8 = require('node:v8');
let keep = [];
for (let i = 0; i < 300; i++) {
  const batch = [];
  for (let j = 0; j < 20000; j++) batch.push({ i, j, s: 'x' + j });
  keep.push(batch);
  if (keep.length > 20) keep.shift();
}
keep = null;
process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20));
`;

async function newSpaceMb(execArgv: string[]): Promise<number> {
  const { stdout } = await run(process.execPath, [...execArgv, '-e', CHURN]);
  return Number(stdout);
}

describe('broker node flags', () => {
  it('cap the young generation at 16 MB where a default Node grows it to 32 MB', async () => {
    expect(await newSpaceMb([])).toBe(32);
    expect(await newSpaceMb(brokerNodeArgs([]))).toBeLessThanOrEqual(16);
  });

  it('leave a flag given on the command line as it is', () => {
    expect(brokerNodeArgs(['--max-semi-space-size=16'])).toEqual(['--max-semi-space-size=16']);
    expect(brokerNodeArgs(['--inspect'])).toEqual(['--inspect', '--max-semi-space-size=8']);
  });
});
