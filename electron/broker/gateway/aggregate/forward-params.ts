/**
 * The IDE's request params as sent upstream, with `override` applied (the server's own tool or prompt name): its
 * progress token is replaced by the SDK's own (progress is mapped back per call, so two IDE requests never share one),
 * the rest of `_meta` kept.
 */
export function forwardParams(params: Record<string, unknown>, override: Record<string, unknown> = {}): Record<string, unknown> {
  const { _meta, ...rest } = params as { _meta?: Record<string, unknown> };
  const out: Record<string, unknown> = { ...rest, ...override };
  if (_meta) {
    const { progressToken: _progressToken, ...meta } = _meta;
    if (Object.keys(meta).length) out._meta = meta;
  }
  return out;
}
