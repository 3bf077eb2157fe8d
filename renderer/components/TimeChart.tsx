/**
 * A time chart drawn by uPlot (a small, fast canvas chart library): stacked bars for counts, lines
 * for rates and latencies. Colours come from the theme's CSS variables (resolved through a probe
 * element, since canvas cannot read `light-dark()`), and the chart is drawn again when the theme
 * changes or its box is resized. Drag across it to zoom in; double-click to zoom out again.
 *
 * The canvas is hidden from screen readers: the figure around it (CallsChart, ActivityCharts) says
 * what it shows in words and offers the same numbers as a table.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { scaleTop, stacked } from '../lib/chart.js';

export interface TimeSeries {
  name: string;
  /** One value per bucket; null where there is nothing to draw (a latency with no call). */
  values: (number | null)[];
  /** Index into the theme's series colours (--s0 …). */
  color: number;
}

export interface TimeChartProps {
  /** Bucket starts in seconds. */
  x: number[];
  series: TimeSeries[];
  kind: 'stacked-bars' | 'lines';
  /** Appended to the y axis's values ("ms"). */
  unit?: string;
  height?: number;
  /** Charts with the same key move their cursors together. */
  syncKey?: string;
  /** For tests and screenshots: the plot's role in the page. */
  testId?: string;
}

/** The theme's colour for a CSS expression, as the canvas understands it. */
function resolveColor(expression: string): string {
  const probe = document.createElement('span');
  probe.style.color = expression;
  probe.style.display = 'none';
  document.body.append(probe);
  const color = getComputedStyle(probe).color;
  probe.remove();
  return color;
}

function buildOptions(props: TimeChartProps, width: number): uPlot.Options {
  const axis = resolveColor('var(--muted)');
  const grid = resolveColor('var(--border)');
  const unit = props.unit ? ` ${props.unit}` : '';
  const bars = uPlot.paths.bars!({ size: [0.85, 48], align: 0 });
  const counts = props.kind === 'stacked-bars';
  // Stacked bars are drawn tallest first (see `stacked`), so the series go in reverse.
  const ordered = counts ? [...props.series].reverse() : props.series;
  return {
    width,
    height: props.height ?? 200,
    // Room above the plot for the top tick's label, and at the right for the last time label.
    padding: [14, 16, 0, 4],
    legend: { show: false },
    cursor: { drag: { x: true, y: false }, ...(props.syncKey ? { sync: { key: props.syncKey } } : {}) },
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, counts ? scaleTop(max) : Math.max(1, max * 1.15)] },
    },
    axes: [
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
      {
        stroke: axis,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        size: 56,
        values: (_u, values) => values.map((v) => `${Number.isInteger(v) ? v : v.toFixed(1)}${unit}`),
      },
    ],
    series: [
      {},
      ...ordered.map((s) => {
        const color = resolveColor(`var(--s${s.color % 9})`);
        return counts
          ? { label: s.name, stroke: color, fill: color, width: 0, paths: bars, points: { show: false } }
          : { label: s.name, stroke: color, width: 2, spanGaps: false, points: { show: true, size: 4 } };
      }),
    ],
  };
}

function buildData(props: TimeChartProps): uPlot.AlignedData {
  if (props.kind === 'stacked-bars') return [props.x, ...stacked(props.series.map((s) => s.values.map((v) => v ?? 0)))];
  return [props.x, ...props.series.map((s) => s.values)];
}

export function TimeChart(props: TimeChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  // Rebuilt when what is drawn changes shape; values alone go through setData.
  const shape = `${props.kind}|${props.unit ?? ''}|${props.height ?? 200}|${props.series.map((s) => `${s.name}:${s.color}`).join(',')}`;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const build = () => {
      plot.current?.destroy();
      plot.current = new uPlot(buildOptions(props, Math.max(200, el.clientWidth)), buildData(props), el);
    };
    build();
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: props.height ?? 200 }));
    resize.observe(el);
    // The person switched the theme: the colours are read again.
    const theme = new MutationObserver(build);
    theme.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => {
      resize.disconnect();
      theme.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(buildData(props));
  }, [props.x, props.series]);

  return <div ref={box} className="time-chart" aria-hidden="true" data-chart={props.testId} />;
}
