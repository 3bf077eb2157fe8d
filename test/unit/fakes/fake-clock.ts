/**
 * A clock that moves only when a test says so. Timers fire in due order; between two timers the
 * clock lets pending promise callbacks run, so code that awaits between timers behaves as it would
 * on a real clock.
 */
import type { Clock, TimerHandle } from '../../../src/core/ports.js';

interface Timer extends TimerHandle {
  readonly id: number;
  readonly due: number;
  readonly ms: number;
  readonly fn: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, Timer>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    const timer: Timer = { id, due: this.#now + Math.max(0, ms), ms, fn, unref() {} };
    this.#timers.set(id, timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as Partial<Timer>).id;
    if (id !== undefined) this.#timers.delete(id);
  }

  /** Timers not yet fired nor cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Delays (ms, as asked) of the timers not yet fired, soonest first. */
  pendingDelays(): number[] {
    return this.#sorted().map((t) => t.ms);
  }

  /** When the next timer is due, if any. */
  nextDue(): number | undefined {
    return this.#sorted()[0]?.due;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, each in turn. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flush();
    for (;;) {
      const next = this.#sorted()[0];
      if (!next || next.due > target) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.due);
      next.fn();
      await flush();
    }
    this.#now = target;
    await flush();
  }

  /** Moves time to the next timer and fires it (and any due at the same moment). */
  async runNext(): Promise<void> {
    const due = this.nextDue();
    if (due === undefined) throw new Error('no timer is pending');
    await this.advance(due - this.#now);
  }

  #sorted(): Timer[] {
    return [...this.#timers.values()].sort((a, b) => a.due - b.due || a.id - b.id);
  }
}

/** Lets every promise callback that is ready to run, run (including chains a few links long). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
