/**
 * Cost curves against the number of clients: for each path, 1, 16, 64 and 256 clients in closed
 * loops, each call's round trip kept, so that throughput and the p50/p99 of latency under load are
 * read at each point, beside the bare proxy's on the same endpoint. A point that cannot be reached
 * (a session that cannot be opened, calls that fail) is reported with its errors, never dropped.
 */
import { closedLoop, openSessions, sequential, type ThroughputResult } from '../lib/load.js';
import type { Target } from '../lib/targets.js';

export interface CurvePoint {
  clients: number;
  result?: ThroughputResult;
  /** Time to open every session of this point (connect + initialize + tools/list each), ms. */
  openMs?: number;
  error?: string;
}

export interface Curve {
  target: string;
  label: string;
  endpoint: Target['endpoint'];
  points: CurvePoint[];
}

export async function curvesScenario(options: {
  targets: Target[];
  counts: number[];
  warmupMs: number;
  durationMs: number;
  log: (line: string) => void;
}): Promise<Curve[]> {
  const curves: Curve[] = [];
  for (const target of options.targets) {
    const curve: Curve = { target: target.id, label: target.label, endpoint: target.endpoint, points: [] };
    curves.push(curve);
    for (const clients of options.counts) {
      const point: CurvePoint = { clients };
      curve.points.push(point);
      let sessions: Awaited<ReturnType<typeof openSessions>> = [];
      try {
        const t0 = performance.now();
        sessions = await openSessions(target, clients);
        point.openMs = performance.now() - t0;
        // Every session warm: each has called once before the window.
        await Promise.all(sessions.map((s) => sequential(s, 2)));
        point.result = await closedLoop(target, sessions, { warmupMs: options.warmupMs, durationMs: options.durationMs, latency: true });
        const r = point.result;
        options.log(
          `  ${target.id.padEnd(26)} ${String(clients).padStart(3)} clients: ${r.callsPerSecond.toFixed(0).padStart(6)} calls/s, p50 ${r.latency?.p50.toFixed(2)} ms, p99 ${r.latency?.p99.toFixed(2)} ms, errors ${r.errors}`,
        );
      } catch (error) {
        point.error = String(error).slice(0, 500);
        options.log(`  ${target.id} with ${clients} clients: ${point.error}`);
      } finally {
        await Promise.allSettled(sessions.map((s) => s.close()));
      }
    }
  }
  return curves;
}
