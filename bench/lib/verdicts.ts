/**
 * Issue 13's targets, each judged from this run's own figures: an added latency is a Gatehouse
 * percentile minus the direct client's of the same era measured in the same rounds, a "× best peer"
 * divides by the best peer of the same run, and every verdict says which figures it used. A target
 * whose figures this run did not produce is "not measured", never met.
 */
import type { RunResults, TargetResult } from './results.js';
import { int, ms } from './stats.js';

export interface Verdict {
  id: string;
  target: string;
  goal: string;
  measured: string;
  /** How the figure was computed from the run. */
  from: string;
  met: 'met' | 'NOT met' | 'not measured';
}

const find = (r: RunResults, id: string): TargetResult | undefined => r.targets.find((t) => t.id === id);

function judge(ok: boolean | undefined): Verdict['met'] {
  return ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met';
}

/** The best peer's calls/s in this run, over every peer path. */
function bestPeer(r: RunResults): TargetResult | undefined {
  return r.targets.filter((t) => t.kind === 'peer' && t.throughput).sort((a, b) => b.throughput!.callsPerSecond - a.throughput!.callsPerSecond)[0];
}

export function verdicts(r: RunResults): Verdict[] {
  const out: Verdict[] = [];
  // --- Latency ---------------------------------------------------------------------------------
  const added = (id: string, pct: 'p50' | 'p99') => {
    const t = find(r, id);
    const base = t ? find(r, `direct-${t.era}`) : undefined;
    return t?.latency && base?.latency ? { value: t.latency[pct] - base.latency[pct], t, base } : undefined;
  };
  for (const [id, goal, label] of [
    ['gatehouse-connect', 0.3, 'through `gatehouse connect` (2025, SDK v1 client)'],
    ['gatehouse-http-legacy', 0.5, 'over HTTP, 2025 sessions (SDK v1 client)'],
    ['gatehouse-http-modern', 0.5, 'over HTTP, 2026-07-28 (SDK v2 client)'],
  ] as const) {
    const a = added(id, 'p50');
    out.push({
      id: `latency-p50-${id}`,
      target: `Added p50 latency ${label}`,
      goal: `≤ ${goal} ms`,
      measured: a ? `${ms(a.value)} ms (${ms(a.t.latency!.p50)} − ${ms(a.base.latency!.p50)})` : 'n/a',
      from: `p50 of ${id} minus p50 of ${a?.base.id ?? 'the direct client'}, same rounds`,
      met: judge(a ? a.value <= goal : undefined),
    });
  }
  const p99s = ['gatehouse-connect', 'gatehouse-http-legacy', 'gatehouse-http-modern'].map((id) => ({ id, a: added(id, 'p99') }));
  const measuredP99 = p99s.filter((p) => p.a);
  out.push({
    id: 'latency-p99',
    target: 'Added p99 latency, every endpoint',
    goal: '≤ 2 ms',
    measured: measuredP99.length ? measuredP99.map((p) => `${p.id.replace('gatehouse-', '')} ${ms(p.a!.value)} ms`).join('; ') : 'n/a',
    from: 'p99 of each path minus p99 of the direct client of its era',
    met: judge(measuredP99.length === p99s.length ? measuredP99.every((p) => p.a!.value <= 2) : undefined),
  });
  // --- Throughput ------------------------------------------------------------------------------
  const peer = bestPeer(r);
  for (const [id, goal, label] of [
    ['gatehouse-connect', 5000, 'through `gatehouse connect`'],
    ['gatehouse-http-legacy', 4000, 'over HTTP, 2025 sessions'],
    ['gatehouse-http-modern', 4000, 'over HTTP, 2026-07-28'],
  ] as const) {
    const t = find(r, id)?.throughput;
    const x = t && peer ? t.callsPerSecond / peer.throughput!.callsPerSecond : undefined;
    out.push({
      id: `throughput-${id}`,
      target: `Throughput with ${r.settings.clients} clients ${label}`,
      goal: `≥ ${int(goal)} calls/s and ≥ 3× the best peer`,
      measured: t
        ? `${int(t.callsPerSecond)} calls/s, ${x !== undefined ? `${x.toFixed(2)}× ${peer!.label} (${int(peer!.throughput!.callsPerSecond)})` : 'no peer measured'}`
        : 'n/a',
      from: `calls/s of ${id}; the best peer of this run`,
      met: judge(t ? t.callsPerSecond >= goal && (x === undefined ? false : x >= 3) : undefined),
    });
  }
  // --- Memory ----------------------------------------------------------------------------------
  const m = r.memory;
  out.push({
    id: 'memory-idle',
    target: 'Daemon RSS idle, default servers',
    goal: '≤ 90 MB',
    measured: m?.idleRssMb !== undefined ? `${m.idleRssMb.toFixed(1)} MB` : 'n/a',
    from: `VmRSS of the daemon ${m ? m.idleMs / 1000 : '?'} s after start-up`,
    met: judge(m?.idleRssMb !== undefined ? m.idleRssMb <= 90 : undefined),
  });
  out.push({
    id: 'memory-after-load',
    target: 'Daemon RSS after a load window, default servers',
    goal: '≤ 120 MB',
    measured: m?.afterLoadRssMb !== undefined ? `${m.afterLoadRssMb.toFixed(1)} MB (peak ${m.peakRssMb?.toFixed(1)} MB during ${int(m.calls)} calls)` : 'n/a',
    from: `VmRSS ${m ? m.idleMs / 1000 : '?'} s after ${m ? m.loadMs / 1000 : '?'} s of ${m ? m.clients.socket + m.clients.httpLegacy + m.clients.httpModern : '?'} clients closed`,
    met: judge(m?.afterLoadRssMb !== undefined ? m.afterLoadRssMb <= 120 : undefined),
  });
  // --- Scale -----------------------------------------------------------------------------------
  const cat = r.catalog;
  const list = cat?.e2e?.raw.p50;
  out.push({
    id: 'tools-list-5000',
    target: `\`tools/list\` of ${cat ? int(cat.servers * cat.toolsPerServer) : '5,000'} tools filtered per principal`,
    goal: '≤ 5 ms',
    measured:
      list !== undefined
        ? `${ms(list)} ms p50 on the socket (p99 ${ms(cat!.e2e!.raw.p99)})${r.policy ? `; Cedar bundle in process, warm: ${(['analyst', 'support', 'admin'] as const).map((k) => ms(r.policy!.listTools[k].warm.p50)).join(' / ')} ms` : ''}`
        : 'n/a',
    from: 'request written → whole answer read, raw JSON-RPC on the daemon socket',
    met: judge(list !== undefined ? list <= 5 : undefined),
  });
  const scale = r.auditScale ?? [];
  const at10m = scale.find((p) => p.events >= 10_000_000 && !p.error);
  const largest = [...scale].filter((p) => !p.error).sort((a, b) => b.events - a.events)[0];
  out.push({
    id: 'audit-query-10m',
    target: 'Any audit query, first page, over 10,000,000 events',
    goal: '≤ 20 ms',
    measured: at10m
      ? `worst ${ms(at10m.worstMs)} ms (${at10m.queries.reduce((a, b) => (b.ms > a.ms ? b : a)).name}) over ${at10m.queries.length} kinds`
      : largest
        ? `not run at 10M (--audit-10m); at ${int(largest.events)}: worst ${ms(largest.worstMs)} ms`
        : 'n/a',
    from: 'median of 5 runs per query kind, newest 100, read-only connection as the CLI',
    met: judge(at10m ? at10m.worstMs <= 20 : undefined),
  });
  const bursts = scale.flatMap((p) => p.append.map((a) => ({ ...a, events: p.events })));
  const bestAppend = bursts.sort((a, b) => b.eventsPerSecond - a.eventsPerSecond)[0];
  out.push({
    id: 'audit-append',
    target: 'Audit append in bursts (hash chain, each burst awaited to durable)',
    goal: '≥ 50,000 events/s',
    measured: bursts.length
      ? scale.map((p) => `${int(p.events)}: ${p.append.map((a) => `${int(a.eventsPerSecond)}/s (×${a.burst})`).join(', ')}`).join('; ')
      : 'n/a',
    from: 'SqliteAuditStore.append then await durable(), bursts of 16 and 64, process-crash durability; best burst size at each log size',
    met: judge(bestAppend ? scale.every((p) => p.error || Math.max(...p.append.map((a) => a.eventsPerSecond)) >= 50_000) : undefined),
  });
  const fifty = r.servers?.find((s) => s.servers === 50);
  out.push({
    id: 'servers-50-ready',
    target: '50 servers ready',
    goal: '≤ 1.5 s',
    measured:
      fifty?.spawnedMs !== undefined
        ? `${int(fifty.spawnedMs)} ms from \`gatehouse daemon\` spawn (startDaemon in process: ${fifty.inProcessMs.map((v) => int(v)).join(', ')} ms; floor ${int(fifty.floorMs)} ms)`
        : 'n/a',
    from: 'spawn → every server ready in `gatehouse status`; floor = the same 50 fixtures spawned and connected directly in parallel',
    met: judge(fifty?.spawnedMs !== undefined ? fifty.spawnedMs <= 1500 : undefined),
  });
  const at256 = (r.curves ?? []).filter((c) => c.target.startsWith('gatehouse')).map((c) => ({ c, p: c.points.find((p) => p.clients === 256) }));
  const all256 = at256.length > 0 && at256.every((x) => x.p?.result);
  out.push({
    id: 'clients-256',
    target: '256 concurrent clients without errors, p99 reported',
    goal: '0 errors',
    measured: at256.length
      ? at256
          .map((x) =>
            x.p?.result
              ? `${x.c.target.replace('gatehouse-', '')}: ${x.p.result.errors} errors, p99 ${ms(x.p.result.latency?.p99)} ms`
              : `${x.c.target.replace('gatehouse-', '')}: ${x.p?.error ?? 'not run'}`,
          )
          .join('; ')
      : 'n/a',
    from: 'the 256-client point of each Gatehouse curve',
    met: judge(at256.length ? all256 && at256.every((x) => x.p!.result!.errors === 0) : undefined),
  });
  return out;
}
