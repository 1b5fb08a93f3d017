/**
 * `npx tsx bench/heap.ts [--servers 50] [--tools 100] [--out <dir>]`: where the broker's memory goes in the scale case.
 *
 * Starts the sandbox with `servers` × `tools`, a signed-in home, and `lanyard serve` (the CLI bundle built fresh) with
 * `--heapsnapshot-signal=SIGUSR2`; takes a heap snapshot of the broker idle (started, no IDE), then after a warm
 * aggregated tools/list (the scale run's state), and prints VmRSS, the V8 heap and the largest constructors by self
 * size for each. Snapshots stay in `out` for Chrome DevTools (Memory → Load). Runs inside the keyring session as the
 * benchmark does (start it with `bash scripts/keyring-session.sh npx tsx bench/heap.ts`). With snapshots it also prints
 * retained sizes (bench/lib/heap-dominators.ts): which structures hold the heap, not only which constructors; with
 * `--rss-only`, where the resident memory is by mapping (/proc/<pid>/smaps).
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildCli } from './lib/build';
import { readHeapGraph, retainedByName, topRetainers } from './lib/heap-dominators';
import { prepareHome } from './lib/home';
import { memoryMb, spawnBroker, type BrokerProcess } from './lib/proc';
import { openRawSession, rawRequest } from './lib/raw-mcp';
import { startSandboxProcess } from './lib/sandbox-client';

const root = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    servers: { type: 'string', default: '50' },
    tools: { type: 'string', default: '100' },
    out: { type: 'string' },
    /** Only VmRSS and process.memoryUsage (through a preload printing on SIGUSR2), no snapshot (which itself inflates RSS). */
    'rss-only': { type: 'boolean', default: false },
    'broker-node-args': { type: 'string' },
    /** A CLI bundle built beforehand (to compare two builds turn about), instead of one built from the working tree. */
    cli: { type: 'string' },
    /** How long the broker is left alone before the idle figure (ms). */
    'idle-ms': { type: 'string', default: '1500' },
  },
});
const servers = Number(args.servers);
const tools = Number(args.tools);
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size per (type, name), the largest first: a flat summary of a .heapsnapshot without a dominator tree. */
function summarize(file: string, top = 25): Promise<string> {
  return readFile(file, 'utf8').then((text) => {
    const snap = JSON.parse(text) as Snapshot;
    const fields = snap.snapshot.meta.node_fields;
    const width = fields.length;
    const typeAt = fields.indexOf('type');
    const nameAt = fields.indexOf('name');
    const sizeAt = fields.indexOf('self_size');
    const types = snap.snapshot.meta.node_types[0];
    const groups = new Map<string, { size: number; count: number }>();
    let total = 0;
    for (let i = 0; i < snap.nodes.length; i += width) {
      const type = types[snap.nodes[i + typeAt]!]!;
      const size = snap.nodes[i + sizeAt]!;
      total += size;
      const name = type === 'object' || type === 'closure' || type === 'native' ? snap.strings[snap.nodes[i + nameAt]!]! : `(${type})`;
      const key = `${type === 'closure' ? 'closure ' : ''}${name.slice(0, 60)}`;
      const g = groups.get(key) ?? { size: 0, count: 0 };
      g.size += size;
      g.count++;
      groups.set(key, g);
    }
    const rows = [...groups.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, top);
    return [
      `  heap snapshot total self size ${(total / 2 ** 20).toFixed(1)} MB`,
      ...rows.map(([k, g]) => `  ${(g.size / 2 ** 20).toFixed(2).padStart(7)} MB ${String(g.count).padStart(8)}  ${k}`),
    ].join('\n');
  });
}

/**
 * Where the resident memory is, from /proc/<pid>/smaps: file-backed (the node binary, ICU, shared libraries),
 * the malloc heap ([heap], brk), anonymous mappings by size class — V8's heap pages are 256 KiB chunks and its
 * young generation a contiguous reservation; glibc's thread arenas are 64 MiB reservations — and thread stacks.
 */
function smapsSummary(pid: number): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return '  (no /proc/<pid>/smaps)';
  }
  const groups = new Map<string, number>();
  let key = '';
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 2 ** 20;
      const file = head[3]!;
      key = file.startsWith('/')
        ? `file ${path.basename(file)}`
        : file
          ? file
          : size >= 60
            ? 'anon ≥ 60 MiB reservation (malloc arena, V8 cage)'
            : size >= 1
              ? 'anon 1–60 MiB'
              : 'anon < 1 MiB';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) groups.set(key, (groups.get(key) ?? 0) + Number(rss[1]) / 1024);
  }
  return [...groups.entries()]
    .filter(([, mb]) => mb >= 0.5)
    .sort((a, b) => b[1] - a[1])
    .map(([k, mb]) => `  ${mb.toFixed(1).padStart(6)} MB  ${k}`)
    .join('\n');
}

async function snapshotOf(broker: BrokerProcess, dir: string, label: string): Promise<void> {
  if (args['rss-only']) {
    const mark = broker.stderr().length;
    broker.child.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 300));
    const mem = memoryMb(broker.pid);
    log(`${label}: VmRSS ${mem?.rss.toFixed(1)} MB (peak ${mem?.peak.toFixed(1)} MB)`);
    log(smapsSummary(broker.pid));
    log(
      `  ${broker
        .stderr()
        .slice(Math.max(0, mark - 200))
        .split('\n')
        .filter((l) => l.startsWith('MEM'))
        .join('\n  ')}`,
    );
    return;
  }
  const before = new Set(await readdir(dir));
  broker.child.kill('SIGUSR2');
  let file: string | undefined;
  for (let i = 0; i < 600 && !file; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = (await readdir(dir)).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    // Written in one go at the end: wait until its size stops changing.
    if (now.length) {
      const candidate = path.join(dir, now[0]!);
      const a = (await readFile(candidate)).length;
      await new Promise((r) => setTimeout(r, 500));
      if ((await readFile(candidate)).length === a && a > 0) file = candidate;
    }
  }
  if (!file) throw new Error('no heap snapshot was written');
  const mem = memoryMb(broker.pid);
  log(`${label}: VmRSS ${mem?.rss.toFixed(1)} MB (peak ${mem?.peak.toFixed(1)} MB) — ${path.basename(file)}`);
  log(await summarize(file));
  // Retained sizes (what each structure holds, shared objects counted once at their common dominator).
  const graph = await readHeapGraph(file);
  log('  largest retainers (retained size, dominator path):');
  log(topRetainers(graph, { minBytes: 200 * 1024, top: 25 }).join('\n'));
  log('  retained per constructor (each object once):');
  log(retainedByName(graph, 20).join('\n'));
}

async function main(): Promise<void> {
  const out = path.resolve(args.out ?? path.join(os.tmpdir(), `lanyard-heap-${process.pid}`));
  await mkdir(out, { recursive: true });
  const scratch = path.join(out, 'scratch');
  await mkdir(scratch, { recursive: true });
  const cli = args.cli ? path.resolve(args.cli) : await buildCli(root, path.join(root, 'out', `bench-heap-${process.pid}`));
  const sandbox = await startSandboxProcess(root, { extraServers: servers, toolsPerExtraServer: tools, accessTokenTtlSeconds: 3600 });
  const serverIds = sandbox.servers.filter((s) => s.id.startsWith('gen-')).map((s) => s.id);
  const home = await prepareHome({ root: scratch, sandbox, serverIds });
  const extra = args['broker-node-args']?.split(/\s+/).filter(Boolean) ?? [];
  const nodeArgs = args['rss-only']
    ? ['--require', path.join(root, 'bench/lib/mem-report.cjs'), ...extra]
    : ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${out}`, ...extra];
  try {
    // A first start lists everything once (tokens minted and cached), as the scale run does.
    let broker = await spawnBroker({ cli, home: home.home, timeoutMs: 60_000 });
    const list = async (b: BrokerProcess) => {
      const session = await openRawSession(`${b.url}/mcp`, b.token, { clientName: 'heap-ide' });
      for (let i = 0; i < 200; i++) {
        const reply = await rawRequest(session, 'tools/list');
        const listed = (reply.message?.result?.tools ?? []) as Array<{ name: string }>;
        if (!listed.some((t) => t.name === 'lanyard_status' || t.name === 'lanyard_sign_in') && listed.length >= servers * tools) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the list never completed');
    };
    await list(broker);
    await broker.stop();
    broker = await spawnBroker({ cli, home: home.home, timeoutMs: 60_000, nodeArgs });
    await new Promise((r) => setTimeout(r, Number(args['idle-ms'])));
    await snapshotOf(broker, out, 'idle (50 servers configured, no IDE)');
    await list(broker);
    for (let i = 0; i < 10; i++) await list(broker);
    await snapshotOf(broker, out, 'after the scale lists');
    await broker.stop();
  } finally {
    await home.cleanup();
    await sandbox.stop();
    await rm(path.join(root, 'out', `bench-heap-${process.pid}`), { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
  log(`snapshots in ${out}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`heap: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
