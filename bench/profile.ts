/**
 * Summarizes V8 CPU profiles (`.cpuprofile`, e.g. from `npm run bench -- --cpu-prof <dir> --only latency --paths
 * aggregated`): busy time by origin (npm package, Node internal module, Lanyard's bundle) and the top functions.
 *
 *   npx tsx bench/profile.ts <file-or-dir> [--top 30] [--focus 'handleRequest|callTool']
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, summarizeProfile } from './lib/profile';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, focus: { type: 'string' } } });
for (const target of positionals) {
  const files = (await stat(target)).isDirectory()
    ? (await readdir(target)).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(target, f))
    : [target];
  for (const file of files) {
    const summary = await summarizeProfile(file, {
      top: Number(values.top ?? 30),
      ...(values.focus ? { focus: values.focus.split(',').map((p) => new RegExp(`^(?:${p})$`)) } : {}),
    });
    process.stdout.write(`== ${file}\n${formatSummary(summary)}\n\n`);
  }
}
