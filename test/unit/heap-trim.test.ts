/**
 * The daemon's heap after a load window (issue 13): once the event loop rests and the heap has
 * grown, one compacting collection gives back the pages the load left behind. The same tick tells
 * the daemon when it first works after start-up (it then lets V8 optimize again).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compactingCollector, IDLE_TRIM_DEFAULTS, shouldTrim, trimHeapWhenIdle, type HeapSample } from '../../src/node/heap.js';

const MB = 1024 * 1024;

describe('shouldTrim', () => {
  it('collects when the loop rested over the interval and the heap grew past the threshold since the last collection', () => {
    expect(shouldTrim({ utilization: 0.001, heapBytes: 60 * MB }, 30 * MB)).toBe(true);
  });

  it('does not collect while calls keep the loop busy, however much the heap grew', () => {
    expect(shouldTrim({ utilization: 0.4, heapBytes: 200 * MB }, 30 * MB)).toBe(false);
    expect(shouldTrim({ utilization: IDLE_TRIM_DEFAULTS.idleUtilization + 0.001, heapBytes: 200 * MB }, 30 * MB)).toBe(false);
  });

  it('collects on the first rest, once start-up is done, whatever the growth', () => {
    expect(shouldTrim({ utilization: 0, heapBytes: 30 * MB }, undefined)).toBe(true);
    expect(shouldTrim({ utilization: 0.5, heapBytes: 30 * MB }, undefined)).toBe(false);
  });

  it('does not collect on a rest that follows no growth, so an idle daemon does no work', () => {
    expect(shouldTrim({ utilization: 0, heapBytes: 30 * MB + IDLE_TRIM_DEFAULTS.growthBytes - 1 }, 30 * MB)).toBe(false);
  });
});

describe('trimHeapWhenIdle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects once per rest after growth: not during load, once when it ends, not again until the heap grows anew', () => {
    vi.useFakeTimers();
    let now: HeapSample = { utilization: 0, heapBytes: 40 * MB };
    const collect = vi.fn(() => {
      now = { ...now, heapBytes: 45 * MB };
    });
    const onTrim = vi.fn();
    const trim = trimHeapWhenIdle({ intervalMs: 1000, sample: () => now, collect, onTrim });
    // Start-up done, the first rest: what loading left is collected; then, nothing grown, nothing more.
    vi.advanceTimersByTime(5000);
    expect(collect).toHaveBeenCalledTimes(1);
    collect.mockClear();
    // A load window: busy, the heap grows.
    now = { utilization: 0.6, heapBytes: 150 * MB };
    vi.advanceTimersByTime(5000);
    expect(collect).not.toHaveBeenCalled();
    // The load ends.
    now = { utilization: 0.001, heapBytes: 150 * MB };
    vi.advanceTimersByTime(1000);
    expect(collect).toHaveBeenCalledTimes(1);
    expect(trim.trims).toBe(2);
    expect(onTrim).toHaveBeenLastCalledWith(expect.objectContaining({ beforeBytes: 150 * MB, afterBytes: 45 * MB }));
    // Resting on: nothing more to do.
    vi.advanceTimersByTime(10_000);
    expect(collect).toHaveBeenCalledTimes(1);
    trim.stop();
    now = { utilization: 0, heapBytes: 500 * MB };
    vi.advanceTimersByTime(10_000);
    expect(collect).toHaveBeenCalledTimes(1);
  });

  it('counts growth from the smallest heap it saw: once V8 shrank the heap by itself, growth from there is collected', () => {
    vi.useFakeTimers();
    let now: HeapSample = { utilization: 0, heapBytes: 100 * MB };
    const collect = vi.fn();
    const trim = trimHeapWhenIdle({ intervalMs: 1000, sample: () => now, collect });
    vi.advanceTimersByTime(1000);
    expect(collect).toHaveBeenCalledTimes(1);
    // V8's memory reducer shrinks the heap: the floor follows.
    now = { utilization: 0, heapBytes: 40 * MB };
    vi.advanceTimersByTime(1000);
    // Grows back by more than the threshold over the new floor, though not over the start: collected.
    now = { utilization: 0, heapBytes: 40 * MB + IDLE_TRIM_DEFAULTS.growthBytes };
    vi.advanceTimersByTime(1000);
    expect(collect).toHaveBeenCalledTimes(2);
    trim.stop();
  });
});

describe('the first work after start-up', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const MB40 = 40 * MB;

  it('is told at the first busy interval after the first rest, once, and not while the daemon only rests', () => {
    vi.useFakeTimers();
    let now: HeapSample = { utilization: 0.5, heapBytes: MB40 };
    const onFirstWork = vi.fn();
    const trim = trimHeapWhenIdle({ intervalMs: 1000, sample: () => now, collect: () => undefined, onFirstWork });
    // Start-up: busy, but not work yet.
    vi.advanceTimersByTime(2000);
    expect(onFirstWork).not.toHaveBeenCalled();
    // Resting, with a status request now and then (under the idle threshold).
    now = { utilization: IDLE_TRIM_DEFAULTS.idleUtilization / 2, heapBytes: MB40 };
    vi.advanceTimersByTime(30_000);
    expect(onFirstWork).not.toHaveBeenCalled();
    // Calls.
    now = { utilization: 0.3, heapBytes: MB40 };
    vi.advanceTimersByTime(1000);
    expect(onFirstWork).toHaveBeenCalledTimes(1);
    // Told once only, whatever follows.
    now = { utilization: 0, heapBytes: MB40 };
    vi.advanceTimersByTime(5000);
    now = { utilization: 0.9, heapBytes: MB40 };
    vi.advanceTimersByTime(5000);
    expect(onFirstWork).toHaveBeenCalledTimes(1);
    trim.stop();
  });

  it('is told after a run of busy intervals when the daemon never rested, so that a daemon loaded from its start is not left waiting', () => {
    vi.useFakeTimers();
    const now: HeapSample = { utilization: 0.7, heapBytes: MB40 };
    const onFirstWork = vi.fn();
    const trim = trimHeapWhenIdle({ intervalMs: 1000, sample: () => now, collect: () => undefined, onFirstWork });
    vi.advanceTimersByTime((IDLE_TRIM_DEFAULTS.startupIntervals - 1) * 1000);
    expect(onFirstWork).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1000);
    expect(onFirstWork).toHaveBeenCalledTimes(1);
    trim.stop();
  });
});

describe('compactingCollector', () => {
  it("gives back the old generation's pages that a load left holding a few survivors each", () => {
    const collect = compactingCollector();
    collect();
    // Objects promoted in bulk with one in seven kept: every page of the old generation keeps a few survivors.
    const survivors: object[] = [];
    let window: object[] = [];
    for (let i = 0; i < 600_000; i++) {
      const item = { text: `item ${i} ${'x'.repeat(40)}`, pair: [i, i + 1] };
      window.push(item);
      if (i % 7 === 0) survivors.push(item);
      if (window.length > 200_000) window = window.slice(100_000);
    }
    window = [];
    const before = process.memoryUsage();
    collect();
    const after = process.memoryUsage();
    const slackBefore = before.heapTotal - before.heapUsed;
    const slackAfter = after.heapTotal - after.heapUsed;
    expect(survivors).toHaveLength(85_715);
    // Without compaction the pages stay committed (about 190 MB of slack in a run of this test); compacted, a small part remains.
    expect(before.heapTotal).toBeGreaterThan(100 * MB);
    expect(slackAfter).toBeLessThan(Math.max(40 * MB, slackBefore / 4));
    expect(after.heapTotal).toBeLessThan(before.heapTotal / 2);
  });
});
