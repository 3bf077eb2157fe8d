/**
 * Core ready time with 10 servers configured: `startDaemon` in this process, from the call to every
 * server ready; and `gatehouse daemon` as a child, from spawn to every server ready (adds Node's own
 * start-up and module loading), with its resident memory once idle.
 */
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { startDaemon } from '../../src/node/daemon.js';
import { FIXTURE, fixtureServers, makeHome, spawnDaemon } from '../lib/gatehouse.js';
import { sleep } from '../lib/proc.js';

export interface ReadyResult {
  servers: number;
  /** The floor: this many SDK clients spawning the fixture in parallel, each connected and its tools listed (ms). */
  directMs: number[];
  /** startDaemon() call → resolved with every server ready, per repetition (ms). */
  inProcessMs: number[];
  inProcessError?: string;
  /** spawn → every server ready, for `gatehouse daemon` (ms). */
  spawnedMs?: number;
  /** RSS of that daemon after `idleMs` of rest (MB). */
  idleRssMb?: number;
  idleMs: number;
  spawnedError?: string;
}

export async function readyScenario(options: { servers: number; reps: number; idleMs: number; log: (line: string) => void }): Promise<ReadyResult> {
  const { servers, reps, idleMs, log } = options;
  const result: ReadyResult = { servers, directMs: [], inProcessMs: [], idleMs };
  for (let rep = 0; rep < reps; rep++) {
    const clients: Client[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: servers }, async () => {
        const client = new Client({ name: 'gatehouse-bench', version: '1.0.0' });
        clients.push(client);
        await client.connect(new StdioClientTransport({ command: process.execPath, args: [FIXTURE], stderr: 'ignore' }));
        await client.listTools();
      }),
    );
    result.directMs.push(performance.now() - t0);
    await Promise.all(clients.map((c) => c.close()));
    log(`  ${servers} fixtures spawned and connected directly, in parallel: ${result.directMs.at(-1)!.toFixed(0)} ms`);
  }
  for (let rep = 0; rep < reps; rep++) {
    const home = makeHome(fixtureServers(servers));
    try {
      const t0 = performance.now();
      // An in-memory keychain, as the tests use: a benchmark never touches the user's keychain.
      const daemon = await startDaemon({ paths: home.paths, env: home.env, logger: { log: () => undefined }, secrets: new MemorySecretStore() });
      const elapsed = performance.now() - t0;
      const states = daemon.status().servers.map((s) => s.state);
      await daemon.stop();
      if (states.length !== servers || states.some((s) => s !== 'ready')) throw new Error(`not all servers were ready when startDaemon resolved: ${states.join(', ')}`);
      result.inProcessMs.push(elapsed);
      log(`  startDaemon with ${servers} servers: ${elapsed.toFixed(0)} ms`);
    } catch (error) {
      result.inProcessError = String(error);
      break;
    } finally {
      home.remove();
    }
  }
  try {
    const daemon = await spawnDaemon({ servers: fixtureServers(servers) });
    result.spawnedMs = daemon.readyMs;
    await sleep(idleMs);
    result.idleRssMb = daemon.rssMb();
    log(`  gatehouse daemon with ${servers} servers: ready ${daemon.readyMs.toFixed(0)} ms after spawn, ${result.idleRssMb?.toFixed(1)} MB RSS idle`);
    await daemon.stop();
  } catch (error) {
    result.spawnedError = String(error);
  }
  return result;
}
