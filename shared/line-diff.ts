/**
 * A line diff for reviewing a changed tool definition (the dashboard's side-by-side view and `lanyard tools review`'s
 * unified diff): the longest common subsequence of lines, with a removed line followed by an added one shown as a
 * change on one row. Definitions are small (a pinned definition is at most 64 KB); past MAX_DIFF_LINES a side the
 * whole old text is shown as removed and the new as added rather than spending quadratic time.
 */

export interface DiffRow {
  kind: 'same' | 'removed' | 'added' | 'changed';
  left?: string | undefined;
  right?: string | undefined;
}

export const MAX_DIFF_LINES = 2_000;

export function diffLines(before: string, after: string): DiffRow[] {
  const a = before === '' ? [] : before.split('\n');
  const b = after === '' ? [] : after.split('\n');
  if (a.length > MAX_DIFF_LINES || b.length > MAX_DIFF_LINES) {
    return pair([...a.map((left) => ({ kind: 'removed' as const, left })), ...b.map((right) => ({ kind: 'added' as const, right }))]);
  }
  // lcs[i][j]: length of the LCS of a[i..] and b[j..].
  const lcs: Uint16Array[] = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const rows: DiffRow[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      rows.push({ kind: 'same', left: a[i], right: b[j] });
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) rows.push({ kind: 'removed', left: a[i++] });
    else rows.push({ kind: 'added', right: b[j++] });
  }
  return pair(rows);
}

/** Each run of removed lines followed by added ones becomes rows of changes, side by side. */
function pair(rows: DiffRow[]): DiffRow[] {
  const out: DiffRow[] = [];
  for (let k = 0; k < rows.length;) {
    if (rows[k]!.kind !== 'removed') {
      out.push(rows[k++]!);
      continue;
    }
    const removed: DiffRow[] = [];
    while (k < rows.length && rows[k]!.kind === 'removed') removed.push(rows[k++]!);
    const added: DiffRow[] = [];
    while (k < rows.length && rows[k]!.kind === 'added') added.push(rows[k++]!);
    for (let n = 0; n < Math.max(removed.length, added.length); n++) {
      const left = removed[n]?.left;
      const right = added[n]?.right;
      out.push({ kind: left !== undefined && right !== undefined ? 'changed' : left !== undefined ? 'removed' : 'added', left, right });
    }
  }
  return out;
}

/** The rows as a unified diff body (`-`, `+`, two spaces for context). */
export function unifiedDiff(rows: readonly DiffRow[]): string[] {
  const out: string[] = [];
  for (const row of rows) {
    if (row.kind === 'same') out.push(`  ${row.left ?? ''}`);
    else {
      if (row.left !== undefined) out.push(`- ${row.left}`);
      if (row.right !== undefined) out.push(`+ ${row.right}`);
    }
  }
  return out;
}
