/**
 * Caching hints (MCP 2026-07-28 `ttlMs` / `cacheScope`) of a merged list: the smallest remaining lifetime of its parts,
 * and `private` when any part is private. A part with no hint (a server that speaks 2025-11-25, or one whose catalog has
 * not loaded) counts as `ttlMs: 0, private`, the spec's conservative default, so a merged list is never cached longer
 * than its most volatile part. Part of Lanyard's 2026-07-28 layer (it goes when the SDK merges hints for gateways).
 */

export type CacheScope = 'public' | 'private';

/** What a catalog carries per list kind when its server gave a hint (the upstream side records it as `freshness`). */
export interface HintedCatalog {
  freshness?: Partial<Record<'tools' | 'prompts' | 'resources', { ttlMs: number; scope: CacheScope; expiresAt: number }>>;
}

export function mergeCacheHints(
  catalogs: ReadonlyArray<HintedCatalog | object | undefined>,
  kind: 'tools' | 'prompts' | 'resources',
  now: number,
): { ttlMs: number; cacheScope: CacheScope } {
  let ttlMs = Number.POSITIVE_INFINITY;
  let cacheScope: CacheScope = 'public';
  for (const catalog of catalogs) {
    const hint = (catalog as HintedCatalog | undefined)?.freshness?.[kind];
    // What is left of the server's lifetime: a list received a minute ago with a two-minute TTL has one minute left.
    const left = hint && Number.isFinite(hint.expiresAt) ? Math.max(0, Math.floor(hint.expiresAt - now)) : 0;
    ttlMs = Math.min(ttlMs, left);
    if (hint?.scope !== 'public') cacheScope = 'private';
  }
  if (!Number.isFinite(ttlMs)) return { ttlMs: 0, cacheScope: 'private' };
  return { ttlMs, cacheScope };
}
