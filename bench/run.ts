/**
 * `npm run bench`: Gatehouse against the same fixture called directly and through the peer
 * gateways, side by side in one run on one machine. Writes dist/bench/results.json and
 * dist/bench/report.md, and prints the report.
 *
 *   node dist/bench/run.js [--quick] [--profile] [--only latency,throughput,catalog,search,ready,audit,profile]
 *                          [--targets id,id] [--no-peers] [--peers DIR] [--out DIR]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fixtureServers, REPO, spawnDaemon, type RunningDaemon } from './lib/gatehouse.js';
import { closedLoop, sequential, type ThroughputResult } from './lib/load.js';
import { findPeer, startPeer, type PeerName, type RunningPeer } from './lib/peers.js';
import { rssMb, sleep, stopAll, sumCpuMs } from './lib/proc.js';
import { renderReport } from './lib/report.js';
import type { HostResult, Machine, RunResults, Settings, TargetResult } from './lib/results.js';
import { summarize } from './lib/stats.js';
import { directTarget, gatehouseTargets, peerTargets, type Session, type Target } from './lib/targets.js';
import { auditBench } from './audit.js';
import { policyScenario } from './policy.js';
import { quotaStageBench } from './approvals.js';
import { auditScenario } from './scenarios/audit.js';
import { catalogScenario } from './scenarios/catalog.js';
import { inProcessScenario } from './scenarios/inprocess.js';
import { profileScenario } from './scenarios/profile.js';
import { readyScenario } from './scenarios/ready.js';
import { searchScenario } from './scenarios/search.js';

const PHASES = ['latency', 'throughput', 'inprocess', 'catalog', 'search', 'policy', 'quota', 'ready', 'audit', 'profile'] as const;
type Phase = (typeof PHASES)[number];
const PEERS: PeerName[] = ['supergateway', 'mcp-proxy', 'mcp-hub'];

const USAGE = `Usage: node dist/bench/run.js [options]
  --quick            a short run (about a minute): fewer calls, shorter windows
  --profile          also profile the daemon under load (node --cpu-prof) and summarise the hot path
  --only LIST        phases to run, comma-separated: ${PHASES.join(',')}
  --targets LIST     only these call paths (ids as in results.json; baselines are always kept)
  --no-peers         skip supergateway, mcp-proxy and mcp-hub
  --peers DIR        a folder whose node_modules/ holds the peers (default: the repository's)
  --out DIR          where results.json, report.md and profiles go (default: dist/bench)`;

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function machine(): Machine {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux.
  }
  return { nproc: cpus().length, cpuModel, memoryGb: totalmem() / 1024 ** 3, node: process.version, os: `${osType()} ${release()}`, loadAverage: loadavg() };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      only: { type: 'string' },
      targets: { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
      peers: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const quick = values.quick ?? false;
  const phases = new Set<Phase>(values.only ? (values.only.split(',').map((p) => p.trim()) as Phase[]) : PHASES.filter((p) => p !== 'profile'));
  if (values.profile) phases.add('profile');
  for (const p of phases) if (!PHASES.includes(p)) throw new Error(`unknown phase "${p}"; phases are ${PHASES.join(', ')}`);
  const outDir = values.out ?? join(REPO, 'dist', 'bench');
  mkdirSync(outDir, { recursive: true });
  const peersDir = values.peers ?? process.env.GATEHOUSE_BENCH_PEERS;

  const settings: Settings = quick
    ? { quick, latencyCalls: 400, warmupCalls: 100, rounds: 2, clients: 16, throughputMs: 1500, passes: 1, catalogServers: 50, catalogTools: 100 }
    : { quick, latencyCalls: 2000, warmupCalls: 300, rounds: 4, clients: 16, throughputMs: 2500, passes: 2, catalogServers: 50, catalogTools: 100 };
  const results: RunResults = { startedAt: new Date().toISOString(), machine: machine(), settings, hosts: [], targets: [], notes: [] };
  const t0 = performance.now();
  log(`${results.machine.nproc} × ${results.machine.cpuModel}, Node ${results.machine.node}${quick ? ' (quick run)' : ''}`);

  // --- Per-call paths: latency and throughput, every host running side by side. ----------------
  if (phases.has('latency') || phases.has('throughput')) await guarded(results, 'latency/throughput', async () => {
    let daemon: RunningDaemon | undefined;
    const peers: RunningPeer[] = [];
    const hostPids: { result: HostResult; pid: number }[] = [];
    try {
      log('starting gatehouse daemon with the fixture ...');
      daemon = await spawnDaemon({ servers: fixtureServers(1) });
      const gh: HostResult = { name: 'gatehouse daemon', readyMs: daemon.readyMs };
      results.hosts.push(gh);
      hostPids.push({ result: gh, pid: daemon.pid });
      if (!values['no-peers']) {
        for (const name of PEERS) {
          const found = findPeer(name, peersDir);
          if ('missing' in found) {
            results.hosts.push({ name, error: found.missing });
            log(`${name}: ${found.missing}`);
            continue;
          }
          try {
            log(`starting ${name} ${found.version} ...`);
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

      let targets: Target[] = [
        directTarget('legacy', false),
        directTarget('modern', false),
        directTarget('legacy', true),
        directTarget('modern', true),
        ...gatehouseTargets(daemon),
        ...peers.flatMap(peerTargets),
      ];
      if (values.targets) {
        const wanted = new Set(values.targets.split(','));
        targets = targets.filter((t) => t.kind === 'baseline' || wanted.has(t.id));
      }
      const byId = new Map<string, TargetResult>();
      for (const t of targets) {
        const r: TargetResult = { id: t.id, label: t.label, kind: t.kind, path: t.path, era: t.era };
        byId.set(t.id, r);
        results.targets.push(r);
      }

      if (phases.has('latency')) await latencyPhase(targets.filter((t) => t.latency !== false), byId, settings);
      if (phases.has('throughput')) await throughputPhase(targets.filter((t) => t.throughput !== false), byId, settings);
      await sleep(quick ? 1000 : 2000);
      for (const h of hostPids) h.result.rssAfterLoadMb = rssMb(h.pid);
      // Sessions whose clients have all closed: a 2025-era HTTP session ends only on DELETE or transport close.
      const left = (await daemon.status()).clients;
      if (left.length) {
        const http = left.filter((c) => c.transport === 'http').length;
        gh.notes = [...(gh.notes ?? []), `${left.length} client sessions still held after every client closed (${http} HTTP)`];
      }
    } finally {
      await Promise.allSettled(peers.map((p) => p.stop()));
      await daemon?.stop();
    }
  });

  if (phases.has('inprocess')) await guarded(results, 'inprocess', async () => {
    log('in-process cost of a governed call ...');
    results.inProcess = await inProcessScenario(quick ? 3_000 : 8_000);
    log(`  direct ${results.inProcess.directUs.toFixed(1)} µs, chain alone ${results.inProcess.chainUs.toFixed(1)} µs (${results.inProcess.chainNoAuditUs.toFixed(1)} µs without audit), through the gateway ${results.inProcess.gatewayUs.toFixed(1)} µs per call`);
  });
  if (phases.has('catalog')) await guarded(results, 'catalog', async () => {
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
  if (phases.has('search')) await guarded(results, 'search', async () => {
    log('tool search: recall on the labelled queries, tokens per view, find_tools over 5,000 tools ...');
    results.search = await searchScenario({ reps: quick ? 3 : 10, log });
  });
  if (phases.has('policy')) await guarded(results, 'policy', async () => {
    log('managed policy (Cedar) in process: decisions and filtered tools/list ...');
    results.policy = await policyScenario({ reps: quick ? 50 : 200, log });
  });
  if (phases.has('quota')) await guarded(results, 'quota', async () => {
    log('quota and approval stages in process: added cost per call ...');
    results.quota = await quotaStageBench({ calls: quick ? 5_000 : 20_000, log });
  });
  if (phases.has('ready')) await guarded(results, 'ready', async () => {
    log('ready time with 10 servers ...');
    results.ready = await readyScenario({ servers: 10, reps: quick ? 1 : 3, idleMs: quick ? 1000 : 2000, log });
  });
  if (phases.has('audit')) await guarded(results, 'audit', async () => {
    log('audit append rate ...');
    results.audit = await auditScenario(quick ? 20_000 : 100_000, 16, quick ? 2_000 : 5_000);
    for (const a of results.audit.runs) log(`  ${a.durability}, bursts of ${a.burst}: ${a.recordsPerSecond.toFixed(0)} records/s`);
    log('audit issue figures: append, queries over the local log, hub ingest into a throwaway PostgreSQL ...');
    results.auditBench = await auditBench(
      quick ? { appendEvents: 20_000, queryEvents: 100_000, hubDevices: 2, hubEventsPerDevice: 5_000 } : { appendEvents: 100_000, queryEvents: 1_000_000 },
    );
    const hub = results.auditBench.hubIngest;
    log(`  hub ingest: ${'skipped' in hub ? `skipped (${hub.skipped})` : `${hub.eventsPerSecond} events/s`}`);
  });
  if (phases.has('profile')) await guarded(results, 'profile', async () => {
    log('profiling the daemon under load ...');
    results.profiles = await profileScenario({
      outDir: join(outDir, 'profiles'),
      runs: [
        { target: 'gatehouse-socket-legacy', mode: 'sequential' },
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
    'Every path calls the same fixture (bench/fixtures/echo-server.mjs, SDK v2 low-level Server via serveStdio) with the same SDK v2 client (@modelcontextprotocol/client); added latency is measured against the direct stdio client of the same protocol era.',
    'Gatehouse speaks to the fixture in the 2026-07-28 era (its connector negotiates `auto`); mcp-proxy speaks 2025 upstream (its default), supergateway and mcp-hub 2025.',
    'supergateway runs with --stateful (its stateless mode spawns a fixture per request) and --logLevel none; with 16 clients it runs 16 fixture children, every other gateway one. mcp-hub serves the legacy SSE transport at /mcp.',
    'The load generator (all clients), the gateway and the fixture share the machine: calls/s is an end-to-end figure; "gateway CPU ms / 1k calls" (from /proc, utime+stime, 10 ms resolution) is the gateway process\'s own cost (for `gatehouse connect`, the daemon plus the 16 bridges).',
    'Each Gatehouse daemon runs in a throwaway GATEHOUSE_HOME with a registered client token, and with no reachable Secret Service (DBUS_SESSION_BUS_ADDRESS points nowhere), so that it never writes a device key into the user\'s keychain; audit checkpoint signing then waits, and calls are audited as usual.',
    'Peers are started with `node <their bin>`, each on a free 127.0.0.1 port; mcp-hub gets a throwaway HOME/XDG tree with its marketplace catalogue pre-seeded, so that it does not fetch it from the internet.',
  );
  results.durationS = (performance.now() - t0) / 1000;
  results.machine.loadAverageEnd = loadavg();
  const report = renderReport(results);
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, 'report.md'), report);
  process.stdout.write(report);
  log(`done in ${results.durationS.toFixed(0)} s; wrote ${join(outDir, 'results.json')} and ${join(outDir, 'report.md')}`);
  return 0;
}

/** Runs one phase; a phase that fails is reported in the notes, and the run goes on to the next. */
async function guarded(results: RunResults, name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.notes.push(`Phase ${name} failed: ${message.slice(0, 2000)}`);
    log(`phase ${name} failed: ${message}`);
  }
}

async function openAll(target: Target, count: number): Promise<Session[]> {
  const sessions: Session[] = [];
  try {
    for (let i = 0; i < count; i++) sessions.push(await target.open());
  } catch (error) {
    await Promise.allSettled(sessions.map((s) => s.close()));
    throw error;
  }
  return sessions;
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
  const weighted = (key: 'proxyCpuPerKCall' | 'upstreamCpuPerKCall' | 'clientCpuPerKCall') => (calls ? passes.reduce((a, p) => a + p[key] * p.calls, 0) / calls : Number.NaN);
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
        sessions = await openAll(target, settings.clients);
        const r = await closedLoop(target, sessions, 500, settings.throughputMs);
        passes.set(target.id, [...(passes.get(target.id) ?? []), r]);
        log(`  ${target.id.padEnd(28)} ${r.callsPerSecond.toFixed(0).padStart(6)} calls/s  gateway CPU ${r.proxyCpuPerKCall.toFixed(0)} ms/1k  errors ${r.errors}`);
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

const hardStop = setTimeout(
  () => {
    log('the benchmark ran over its 15-minute limit; stopping');
    void stopAll().finally(() => process.exit(2));
  },
  15 * 60_000,
);
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
