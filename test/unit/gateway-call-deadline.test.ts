import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deadline } from '../../electron/broker/gateway/upstream/call-context';

describe('call deadline', () => {
  afterEach(() => vi.useRealTimers());

  it('tells the call when it expires, restarts on progress, and its signal (asked for late) is aborted', () => {
    vi.useFakeTimers();
    const expired: Error[] = [];
    const deadline = new Deadline(1_000, (reason) => expired.push(reason));
    vi.advanceTimersByTime(900);
    deadline.reset();
    vi.advanceTimersByTime(900);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(expired.map((e) => e.message)).toEqual(['deadline expired']);
    expect(deadline.expired).toBe(true);
    expect(deadline.signal.aborted).toBe(true);
  });

  it('aborts a signal taken before expiry, and never fires once cleared', () => {
    vi.useFakeTimers();
    const running = new Deadline(1_000);
    const signal = running.signal;
    vi.advanceTimersByTime(1_000);
    expect(signal.aborted).toBe(true);
    const onExpire = vi.fn();
    const cleared = new Deadline(1_000, onExpire);
    cleared.clear();
    vi.advanceTimersByTime(5_000);
    expect(onExpire).not.toHaveBeenCalled();
    expect(cleared.signal.aborted).toBe(false);
  });
});
