/** The two load shapes: sequential calls for latency, and N concurrent callers for throughput. */
import type { Session, Target } from './targets.js';
import { sumCpuMs } from './proc.js';
import { summarize, type Summary } from './stats.js';

/** `n` sequential calls; returns each call's round trip in ms. `tools` spreads them over several tools in turn. */
export async function sequential(session: Session, n: number, tools?: string[]): Promise<number[]> {
  const samples = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await session.call(tools ? tools[i % tools.length] : undefined);
    samples[i] = performance.now() - t0;
  }
  return samples;
}

export interface ThroughputResult {
  clients: number;
  seconds: number;
  calls: number;
  /** Calls completed in the warm-up and the measured window together. */
  totalCalls: number;
  errors: number;
  firstError?: string;
  callsPerSecond: number;
  /** CPU ms per 1,000 calls, by role. */
  proxyCpuPerKCall: number;
  upstreamCpuPerKCall: number;
  clientCpuPerKCall: number;
  /** Each measured call's round trip under this load (with `latency: true`). */
  latency?: Summary;
}

export interface ClosedLoopOptions {
  warmupMs: number;
  durationMs: number;
  maxCalls?: number;
  /** Keep each measured call's round trip. */
  latency?: boolean;
  /** Tools to call in turn (each caller starts at its own offset); default the session's echo. */
  tools?: string[];
}

/**
 * One caller per session in a closed loop (each awaits its answer, then calls again) for `warmupMs`
 * unmeasured, then `durationMs` measured. Bounded by time and by `maxCalls`.
 */
export async function closedLoop(target: Target, sessions: Session[], options: ClosedLoopOptions): Promise<ThroughputResult> {
  const maxCalls = options.maxCalls ?? 2_000_000;
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let calls = 0;
  let total = 0;
  let errors = 0;
  let firstError: string | undefined;
  const samples: number[] = [];
  const loop = async (session: Session, index: number): Promise<void> => {
    let turn = index;
    while (phase !== 'stop' && calls < maxCalls) {
      const t0 = performance.now();
      try {
        await session.call(options.tools ? options.tools[turn++ % options.tools.length] : undefined);
        total++;
        if (phase === 'measure') {
          calls++;
          if (options.latency) samples.push(performance.now() - t0);
        }
      } catch (error) {
        if (phase === 'measure') errors++;
        firstError ??= String(error);
        if (errors > 1000) return;
        // A refused or broken session: do not spin on it.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  const loops = sessions.map(loop);
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
  const proxy0 = sumCpuMs(target.proxyPids());
  const upstream0 = sumCpuMs(target.upstreamPids());
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  calls = 0;
  phase = 'measure';
  await new Promise((resolve) => setTimeout(resolve, options.durationMs));
  const measured = calls;
  const seconds = (performance.now() - t0) / 1000;
  const proxyCpu = sumCpuMs(target.proxyPids()) - proxy0;
  const upstreamCpu = sumCpuMs(target.upstreamPids()) - upstream0;
  const clientUsage = process.cpuUsage(client0);
  phase = 'stop';
  await Promise.all(loops);
  const per = (cpu: number) => (measured > 0 ? (cpu / measured) * 1000 : Number.NaN);
  return {
    clients: sessions.length,
    seconds,
    calls: measured,
    totalCalls: total,
    errors,
    ...(firstError ? { firstError } : {}),
    callsPerSecond: measured / seconds,
    proxyCpuPerKCall: per(proxyCpu),
    upstreamCpuPerKCall: per(upstreamCpu),
    clientCpuPerKCall: per((clientUsage.user + clientUsage.system) / 1000),
    ...(options.latency && samples.length ? { latency: summarize(samples) } : {}),
  };
}

/** Opens `count` sessions, `parallel` at a time; closes what it opened if one fails. */
export async function openSessions(target: Target, count: number, parallel = 16): Promise<Session[]> {
  const sessions: Session[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(parallel, count - i) }, () => target.open()));
    for (const b of batch) if (b.status === 'fulfilled') sessions.push(b.value);
    const failed = batch.find((b) => b.status === 'rejected');
    if (failed) {
      await Promise.allSettled(sessions.map((s) => s.close()));
      throw (failed as PromiseRejectedResult).reason;
    }
  }
  return sessions;
}
