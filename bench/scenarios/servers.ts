/**
 * Cost curves against the number of servers: for 1, 10 and 50 fixture servers, how long the daemon
 * takes until every one is ready (in process from the `startDaemon` call, and as `gatehouse daemon`
 * from its spawn), beside the floor (the same fixtures spawned and connected by SDK clients in
 * parallel); its resident memory once idle; and the latency and throughput of calls spread over all
 * the servers through the aggregate.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { startDaemon } from '../../src/node/daemon.js';
import { FIXTURE, fixtureServers, makeHome, spawnDaemon } from '../lib/gatehouse.js';
import { closedLoop, openSessions, sequential, type ThroughputResult } from '../lib/load.js';
import { sleep } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';
import { gatehouseTargets } from '../lib/targets.js';

export interface ServersPoint {
  servers: number;
  /** The floor: this many fixtures spawned, connected and listed by SDK v1 clients in parallel (ms). */
  floorMs?: number;
  /** `startDaemon()` call → resolved with every server ready (ms), per repetition. */
  inProcessMs: number[];
  /** `gatehouse daemon` spawn → every server ready (ms); includes Node's start-up and module loading. */
  spawnedMs?: number;
  /** Server restarts before all were ready, and why. */
  restarts?: number;
  restartErrors?: string[];
  idleRssMb?: number;
  /** One client, sequential calls spread over every server's echo. */
  latency?: Summary;
  /** 16 clients, calls spread over every server. */
  throughput?: ThroughputResult;
  error?: string;
}

async function floor(count: number): Promise<number> {
  const clients: Client[] = [];
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: count }, async () => {
        const client = new Client({ name: 'gatehouse-bench', version: '1.0.0' });
        clients.push(client);
        await client.connect(new StdioClientTransport({ command: process.execPath, args: [FIXTURE], stderr: 'ignore' }));
        await client.listTools();
      }),
    );
    return performance.now() - t0;
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}

export async function serversScenario(options: {
  counts: number[];
  reps: number;
  calls: number;
  clients: number;
  durationMs: number;
  idleMs: number;
  log: (line: string) => void;
}): Promise<ServersPoint[]> {
  const out: ServersPoint[] = [];
  for (const servers of options.counts) {
    const point: ServersPoint = { servers, inProcessMs: [] };
    out.push(point);
    try {
      point.floorMs = await floor(servers);
      options.log(`  ${servers} fixtures spawned and connected directly, in parallel: ${point.floorMs.toFixed(0)} ms`);
      for (let rep = 0; rep < options.reps; rep++) {
        const home = makeHome(fixtureServers(servers));
        try {
          const t0 = performance.now();
          // An in-memory keychain, as the tests use: a benchmark never touches the user's keychain.
          const daemon = await startDaemon({ paths: home.paths, env: home.env, logger: { log: () => undefined }, secrets: new MemorySecretStore() });
          const elapsed = performance.now() - t0;
          const states = daemon.status().servers.map((s) => s.state);
          await daemon.stop();
          if (states.length !== servers || states.some((s) => s !== 'ready'))
            throw new Error(`not all servers were ready when startDaemon resolved: ${states.join(', ')}`);
          point.inProcessMs.push(elapsed);
        } finally {
          home.remove();
        }
      }
      options.log(`  startDaemon with ${servers} servers: ${point.inProcessMs.map((v) => v.toFixed(0)).join(', ')} ms`);
      const daemon = await spawnDaemon({ servers: fixtureServers(servers), readyTimeoutMs: 120_000 });
      try {
        point.spawnedMs = daemon.readyMs;
        point.restarts = daemon.startRestarts;
        point.restartErrors = daemon.startErrors.slice(0, 3);
        await sleep(options.idleMs);
        point.idleRssMb = daemon.rssMb();
        const target = gatehouseTargets(daemon).find((t) => t.id === 'gatehouse-socket-legacy')!;
        const sessions = await openSessions(target, options.clients);
        try {
          const tools = sessions[0]!.tools.filter((name) => name.endsWith('__echo'));
          await sequential(sessions[0]!, Math.min(200, options.calls), tools);
          point.latency = summarize(await sequential(sessions[0]!, options.calls, tools));
          point.throughput = await closedLoop(target, sessions, { warmupMs: 300, durationMs: options.durationMs, tools });
        } finally {
          await Promise.allSettled(sessions.map((s) => s.close()));
        }
        options.log(
          `  gatehouse daemon with ${servers} servers: ready ${daemon.readyMs.toFixed(0)} ms after spawn (${daemon.startRestarts} restarts), ${point.idleRssMb?.toFixed(1)} MB idle, ` +
            `p50 ${point.latency.p50.toFixed(3)} ms, ${point.throughput.callsPerSecond.toFixed(0)} calls/s over ${options.clients} clients`,
        );
      } finally {
        await daemon.stop();
      }
    } catch (error) {
      point.error = String(error).slice(0, 500);
      options.log(`  ${servers} servers: ${point.error}`);
    }
  }
  return out;
}
