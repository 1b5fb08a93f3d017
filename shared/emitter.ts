/**
 * A small typed event emitter: the one way Lanyard's services tell listeners that something changed.
 *
 * Why not Node's EventEmitter: this runs in shared/ (the renderer too), needs no string event names, and guards every
 * listener: one that throws is reported through `onListenerError` and the others still run, so a faulty subscriber
 * (a UI view, a log sink) can never break the service that emits. Listeners added or removed during an emit take
 * effect from the next emit.
 */
export class Emitter<T> {
  private readonly listeners = new Set<(value: T) => void>();

  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  /** Adds a listener; returns the function that removes it (calling it twice is harmless). */
  on(listener: (value: T) => void): () => void {
    // Wrapped so the same function can subscribe twice and each subscription is removed on its own.
    const entry = (value: T): void => listener(value);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  emit(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (e) {
        this.onListenerError(e);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }

  clear(): void {
    this.listeners.clear();
  }
}
