import { readFile } from 'node:fs/promises';

/** The parts of a V8 .cpuprofile the summary reads. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Busy time: everything but (idle). */
  busyMs: number;
  byGroup: Array<{ group: string; ms: number; share: number }>;
  topFunctions: Array<{ fn: string; where: string; ms: number; share: number }>;
  /** Inclusive time of functions whose name matches one of the `focus` patterns. */
  inclusive: Array<{ fn: string; where: string; ms: number; share: number }>;
}

/** Where a frame's code comes from: an npm package, a Node internal module, our bundle, or a V8 pseudo-frame. */
export function groupOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const internal = /^node:internal\/(?:deps\/)?([^/]+(?:\/[^/]+)?)/.exec(url);
  if (internal) return `node:${internal[1]!.replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return url;
  if (/\/out\/[^/]+\/lanyard\.js$/.test(url)) return 'lanyard (CLI bundle)';
  return url
    .replace(/^file:\/\//, '')
    .split('/')
    .slice(-2)
    .join('/');
}

const where = (url: string, line: number) =>
  `${url.replace(/^file:\/\/.*node_modules\//, '').replace(/^file:\/\/.*\/out\//, 'out/')}:${line + 1}`;

export async function summarizeProfile(file: string, options: { top?: number; focus?: RegExp[] } = {}): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  let idle = 0;
  const groups = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; ms: number }>();
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle += ms;
      continue;
    }
    const group = groupOf(url, functionName);
    groups.set(group, (groups.get(group) ?? 0) + ms);
    const key = `${functionName}@${url}:${lineNumber}`;
    const entry = fns.get(key) ?? { fn: functionName || '(anonymous)', where: url ? where(url, lineNumber) : group, ms: 0 };
    entry.ms += ms;
    fns.set(key, entry);
  }
  const busyMs = totalMs - idle;
  // Inclusive time for the focus functions: a sample counts once for each distinct focus frame on its stack.
  const inclusive = new Map<string, { fn: string; where: string; ms: number }>();
  if (options.focus?.length) {
    for (const [id, ms] of self) {
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const { functionName, url, lineNumber } = byId.get(cur)!.callFrame;
        if (!options.focus.some((re) => re.test(functionName))) continue;
        const key = `${functionName}@${url}:${lineNumber}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const entry = inclusive.get(key) ?? { fn: functionName, where: where(url, lineNumber), ms: 0 };
        entry.ms += ms;
        inclusive.set(key, entry);
      }
    }
  }
  const share = (ms: number) => Math.round((ms / busyMs) * 1000) / 10;
  const r = (ms: number) => Math.round(ms * 10) / 10;
  return {
    totalMs: r(totalMs),
    busyMs: r(busyMs),
    byGroup: [...groups].map(([group, ms]) => ({ group, ms: r(ms), share: share(ms) })).sort((a, b) => b.ms - a.ms),
    topFunctions: [...fns.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, options.top ?? 30)
      .map((f) => ({ ...f, ms: r(f.ms), share: share(f.ms) })),
    inclusive: [...inclusive.values()].sort((a, b) => b.ms - a.ms).map((f) => ({ ...f, ms: r(f.ms), share: share(f.ms) })),
  };
}

export function formatSummary(s: ProfileSummary, groups = 25): string {
  const lines = [`busy ${s.busyMs} ms of ${s.totalMs} ms`, '', 'self time by origin:'];
  for (const g of s.byGroup.slice(0, groups)) lines.push(`  ${String(g.share).padStart(5)}%  ${String(g.ms).padStart(8)} ms  ${g.group}`);
  lines.push('', 'top functions (self):');
  for (const f of s.topFunctions) lines.push(`  ${String(f.share).padStart(5)}%  ${String(f.ms).padStart(8)} ms  ${f.fn}  ${f.where}`);
  if (s.inclusive.length) {
    lines.push('', 'inclusive (focus):');
    for (const f of s.inclusive.slice(0, 40))
      lines.push(`  ${String(f.share).padStart(5)}%  ${String(f.ms).padStart(8)} ms  ${f.fn}  ${f.where}`);
  }
  return lines.join('\n');
}
