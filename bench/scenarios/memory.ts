/**
 * The daemon's resident memory with the default servers (`memory` and `files`, as a first start
 * writes them): idle after start-up, at its peak during a load window (clients on the socket and on
 * HTTP in both eras calling a cheap tool of each server), and idle again once every client has
 * closed. The daemon alone is measured, not its servers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServersInput } from '../lib/gatehouse.js';
import { REPO, spawnDaemon } from '../lib/gatehouse.js';
import { openSessions, sequential } from '../lib/load.js';
import { memoryMap, sleep, type MemoryMap } from '../lib/proc.js';
import { gatehouseTargets, type Session } from '../lib/targets.js';

export interface MemoryResult {
  /** The default configuration's servers, by name. */
  servers: string[];
  idleMs: number;
  loadMs: number;
  clients: { socket: number; httpLegacy: number; httpModern: number };
  /** After start-up and `idleMs` of rest. */
  idleRssMb?: number;
  /** The highest RSS seen during the load window (sampled every 250 ms). */
  peakRssMb?: number;
  /** After the load, every client closed, and `idleMs` of rest. */
  afterLoadRssMb?: number;
  calls: number;
  errors: number;
  firstError?: string;
  /** Client sessions the daemon still held after every client closed. */
  sessionsLeft?: number;
  /** V8's young generation after the load, and the heap in use then (from `gatehouse status`), MB. */
  youngGenerationMb?: number;
  heapUsedMb?: number;
  /** Where the resident memory is at the two idle moments: by kind of mapping, and V8's heap as the daemon reports it. */
  idleBreakdown?: MemoryBreakdown;
  afterLoadBreakdown?: MemoryBreakdown;
  error?: string;
}

export interface MemoryBreakdown extends MemoryMap {
  /** V8's heap: committed, in use, and its young generation (from `gatehouse status`), MB. */
  heapTotalMb?: number;
  heapUsedMb?: number;
  youngGenerationMb?: number;
}

/** The daemon's mappings and its own heap figures, read together. */
async function breakdown(daemon: {
  pid: number;
  status(): Promise<{ memory?: { heapTotalMb: number; heapUsedMb: number; youngGenerationMb: number } }>;
}): Promise<MemoryBreakdown | undefined> {
  const map = memoryMap(daemon.pid);
  if (!map) return undefined;
  const memory = (await daemon.status()).memory;
  return { ...map, ...(memory ? { heapTotalMb: memory.heapTotalMb, heapUsedMb: memory.heapUsedMb, youngGenerationMb: memory.youngGenerationMb } : {}) };
}

function defaultServers(): ServersInput {
  const config = JSON.parse(readFileSync(join(REPO, 'resources', 'default-config.json'), 'utf8')) as { servers: ServersInput };
  return config.servers;
}

export async function memoryScenario(options: { idleMs: number; loadMs: number; clients: number; log: (line: string) => void }): Promise<MemoryResult> {
  const servers = defaultServers();
  const result: MemoryResult = {
    servers: Object.keys(servers),
    idleMs: options.idleMs,
    loadMs: options.loadMs,
    clients: { socket: options.clients, httpLegacy: options.clients, httpModern: options.clients },
    calls: 0,
    errors: 0,
  };
  const daemon = await spawnDaemon({ servers });
  try {
    await sleep(options.idleMs);
    result.idleRssMb = daemon.rssMb();
    result.idleBreakdown = await breakdown(daemon);
    options.log(`  default servers (${result.servers.join(', ')}): ${result.idleRssMb?.toFixed(1)} MB idle after start-up`);
    const targets = gatehouseTargets(daemon);
    const pick = (id: string) => targets.find((t) => t.id === id)!;
    const sessions: Session[] = [];
    try {
      sessions.push(...(await openSessions(pick('gatehouse-socket-legacy'), options.clients)));
      sessions.push(...(await openSessions(pick('gatehouse-http-legacy'), options.clients)));
      sessions.push(...(await openSessions(pick('gatehouse-http-modern'), options.clients)));
      const tools: [string, Record<string, unknown>][] = [
        ['files__list_allowed_directories', {}],
        ['memory__read_graph', {}],
      ];
      let running = true;
      let peak = daemon.rssMb() ?? 0;
      const sampler = setInterval(() => (peak = Math.max(peak, daemon.rssMb() ?? 0)), 250);
      const loops = sessions.map(async (session, i) => {
        for (let n = i; running; n++) {
          const [tool, args] = tools[n % tools.length]!;
          try {
            await session.call(tool, args);
            result.calls++;
          } catch (error) {
            result.errors++;
            result.firstError ??= String(error).slice(0, 300);
            await sleep(10);
          }
        }
      });
      await sleep(options.loadMs);
      running = false;
      await Promise.all(loops);
      clearInterval(sampler);
      result.peakRssMb = peak;
      // One more sequential call on the socket, so that the window ends the way a person's work does.
      await sequential(sessions[0]!, 1, ['files__list_allowed_directories']).catch(() => undefined);
    } finally {
      await Promise.allSettled(sessions.map((s) => s.close()));
    }
    await sleep(options.idleMs);
    result.afterLoadRssMb = daemon.rssMb();
    result.afterLoadBreakdown = await breakdown(daemon);
    const status = await daemon.status();
    result.sessionsLeft = status.clients.length;
    result.youngGenerationMb = status.memory?.youngGenerationMb;
    result.heapUsedMb = status.memory?.heapUsedMb;
    options.log(
      `  peak ${result.peakRssMb?.toFixed(1)} MB during ${result.calls} calls (${result.errors} errors); ${result.afterLoadRssMb?.toFixed(1)} MB idle after, ${result.sessionsLeft} sessions left`,
    );
  } catch (error) {
    result.error = String(error).slice(0, 500);
  } finally {
    await daemon.stop();
  }
  return result;
}
