/**
 * Where the daemon's time goes on the hot path: `gatehouse daemon` under `node --cpu-prof`, one
 * daemon per run, while one client calls `echo` sequentially (the latency path) or 16 clients call
 * it in closed loops (the throughput path). Each profile is read back into self and inclusive time
 * per function.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeProfile, type ProfileSummary } from '../lib/cpuprofile.js';
import { fixtureServers, spawnDaemon } from '../lib/gatehouse.js';
import { closedLoop, sequential, type ThroughputResult } from '../lib/load.js';
import { cpuMs } from '../lib/proc.js';
import { gatehouseTargets, type Session } from '../lib/targets.js';

const WARMUP = 500;

export interface ProfileRequest {
  target: string;
  mode: 'sequential' | 'concurrent';
}

export interface ProfileRun extends ProfileRequest {
  file: string;
  /** Every call the profiled daemon served (warm-up included). */
  callsServed: number;
  /** Calls per second in the measured part, under the profiler. */
  callsPerSecond: number;
  /** The daemon's CPU per call in the measured part, under the profiler (µs). */
  daemonCpuUs: number;
  load?: ThroughputResult;
  summary: ProfileSummary;
}

export async function profileScenario(options: {
  outDir: string;
  runs: ProfileRequest[];
  clients: number;
  durationMs: number;
  sequentialCalls: number;
  log: (line: string) => void;
}): Promise<ProfileRun[]> {
  const out: ProfileRun[] = [];
  for (const request of options.runs) {
    const dir = join(options.outDir, `${request.target}-${request.mode}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const daemon = await spawnDaemon({ servers: fixtureServers(1), nodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500'] });
    let callsServed = 0;
    let callsPerSecond = 0;
    let daemonCpuUs = 0;
    let load: ThroughputResult | undefined;
    try {
      const target = gatehouseTargets(daemon).find((t) => t.id === request.target);
      if (!target) throw new Error(`no Gatehouse target ${request.target}`);
      const sessions: Session[] = [];
      try {
        const count = request.mode === 'sequential' ? 1 : options.clients;
        for (let i = 0; i < count; i++) sessions.push(await target.open());
        await sequential(sessions[0]!, WARMUP);
        if (request.mode === 'sequential') {
          const cpu0 = cpuMs(daemon.pid) ?? 0;
          const t0 = performance.now();
          await sequential(sessions[0]!, options.sequentialCalls);
          callsPerSecond = options.sequentialCalls / ((performance.now() - t0) / 1000);
          daemonCpuUs = (((cpuMs(daemon.pid) ?? 0) - cpu0) / options.sequentialCalls) * 1000;
          callsServed = WARMUP + options.sequentialCalls;
        } else {
          load = await closedLoop(target, sessions, { warmupMs: 500, durationMs: options.durationMs });
          callsPerSecond = load.callsPerSecond;
          daemonCpuUs = load.proxyCpuPerKCall;
          callsServed = WARMUP + load.totalCalls;
        }
      } finally {
        await Promise.all(sessions.map((s) => s.close()));
      }
    } finally {
      await daemon.stop();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the daemon wrote no .cpuprofile into ${dir} (it must exit cleanly on SIGTERM for --cpu-prof to write one)`);
    const summary = summarizeProfile(join(dir, file));
    options.log(`  ${request.target} ${request.mode}: ${callsPerSecond.toFixed(0)} calls/s under the profiler; ${join(dir, file)}`);
    out.push({ ...request, file: join(dir, file), callsServed, callsPerSecond, daemonCpuUs, ...(load ? { load } : {}), summary });
  }
  return out;
}
