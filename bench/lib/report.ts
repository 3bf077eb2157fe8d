/** Renders a run as markdown: the figures side by side, and the BRIEF's targets beside them. */
import type { RunResults, TargetResult } from './results.js';
import { int, median, ms, ratio, table } from './stats.js';
import { renderSearch } from '../scenarios/search.js';

const find = (r: RunResults, id: string): TargetResult | undefined => r.targets.find((t) => t.id === id);

/** The baseline a target's latency is compared with: the direct stdio client of the same era. */
function latencyBaseline(r: RunResults, t: TargetResult): TargetResult | undefined {
  return find(r, `direct-${t.era}`);
}

function gatehouseHttp(r: RunResults, t: TargetResult): TargetResult | undefined {
  return find(r, `gatehouse-http-${t.era}`);
}

export function renderLatencyTable(r: RunResults): string {
  const socket = find(r, 'gatehouse-socket-legacy');
  const rows = r.targets
    .filter((t) => t.latency || t.latencyError)
    .map((t) => {
      if (!t.latency) return [t.label, t.era, `failed: ${t.latencyError ?? ''}`.slice(0, 120), '', '', '', '', '', '', ''];
      const base = latencyBaseline(r, t)?.latency;
      const gh = gatehouseHttp(r, t)?.latency;
      return [
        t.label,
        t.era,
        ms(t.latency.p50),
        ms(t.latency.p99),
        t.kind === 'baseline' ? '—' : ms(base ? t.latency.p50 - base.p50 : undefined),
        t.kind === 'baseline' ? '—' : ms(base ? t.latency.p99 - base.p99 : undefined),
        ratio(t.latency.p50, base?.p50),
        ratio(t.latency.p50, socket?.latency?.p50),
        ratio(t.latency.p50, gh?.p50),
        t.kind === 'baseline' || t.latencyProxyCpuUs === undefined ? '—' : int(t.latencyProxyCpuUs),
      ];
    });
  return table(['path', 'era', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'p50 × baseline', 'p50 × GH socket', 'p50 × GH HTTP (same era)', 'gateway CPU µs / call'], rows);
}

export function renderThroughputTable(r: RunResults): string {
  const socket = find(r, 'gatehouse-socket-legacy')?.throughput;
  const rows = r.targets
    .filter((t) => t.throughput || t.throughputError)
    .map((t) => {
      const x = t.throughput;
      if (!x) return [t.label, `failed: ${t.throughputError ?? ''}`.slice(0, 120), '', '', '', '', '', '', ''];
      const gh = gatehouseHttp(r, t)?.throughput;
      const base = find(r, `direct-1proc-${t.era}`)?.throughput;
      return [
        t.label,
        int(x.callsPerSecond),
        ratio(x.callsPerSecond, base?.callsPerSecond),
        ratio(x.callsPerSecond, socket?.callsPerSecond),
        ratio(x.callsPerSecond, gh?.callsPerSecond),
        t.kind === 'baseline' ? '—' : x.proxyCpuPerKCall.toFixed(0),
        x.upstreamCpuPerKCall.toFixed(0),
        x.clientCpuPerKCall.toFixed(0),
        String(x.errors),
      ];
    });
  return table(
    ['path', 'calls/s', '× baseline', '× GH socket', '× GH HTTP (same era)', 'gateway CPU ms / 1k calls', 'fixture CPU ms / 1k calls', 'client CPU ms / 1k calls', 'errors'],
    rows,
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

interface Verdict {
  figure: string;
  target: string;
  measured: string;
  met: 'met' | 'NOT met' | 'not measured';
}

export function verdicts(r: RunResults): Verdict[] {
  const out: Verdict[] = [];
  const base = find(r, 'direct-legacy')?.latency;
  const socket = find(r, 'gatehouse-socket-legacy');
  const connect = find(r, 'gatehouse-connect');
  if (base && socket?.latency) {
    const added50 = socket.latency.p50 - base.p50;
    const added99 = socket.latency.p99 - base.p99;
    out.push({ figure: 'Added latency, governed `tools/call` over the socket, p50', target: '< 0.3 ms', measured: `${ms(added50)} ms (socket; via \`gatehouse connect\`: ${ms(connect?.latency ? connect.latency.p50 - base.p50 : undefined)} ms)`, met: added50 < 0.3 ? 'met' : 'NOT met' });
    out.push({ figure: 'Added latency, p99', target: '< 2 ms', measured: `${ms(added99)} ms (via \`gatehouse connect\`: ${ms(connect?.latency ? connect.latency.p99 - base.p99 : undefined)} ms)`, met: added99 < 2 ? 'met' : 'NOT met' });
  } else out.push({ figure: 'Added latency over the socket', target: 'p50 < 0.3 ms, p99 < 2 ms', measured: 'n/a', met: 'not measured' });
  const tput = socket?.throughput;
  if (tput) {
    const ceiling = 1e6 / tput.proxyCpuPerKCall;
    out.push({
      figure: 'Throughput, 16 concurrent clients on the socket, durable audit',
      target: '≥ 5,000 calls/s on 2 cores',
      measured: `${int(tput.callsPerSecond)} calls/s end to end (client, daemon and fixture share the 2 cores); daemon CPU ${ms(tput.proxyCpuPerKCall / 1000)} ms/call → at most ~${int(ceiling)} calls/s if the daemon had a core to itself`,
      met: tput.callsPerSecond >= 5000 ? 'met' : 'NOT met',
    });
  } else out.push({ figure: 'Throughput', target: '≥ 5,000 calls/s', measured: 'n/a', met: 'not measured' });
  const cat = r.catalog;
  if (cat) {
    const e2e = cat.e2e?.raw.p50;
    out.push({
      figure: `\`tools/list\`, ${cat.servers} servers × ${cat.toolsPerServer} tools, filtered per principal`,
      target: '< 10 ms',
      measured: `${ms(e2e)} ms end to end on the socket, unmanaged policy (p50; p99 ${ms(cat.e2e?.raw.p99)}); in-process Gateway.listTools ${ms(cat.inProcess.listTools.p50)} ms, + JSON ${ms(cat.inProcess.listAndSerialize.p50)} ms${
        r.policy
          ? `; with a managed Cedar bundle, in process: warm ${(['analyst', 'support', 'admin'] as const).map((k) => ms(r.policy!.listTools[k].warm.p50)).join(' / ')} ms, first list after install ${(['analyst', 'support', 'admin'] as const).map((k) => ms(r.policy!.listTools[k].coldMs)).join(' / ')} ms (analyst / support / admin)`
          : ''
      }`,
      met: e2e !== undefined ? (e2e < 10 ? 'met' : 'NOT met') : 'not measured',
    });
  }
  const ready = r.ready;
  if (ready && ready.inProcessMs.length) {
    const m = median(ready.inProcessMs);
    out.push({
      figure: `Core ready to serve, ${ready.servers} servers configured`,
      target: '< 1 s',
      measured: `${int(m)} ms from the startDaemon call (median of ${ready.inProcessMs.length}; floor: the same ${ready.servers} fixtures started directly in ${int(median(ready.directMs))} ms); \`gatehouse daemon\` spawn → all ready ${int(ready.spawnedMs)} ms`,
      met: m < 1000 ? 'met' : 'NOT met',
    });
  }
  const ab = r.auditBench;
  const appendRuns = r.audit?.runs ?? [];
  if (ab || appendRuns.length) {
    const issue = ab?.append.find((a) => a.durability === 'process-crash');
    const mine = appendRuns.find((a) => a.durability === 'process-crash' && a.burst > 1);
    const value = issue?.eventsPerSecond ?? mine?.recordsPerSecond ?? 0;
    const parts = [
      ...(ab ? ab.append.map((a) => `${int(a.eventsPerSecond)}/s ${a.durability} (bursts of 64, bench/audit.ts)`) : []),
      ...appendRuns.map((a) => `${int(a.recordsPerSecond)}/s ${a.durability}, bursts of ${a.burst}`),
    ];
    out.push({ figure: 'Audit append with hash chain (SQLite, each burst awaited to durable)', target: '≥ 20,000 events/s', measured: parts.join('; '), met: value >= 20000 ? 'met' : 'NOT met' });
  }
  if (ab && !('skipped' in ab.hubIngest)) {
    const h = ab.hubIngest;
    out.push({ figure: 'Hub ingest', target: '≥ 10,000 events/s', measured: `${int(h.eventsPerSecond)} events/s (${h.devices} devices × ${int(h.events / h.devices)} events, signed batches of ${h.batchSize}, throwaway PostgreSQL)`, met: h.eventsPerSecond >= 10000 ? 'met' : 'NOT met' });
  } else {
    out.push({ figure: 'Hub ingest', target: '≥ 10,000 events/s', measured: ab && 'skipped' in ab.hubIngest ? `skipped: ${ab.hubIngest.skipped}` : 'not run (phase audit)', met: 'not measured' });
  }
  const gh = r.hosts.find((h) => h.name === 'gatehouse daemon');
  if (gh?.rssAtRestMb !== undefined || ready?.idleRssMb !== undefined) {
    const worst = Math.max(gh?.rssAtRestMb ?? 0, gh?.rssAfterLoadMb ?? 0, ready?.idleRssMb ?? 0);
    out.push({
      figure: 'Core idle memory (resident)',
      target: '< 120 MB',
      measured: `${gh?.rssAtRestMb?.toFixed(1) ?? 'n/a'} MB at rest with 1 server, ${gh?.rssAfterLoadMb?.toFixed(1) ?? 'n/a'} MB idle after the load, ${ready?.idleRssMb?.toFixed(1) ?? 'n/a'} MB with 10 servers`,
      met: worst < 120 ? 'met' : 'NOT met',
    });
  }
  return out;
}

export function renderVerdicts(r: RunResults): string {
  return table(
    ['figure (BRIEF §11)', 'target', 'measured', 'verdict'],
    verdicts(r).map((v) => [v.figure, v.target, v.measured, v.met === 'met' ? '**met**' : v.met === 'NOT met' ? '**NOT met**' : v.met]),
  );
}

export function renderCatalog(r: RunResults): string {
  const c = r.catalog;
  if (!c) return '';
  const rows: string[][] = [];
  if (c.e2e) {
    rows.push(['daemon, raw JSON-RPC on the socket (request → whole answer received)', ms(c.e2e.raw.p50), ms(c.e2e.raw.p99), `${c.e2e.tools} tools, ${(c.e2e.responseBytes / 1024).toFixed(0)} KiB`]);
    rows.push(['daemon, SDK client `listTools()` on the socket (adds client-side parse + validation)', ms(c.e2e.sdk.p50), ms(c.e2e.sdk.p99), '']);
  } else rows.push(['daemon end to end', 'failed', '', c.e2eError ?? '']);
  if (c.mcpHub) rows.push([`mcp-hub ${c.mcpHub.version}, same SDK client \`listTools()\` over its SSE endpoint`, ms(c.mcpHub.sdk.p50), ms(c.mcpHub.sdk.p99), `${c.mcpHub.tools} tools`]);
  else if (c.mcpHubError) rows.push(['mcp-hub', 'failed', '', c.mcpHubError.slice(0, 200)]);
  rows.push(['in-process `Gateway.listTools` (filter per principal)', ms(c.inProcess.listTools.p50), ms(c.inProcess.listTools.p99), `${c.inProcess.tools} tools`]);
  rows.push(['in-process listTools + `JSON.stringify`', ms(c.inProcess.listAndSerialize.p50), ms(c.inProcess.listAndSerialize.p99), '']);
  rows.push(['in-process `Gateway.refresh` (rebuild the aggregate view)', ms(c.inProcess.refresh.p50), ms(c.inProcess.refresh.p99), '']);
  let text = table(['measurement', 'p50 ms', 'p99 ms', 'size'], rows);
  if (c.e2e) {
    text += `\n\nThat daemon (${c.servers} servers) was ready ${int(c.e2e.readyMs)} ms after spawn and held ${c.e2e.rssMb?.toFixed(1) ?? 'n/a'} MB resident.`;
    if (c.e2e.startRestarts > 0) text += ` It restarted servers ${c.e2e.startRestarts} time(s) on the way (${c.e2e.startErrors.join('; ')}).`;
    if (c.mcpHub) text += ` mcp-hub with the same servers was serving ${int(c.mcpHub.readyMs)} ms after spawn and held ${c.mcpHub.rssMb?.toFixed(1) ?? 'n/a'} MB.`;
  }
  return text;
}

export function renderProfiles(r: RunResults, top = 20): string {
  if (!r.profiles?.length) return '';
  const parts: string[] = [];
  for (const p of r.profiles) {
    const s = p.summary;
    const perCall = (msValue: number) => ((msValue / Math.max(1, p.callsServed)) * 1000).toFixed(1);
    parts.push(`#### ${p.target}, ${p.mode === 'sequential' ? 'one client, sequential calls' : 'closed loops'}: ${int(p.callsPerSecond)} calls/s and ${int(p.daemonCpuUs)} µs of daemon CPU per call under the profiler`);
    parts.push(
      `Profile \`${p.file}\`: ${int(s.totalMs)} ms wall, ${int(s.busyMs)} ms busy (GC ${int(s.gcMs)} ms, "(program)" ${int(s.programMs)} ms), over the daemon's whole life (start-up included); µs / call divides by all ${int(p.callsServed)} calls it served.`,
    );
    parts.push(table(['area', 'self ms', '% of busy'], s.byArea.slice(0, 12).map((a) => [a.area, int(a.selfMs), `${((a.selfMs / s.busyMs) * 100).toFixed(1)}%`])));
    const fns = s.functions.filter((f) => !f.name.startsWith('(')).sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
    parts.push(table(['function (self time)', 'where', 'self ms', '% busy', 'µs / call'], fns.map((f) => [f.name, f.where, int(f.selfMs), `${((f.selfMs / s.busyMs) * 100).toFixed(1)}%`, perCall(f.selfMs)])));
    const ours = s.functions
      .filter((f) => f.area.startsWith('gatehouse:'))
      .sort((a, b) => b.inclusiveMs - a.inclusiveMs)
      .slice(0, top);
    parts.push(table(['Gatehouse function (inclusive time)', 'where', 'incl. ms', '% busy', 'µs / call'], ours.map((f) => [f.name, f.where, int(f.inclusiveMs), `${((f.inclusiveMs / s.busyMs) * 100).toFixed(1)}%`, perCall(f.inclusiveMs)])));
  }
  return parts.join('\n\n');
}

export function renderReport(r: RunResults): string {
  const m = r.machine;
  const s = r.settings;
  const lines = [
    `## Run of ${r.startedAt}${s.quick ? ' (--quick)' : ''}`,
    '',
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memoryGb.toFixed(1)} GB RAM, Node ${m.node}, ${m.os}; load average at start ${m.loadAverage.map((l) => l.toFixed(2)).join(' ')}, at the end ${m.loadAverageEnd?.map((l) => l.toFixed(2)).join(' ') ?? 'n/a'}${(m.loadAverage[0] ?? 0) > m.nproc ? ' (**the machine was busy with other work when the run started: treat absolute figures with care; ratios within the run hold better**)' : ''}. Run took ${r.durationS?.toFixed(0) ?? '?'} s.`,
    '',
    `Latency: ${s.latencyCalls} sequential \`tools/call echo\` per path after ${s.warmupCalls} warm-up calls, in ${s.rounds} interleaved rounds. Throughput: ${s.clients} concurrent clients in closed loops, ${s.passes} pass(es) of ${(s.throughputMs / 1000).toFixed(1)} s per path.`,
    '',
    '### BRIEF §11 targets',
    '',
    renderVerdicts(r),
    '',
    '### `tools/call` latency (sequential, one client)',
    '',
    renderLatencyTable(r),
    '',
    `### Throughput (${s.clients} concurrent clients)`,
    '',
    renderThroughputTable(r),
    '',
    '### Processes: start-up and resident memory',
    '',
    renderHosts(r),
  ];
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
          ['Gatehouse overhead in process (third − first)', (ip.gatewayUs - ip.directUs).toFixed(1)],
        ],
      ),
    );
  }
  if (r.catalog) lines.push('', `### \`tools/list\`, ${r.catalog.servers} servers × ${r.catalog.toolsPerServer} tools`, '', renderCatalog(r));
  if (r.search) lines.push(...renderSearch(r.search, table));
  if (r.ready) {
    const rd = r.ready;
    lines.push('', `### Ready time, ${rd.servers} servers`, '');
    lines.push(`Floor (${rd.servers} fixtures spawned in parallel by SDK clients, connected, tools listed): ${rd.directMs.map((v) => `${int(v)} ms`).join(', ') || 'n/a'}.`, '');
    lines.push(`startDaemon → all ready: ${rd.inProcessMs.map((v) => `${int(v)} ms`).join(', ') || 'n/a'}${rd.inProcessError ? ` (error: ${rd.inProcessError})` : ''}. \`gatehouse daemon\` spawn → all ready: ${int(rd.spawnedMs)} ms; RSS after ${rd.idleMs} ms idle: ${rd.idleRssMb?.toFixed(1) ?? 'n/a'} MB${rd.spawnedError ? ` (error: ${rd.spawnedError})` : ''}.`);
  }
  if (r.audit?.runs.length) {
    lines.push('', '### Audit append (SqliteAuditStore, hash chain, `append` then `await durable()`)', '');
    lines.push(table(['durability', 'events per burst', 'events', 'events/s'], r.audit.runs.map((a) => [a.durability, String(a.burst), int(a.records), int(a.recordsPerSecond)])));
  }
  if (r.quota) {
    const q = r.quota;
    lines.push('', `### Quota and approval stages (bench/approvals.ts), in process, ${q.calls} calls each`, '');
    lines.push(
      table(
        ['stage setup', 'p50 µs', 'p99 µs', 'added p50 µs'],
        (['baseline', 'unmatched', 'memory', 'sqlite'] as const).map((k) => [
          { baseline: 'neither stage', unmatched: 'a call no rule counts', memory: '1 rate limit + 2 quotas, in memory', sqlite: '1 rate limit + 2 quotas, SQLite' }[k],
          q.perCallUs[k].p50.toFixed(1),
          q.perCallUs[k].p99.toFixed(1),
          k === 'baseline' ? '—' : q.addedP50Us[k].toFixed(1),
        ]),
      ),
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
          ...(['analyst', 'support', 'admin'] as const).map((k) => [`tools/list as ${k} (${p.listTools[k].visible} visible), warm (ms); first after install ${ms(p.listTools[k].coldMs)} ms`, ms(p.listTools[k].warm.p50), ms(p.listTools[k].warm.p99)]),
          ['tools/list, unmanaged (ms)', ms(p.unmanagedListTools.p50), ms(p.unmanagedListTools.p99)],
        ],
      ),
    );
    lines.push('', `Bundle compile: ${ms(p.compileMs)} ms.`);
  }
  if (r.auditBench) {
    const a = r.auditBench;
    lines.push('', '### Audit issue figures (bench/audit.ts)', '');
    lines.push(table(['durability', 'events', 'events/s (bursts of 64)'], a.append.map((x) => [x.durability, int(x.events), int(x.eventsPerSecond)])));
    lines.push('', `Queries over ${int(a.query.events)} local events (newest 100; target < ${a.targets.queryMs} ms):`, '');
    lines.push(table(['query', 'ms', 'rows'], a.query.queries.map((q) => [q.name, ms(q.ms), String(q.rows)])));
    const h = a.hubIngest;
    lines.push('', 'skipped' in h ? `Hub ingest skipped: ${h.skipped}` : `Hub ingest: ${int(h.eventsPerSecond)} events/s (${h.devices} devices posting signed batches of ${h.batchSize} at once, ${int(h.events)} events).`);
  }
  if (r.profiles?.length) lines.push('', '### Daemon CPU profile', '', renderProfiles(r));
  if (r.notes.length) lines.push('', '### Notes', '', ...r.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}
