/**
 * Regenerates the README's benchmark tables from bench/results/latest.json (a full `npm run bench` does this itself):
 *
 *   npx tsx bench/readme.ts
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchResults } from './lib/report';
import { updateReadme } from './lib/readme';

const root = path.resolve(import.meta.dirname, '..');
const results = JSON.parse(await readFile(path.join(root, 'bench/results/latest.json'), 'utf8')) as BenchResults;
if (!(await updateReadme(root, results))) {
  process.stderr.write('bench/readme.ts: README.md has no bench:tables markers; nothing written.\n');
  process.exit(1);
}
process.stderr.write('bench/readme.ts: README.md tables regenerated from bench/results/latest.json\n');
