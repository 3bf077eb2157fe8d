/**
 * The audit's charts, drawn by uPlot (TimeChart): calls over time as stacked bars, one colour per
 * tool, client or server; and, on the Overview, calls, refusals and median latency per server.
 * Screen readers get a summary in words, and every chart's numbers as a table on request.
 */
import { useId, useMemo, useState } from 'react';
import type { AuditTimeline } from '../../src/common/console-api.js';
import { bucketStarts } from '../lib/chart.js';
import { duration, plural, timestamp } from '../lib/format.js';
import { TimeChart, type TimeSeries } from './TimeChart.js';

/** What the range is, in words, including that it was narrowed to where the calls are. */
function rangeText(timeline: AuditTimeline): string {
  const fitted = timeline.requestedFrom ? ` (the calls start there; nothing earlier since ${timestamp(timeline.requestedFrom)})` : '';
  return `from ${timestamp(timeline.from)} to ${timestamp(timeline.to)}${fitted}`;
}

function NumbersTable({
  timeline,
  caption,
  cell,
}: {
  timeline: AuditTimeline;
  caption: string;
  cell: (series: AuditTimeline['series'][number], i: number) => string;
}) {
  const buckets = timeline.series[0]?.counts.length ?? 0;
  const start = Date.parse(timeline.from);
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">From</th>
            {timeline.series.map((s) => (
              <th scope="col" key={s.key}>
                {s.key}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: buckets }, (_, i) => (
            <tr key={i}>
              <th scope="row">{timestamp(new Date(start + i * timeline.bucketMs).toISOString())}</th>
              {timeline.series.map((s) => (
                <td key={s.key}>{cell(s, i)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Legend({ timeline }: { timeline: AuditTimeline }) {
  return (
    <ul className="legend" aria-label={`Legend: ${timeline.by}s`}>
      {timeline.series.map((s, si) => (
        <li key={s.key}>
          <span className={`swatch series-${si}`} aria-hidden="true" /> {s.key} <span className="muted">({s.total})</span>
        </li>
      ))}
    </ul>
  );
}

export function CallsChart({ timeline }: { timeline: AuditTimeline }) {
  const [asTable, setAsTable] = useState(false);
  const captionId = useId();
  const buckets = timeline.series[0]?.counts.length ?? 0;
  const x = useMemo(() => bucketStarts(timeline.from, timeline.bucketMs, buckets), [timeline.from, timeline.bucketMs, buckets]);
  const series = useMemo<TimeSeries[]>(() => timeline.series.map((s, i) => ({ name: s.key, values: s.counts, color: i })), [timeline.series]);
  const busiest = timeline.series.length
    ? `; busiest: ${timeline.series
        .slice(0, 3)
        .map((s) => `${s.key} (${s.total})`)
        .join(', ')}`
    : '';
  const label = `${plural(timeline.total, 'call')} ${rangeText(timeline)}, per ${timeline.by}, in ${duration(timeline.bucketMs)} buckets${busiest}`;
  return (
    <figure className="chart" aria-labelledby={captionId}>
      <figcaption id={captionId}>
        Calls over time per {timeline.by} ({duration(timeline.bucketMs)} per bar
        {timeline.requestedFrom ? `, from the first call at ${timestamp(timeline.from)}` : ''}; drag across the chart to zoom in, double-click to zoom out)
        {timeline.truncated ? ' — only the first calls of this range are counted' : ''}
      </figcaption>
      {timeline.total === 0 ? (
        <p className="empty">No calls in this range.</p>
      ) : (
        <div role="img" aria-label={label}>
          <TimeChart x={x} series={series} kind="stacked-bars" height={220} testId="calls" />
          <Legend timeline={timeline} />
        </div>
      )}
      {timeline.total > 0 ? (
        <button type="button" className="link" aria-expanded={asTable} onClick={() => setAsTable(!asTable)}>
          {asTable ? 'Hide the numbers' : 'Show the numbers as a table'}
        </button>
      ) : null}
      {asTable ? <NumbersTable timeline={timeline} caption={`Calls per ${timeline.by} and time`} cell={(s, i) => String(s.counts[i] ?? 0)} /> : null}
    </figure>
  );
}

/** The Overview's activity: calls, refusals and median latency per server, over the same buckets, with one cursor. */
export function ActivityCharts({ timeline }: { timeline: AuditTimeline }) {
  const [asTable, setAsTable] = useState(false);
  const buckets = timeline.series[0]?.counts.length ?? 0;
  const x = useMemo(() => bucketStarts(timeline.from, timeline.bucketMs, buckets), [timeline.from, timeline.bucketMs, buckets]);
  const calls = useMemo<TimeSeries[]>(() => timeline.series.map((s, i) => ({ name: s.key, values: s.counts, color: i })), [timeline.series]);
  const refused = useMemo<TimeSeries[]>(() => timeline.series.map((s, i) => ({ name: s.key, values: s.refused, color: i })), [timeline.series]);
  const latency = useMemo<TimeSeries[]>(() => timeline.series.map((s, i) => ({ name: s.key, values: s.latencyMs, color: i })), [timeline.series]);
  if (timeline.total === 0) return <p className="empty">No calls {rangeText(timeline)}.</p>;
  const refusals = timeline.series.reduce((sum, s) => sum + s.refused.reduce((a, b) => a + b, 0), 0);
  const summary = `${plural(timeline.total, 'call')} and ${plural(refusals, 'refusal')} ${rangeText(timeline)}, per server, in ${duration(timeline.bucketMs)} buckets: ${timeline.series.map((s) => `${s.key} ${s.total}`).join(', ')}`;
  return (
    <div className="activity" role="group" aria-label={summary}>
      <div className="activity-grid">
        <figure className="chart">
          <figcaption>Calls per server</figcaption>
          <TimeChart x={x} series={calls} kind="stacked-bars" height={160} syncKey="overview" testId="overview-calls" />
        </figure>
        <figure className="chart">
          <figcaption>Refused (policy, quota, approval, sign-in)</figcaption>
          <TimeChart x={x} series={refused} kind="stacked-bars" height={160} syncKey="overview" testId="overview-refused" />
        </figure>
        <figure className="chart">
          <figcaption>Median latency</figcaption>
          <TimeChart x={x} series={latency} kind="lines" unit="ms" height={160} syncKey="overview" testId="overview-latency" />
        </figure>
      </div>
      <Legend timeline={timeline} />
      <p className="muted small">
        {duration(timeline.bucketMs)} per bucket, {rangeText(timeline)}.{' '}
        <button type="button" className="link" aria-expanded={asTable} onClick={() => setAsTable(!asTable)}>
          {asTable ? 'Hide the numbers' : 'Show the numbers as a table'}
        </button>
      </p>
      {asTable ? (
        <NumbersTable
          timeline={timeline}
          caption="Calls, refusals and median latency per server and time"
          cell={(s, i) =>
            `${s.counts[i] ?? 0} calls, ${s.refused[i] ?? 0} refused${s.latencyMs[i] !== null && s.latencyMs[i] !== undefined ? `, ${s.latencyMs[i]} ms` : ''}`
          }
        />
      ) : null}
    </div>
  );
}
