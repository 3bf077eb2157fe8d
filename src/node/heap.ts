/**
 * The daemon's young generation, kept small. V8 doubles the new space (the nursery of short-lived
 * objects) whenever objects survive its collections, up to 32 MB on 64-bit, and never gives it back:
 * module loading at start-up alone grew it to the maximum, so an idle daemon held ~25 MB of mostly
 * empty nursery (BENCHMARKS.md, "Daemon memory").
 *
 * Two ways, by who writes the command line:
 * - Where Gatehouse starts Node itself, Node is given `--max-semi-space-size` (HEAP_NODE_FLAGS): the
 *   bin script's `#!/usr/bin/env -S node ...` line (`gatehouse daemon` as a person types it) and
 *   `npm start` headless (main/start.ts). V8 reads the flag when it sets up the heap, so the cap holds
 *   from the first collection, whatever happens later.
 * - Where it cannot (the desktop app's core runs in Electron's main process, whose V8 takes no flags
 *   from the app; `node bin/gatehouse.js` typed by hand, or an IDE's entry, which names Node and the
 *   script), keepYoungGenerationSmall stops the growth from inside. The growth factor is read at every
 *   growth: once a collection finds the nursery at half the cap (the next growth doubles it to the
 *   cap), the factor is set to 1 and the nursery grows no more. This is best effort: Node tells the
 *   observer about collections on a later turn of the event loop, and when one long synchronous
 *   stretch (loading the core's modules) runs enough collections to grow the nursery twice before
 *   that turn, it stops at 16 MB. Seen once, on a CI machine; hence the flag wherever it can be given.
 *
 * The cap is a trade: a 2 MB nursery (no growth at all) saved 5 MB more but spent 10-14 % of the
 * daemon's busy time collecting it under load, against 4 % for 32 MB; 8 MB sits between.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Both halves of the nursery together, in MB. */
export const YOUNG_GENERATION_CAP_MB = 8;

/**
 * Node's options that set the cap when Node starts: each half of the nursery at most half the cap.
 * The bin script's first line carries the same (a unit test holds the two together).
 */
export const HEAP_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${YOUNG_GENERATION_CAP_MB / 2}`];

/** Whether `keepYoungGenerationSmall` has stopped the growth (set the factor to 1). */
let capped = false;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Call first thing in a process that runs the daemon (bin/gatehouse.js, main/main.ts), before the
 * daemon's modules load. Collections are observed until the cap is reached, then no longer. In a
 * process started with HEAP_NODE_FLAGS, V8 stops at the cap by itself and this only agrees.
 */
export function keepYoungGenerationSmall(capMb = YOUNG_GENERATION_CAP_MB): void {
  const cap = capMb * 1024 * 1024;
  const stopGrowing = (): boolean => {
    if (youngGenerationBytes() * 2 <= cap) return false;
    setFlagsFromString('--semi-space-growth-factor=1');
    capped = true;
    return true;
  };
  if (stopGrowing()) return;
  const observer = new PerformanceObserver(() => {
    if (stopGrowing()) observer.disconnect();
  });
  observer.observe({ entryTypes: ['gc'] });
}

/**
 * Puts the cap back after a worker thread started. The growth factor is one flag for the whole
 * process, and V8 raises it back to its floor of 2 whenever it sets up an isolate, a worker's too:
 * one worker started in a capped process let that process's nursery grow from 8 to 32 MB in the
 * next collections. Call it when the worker is online (its isolate is set up by then). Collections in
 * the few milliseconds between the two can still grow the nursery once, which is why the daemon
 * starts a worker only when a person asks for one (the console's check of the audit log).
 */
export function restoreYoungGenerationCap(): void {
  if (capped) setFlagsFromString('--semi-space-growth-factor=1');
}

/** The process's memory for `gatehouse status`, in MB. */
export function memoryFigures(): { rssMb: number; heapTotalMb: number; heapUsedMb: number; youngGenerationMb: number } {
  const usage = process.memoryUsage();
  const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;
  return { rssMb: mb(usage.rss), heapTotalMb: mb(usage.heapTotal), heapUsedMb: mb(usage.heapUsed), youngGenerationMb: mb(youngGenerationBytes()) };
}

/** What the idle trim reads at each tick: how busy the event loop was since the last tick, and the heap's size now. */
export interface HeapSample {
  /** The event loop's utilization over the last interval, 0 to 1. */
  utilization: number;
  /** The heap's committed pages (V8's `total_heap_size`): what it holds resident, live objects and garbage alike. */
  heapBytes: number;
}

export interface IdleTrimSettings {
  /** At most this busy (event loop utilization) over one interval counts as idle. */
  idleUtilization: number;
  /** The heap must have grown by at least this much over the smallest size seen since the last collection. */
  growthBytes: number;
  /** A daemon busy from its start without a rest has started, and works, after this many busy intervals in a row. */
  startupIntervals: number;
}

export const IDLE_TRIM_DEFAULTS: IdleTrimSettings = { idleUtilization: 0.02, growthBytes: 16 * 1024 * 1024, startupIntervals: 5 };

/**
 * Whether to collect now: the loop rested over a whole interval (start-up or a load window has
 * ended) and the heap holds much more than it did after the last collection, or none ran yet (what
 * loading the modules left: about 4 MB of RSS at idle). The growth is what a load leaves
 * behind: with the nursery capped, the objects of calls in flight are promoted and die in the old
 * generation, whose pages V8 then keeps until its memory reducer acts, if it does. Resting without
 * growth collects nothing (nor does a heap V8 has already shrunk), so an idle daemon does no work.
 */
export function shouldTrim(sample: HeapSample, baselineBytes: number | undefined, settings: IdleTrimSettings = IDLE_TRIM_DEFAULTS): boolean {
  if (sample.utilization > settings.idleUtilization) return false;
  return baselineBytes === undefined || sample.heapBytes - baselineBytes >= settings.growthBytes;
}

export interface IdleTrimOptions {
  intervalMs?: number;
  settings?: IdleTrimSettings;
  /** Told after each collection: how long it held the loop, and the heap's committed size before and after. */
  onTrim?: (trim: { ms: number; beforeBytes: number; afterBytes: number }) => void;
  /**
   * Told once, when the daemon first works after start-up: its first busy interval after the first
   * rest, or, busy from the start without a rest, its `startupIntervals`-th busy interval in a row.
   * Resting, or answering a status request now and then, is not work.
   */
  onFirstWork?: () => void;
  /** Tests only: the samples and the collection, instead of the process's. */
  sample?: () => HeapSample;
  collect?: () => void;
}

export interface IdleTrim {
  /** Full collections run so far. */
  readonly trims: number;
  stop(): void;
}

/**
 * A compacting collection once the daemon rests after work, so that what a load window left behind
 * goes back to the system within a second or two of the rest rather than when V8's memory reducer
 * gets to it (eight seconds at the earliest; in the benchmark's memory phase sometimes within its
 * five-second rest, sometimes not at all). It runs on a rest only, but it is one pause: a call that
 * arrives during it waits (150-180 ms measured after a load window on the shared two-core machine,
 * with about 30 MB live), at most once per rest after growth. A tick costs two cheap reads; the
 * timer does not keep the process alive.
 */
export function trimHeapWhenIdle(options: IdleTrimOptions = {}): IdleTrim {
  const sample = options.sample ?? processSampler();
  // Made at the first collection (the first rest after start-up), not while the daemon starts.
  let collect = options.collect;
  const settings = options.settings ?? IDLE_TRIM_DEFAULTS;
  // No collection yet: the first rest, once start-up is done, collects.
  let baseline: number | undefined;
  let trims = 0;
  const firstWork = { told: options.onFirstWork === undefined, rested: false, busyInARow: 0 };
  const timer = setInterval(() => {
    const now = sample();
    if (!firstWork.told) {
      if (now.utilization <= settings.idleUtilization) {
        firstWork.rested = true;
        firstWork.busyInARow = 0;
      } else if (firstWork.rested || ++firstWork.busyInARow >= settings.startupIntervals) {
        firstWork.told = true;
        options.onFirstWork?.();
      }
    }
    // A heap V8 shrank by itself is the new floor: growth is counted from the smallest size seen.
    if (baseline !== undefined) baseline = Math.min(baseline, now.heapBytes);
    if (!shouldTrim(now, baseline, settings)) return;
    collect ??= compactingCollector();
    const started = performance.now();
    collect();
    const ms = performance.now() - started;
    trims++;
    baseline = sample().heapBytes;
    options.onTrim?.({ ms, beforeBytes: now.heapBytes, afterBytes: baseline });
  }, options.intervalMs ?? 1000);
  timer.unref();
  return {
    get trims() {
      return trims;
    },
    stop: () => clearInterval(timer),
  };
}

function processSampler(): () => HeapSample {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return { utilization, heapBytes: getHeapStatistics().total_heap_size };
  };
}

/**
 * V8's full collection, compacting, reached the one way Node offers without a start-up flag (which
 * neither entry point can pass, see above): the flag that exposes `gc` is set, and a fresh context,
 * which reads it, hands the function over; the daemon's own global never gains `gc`. Compaction is
 * asked for this one collection only: without it the old generation keeps its pages, each holding
 * a few survivors (after a load window: 27 MB live on 91 MB of pages, all of it resident).
 */
export function compactingCollector(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}
