/** The arithmetic of the calls-over-time chart. Pure, so it is unit-tested without a DOM. */

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

/** The SVG path of a line through `values`, in a box `width` × `height` with `top` as the scale's maximum. */
export function linePath(values: number[], width: number, height: number, top: number): string {
  if (values.length === 0) return '';
  const x = (i: number) => (values.length === 1 ? width / 2 : (i / (values.length - 1)) * width);
  const y = (v: number) => height - (top > 0 ? (v / top) * height : 0);
  return values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
}

/** Per bucket, the sum of every series: the stacked bar heights. */
export function totals(series: { counts: number[] }[], buckets: number): number[] {
  const out = new Array<number>(buckets).fill(0);
  for (const s of series) s.counts.forEach((c, i) => (out[i]! += c));
  return out;
}
