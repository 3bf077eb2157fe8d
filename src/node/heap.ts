/**
 * The daemon's young generation, kept small. V8 doubles the new space (the nursery of short-lived
 * objects) whenever objects survive its collections, up to 32 MB on 64-bit, and never gives it back:
 * module loading at start-up alone grew it to the maximum, so an idle daemon held ~25 MB of mostly
 * empty nursery (BENCHMARKS.md, "Daemon memory").
 *
 * `--max-semi-space-size` would cap it, but V8 reads it only when it starts, and neither entry point
 * can pass it: `gatehouse daemon` is started by whatever runs the bin script, and the desktop app's
 * core runs in Electron's main process, whose V8 takes no flags from the app. The growth factor, by
 * contrast, is read at every growth: once a collection finds the nursery at half the cap (the next
 * growth doubles it to the cap), the factor is set to 1 and the nursery grows no more.
 *
 * The cap is a trade: a 2 MB nursery (no growth at all) saved 5 MB more but spent 10-14 % of the
 * daemon's busy time collecting it under load, against 4 % for 32 MB; 8 MB sits between.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Both halves of the nursery together, in MB. */
export const YOUNG_GENERATION_CAP_MB = 8;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Call first thing in a process that runs the daemon (bin/gatehouse.js, main/main.ts), before the
 * daemon's modules load. Collections are observed until the cap is reached, then no longer.
 */
export function keepYoungGenerationSmall(capMb = YOUNG_GENERATION_CAP_MB): void {
  const cap = capMb * 1024 * 1024;
  const stopGrowing = (): boolean => {
    if (youngGenerationBytes() * 2 <= cap) return false;
    setFlagsFromString('--semi-space-growth-factor=1');
    return true;
  };
  if (stopGrowing()) return;
  const observer = new PerformanceObserver(() => {
    if (stopGrowing()) observer.disconnect();
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** The process's memory for `gatehouse status`, in MB. */
export function memoryFigures(): { rssMb: number; heapUsedMb: number; youngGenerationMb: number } {
  const usage = process.memoryUsage();
  const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;
  return { rssMb: mb(usage.rss), heapUsedMb: mb(usage.heapUsed), youngGenerationMb: mb(youngGenerationBytes()) };
}
