/**
 * `npm run bench -- --compare`: this run's figures against the committed ones (bench/baseline.json).
 * The machine is shared and absolute figures move by ±30 % between runs, so wherever the run has its
 * own reference (the direct client, the bare proxy, the floor of the same phase) the figure compared
 * is the ratio to it; the others (CPU per call, memory, audit times) are compared as they are. A
 * figure worse by more than the tolerance (20 %) is a regression; the step exits 1 when there is one.
 */
import type { RunResults } from './results.js';
import { table } from './stats.js';

export interface Figure {
  id: string;
  label: string;
  value: number;
  unit: string;
  better: 'lower' | 'higher';
}

export interface Compared {
  id: string;
  label: string;
  unit: string;
  baseline: number;
  current: number;
  /** current / baseline − 1, signed so that a positive change is worse. */
  worse: number;
  verdict: 'regressed' | 'improved' | 'same';
}

const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && v > 0;

/** Every figure a run offers for comparison, by a stable id. */
export function figures(r: RunResults): Figure[] {
  const out: Figure[] = [];
  const add = (id: string, label: string, value: number | undefined, unit: string, better: Figure['better']) => {
    if (finite(value)) out.push({ id, label, value, unit, better });
  };
  // Gatehouse's own figures: the direct client, the bare proxy and the peers are the references, not the subject.
  for (const t of r.targets) {
    if (t.kind !== 'gatehouse') continue;
    const base = r.targets.find((b) => b.id === `direct-${t.era}`)?.latency;
    if (t.latency && base) add(`latency.${t.id}.x-direct`, `${t.label}: p50 ÷ direct p50`, t.latency.p50 / base.p50, '×', 'lower');
    add(`latency.${t.id}.cpu`, `${t.label}: gateway CPU per sequential call`, t.latencyProxyCpuUs, 'µs', 'lower');
    const direct = r.targets.find((b) => b.id === `direct-1proc-${t.era}`)?.throughput;
    if (t.throughput && direct)
      add(`throughput.${t.id}.x-direct`, `${t.label}: calls/s ÷ direct calls/s`, t.throughput.callsPerSecond / direct.callsPerSecond, '×', 'higher');
    add(`throughput.${t.id}.cpu`, `${t.label}: gateway CPU per call, ${t.throughput?.clients ?? ''} clients`, t.throughput?.proxyCpuPerKCall, 'µs', 'lower');
  }
  for (const c of r.curves ?? []) {
    if (c.target.startsWith('bare')) continue;
    const floor = r.curves?.find((f) => f.target === `bare-${c.endpoint}`);
    for (const p of c.points) {
      const f = floor?.points.find((q) => q.clients === p.clients)?.result;
      if (p.result && f)
        add(
          `curve.${c.target}.${p.clients}.x-bare`,
          `${c.label}, ${p.clients} clients: calls/s ÷ bare proxy`,
          p.result.callsPerSecond / f.callsPerSecond,
          '×',
          'higher',
        );
    }
  }
  const ip = r.inProcess;
  if (ip) {
    add('inprocess.chain.x-direct', 'governance chain in process ÷ SDK round trip in process', ip.chainUs / ip.directUs, '×', 'lower');
    add('inprocess.gateway.x-direct', 'SDK ⇄ gateway ⇄ SDK in process ÷ SDK round trip in process', ip.gatewayUs / ip.directUs, '×', 'lower');
  }
  add('catalog.raw-p50', '`tools/list` of the 5,000-tool aggregate, socket, p50', r.catalog?.e2e?.raw.p50, 'ms', 'lower');
  for (const s of r.servers ?? []) {
    if (s.spawnedMs !== undefined && s.floorMs)
      add(`servers.${s.servers}.ready.x-floor`, `${s.servers} servers ready after spawn ÷ floor`, s.spawnedMs / s.floorMs, '×', 'lower');
    add(`servers.${s.servers}.rss`, `daemon RSS idle with ${s.servers} servers`, s.idleRssMb, 'MB', 'lower');
  }
  add('memory.idle', 'daemon RSS idle, default servers', r.memory?.idleRssMb, 'MB', 'lower');
  add('memory.after-load', 'daemon RSS after the load window, default servers', r.memory?.afterLoadRssMb, 'MB', 'lower');
  for (const a of r.auditScale ?? []) {
    add(`audit.${a.events}.worst-query`, `audit query first page, worst kind, ${a.events.toLocaleString('en-US')} events`, a.worstMs, 'ms', 'lower');
    for (const x of a.append)
      add(
        `audit.${a.events}.append.${x.burst}`,
        `audit append, bursts of ${x.burst}, ${a.events.toLocaleString('en-US')} events`,
        x.eventsPerSecond,
        '/s',
        'higher',
      );
  }
  return out;
}

export function compareRuns(baseline: RunResults, current: RunResults, tolerance: number): Compared[] {
  const now = new Map(figures(current).map((f) => [f.id, f]));
  const out: Compared[] = [];
  for (const b of figures(baseline)) {
    const c = now.get(b.id);
    if (!c) continue;
    const worse = b.better === 'lower' ? c.value / b.value - 1 : b.value / c.value - 1;
    out.push({
      id: b.id,
      label: b.label,
      unit: b.unit,
      baseline: b.value,
      current: c.value,
      worse,
      verdict: worse > tolerance ? 'regressed' : worse < -tolerance ? 'improved' : 'same',
    });
  }
  return out;
}

export function renderComparison(rows: Compared[], baselineFile: string): string {
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3));
  const regressed = rows.filter((r) => r.verdict === 'regressed').length;
  return [
    `## Comparison with ${baselineFile}`,
    '',
    `${rows.length} figures compared; ${regressed} regressed by more than 20 %.`,
    '',
    table(
      ['figure', 'baseline', 'this run', 'change (+ is worse)', 'verdict'],
      rows.map((r) => [
        r.label,
        `${fmt(r.baseline)} ${r.unit}`,
        `${fmt(r.current)} ${r.unit}`,
        `${r.worse >= 0 ? '+' : ''}${(r.worse * 100).toFixed(0)} %`,
        r.verdict === 'regressed' ? '**regressed**' : r.verdict,
      ]),
    ),
    '',
  ].join('\n');
}
