/**
 * The daemon's young generation, kept at V8's starting size. V8 doubles the new space (the nursery
 * of short-lived objects) whenever objects survive its collections, up to 32 MB on 64-bit, and never
 * gives it back: module loading at start-up alone grows it to the maximum, so an idle daemon held
 * ~25 MB of mostly empty nursery (BENCHMARKS.md, "Daemon memory").
 *
 * `--max-semi-space-size` would cap it, but V8 reads it only when it starts, and neither entry point
 * can pass it: `gatehouse daemon` is started by whatever runs the bin script, and the desktop app's
 * core runs in Electron's main process, whose V8 takes no flags from the app. The growth factor, by
 * contrast, is read at every growth: set to 1 before anything is loaded, the nursery stays at its
 * starting 2 MB. A call's objects live for about a millisecond, far less than the time between two
 * collections of a 2 MB nursery, so they still die young; the price is more, smaller collections.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Call first thing in a process that runs the daemon (bin/gatehouse.js, main/main.ts), before other modules load. */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** The process's memory for `gatehouse status`, in MB. */
export function memoryFigures(): { rssMb: number; heapUsedMb: number; youngGenerationMb: number } {
  const usage = process.memoryUsage();
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;
  return { rssMb: mb(usage.rss), heapUsedMb: mb(usage.heapUsed), youngGenerationMb: mb(young) };
}
