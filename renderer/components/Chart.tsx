/**
 * Calls over time as stacked bars, one colour per tool or client, in plain SVG. Screen readers
 * get a summary, and the same numbers as a table on request.
 */
import { useId, useState } from 'react';
import type { AuditTimeline } from '../../src/common/console-api.js';
import { niceTicks, totals } from '../lib/chart.js';
import { duration, plural, timestamp } from '../lib/format.js';

const WIDTH = 720;
const HEIGHT = 180;
const LEFT = 36;
const BOTTOM = 20;

export function CallsChart({ timeline }: { timeline: AuditTimeline }) {
  const [asTable, setAsTable] = useState(false);
  const captionId = useId();
  const buckets = timeline.series[0]?.counts.length ?? 0;
  const sums = totals(timeline.series, buckets);
  const ticks = niceTicks(Math.max(1, ...sums));
  const top = ticks[ticks.length - 1]!;
  const plotW = WIDTH - LEFT;
  const plotH = HEIGHT - BOTTOM;
  const barW = buckets > 0 ? plotW / buckets : plotW;
  const start = Date.parse(timeline.from);
  const label = `${plural(timeline.total, 'call')} from ${timestamp(timeline.from)} to ${timestamp(timeline.to)}, per ${timeline.by}, in ${duration(timeline.bucketMs)} buckets${
    timeline.series.length ? `; busiest: ${timeline.series.slice(0, 3).map((s) => `${s.key} (${s.total})`).join(', ')}` : ''
  }`;
  return (
    <figure className="chart" aria-labelledby={captionId}>
      <figcaption id={captionId}>
        Calls over time per {timeline.by} ({duration(timeline.bucketMs)} per bar){timeline.truncated ? ' — only the first calls of this range are counted' : ''}
      </figcaption>
      {timeline.total === 0 ? (
        <p className="empty">No calls in this range.</p>
      ) : (
        <>
          <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={label} preserveAspectRatio="none" className="chart-svg">
            {ticks.map((t) => {
              const y = plotH - (t / top) * plotH;
              return (
                <g key={t} className="chart-grid">
                  <line x1={LEFT} x2={WIDTH} y1={y} y2={y} />
                  <text x={LEFT - 4} y={y + 4} textAnchor="end">
                    {t}
                  </text>
                </g>
              );
            })}
            {Array.from({ length: buckets }, (_, i) => {
              let y = plotH;
              return (
                <g key={i}>
                  {timeline.series.map((s, si) => {
                    const count = s.counts[i] ?? 0;
                    if (count === 0) return null;
                    const h = (count / top) * plotH;
                    y -= h;
                    return (
                      <rect key={s.key} className={`series-${si}`} x={LEFT + i * barW + 1} y={y} width={Math.max(1, barW - 2)} height={h}>
                        <title>{`${s.key}: ${count} at ${timestamp(new Date(start + i * timeline.bucketMs).toISOString())}`}</title>
                      </rect>
                    );
                  })}
                </g>
              );
            })}
            <text x={LEFT} y={HEIGHT - 4} className="chart-axis">
              {timestamp(timeline.from)}
            </text>
            <text x={WIDTH} y={HEIGHT - 4} textAnchor="end" className="chart-axis">
              {timestamp(timeline.to)}
            </text>
          </svg>
          <ul className="legend" aria-label={`Legend: ${timeline.by}s`}>
            {timeline.series.map((s, si) => (
              <li key={s.key}>
                <span className={`swatch series-${si}`} aria-hidden="true" /> {s.key} <span className="muted">({s.total})</span>
              </li>
            ))}
          </ul>
        </>
      )}
      {timeline.total > 0 ? (
        <button type="button" className="link" aria-expanded={asTable} onClick={() => setAsTable(!asTable)}>
          {asTable ? 'Hide the numbers' : 'Show the numbers as a table'}
        </button>
      ) : null}
      {asTable ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Calls per {timeline.by} and time</caption>
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
                    <td key={s.key}>{s.counts[i] ?? 0}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </figure>
  );
}
