/**
 * Retained sizes of a V8 .heapsnapshot (what DevTools' "Retained size" column shows): the dominator tree by the
 * iterative algorithm of Cooper, Harvey and Kennedy ("A Simple, Fast Dominance Algorithm"), weak edges ignored, then
 * the largest retainers with the path that holds them. Used by bench/heap.ts to say which of Lanyard's structures the
 * heap after the scale lists is made of, rather than only which constructors (flat self sizes).
 */
import { readFile } from 'node:fs/promises';

interface RawSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapGraph {
  count: number;
  type: string[];
  name: string[];
  self: Float64Array;
  retained: Float64Array;
  dominator: Int32Array;
  /** For each node, the edge name from its dominator's path (the first strong edge reaching it), for labelling. */
  via: string[];
}

export async function readHeapGraph(file: string): Promise<HeapGraph> {
  const snap = JSON.parse(await readFile(file, 'utf8')) as RawSnapshot;
  const nf = snap.snapshot.meta.node_fields;
  const ef = snap.snapshot.meta.edge_fields;
  const nw = nf.length;
  const ew = ef.length;
  const nodeTypes = snap.snapshot.meta.node_types[0];
  const edgeTypes = snap.snapshot.meta.edge_types[0];
  const count = snap.nodes.length / nw;
  const typeAt = nf.indexOf('type');
  const nameAt = nf.indexOf('name');
  const sizeAt = nf.indexOf('self_size');
  const edgeCountAt = nf.indexOf('edge_count');
  const eTypeAt = ef.indexOf('type');
  const eNameAt = ef.indexOf('name_or_index');
  const eToAt = ef.indexOf('to_node');
  const weak = edgeTypes.indexOf('weak');
  const shortcut = edgeTypes.indexOf('shortcut');
  const elementType = edgeTypes.indexOf('element');
  const hiddenType = edgeTypes.indexOf('hidden');

  const type: string[] = new Array(count);
  const name: string[] = new Array(count);
  const self = new Float64Array(count);
  const firstEdge = new Int32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    type[i] = nodeTypes[snap.nodes[i * nw + typeAt]!]!;
    name[i] = snap.strings[snap.nodes[i * nw + nameAt]!]!;
    self[i] = snap.nodes[i * nw + sizeAt]!;
    firstEdge[i] = e;
    e += snap.nodes[i * nw + edgeCountAt]! * ew;
    firstEdge[i + 1] = e;
  }
  const strong = (e: number) => {
    const t = snap.edges[e + eTypeAt]!;
    return t !== weak && t !== shortcut;
  };
  const target = (e: number) => snap.edges[e + eToAt]! / nw;
  const edgeName = (e: number) => {
    const t = snap.edges[e + eTypeAt]!;
    const v = snap.edges[e + eNameAt]!;
    return t === elementType || t === hiddenType ? `[${v}]` : snap.strings[v]!;
  };

  // Depth-first postorder from the root (node 0), strong edges only.
  const order = new Int32Array(count).fill(-1);
  const post: number[] = [];
  const via: string[] = new Array(count).fill('');
  const stack: number[] = [0];
  const edgeCursor = new Int32Array(count);
  for (let i = 0; i < count; i++) edgeCursor[i] = firstEdge[i]!;
  const visited = new Uint8Array(count);
  visited[0] = 1;
  while (stack.length) {
    const n = stack[stack.length - 1]!;
    let pushed = false;
    while (edgeCursor[n]! < firstEdge[n + 1]!) {
      const e = edgeCursor[n]!;
      edgeCursor[n] = e + ew;
      if (!strong(e)) continue;
      const t = target(e);
      if (visited[t]) continue;
      visited[t] = 1;
      via[t] = edgeName(e);
      stack.push(t);
      pushed = true;
      break;
    }
    if (!pushed) {
      order[n] = post.length;
      post.push(n);
      stack.pop();
    }
  }
  // Predecessors (strong edges between reachable nodes).
  const predCount = new Int32Array(count + 1);
  for (let n = 0; n < count; n++) {
    if (!visited[n]) continue;
    for (let e = firstEdge[n]!; e < firstEdge[n + 1]!; e += ew) if (strong(e) && visited[target(e)]) predCount[target(e) + 1]!++;
  }
  for (let i = 0; i < count; i++) predCount[i + 1]! += predCount[i]!;
  const preds = new Int32Array(predCount[count]!);
  const fill = predCount.slice();
  for (let n = 0; n < count; n++) {
    if (!visited[n]) continue;
    for (let e = firstEdge[n]!; e < firstEdge[n + 1]!; e += ew) if (strong(e) && visited[target(e)]) preds[fill[target(e)]!++] = n;
  }
  const dom = new Int32Array(count).fill(-1);
  const root = 0;
  dom[root] = root;
  const intersect = (a: number, b: number) => {
    while (a !== b) {
      while (order[a]! < order[b]!) a = dom[a]!;
      while (order[b]! < order[a]!) b = dom[b]!;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let k = post.length - 2; k >= 0; k--) {
      const n = post[k]!;
      let idom = -1;
      for (let p = predCount[n]!; p < predCount[n + 1]!; p++) {
        const q = preds[p]!;
        if (dom[q] === -1) continue;
        idom = idom === -1 ? q : intersect(q, idom);
      }
      if (idom !== -1 && dom[n] !== idom) {
        dom[n] = idom;
        changed = true;
      }
    }
  }
  const retained = Float64Array.from(self);
  for (const n of post) if (n !== root && dom[n]! >= 0) retained[dom[n]!]! += retained[n]!;
  return { count, type, name, self, retained, dominator: dom, via };
}

/** A node's label: `Type name` shortened, e.g. `object ServerCatalog`, `string "…"`. */
export function label(g: HeapGraph, n: number): string {
  const t = g.type[n]!;
  const nm = g.name[n]!.replace(/\s+/g, ' ');
  if (t === 'string' || t === 'concatenated string' || t === 'sliced string') return `${t} ${JSON.stringify(nm.slice(0, 40))}`;
  return `${t} ${nm.slice(0, 60)}`;
}

/** The dominator chain of a node up to the root: "root → … → node", as edge names, the last `depth` hops. */
export function pathOf(g: HeapGraph, n: number, depth = 8): string {
  const hops: string[] = [];
  for (let x = n, i = 0; x !== 0 && x >= 0 && i < depth; x = g.dominator[x]!, i++) hops.unshift(`${g.via[x]}:${g.name[x]!.slice(0, 30)}`);
  return hops.join(' → ');
}

/**
 * The largest retainers that are not just a container of one bigger child: each node whose retained size is at least
 * `minBytes` and whose largest dominated child holds less than `share` of it, the largest first.
 */
export function topRetainers(g: HeapGraph, { minBytes = 256 * 1024, share = 0.6, top = 30 } = {}): string[] {
  const largestChild = new Float64Array(g.count);
  for (let n = 1; n < g.count; n++) {
    const d = g.dominator[n]!;
    if (d >= 0 && g.retained[n]! > largestChild[d]!) largestChild[d] = g.retained[n]!;
  }
  const rows: number[] = [];
  for (let n = 1; n < g.count; n++) {
    if (g.retained[n]! < minBytes || g.dominator[n]! < 0) continue;
    if (largestChild[n]! >= share * g.retained[n]!) continue;
    rows.push(n);
  }
  rows.sort((a, b) => g.retained[b]! - g.retained[a]!);
  return rows
    .slice(0, top)
    .map((n) => `  ${(g.retained[n]! / 2 ** 20).toFixed(2).padStart(7)} MB  ${label(g, n)}\n             ${pathOf(g, n)}`);
}

/**
 * Retained size per constructor name, counting each object once (an object dominated by another of the same name is
 * inside it): "how much do all the Client objects hold", the largest first.
 */
export function retainedByName(g: HeapGraph, top = 30): string[] {
  const sums = new Map<string, { bytes: number; count: number }>();
  for (let n = 1; n < g.count; n++) {
    if (g.type[n] !== 'object' && g.type[n] !== 'closure') continue;
    const key = `${g.type[n] === 'closure' ? 'closure ' : ''}${g.name[n]}`;
    let nested = false;
    for (let d = g.dominator[n]!, i = 0; d > 0 && i < 12; d = g.dominator[d]!, i++) {
      if (g.name[d] === g.name[n] && g.type[d] === g.type[n]) {
        nested = true;
        break;
      }
    }
    if (nested || g.dominator[n]! < 0) continue;
    const s = sums.get(key) ?? { bytes: 0, count: 0 };
    s.bytes += g.retained[n]!;
    s.count++;
    sums.set(key, s);
  }
  return [...sums.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, top)
    .map(([k, s]) => `  ${(s.bytes / 2 ** 20).toFixed(2).padStart(7)} MB ${String(s.count).padStart(7)}  ${k.slice(0, 70)}`);
}
