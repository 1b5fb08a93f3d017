import { describe, expect, it } from 'vitest';
import { Emitter } from '../../shared/emitter';

describe('Emitter', () => {
  it('calls every listener with the value, in subscription order', () => {
    const emitter = new Emitter<number>();
    const seen: string[] = [];
    emitter.on((n) => seen.push(`a${n}`));
    emitter.on((n) => seen.push(`b${n}`));
    emitter.emit(1);
    expect(seen).toEqual(['a1', 'b1']);
  });

  it('a throwing listener is reported and the others still run', () => {
    const errors: unknown[] = [];
    const emitter = new Emitter<string>((e) => errors.push(e));
    const seen: string[] = [];
    emitter.on(() => {
      throw new Error('boom');
    });
    emitter.on((v) => seen.push(v));
    expect(() => emitter.emit('x')).not.toThrow();
    expect(seen).toEqual(['x']);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('boom');
  });

  it('the returned function removes exactly that subscription, and is safe to call twice', () => {
    const emitter = new Emitter<void>();
    let calls = 0;
    const listener = (): void => {
      calls++;
    };
    const off1 = emitter.on(listener);
    emitter.on(listener);
    off1();
    off1();
    emitter.emit();
    expect(calls).toBe(1);
    expect(emitter.size).toBe(1);
  });

  it('a listener added during an emit runs from the next emit on', () => {
    const emitter = new Emitter<number>();
    const seen: number[] = [];
    emitter.on(() => {
      if (emitter.size === 1) emitter.on((n) => seen.push(n));
    });
    emitter.emit(1);
    emitter.emit(2);
    expect(seen).toEqual([2]);
  });
});
