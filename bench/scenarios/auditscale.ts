/**
 * The audit log against its size: at 10,000, 1,000,000 and (with --audit-10m) 10,000,000 events,
 * the first page (newest 100) of each kind of query `gatehouse audit query` and the console make,
 * read the way the CLI reads it (its own read-only connection beside the writer), and the append
 * rate of the daemon's store into a log of that size, in bursts awaited to durable as the audit stage
 * awaits them. Logs come from bench/lib/audit-log.ts (sealed, verifiable, cached between runs).
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditFilter } from '../../src/core/audit/filter.js';
import { queryEvents } from '../../src/node/audit/query.js';
import { openForReading } from '../../src/node/audit/schema.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';
import { auditLog, START, STEP_MS, syntheticRecord } from '../lib/audit-log.js';
import { median } from '../lib/stats.js';

export interface AuditQueryFigure {
  name: string;
  /** Median of the timed runs, after one warm-up run. */
  ms: number;
  rows: number;
}

export interface AuditScalePoint {
  events: number;
  /** How the log was made in this run (0 when it came from the cache). */
  generateMs: number;
  indexMs: number;
  cached: boolean;
  queries: AuditQueryFigure[];
  /** The slowest first page of all the queries. */
  worstMs: number;
  append: { burst: number; events: number; eventsPerSecond: number }[];
  error?: string;
}

const at = (i: number) => new Date(START + i * STEP_MS).toISOString();

/** The queries: every filter alone, the combinations the console offers, time windows, and paging. */
function cases(n: number): { name: string; filter: AuditFilter }[] {
  return [
    { name: 'everything', filter: {} },
    { name: 'user', filter: { user: 'os:user7' } },
    { name: 'user by the name people see', filter: { user: 'user7' } },
    { name: 'client', filter: { client: 'agent' } },
    { name: 'server', filter: { server: 'server3' } },
    { name: 'server + tool', filter: { server: 'server3', tool: 'tool13' } },
    { name: 'tool', filter: { tool: 'tool13' } },
    { name: 'tool as clients name it', filter: { tool: 'server3__tool13' } },
    { name: 'decision = denied', filter: { decision: 'denied' } },
    { name: 'one user, denied', filter: { user: 'os:user1', decision: 'denied' } },
    { name: 'type = server.state', filter: { type: 'server.state' } },
    { name: 'the last hour', filter: { from: at(Math.max(0, n - 72_000)) } },
    { name: '100 s window, mid-log', filter: { from: at(n / 2), to: at(n / 2 + 2000) } },
    { name: 'before a time (no start)', filter: { to: at(n / 2) } },
    { name: 'one user, half the log', filter: { user: 'os:user7', from: at(n / 4), to: at(n / 2) } },
    { name: 'client, next page', filter: { client: 'agent', afterSeq: Math.floor(n / 3) } },
    { name: 'no match', filter: { user: 'os:nobody' } },
  ];
}

function timeQueries(file: string, n: number, reps: number): AuditQueryFigure[] {
  const db = openForReading(file);
  try {
    return cases(n).map(({ name, filter }) => {
      queryEvents(db, { ...filter, limit: 100 });
      const times: number[] = [];
      let rows = 0;
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        rows = queryEvents(db, { ...filter, limit: 100 }).length;
        times.push(performance.now() - t0);
      }
      return { name, ms: median(times), rows };
    });
  } finally {
    db.close();
  }
}

async function appendRate(
  file: string,
  base: number,
  burst: number,
  maxEvents: number,
  maxMs: number,
): Promise<{ burst: number; events: number; eventsPerSecond: number }> {
  const store = new SqliteAuditStore({ file });
  try {
    let i = 0;
    // Warm-up: one second's worth of small bursts.
    for (; i < 2000; i += burst) {
      for (let j = 0; j < burst; j++) store.append(syntheticRecord(base + i + j));
      await store.durable();
    }
    const t0 = performance.now();
    let done = 0;
    while (done < maxEvents && performance.now() - t0 < maxMs) {
      for (let j = 0; j < burst; j++) store.append(syntheticRecord(base + i + done + j));
      await store.durable();
      done += burst;
    }
    return { burst, events: done, eventsPerSecond: done / ((performance.now() - t0) / 1000) };
  } finally {
    store.close();
  }
}

export async function auditScaleScenario(options: {
  sizes: number[];
  cacheDir: string;
  fresh: boolean;
  reps: number;
  appendEvents: number;
  appendMs: number;
  log: (line: string) => void;
}): Promise<AuditScalePoint[]> {
  const out: AuditScalePoint[] = [];
  for (const events of options.sizes) {
    const point: AuditScalePoint = { events, generateMs: 0, indexMs: 0, cached: false, queries: [], worstMs: Number.NaN, append: [] };
    out.push(point);
    try {
      const log = auditLog(options.cacheDir, events, { fresh: options.fresh, log: options.log });
      Object.assign(point, { generateMs: log.generateMs, indexMs: log.indexMs, cached: log.cached });
      options.log(
        `  ${events.toLocaleString('en-US')} events: ${log.cached ? 'log from the cache' : `made in ${(log.generateMs / 1000).toFixed(1)} s (index ${(log.indexMs / 1000).toFixed(1)} s)`}`,
      );
      point.queries = timeQueries(log.file, events, options.reps);
      point.worstMs = Math.max(...point.queries.map((q) => q.ms));
      const worst = point.queries.reduce((a, b) => (b.ms > a.ms ? b : a));
      options.log(`    first pages: worst ${worst.ms.toFixed(2)} ms (${worst.name}), median ${median(point.queries.map((q) => q.ms)).toFixed(2)} ms`);
      // Appending grows the log; below 10M a copy is used so that the cached log keeps its size.
      const inPlace = events >= 10_000_000;
      const dir = inPlace ? undefined : mkdtempSync(join(tmpdir(), 'gh-bench-audit-append-'));
      const file = dir ? join(dir, 'audit.db') : log.file;
      try {
        if (dir) copyFileSync(log.file, file);
        for (const burst of [16, 64]) point.append.push(await appendRate(file, events + 10_000_000 * burst, burst, options.appendEvents, options.appendMs));
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
      options.log(`    append: ${point.append.map((a) => `${a.eventsPerSecond.toFixed(0)}/s in bursts of ${a.burst}`).join(', ')}`);
    } catch (error) {
      point.error = String(error).slice(0, 500);
      options.log(`  ${events} events: ${point.error}`);
    }
  }
  return out;
}
