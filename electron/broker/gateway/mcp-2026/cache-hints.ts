/**
 * Caching hints (MCP 2026-07-28 `ttlMs` / `cacheScope`) of a merged list: the smallest lifetime of its parts, and
 * `private` when any part is private. A part with no hint (a server that speaks 2025-11-25, or one whose catalog has not
 * loaded) counts as `ttlMs: 0, private`, the spec's conservative default, so a merged list is never cached longer than
 * its most volatile part. Part of Lanyard's 2026-07-28 layer (it goes when the SDK merges hints for gateways).
 */

export type CacheScope = 'public' | 'private';
export interface CacheHint {
  ttlMs?: number;
  cacheScope?: CacheScope;
}

/** What a catalog may carry: the hints its server gave per list kind (filled by the upstream side when it has them). */
export interface HintedCatalog {
  cacheHints?: Partial<Record<'tools' | 'prompts' | 'resources', CacheHint>>;
}

export function mergeCacheHints(
  catalogs: ReadonlyArray<HintedCatalog | object | undefined>,
  kind: 'tools' | 'prompts' | 'resources',
): { ttlMs: number; cacheScope: CacheScope } {
  let ttlMs = Number.POSITIVE_INFINITY;
  let cacheScope: CacheScope = 'public';
  for (const catalog of catalogs) {
    const hint = (catalog as HintedCatalog | undefined)?.cacheHints?.[kind];
    const ttl = typeof hint?.ttlMs === 'number' && Number.isSafeInteger(hint.ttlMs) && hint.ttlMs >= 0 ? hint.ttlMs : 0;
    ttlMs = Math.min(ttlMs, ttl);
    if (hint?.cacheScope !== 'public') cacheScope = 'private';
  }
  if (!Number.isFinite(ttlMs)) return { ttlMs: 0, cacheScope: 'private' };
  return { ttlMs, cacheScope };
}
