/** Renders a run as markdown: the targets and their verdicts first, then every figure side by side. */
import type { RunResults, TargetResult } from './results.js';
import { int, ms, ratio, table } from './stats.js';
import { verdicts } from './verdicts.js';
import { COST_CENTRES, costCentres } from './cpuprofile.js';
import { renderSearch } from '../scenarios/search.js';
import type { MemoryBreakdown } from '../scenarios/memory.js';

const find = (r: RunResults, id: string): TargetResult | undefined => r.targets.find((t) => t.id === id);

/** The bare proxy's figure on the same endpoint (the floor), when there is one. */
function floorOf(r: RunResults, t: TargetResult): TargetResult | undefined {
  if (t.kind === 'baseline' || t.kind === 'floor' || t.era !== 'legacy') return undefined;
  return find(r, t.endpoint === 'http' ? 'bare-http' : 'bare-socket');
}

export function renderVerdicts(r: RunResults): string {
  return table(
    ['target (issue 13)', 'goal', 'measured in this run', 'computed from', 'verdict'],
    verdicts(r).map((v) => [v.target, v.goal, v.measured, v.from, v.met === 'met' ? '**met**' : v.met === 'NOT met' ? '**NOT met**' : v.met]),
  );
}

export function renderPhases(r: RunResults): string {
  return table(
    ['phase', 'seconds', 'load average at start → end', 'all CPUs busy', ''],
    r.phases.map((p) => [
      p.phase,
      p.seconds.toFixed(0),
      `${p.loadStart.toFixed(2)} → ${p.loadEnd.toFixed(2)}`,
      p.busy !== undefined ? `${(p.busy * 100).toFixed(0)} %` : 'n/a',
      p.failed ? `failed: ${p.failed.slice(0, 100)}` : '',
    ]),
  );
}

export function renderLatencyTable(r: RunResults): string {
  const rows = r.targets
    .filter((t) => t.latency || t.latencyError)
    .map((t) => {
      if (!t.latency) return [t.label, t.era, `failed: ${t.latencyError ?? ''}`.slice(0, 120), '', '', '', '', '', ''];
      const base = find(r, `direct-${t.era}`)?.latency;
      const floor = floorOf(r, t)?.latency;
      return [
        t.label,
        t.era,
        ms(t.latency.p50),
        ms(t.latency.p99),
        t.kind === 'baseline' ? '—' : ms(base ? t.latency.p50 - base.p50 : undefined),
        t.kind === 'baseline' ? '—' : ms(base ? t.latency.p99 - base.p99 : undefined),
        ratio(t.latency.p50, base?.p50),
        floor ? ratio(t.latency.p50 - (base?.p50 ?? 0), floor.p50 - (base?.p50 ?? 0)) : '—',
        t.kind === 'baseline' || t.latencyProxyCpuUs === undefined ? '—' : int(t.latencyProxyCpuUs),
      ];
    });
  return table(
    ['path', 'era', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'p50 × direct', 'added p50 × bare proxy (same endpoint)', 'gateway CPU µs / call'],
    rows,
  );
}

export function renderThroughputTable(r: RunResults): string {
  const rows = r.targets
    .filter((t) => t.throughput || t.throughputError)
    .map((t) => {
      const x = t.throughput;
      if (!x) return [t.label, `failed: ${t.throughputError ?? ''}`.slice(0, 120), '', '', '', '', '', ''];
      const base = find(r, `direct-1proc-${t.era}`)?.throughput;
      const floor = floorOf(r, t)?.throughput;
      return [
        t.label,
        int(x.callsPerSecond),
        ratio(x.callsPerSecond, base?.callsPerSecond),
        floor ? ratio(x.callsPerSecond, floor.callsPerSecond) : '—',
        t.kind === 'baseline' ? '—' : x.proxyCpuPerKCall.toFixed(0),
        x.upstreamCpuPerKCall.toFixed(0),
        x.clientCpuPerKCall.toFixed(0),
        String(x.errors),
      ];
    });
  return table(
    ['path', 'calls/s', '× direct', '× bare proxy (same endpoint)', 'gateway CPU µs / call', 'fixture CPU µs / call', 'client CPU µs / call', 'errors'],
    rows,
  );
}

export function renderCurves(r: RunResults): string {
  const curves = r.curves ?? [];
  if (!curves.length) return '';
  const counts = [...new Set(curves.flatMap((c) => c.points.map((p) => p.clients)))].sort((a, b) => a - b);
  const cell = (c: (typeof curves)[number], n: number, f: (x: NonNullable<(typeof c.points)[number]['result']>) => string) => {
    const p = c.points.find((q) => q.clients === n);
    if (!p) return '';
    if (!p.result) return `failed: ${(p.error ?? '').slice(0, 60)}`;
    return f(p.result);
  };
  const parts = [
    '**Calls/s** (errors in brackets when any)',
    '',
    table(
      ['path', ...counts.map((n) => `${n} clients`)],
      curves.map((c) => [c.label, ...counts.map((n) => cell(c, n, (x) => `${int(x.callsPerSecond)}${x.errors ? ` (${x.errors} errors)` : ''}`))]),
    ),
    '',
    '**Round trip per call under that load, p50 / p99 ms**',
    '',
    table(
      ['path', ...counts.map((n) => `${n} clients`)],
      curves.map((c) => [c.label, ...counts.map((n) => cell(c, n, (x) => `${ms(x.latency?.p50)} / ${ms(x.latency?.p99)}`))]),
    ),
    '',
    '**Gateway CPU µs per call**',
    '',
    table(
      ['path', ...counts.map((n) => `${n} clients`)],
      curves.map((c) => [c.label, ...counts.map((n) => cell(c, n, (x) => int(x.proxyCpuPerKCall)))]),
    ),
  ];
  return parts.join('\n');
}

export function renderServers(r: RunResults): string {
  const s = r.servers ?? [];
  if (!s.length) return '';
  return table(
    [
      'servers',
      'floor: fixtures direct, in parallel (ms)',
      'startDaemon → all ready (ms)',
      '`gatehouse daemon` spawn → all ready (ms)',
      'restarts on the way',
      'daemon RSS idle (MB)',
      'p50 / p99 ms, 1 client, calls over every server',
      `calls/s, ${r.settings.clients} clients`,
      'gateway CPU µs / call',
    ],
    s.map((p) =>
      p.error
        ? [String(p.servers), `failed: ${p.error.slice(0, 120)}`, '', '', '', '', '', '', '']
        : [
            String(p.servers),
            int(p.floorMs),
            p.inProcessMs.map((v) => int(v)).join(', '),
            int(p.spawnedMs),
            `${p.restarts ?? 0}${p.restartErrors?.length ? ` (${p.restartErrors.join('; ').slice(0, 120)})` : ''}`,
            p.idleRssMb?.toFixed(1) ?? 'n/a',
            p.latency ? `${ms(p.latency.p50)} / ${ms(p.latency.p99)}` : 'n/a',
            int(p.throughput?.callsPerSecond),
            int(p.throughput?.proxyCpuPerKCall),
          ],
    ),
  );
}

export function renderMemory(r: RunResults): string {
  const m = r.memory;
  if (!m) return '';
  if (m.error) return `Failed: ${m.error}`;
  return [
    table(
      ['moment', 'daemon RSS (MB)'],
      [
        [`idle, ${m.idleMs / 1000} s after start-up`, m.idleRssMb?.toFixed(1) ?? 'n/a'],
        [
          `peak during ${m.loadMs / 1000} s of ${m.clients.socket} socket + ${m.clients.httpLegacy} HTTP 2025 + ${m.clients.httpModern} HTTP 2026-07-28 clients (${int(m.calls)} calls, ${m.errors} errors)`,
          m.peakRssMb?.toFixed(1) ?? 'n/a',
        ],
        [`idle, ${m.idleMs / 1000} s after every client closed (${m.sessionsLeft ?? '?'} sessions left)`, m.afterLoadRssMb?.toFixed(1) ?? 'n/a'],
      ],
    ),
    '',
    `Servers: ${m.servers.join(', ')} (the default configuration). After the load the daemon reported a young generation of ${m.youngGenerationMb ?? 'n/a'} MB and ${m.heapUsedMb ?? 'n/a'} MB of heap in use.${m.firstError ? ` First error: ${m.firstError}` : ''}`,
    ...(m.idleBreakdown || m.afterLoadBreakdown ? ['', renderMemoryBreakdown(m.idleBreakdown, m.afterLoadBreakdown)] : []),
  ].join('\n');
}

/** Where the daemon's resident memory is at the two idle moments (/proc/PID/smaps, and V8's heap from `gatehouse status`). */
function renderMemoryBreakdown(idle: MemoryBreakdown | undefined, after: MemoryBreakdown | undefined): string {
  const mb = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(1));
  const v8 = (b: MemoryBreakdown | undefined) =>
    b?.heapTotalMb === undefined ? 'n/a' : `${mb(b.heapTotalMb)} (in use ${mb(b.heapUsedMb)}, young generation ${mb(b.youngGenerationMb)})`;
  const rest = (b: MemoryBreakdown | undefined) => (b?.heapTotalMb === undefined ? undefined : b.anonymousMb - b.heapTotalMb);
  return table(
    ['where (RSS, MB)', 'idle after start-up', 'idle after the load'],
    [
      ['pages of the Node executable (code, builtins, ICU; shared with every Node process)', mb(idle?.nodeBinaryMb), mb(after?.nodeBinaryMb)],
      ['anonymous memory', mb(idle?.anonymousMb), mb(after?.anonymousMb)],
      ['· of which V8 heap, committed', v8(idle), v8(after)],
      ["· the rest: other threads' malloc arenas, stacks", mb(rest(idle)), mb(rest(after))],
      ["glibc's main heap (main thread's malloc: SQLite, buffers, V8's own)", mb(idle?.mainHeapMb), mb(after?.mainHeapMb)],
      ['other mapped files (shared libraries, native addons)', mb(idle?.otherFilesMb), mb(after?.otherFilesMb)],
    ],
  );
}

export function renderHosts(r: RunResults): string {
  return table(
    ['process', 'version', 'spawn → serving (ms)', 'RSS at rest (MB)', 'RSS after the load, idle (MB)', 'notes'],
    r.hosts.map((h) => [
      h.name,
      h.version ?? '',
      h.error ? `failed: ${h.error.slice(0, 160)}` : ms(h.readyMs),
      h.rssAtRestMb?.toFixed(1) ?? 'n/a',
      h.rssAfterLoadMb?.toFixed(1) ?? 'n/a',
      (h.notes ?? []).join('; '),
    ]),
  );
}

export function renderCatalog(r: RunResults): string {
  const c = r.catalog;
  if (!c) return '';
  const rows: string[][] = [];
  if (c.e2e) {
    rows.push([
      'daemon, raw JSON-RPC on the socket (request → whole answer received)',
      ms(c.e2e.raw.p50),
      ms(c.e2e.raw.p99),
      `${c.e2e.tools} tools, ${(c.e2e.responseBytes / 1024).toFixed(0)} KiB`,
    ]);
    rows.push(['daemon, SDK v2 client `listTools()` on the socket (adds client-side parse + validation)', ms(c.e2e.sdk.p50), ms(c.e2e.sdk.p99), '']);
  } else rows.push(['daemon end to end', 'failed', '', c.e2eError ?? '']);
  if (c.mcpHub)
    rows.push([
      `mcp-hub ${c.mcpHub.version}, same SDK client \`listTools()\` over its SSE endpoint`,
      ms(c.mcpHub.sdk.p50),
      ms(c.mcpHub.sdk.p99),
      `${c.mcpHub.tools} tools`,
    ]);
  else if (c.mcpHubError) rows.push(['mcp-hub', 'failed', '', c.mcpHubError.slice(0, 200)]);
  rows.push([
    'in-process `Gateway.listTools` (filter per principal)',
    ms(c.inProcess.listTools.p50),
    ms(c.inProcess.listTools.p99),
    `${c.inProcess.tools} tools`,
  ]);
  rows.push(['in-process listTools + `JSON.stringify`', ms(c.inProcess.listAndSerialize.p50), ms(c.inProcess.listAndSerialize.p99), '']);
  rows.push(['in-process `Gateway.refresh` (rebuild the aggregate view)', ms(c.inProcess.refresh.p50), ms(c.inProcess.refresh.p99), '']);
  let text = table(['measurement', 'p50 ms', 'p99 ms', 'size'], rows);
  if (c.e2e) {
    text += `\n\nThat daemon (${c.servers} servers) was ready ${int(c.e2e.readyMs)} ms after spawn and held ${c.e2e.rssMb?.toFixed(1) ?? 'n/a'} MB resident.`;
    if (c.e2e.settledMs !== undefined) {
      text += ` The list was measured once the daemon and its servers had come to rest (under 5 % of a CPU over half a second), ${int(c.e2e.settledMs)} ms after ready${c.e2e.rested === false ? ' (they had not: the wait gave up after 15 s)' : ''}.`;
    }
    if (c.e2e.startRestarts > 0) text += ` It restarted servers ${c.e2e.startRestarts} time(s) on the way (${c.e2e.startErrors.join('; ')}).`;
    if (c.mcpHub)
      text += ` mcp-hub with the same servers was serving ${int(c.mcpHub.readyMs)} ms after spawn and held ${c.mcpHub.rssMb?.toFixed(1) ?? 'n/a'} MB.`;
  }
  return text;
}

export function renderAuditScale(r: RunResults): string {
  const points = r.auditScale ?? [];
  if (!points.length) return '';
  const names = [...new Set(points.flatMap((p) => p.queries.map((q) => q.name)))];
  const parts = [
    table(
      ['events in the log', 'how the log was made', ...names.map((n) => n), 'worst'],
      points.map((p) => [
        int(p.events),
        p.error
          ? `failed: ${p.error.slice(0, 100)}`
          : p.cached
            ? 'cached from an earlier run'
            : `${(p.generateMs / 1000).toFixed(1)} s (index ${(p.indexMs / 1000).toFixed(1)} s)`,
        ...names.map((n) => ms(p.queries.find((q) => q.name === n)?.ms)),
        ms(p.worstMs),
      ]),
    ),
    '',
    'First page = newest 100 matches (or the next 100 after a sequence number), ms, median of the timed runs.',
    '',
    table(
      ['events in the log', ...[...new Set(points.flatMap((p) => p.append.map((a) => a.burst)))].map((b) => `append, bursts of ${b} (events/s)`)],
      points.map((p) => [int(p.events), ...p.append.map((a) => int(a.eventsPerSecond))]),
    ),
  ];
  return parts.join('\n');
}

/**
 * Where each microsecond of daemon CPU goes, per profiled path: each cost centre's share of the
 * profile's busy time (start-up left out), applied to the CPU per call measured without the profiler
 * in the latency (sequential) or throughput (concurrent) phase of the same run.
 */
export function renderCostCentres(r: RunResults): string {
  const profiles = r.profiles ?? [];
  if (!profiles.length) return '';
  const columns = profiles.map((p) => {
    const t = find(r, p.target);
    const measured = p.mode === 'sequential' ? t?.latencyProxyCpuUs : t?.throughput?.proxyCpuPerKCall;
    const perCall = measured ?? p.daemonCpuUs;
    const centres = costCentres(p.summary).filter((c) => !c.centre.startsWith('start-up'));
    const running = centres.reduce((a, c) => a + c.ms, 0) || 1;
    return { p, perCall, measured: measured !== undefined, shares: new Map(centres.map((c) => [c.centre, c.ms / running])) };
  });
  const header = [
    'daemon CPU per call',
    ...columns.map((c) => `${c.p.target.replace('gatehouse-', '')}, ${c.p.mode === 'sequential' ? '1 client' : `${r.settings.clients} clients`}`),
  ];
  const rows = COST_CENTRES.filter((c) => !c.startsWith('start-up')).map((centre) => [
    centre,
    ...columns.map((c) => {
      const share = c.shares.get(centre) ?? 0;
      return `${int(share * c.perCall)} µs (${(share * 100).toFixed(0)} %)`;
    }),
  ]);
  rows.push(['**total**', ...columns.map((c) => `**${int(c.perCall)} µs**${c.measured ? '' : ' (under the profiler)'}`)]);
  return table(header, rows);
}

export function renderProfiles(r: RunResults, top = 20): string {
  if (!r.profiles?.length) return '';
  const parts: string[] = [];
  for (const p of r.profiles) {
    const s = p.summary;
    const perCall = (msValue: number) => ((msValue / Math.max(1, p.callsServed)) * 1000).toFixed(1);
    parts.push(
      `#### ${p.target}, ${p.mode === 'sequential' ? 'one client, sequential calls' : 'closed loops'}: ${int(p.callsPerSecond)} calls/s and ${int(p.daemonCpuUs)} µs of daemon CPU per call under the profiler`,
    );
    parts.push(
      `Profile \`${p.file}\`: ${int(s.totalMs)} ms wall, ${int(s.busyMs)} ms busy (GC ${int(s.gcMs)} ms, "(program)" ${int(s.programMs)} ms), over the daemon's whole life (start-up included); µs / call divides by all ${int(p.callsServed)} calls it served.`,
    );
    parts.push(
      table(
        ['area', 'self ms', '% of busy'],
        s.byArea.slice(0, 12).map((a) => [a.area, int(a.selfMs), `${((a.selfMs / s.busyMs) * 100).toFixed(1)}%`]),
      ),
    );
    const fns = s.functions
      .filter((f) => !f.name.startsWith('('))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top);
    parts.push(
      table(
        ['function (self time)', 'where', 'self ms', '% busy', 'µs / call'],
        fns.map((f) => [f.name, f.where, int(f.selfMs), `${((f.selfMs / s.busyMs) * 100).toFixed(1)}%`, perCall(f.selfMs)]),
      ),
    );
    const ours = s.functions
      .filter((f) => f.area.startsWith('gatehouse:'))
      .sort((a, b) => b.inclusiveMs - a.inclusiveMs)
      .slice(0, top);
    parts.push(
      table(
        ['Gatehouse function (inclusive time)', 'where', 'incl. ms', '% busy', 'µs / call'],
        ours.map((f) => [f.name, f.where, int(f.inclusiveMs), `${((f.inclusiveMs / s.busyMs) * 100).toFixed(1)}%`, perCall(f.inclusiveMs)]),
      ),
    );
  }
  return parts.join('\n\n');
}

export function renderReport(r: RunResults): string {
  const m = r.machine;
  const s = r.settings;
  const lines = [
    `## Run of ${r.startedAt}${r.options.length ? ` (\`${r.options.join(' ')}\`)` : ''}${r.revision ? `, tree ${r.revision}` : ''}`,
    '',
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memoryGb.toFixed(1)} GB RAM, Node ${m.node}, ${m.os}; load average at start ${m.loadAverage.map((l) => l.toFixed(2)).join(' ')}, at the end ${m.loadAverageEnd?.map((l) => l.toFixed(2)).join(' ') ?? 'n/a'}. The run took ${r.durationS?.toFixed(0) ?? '?'} s.`,
    '',
    `Latency: ${s.latencyCalls} sequential \`tools/call echo\` per path after ${s.warmupCalls} warm-up calls, in ${s.rounds} interleaved rounds. Throughput: ${s.clients} concurrent clients in closed loops, ${s.passes} pass(es) of ${(s.throughputMs / 1000).toFixed(1)} s per path.`,
    '',
    '### Targets',
    '',
    renderVerdicts(r),
    '',
    '### How busy the machine was, phase by phase',
    '',
    renderPhases(r),
    '',
    '### `tools/call` latency (sequential, one client)',
    '',
    renderLatencyTable(r),
    '',
    `### Throughput (${s.clients} concurrent clients)`,
    '',
    renderThroughputTable(r),
  ];
  if (r.curves?.length) lines.push('', `### Against the number of clients (${s.curveClients.join(' / ')})`, '', renderCurves(r));
  if (r.servers?.length) lines.push('', `### Against the number of servers (${s.serverCounts.join(' / ')})`, '', renderServers(r));
  if (r.memory) lines.push('', '### Daemon memory with the default servers', '', renderMemory(r));
  if (r.hosts.length) lines.push('', '### Processes of the latency and throughput phases: start-up and resident memory', '', renderHosts(r));
  if (r.inProcess) {
    const ip = r.inProcess;
    lines.push(
      '',
      '### Gatehouse CPU per call, in process (no process hops, no serialisation)',
      '',
      table(
        ['what', 'µs / call'],
        [
          ['SDK client ⇄ fixture server (in-memory transport)', ip.directUs.toFixed(1)],
          ['governance chain alone (`Gateway.callTool`, SQLite audit awaited twice, upstream answers at once)', ip.chainUs.toFixed(1)],
          ['the same chain with an audit sink that keeps nothing', ip.chainNoAuditUs.toFixed(1)],
          ['SDK client ⇄ downstream server → gateway → upstream SDK client ⇄ fixture server', ip.gatewayUs.toFixed(1)],
          ['Gatehouse overhead in process (fourth − first)', (ip.gatewayUs - ip.directUs).toFixed(1)],
        ],
      ),
    );
  }
  if (r.telemetry) {
    const t = r.telemetry;
    const off = t.variants.find((v) => v.name === 'off')!;
    const label = {
      off: 'off (no `telemetry` config: plain chain, no SDK)',
      on: 'on, every call sampled, exported over OTLP/HTTP',
      unsampled: 'on, `sampling: 0` (metrics only)',
    };
    lines.push(
      '',
      `### Telemetry off against on (issue 16), in process: median of ${t.rounds} alternating rounds`,
      '',
      table(
        ['telemetry', 'chain, audit keeps nothing: µs / call', '× off', 'chain with SQLite audit: µs / call', '× off'],
        t.variants.map((v) => [
          label[v.name],
          v.noAuditUs.toFixed(1),
          (v.noAuditUs / off.noAuditUs).toFixed(2),
          v.sqliteAuditUs.toFixed(1),
          (v.sqliteAuditUs / off.sqliteAuditUs).toFixed(2),
        ]),
      ),
      '',
      `${int(t.spansReceived)} spans reached the receiver during the phase.`,
    );
  }
  if (r.catalog) lines.push('', `### \`tools/list\`, ${r.catalog.servers} servers × ${r.catalog.toolsPerServer} tools`, '', renderCatalog(r));
  if (r.search) lines.push(...renderSearch(r.search, table));
  if (r.auditScale?.length)
    lines.push('', `### The audit log against its size (${r.auditScale.map((p) => int(p.events)).join(' / ')} events)`, '', renderAuditScale(r));
  if (r.sandbox) {
    const sb = r.sandbox;
    const label: Record<string, string> = {
      unconfined: 'unconfined (`sandbox: "off"`)',
      confined: 'bubblewrap, default profile (no network)',
      allowlisted: 'bubblewrap with an allow-list (relay inside)',
    };
    lines.push('', '### Confined servers (issue 15): the echo fixture in one daemon, three ways', '');
    lines.push(
      table(
        ['server', 'start-up p50', 'start-up p90', 'call p50', 'call p99', 'process tree RSS'],
        Object.keys(sb.startupMs).map((v) => {
          const k = v as keyof typeof sb.startupMs;
          return [
            label[v] ?? v,
            `${int(sb.startupMs[k].p50)} ms`,
            `${int(sb.startupMs[k].p90)} ms`,
            ms(sb.callMs[k].p50),
            ms(sb.callMs[k].p99),
            sb.treeRssMb[k] !== undefined ? `${sb.treeRssMb[k]!.toFixed(1)} MB` : 'n/a',
          ];
        }),
      ),
    );
    lines.push(
      '',
      'Start-up: `servers.start` of a stopped server until ready (spawn, sandbox set-up, handshake, lists), interleaved. Calls: `tools/call echo` over the daemon socket, interleaved rounds.',
    );
  }
  if (r.audit?.runs.length) {
    lines.push('', '### Audit append in both durabilities (SqliteAuditStore, hash chain, `append` then `await durable()`)', '');
    lines.push(
      table(
        ['durability', 'events per burst', 'events', 'events/s'],
        r.audit.runs.map((a) => [a.durability, String(a.burst), int(a.records), int(a.recordsPerSecond)]),
      ),
    );
  }
  if (r.auditBench) {
    const a = r.auditBench;
    lines.push(
      '',
      table(
        ['durability (bench/audit.ts)', 'events', 'events/s (bursts of 64)'],
        a.append.map((x) => [x.durability, int(x.events), int(x.eventsPerSecond)]),
      ),
    );
    const h = a.hubIngest;
    lines.push(
      '',
      'skipped' in h
        ? `Hub ingest skipped: ${h.skipped}`
        : `Hub ingest: ${int(h.eventsPerSecond)} events/s (${h.devices} devices posting signed batches of ${h.batchSize} at once, ${int(h.events)} events, throwaway PostgreSQL with fsync on).`,
    );
  }
  if (r.policy) {
    const p = r.policy;
    lines.push('', `### Managed policy (bench/policy.ts): ${p.policies} Cedar policies over ${p.servers} × ${p.toolsPerServer} tools, in process`, '');
    lines.push(
      table(
        ['measurement', 'p50', 'p99'],
        [
          ['decide, unmanaged (µs)', p.decideUs.unmanaged.p50.toFixed(2), p.decideUs.unmanaged.p99.toFixed(2)],
          ['decide, cached per principal (µs)', p.decideUs.cached.p50.toFixed(2), p.decideUs.cached.p99.toFixed(2)],
          ['decide, with arguments: one Cedar evaluation (µs)', p.decideUs.withArguments.p50.toFixed(1), p.decideUs.withArguments.p99.toFixed(1)],
          ...(p.decideUs.withArgumentsRepeated
            ? [
                [
                  'decide, with arguments the policy has seen before (µs)',
                  p.decideUs.withArgumentsRepeated.p50.toFixed(2),
                  p.decideUs.withArgumentsRepeated.p99.toFixed(2),
                ],
              ]
            : []),
          ...(['analyst', 'support', 'admin'] as const).map((k) => [
            `tools/list as ${k} (${p.listTools[k].visible} visible), warm (ms); first after install ${ms(p.listTools[k].coldMs)} ms`,
            ms(p.listTools[k].warm.p50),
            ms(p.listTools[k].warm.p99),
          ]),
          ['tools/list, unmanaged (ms)', ms(p.unmanagedListTools.p50), ms(p.unmanagedListTools.p99)],
        ],
      ),
    );
    lines.push('', `Bundle compile: ${ms(p.compileMs)} ms.`);
  }
  if (r.quota) {
    const q = r.quota;
    lines.push('', `### Quota and approval stages (bench/approvals.ts), in process, ${q.calls} calls each`, '');
    lines.push(
      table(
        ['stage setup', 'p50 µs', 'p99 µs', 'added p50 µs'],
        (['baseline', 'unmatched', 'memory', 'sqlite'] as const).map((k) => [
          {
            baseline: 'neither stage',
            unmatched: 'a call no rule counts',
            memory: '1 rate limit + 2 quotas, in memory',
            sqlite: '1 rate limit + 2 quotas, SQLite',
          }[k],
          q.perCallUs[k].p50.toFixed(1),
          q.perCallUs[k].p99.toFixed(1),
          k === 'baseline' ? '—' : q.addedP50Us[k].toFixed(1),
        ]),
      ),
    );
  }
  if (r.profiles?.length) {
    lines.push(
      '',
      "### Where the daemon's CPU per call goes",
      '',
      "Each cost centre's share of the profiled busy time (start-up left out) applied to the CPU per call measured without the profiler in this run.",
      '',
      renderCostCentres(r),
    );
    lines.push('', '### Daemon CPU profiles', '', renderProfiles(r));
  }
  if (r.notes.length) lines.push('', '### Notes', '', ...r.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}
