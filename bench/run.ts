/**
 * `npm run bench`: Gatehouse against the same fixture called directly, through a bare one-hop SDK
 * proxy and through the peer gateways, side by side in one run on one machine; cost curves against
 * clients, servers and audit log size; a verdict per target of issue 13 computed from the run's own
 * figures; tool search (issue 19) and confined servers (issue 15). Writes dist/bench/results.json
 * and dist/bench/report.md, and prints the report. With --compare, also compares the run with the
 * committed results (bench/baseline.json) and exits 1 when a figure regressed by more than 20 %.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { auditBench } from './audit.js';
import { quotaStageBench } from './approvals.js';
import { policyScenario } from './policy.js';
import { compareRuns, renderComparison } from './lib/compare.js';
import { fixtureServers, REPO, spawnDaemon, type RunningDaemon } from './lib/gatehouse.js';
import { closedLoop, openSessions, sequential, type ThroughputResult } from './lib/load.js';
import { machine, startPhase } from './lib/machine.js';
import { findPeer, startBareProxy, startPeer, type PeerName, type RunningBareProxy, type RunningPeer } from './lib/peers.js';
import { rssMb, sleep, stopAll, sumCpuMs } from './lib/proc.js';
import { renderReport } from './lib/report.js';
import type { HostResult, RunResults, Settings, TargetResult } from './lib/results.js';
import { summarize } from './lib/stats.js';
import { bareTargets, directTarget, gatehouseTargets, peerTargets, type Session, type Target } from './lib/targets.js';
import { auditScenario } from './scenarios/audit.js';
import { auditScaleScenario } from './scenarios/auditscale.js';
import { catalogScenario } from './scenarios/catalog.js';
import { curvesScenario } from './scenarios/curves.js';
import { inProcessScenario } from './scenarios/inprocess.js';
import { memoryScenario } from './scenarios/memory.js';
import { profileScenario } from './scenarios/profile.js';
import { SANDBOX_VARIANTS, sandboxScenario } from './scenarios/sandbox.js';
import { searchScenario } from './scenarios/search.js';
import { serversScenario } from './scenarios/servers.js';
import { telemetryScenario } from './scenarios/telemetry.js';

const PHASES = [
  'latency',
  'throughput',
  'curves',
  'servers',
  'memory',
  'inprocess',
  'telemetry',
  'catalog',
  'search',
  'policy',
  'quota',
  'sandbox',
  'audit',
  'auditscale',
  'profile',
] as const;
type Phase = (typeof PHASES)[number];
const PEERS: PeerName[] = ['supergateway', 'mcp-proxy', 'mcp-hub'];
const DEFAULT_BASELINE = join(REPO, 'bench', 'baseline.json');

const USAGE = `Usage: npm run bench -- [options]   (or node dist/bench/run.js [options])
  --quick            a short run (about 4 minutes): fewer calls, shorter windows, smaller curves
  --audit-10m        also measure the audit log at 10,000,000 events (made once, about 5 minutes, ~13 GB, cached)
  --fresh-audit      make the cached audit logs again
  --profile          also profile the daemon under load (node --cpu-prof) and summarise the hot path
  --compare          compare with the committed results (--baseline FILE, default bench/baseline.json);
                     exit 1 when a figure regressed by more than 20 %
  --compare-only F   compare results file F with the baseline without running anything
  --only LIST        phases to run, comma-separated: ${PHASES.join(',')}
  --targets LIST     only these call paths (ids as in results.json; baselines are always kept)
  --no-peers         skip supergateway, mcp-proxy and mcp-hub
  --peers DIR        a folder whose node_modules/ holds the peers (default: the repository's)
  --cache DIR        where generated audit logs are kept (default dist/bench/cache)
  --out DIR          where results.json, report.md and profiles go (default dist/bench)`;

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function revision(): string | undefined {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'audit-10m': { type: 'boolean', default: false },
      'fresh-audit': { type: 'boolean', default: false },
      compare: { type: 'boolean', default: false },
      'compare-only': { type: 'string' },
      baseline: { type: 'string' },
      only: { type: 'string' },
      targets: { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
      peers: { type: 'string' },
      cache: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const baselineFile = values.baseline ?? DEFAULT_BASELINE;
  if (values['compare-only'])
    return compareStep(JSON.parse(readFileSync(values['compare-only'], 'utf8')) as RunResults, baselineFile, values.out ?? join(REPO, 'dist', 'bench'));

  const quick = values.quick ?? false;
  const phases = new Set<Phase>(values.only ? (values.only.split(',').map((p) => p.trim()) as Phase[]) : PHASES.filter((p) => p !== 'profile'));
  if (values.profile) phases.add('profile');
  for (const p of phases) if (!PHASES.includes(p)) throw new Error(`unknown phase "${p}"; phases are ${PHASES.join(', ')}`);
  const outDir = values.out ?? join(REPO, 'dist', 'bench');
  mkdirSync(outDir, { recursive: true });
  const cacheDir = values.cache ?? join(REPO, 'dist', 'bench', 'cache');
  const peersDir = values.peers ?? process.env.GATEHOUSE_BENCH_PEERS;

  const settings: Settings = quick
    ? {
        quick,
        latencyCalls: 600,
        warmupCalls: 150,
        rounds: 2,
        clients: 16,
        throughputMs: 1500,
        passes: 1,
        catalogServers: 50,
        catalogTools: 100,
        curveClients: [1, 16, 64, 256],
        serverCounts: [1, 10, 50],
        auditSizes: [10_000, 1_000_000],
      }
    : {
        quick,
        latencyCalls: 2000,
        warmupCalls: 300,
        rounds: 4,
        clients: 16,
        throughputMs: 2500,
        passes: 2,
        catalogServers: 50,
        catalogTools: 100,
        curveClients: [1, 16, 64, 256],
        serverCounts: [1, 10, 50],
        auditSizes: [10_000, 1_000_000],
      };
  if (values['audit-10m']) settings.auditSizes.push(10_000_000);
  const results: RunResults = {
    startedAt: new Date().toISOString(),
    options: process.argv.slice(2),
    ...(revision() ? { revision: revision()! } : {}),
    machine: machine(),
    settings,
    phases: [],
    hosts: [],
    targets: [],
    notes: [],
  };
  const t0 = performance.now();
  log(`${results.machine.nproc} × ${results.machine.cpuModel}, Node ${results.machine.node}, load ${loadavg()[0]!.toFixed(2)}${quick ? ' (quick run)' : ''}`);

  /** Runs one phase, recording the machine's load meanwhile; a phase that fails is reported in the notes, and the run goes on. */
  const guarded = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const done = startPhase(name);
    try {
      await fn();
      results.phases.push(done());
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      results.notes.push(`Phase ${name} failed: ${message.slice(0, 2000)}`);
      results.phases.push(done(message.slice(0, 300)));
      log(`phase ${name} failed: ${message}`);
    }
  };

  // --- Per-call paths: latency and throughput, every host running side by side. ----------------
  if (phases.has('latency') || phases.has('throughput')) {
    let daemon: RunningDaemon | undefined;
    let bare: RunningBareProxy | undefined;
    const peers: RunningPeer[] = [];
    const hostPids: { result: HostResult; pid: number }[] = [];
    try {
      await guarded('start hosts', async () => {
        log('starting gatehouse daemon, the bare proxy and the peers with the fixture ...');
        daemon = await spawnDaemon({ servers: fixtureServers(1) });
        const gh: HostResult = { name: 'gatehouse daemon', readyMs: daemon.readyMs };
        results.hosts.push(gh);
        hostPids.push({ result: gh, pid: daemon.pid });
        bare = await startBareProxy();
        const bh: HostResult = { name: 'bare one-hop SDK proxy', version: 'SDK 1.x', readyMs: bare.readyMs };
        results.hosts.push(bh);
        hostPids.push({ result: bh, pid: bare.pid });
        if (!values['no-peers']) {
          for (const name of PEERS) {
            const found = findPeer(name, peersDir);
            if ('missing' in found) {
              results.hosts.push({ name, error: found.missing });
              log(`${name}: ${found.missing}`);
              continue;
            }
            try {
              const peer = await startPeer(found);
              peers.push(peer);
              const host: HostResult = { name, version: found.version, readyMs: peer.readyMs, notes: peer.notes };
              results.hosts.push(host);
              hostPids.push({ result: host, pid: peer.pid });
            } catch (error) {
              results.hosts.push({ name, version: found.version, error: String(error) });
              log(`${name} could not be started: ${String(error)}`);
            }
          }
        }
        await sleep(1000);
        for (const h of hostPids) h.result.rssAtRestMb = rssMb(h.pid);
      });
      if (daemon && bare) {
        let targets: Target[] = [
          directTarget('legacy', false),
          directTarget('modern', false),
          directTarget('legacy', true),
          directTarget('modern', true),
          ...bareTargets(bare),
          ...gatehouseTargets(daemon),
          ...peers.flatMap(peerTargets),
        ];
        if (values.targets) {
          const wanted = new Set(values.targets.split(','));
          targets = targets.filter((t) => t.kind === 'baseline' || wanted.has(t.id));
        }
        const byId = new Map<string, TargetResult>();
        for (const t of targets) {
          const r: TargetResult = { id: t.id, label: t.label, kind: t.kind, endpoint: t.endpoint, path: t.path, era: t.era };
          byId.set(t.id, r);
          results.targets.push(r);
        }
        if (phases.has('latency'))
          await guarded('latency', () =>
            latencyPhase(
              targets.filter((t) => t.latency !== false),
              byId,
              settings,
            ),
          );
        if (phases.has('throughput'))
          await guarded('throughput', () =>
            throughputPhase(
              targets.filter((t) => t.throughput !== false),
              byId,
              settings,
            ),
          );
        await sleep(quick ? 1000 : 2000);
        for (const h of hostPids) h.result.rssAfterLoadMb = rssMb(h.pid);
        const d = daemon as RunningDaemon;
        const left = (await d.status()).clients;
        if (left.length) {
          const gh = results.hosts.find((h) => h.name === 'gatehouse daemon')!;
          gh.notes = [...(gh.notes ?? []), `${left.length} client sessions still held after every client closed`];
        }
      }
    } finally {
      await Promise.allSettled(peers.map((p) => p.stop()));
      await (bare as RunningBareProxy | undefined)?.stop();
      await (daemon as RunningDaemon | undefined)?.stop();
    }
  }

  if (phases.has('curves'))
    await guarded('curves', async () => {
      log(`cost curves against ${settings.curveClients.join(' / ')} clients ...`);
      const daemon = await spawnDaemon({ servers: fixtureServers(1) });
      const bare = await startBareProxy().catch(async (error: unknown) => {
        await daemon.stop();
        throw error;
      });
      try {
        const pick = (ids: string[], all: Target[]) => ids.map((id) => all.find((t) => t.id === id)!);
        results.curves = await curvesScenario({
          targets: [
            ...pick(['bare-socket', 'bare-http'], bareTargets(bare)),
            ...pick(['gatehouse-socket-legacy', 'gatehouse-http-legacy', 'gatehouse-http-modern'], gatehouseTargets(daemon)),
          ],
          counts: settings.curveClients,
          warmupMs: 300,
          durationMs: quick ? 1000 : 2000,
          log,
        });
      } finally {
        await bare.stop();
        await daemon.stop();
      }
    });
  if (phases.has('servers'))
    await guarded('servers', async () => {
      log(`cost curves against ${settings.serverCounts.join(' / ')} servers ...`);
      results.servers = await serversScenario({
        counts: settings.serverCounts,
        reps: quick ? 1 : 2,
        calls: quick ? 300 : 1000,
        clients: settings.clients,
        durationMs: quick ? 1000 : 2000,
        idleMs: quick ? 1000 : 2000,
        log,
      });
    });
  if (phases.has('memory'))
    await guarded('memory', async () => {
      log('daemon memory with the default servers: idle, under load, idle after ...');
      results.memory = await memoryScenario({ idleMs: quick ? 3000 : 5000, loadMs: quick ? 4000 : 10_000, clients: 16, log });
    });
  if (phases.has('inprocess'))
    await guarded('inprocess', async () => {
      log('in-process cost of a governed call ...');
      results.inProcess = await inProcessScenario(quick ? 3_000 : 8_000);
      log(
        `  direct ${results.inProcess.directUs.toFixed(1)} µs, chain alone ${results.inProcess.chainUs.toFixed(1)} µs (${results.inProcess.chainNoAuditUs.toFixed(1)} µs without audit), through the gateway ${results.inProcess.gatewayUs.toFixed(1)} µs per call`,
      );
    });
  if (phases.has('telemetry'))
    await guarded('telemetry', async () => {
      log('telemetry: per-call cost of the chain with tracing and metrics off, on, and on but unsampled ...');
      results.telemetry = await telemetryScenario({ calls: quick ? 3_000 : 10_000, rounds: quick ? 3 : 7, log });
      const [off, on] = results.telemetry.variants;
      log(
        `  off ${off!.noAuditUs.toFixed(1)} µs, on ${on!.noAuditUs.toFixed(1)} µs per call without audit (×${(on!.noAuditUs / off!.noAuditUs).toFixed(2)}); with SQLite audit ${off!.sqliteAuditUs.toFixed(1)} → ${on!.sqliteAuditUs.toFixed(1)} µs`,
      );
    });
  if (phases.has('catalog'))
    await guarded('catalog', async () => {
      log(`tools/list over ${settings.catalogServers} servers × ${settings.catalogTools} tools ...`);
      const hub = values['no-peers'] ? undefined : findPeer('mcp-hub', peersDir);
      results.catalog = await catalogScenario({
        servers: settings.catalogServers,
        toolsPerServer: settings.catalogTools,
        reps: quick ? 15 : 50,
        mcpHub: hub && !('missing' in hub) ? hub : undefined,
        log,
      });
    });
  if (phases.has('search'))
    await guarded('search', async () => {
      log('tool search: recall on the labelled queries, tokens per view, find_tools over 5,000 tools ...');
      results.search = await searchScenario({ reps: quick ? 3 : 10, log });
    });
  if (phases.has('policy'))
    await guarded('policy', async () => {
      log('managed policy (Cedar) in process: decisions and filtered tools/list ...');
      results.policy = await policyScenario({ reps: quick ? 50 : 200, log });
    });
  if (phases.has('quota'))
    await guarded('quota', async () => {
      log('quota and approval stages in process: added cost per call ...');
      results.quota = await quotaStageBench({ calls: quick ? 5_000 : 20_000, log });
    });
  if (phases.has('sandbox'))
    await guarded('sandbox', async () => {
      log('a confined server against an unconfined one: start-up, per-call latency, memory ...');
      results.sandbox = await sandboxScenario({ restarts: quick ? 5 : 15, calls: quick ? 600 : 2000, rounds: quick ? 2 : 4, log });
      const r = results.sandbox;
      log(`  ${SANDBOX_VARIANTS.map((v) => `${v}: start ${r.startupMs[v].p50.toFixed(0)} ms, call p50 ${r.callMs[v].p50.toFixed(3)} ms`).join('; ')}`);
    });
  if (phases.has('audit'))
    await guarded('audit', async () => {
      log('audit append rate, both durabilities; hub ingest into a throwaway PostgreSQL ...');
      results.audit = await auditScenario(quick ? 20_000 : 100_000, 16, quick ? 2_000 : 5_000);
      for (const a of results.audit.runs) log(`  ${a.durability}, bursts of ${a.burst}: ${a.recordsPerSecond.toFixed(0)} records/s`);
      results.auditBench = await auditBench(
        quick ? { appendEvents: 20_000, queryEvents: 0, hubDevices: 2, hubEventsPerDevice: 5_000 } : { appendEvents: 100_000, queryEvents: 0 },
      );
      const hub = results.auditBench.hubIngest;
      log(`  hub ingest: ${'skipped' in hub ? `skipped (${hub.skipped})` : `${hub.eventsPerSecond} events/s`}`);
    });
  if (phases.has('auditscale'))
    await guarded('auditscale', async () => {
      log(`audit log at ${settings.auditSizes.map((n) => n.toLocaleString('en-US')).join(' / ')} events: first pages and append ...`);
      results.auditScale = await auditScaleScenario({
        sizes: settings.auditSizes,
        cacheDir,
        fresh: values['fresh-audit'] ?? false,
        reps: quick ? 3 : 5,
        appendEvents: quick ? 30_000 : 100_000,
        appendMs: quick ? 1500 : 3000,
        log,
      });
    });
  if (phases.has('profile'))
    await guarded('profile', async () => {
      log('profiling the daemon under load ...');
      results.profiles = await profileScenario({
        outDir: join(outDir, 'profiles'),
        runs: [
          { target: 'gatehouse-socket-legacy', mode: 'sequential' },
          { target: 'gatehouse-http-legacy', mode: 'sequential' },
          { target: 'gatehouse-socket-legacy', mode: 'concurrent' },
          { target: 'gatehouse-http-legacy', mode: 'concurrent' },
        ],
        clients: settings.clients,
        durationMs: quick ? 2000 : 5000,
        sequentialCalls: quick ? 1500 : 4000,
        log,
      });
    });

  results.notes.push(
    'Every path calls the same fixture (bench/fixtures/echo-server.mjs, SDK v2 low-level Server via serveStdio). 2025-era paths are driven by the SDK v1 client (@modelcontextprotocol/sdk, what IDEs run), baseline included; 2026-07-28 paths by the SDK v2 client. Added latency is measured against the direct stdio client of the same era.',
    'The floor is bench/fixtures/bare-proxy.mjs: one SDK v1 Server per downstream connection forwarding tools/list and tools/call to one SDK v1 Client on the fixture, no governance, on a unix socket and on Streamable HTTP.',
    'Gatehouse speaks to the fixture in the 2026-07-28 era (its connector negotiates `auto`); the bare proxy and the peers speak 2025 upstream.',
    'supergateway runs with --stateful (its stateless mode spawns a fixture per request) and --logLevel none; with 16 clients it runs 16 fixture children, every other gateway one. mcp-hub serves the legacy SSE transport at /mcp.',
    'The load generator (all clients), the gateway and the fixture share the machine: calls/s is an end-to-end figure; "gateway CPU ms / 1k calls" (from /proc, utime+stime, 10 ms resolution) is the gateway process\'s own cost (for `gatehouse connect`, the daemon plus the 16 bridges).',
    "Each Gatehouse daemon runs in a throwaway GATEHOUSE_HOME with a registered client token, and with no reachable Secret Service (DBUS_SESSION_BUS_ADDRESS points nowhere), so that it never writes a device key into the user's keychain; audit checkpoint signing then waits, and calls are audited as usual (durable audit on, `process-crash`).",
  );
  results.durationS = (performance.now() - t0) / 1000;
  results.machine.loadAverageEnd = loadavg();
  const report = renderReport(results);
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, 'report.md'), report);
  process.stdout.write(report);
  log(`done in ${results.durationS.toFixed(0)} s; wrote ${join(outDir, 'results.json')} and ${join(outDir, 'report.md')}`);
  if (values.compare) return compareStep(results, baselineFile, outDir);
  return 0;
}

/** The comparison step: every figure of the baseline that this run also has; exit 1 on a regression over 20 %. */
function compareStep(current: RunResults, baselineFile: string, outDir: string): number {
  if (!existsSync(baselineFile)) {
    log(`no baseline at ${baselineFile}: nothing to compare with`);
    return 1;
  }
  const baseline = JSON.parse(readFileSync(baselineFile, 'utf8')) as RunResults;
  const comparison = compareRuns(baseline, current, 0.2);
  const text = renderComparison(comparison, baselineFile);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'compare.md'), text);
  process.stdout.write('\n' + text);
  const regressed = comparison.filter((c) => c.verdict === 'regressed');
  log(
    regressed.length
      ? `${regressed.length} figure(s) regressed by more than 20 %: ${regressed.map((r) => r.id).join(', ')}`
      : `no figure regressed by more than 20 % (${comparison.length} compared)`,
  );
  return regressed.length ? 1 : 0;
}

async function latencyPhase(targets: Target[], byId: Map<string, TargetResult>, settings: Settings): Promise<void> {
  log(`latency: ${targets.length} paths, ${settings.latencyCalls} calls each in ${settings.rounds} rounds ...`);
  const live: { target: Target; session: Session; samples: number[]; cpuMs: number }[] = [];
  try {
    for (const target of targets) {
      try {
        const session = await target.open();
        await sequential(session, settings.warmupCalls);
        live.push({ target, session, samples: [], cpuMs: 0 });
      } catch (error) {
        byId.get(target.id)!.latencyError = String(error);
        log(`  ${target.id}: ${String(error)}`);
      }
    }
    const perRound = Math.ceil(settings.latencyCalls / settings.rounds);
    for (let round = 0; round < settings.rounds; round++) {
      // Rotate the order each round, so that no path always runs first or last.
      const order = live.map((_, i) => live[(i + round) % live.length]!);
      for (const entry of order) {
        try {
          const cpu0 = sumCpuMs(entry.target.proxyPids());
          entry.samples.push(...(await sequential(entry.session, perRound)));
          entry.cpuMs += sumCpuMs(entry.target.proxyPids()) - cpu0;
        } catch (error) {
          byId.get(entry.target.id)!.latencyError = String(error);
        }
      }
      log(`  round ${round + 1}/${settings.rounds} done`);
    }
    for (const entry of live) {
      if (entry.samples.length) {
        byId.get(entry.target.id)!.latency = summarize(entry.samples);
        byId.get(entry.target.id)!.latencyProxyCpuUs = (entry.cpuMs / entry.samples.length) * 1000;
      }
      const l = byId.get(entry.target.id)!.latency;
      if (l) log(`  ${entry.target.id.padEnd(28)} p50 ${l.p50.toFixed(3)} ms  p99 ${l.p99.toFixed(3)} ms`);
    }
  } finally {
    await Promise.allSettled(live.map((e) => e.session.close()));
  }
}

function combine(passes: ThroughputResult[]): ThroughputResult {
  const calls = passes.reduce((a, p) => a + p.calls, 0);
  const seconds = passes.reduce((a, p) => a + p.seconds, 0);
  const weighted = (key: 'proxyCpuPerKCall' | 'upstreamCpuPerKCall' | 'clientCpuPerKCall') =>
    calls ? passes.reduce((a, p) => a + p[key] * p.calls, 0) / calls : Number.NaN;
  const firstError = passes.find((p) => p.firstError)?.firstError;
  return {
    clients: passes[0]?.clients ?? 0,
    seconds,
    calls,
    totalCalls: passes.reduce((a, p) => a + p.totalCalls, 0),
    errors: passes.reduce((a, p) => a + p.errors, 0),
    ...(firstError ? { firstError } : {}),
    callsPerSecond: calls / seconds,
    proxyCpuPerKCall: weighted('proxyCpuPerKCall'),
    upstreamCpuPerKCall: weighted('upstreamCpuPerKCall'),
    clientCpuPerKCall: weighted('clientCpuPerKCall'),
  };
}

async function throughputPhase(targets: Target[], byId: Map<string, TargetResult>, settings: Settings): Promise<void> {
  log(`throughput: ${targets.length} paths × ${settings.passes} pass(es) of ${settings.throughputMs} ms with ${settings.clients} clients ...`);
  const passes = new Map<string, ThroughputResult[]>();
  for (let pass = 0; pass < settings.passes; pass++) {
    const order = pass % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      const result = byId.get(target.id)!;
      if (result.throughputError) continue;
      let sessions: Session[] = [];
      try {
        sessions = await openSessions(target, settings.clients, target.endpoint === 'bridge' ? 4 : 16);
        const r = await closedLoop(target, sessions, { warmupMs: 500, durationMs: settings.throughputMs });
        passes.set(target.id, [...(passes.get(target.id) ?? []), r]);
        log(
          `  ${target.id.padEnd(28)} ${r.callsPerSecond.toFixed(0).padStart(6)} calls/s  gateway CPU ${r.proxyCpuPerKCall.toFixed(0)} ms/1k  errors ${r.errors}`,
        );
        if (r.firstError && r.errors) log(`    first error: ${r.firstError.slice(0, 300)}`);
      } catch (error) {
        result.throughputError = String(error);
        log(`  ${target.id}: ${String(error)}`);
      } finally {
        await Promise.allSettled(sessions.map((s) => s.close()));
      }
    }
  }
  for (const [id, list] of passes) {
    const r = byId.get(id)!;
    r.throughputPasses = list;
    r.throughput = combine(list);
  }
}

const hardStop = setTimeout(() => {
  log('the benchmark ran over its 40-minute limit; stopping');
  void stopAll().finally(() => process.exit(2));
}, 40 * 60_000);
hardStop.unref();

main()
  .then(async (code) => {
    await stopAll();
    process.exitCode = code;
  })
  .catch(async (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAll();
    process.exitCode = 1;
  });
