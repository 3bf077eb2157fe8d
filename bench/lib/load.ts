/** The two load shapes: sequential calls for latency, and N concurrent callers for throughput. */
import type { Session, Target } from './targets.js';
import { sumCpuMs } from './proc.js';

const ARGS = { text: 'hello from the gatehouse benchmark' };

export async function callOnce(session: Session): Promise<void> {
  const result = await session.client.callTool({ name: session.tool, arguments: ARGS });
  if ((result as { isError?: boolean }).isError) throw new Error(`echo answered with an error: ${JSON.stringify(result).slice(0, 300)}`);
}

/** `n` sequential calls; returns each call's round trip in ms. */
export async function sequential(session: Session, n: number): Promise<number[]> {
  const samples = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await callOnce(session);
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
}

/**
 * `clients` callers in closed loops (each awaits its answer, then calls again) for `warmupMs`
 * unmeasured, then `durationMs` measured. Bounded by time and by `maxCalls`.
 */
export async function closedLoop(target: Target, sessions: Session[], warmupMs: number, durationMs: number, maxCalls = 2_000_000): Promise<ThroughputResult> {
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let calls = 0;
  let total = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async (session: Session): Promise<void> => {
    while (phase !== 'stop' && calls < maxCalls) {
      try {
        await callOnce(session);
        total++;
        if (phase === 'measure') calls++;
      } catch (error) {
        if (phase === 'measure') errors++;
        firstError ??= String(error);
        if (errors > 1000) return;
      }
    }
  };
  const loops = sessions.map(loop);
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  const proxy0 = sumCpuMs(target.proxyPids());
  const upstream0 = sumCpuMs(target.upstreamPids());
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  calls = 0;
  phase = 'measure';
  await new Promise((resolve) => setTimeout(resolve, durationMs));
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
  };
}
