/** The arithmetic of the console's charts. Pure, so it is unit-tested without a DOM or a canvas. */

/** A "nice" upper bound and ticks for counts from 0 to `max` (1, 2 or 5 times a power of ten per step). */
export function niceTicks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const stepInt = Math.max(1, Math.round(step));
  const ticks: number[] = [];
  for (let v = 0; v < max + stepInt; v += stepInt) ticks.push(v);
  return ticks;
}

/**
 * The top of a count scale: a round number above the largest value, with room to spare, so that the
 * tallest bar stays inside the plot and the top tick's label is never drawn against the edge.
 */
export function scaleTop(max: number): number {
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1]!;
  return top > max ? top : top + (ticks[1]! - ticks[0]!);
}

/** Per bucket, the sum of every series: the stacked bar heights. */
export function totals(series: { counts: number[] }[], buckets: number): number[] {
  const out = new Array<number>(buckets).fill(0);
  for (const s of series) s.counts.forEach((c, i) => (out[i]! += c));
  return out;
}

/**
 * Stacked series as cumulative sums, the tallest first: drawn in that order, each bar covers from
 * zero to its own top and the next one overlays it, which is what a stacked bar looks like.
 */
export function stacked(series: number[][]): number[][] {
  const out: number[][] = [];
  let running: number[] | undefined;
  for (const values of series) {
    running = values.map((v, i) => v + (running?.[i] ?? 0));
    out.push(running);
  }
  return out.reverse();
}

/** The start of each bucket, in seconds (uPlot's time unit). */
export function bucketStarts(from: string, bucketMs: number, count: number): number[] {
  const start = Date.parse(from);
  return Array.from({ length: count }, (_, i) => (start + i * bucketMs) / 1000);
}
