/** Nearest-rank percentile of unsorted samples (p in 0..100). */
export function percentile(samples: readonly number[], p: number): number {
  if (!samples.length) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Rounded for the report (3 decimals for ms figures below 10, 1 above). */
export function round(value: number, digits?: number): number {
  if (!Number.isFinite(value)) return value;
  const d = digits ?? (Math.abs(value) < 10 ? 3 : 1);
  const f = 10 ** d;
  return Math.round(value * f) / f;
}
