/**
 * The audit issue's figures (BRIEF §11 and the "Proof"):
 *
 * - local append with the hash chain, through `SqliteAuditStore` exactly as the daemon uses it
 *   (seal, queue, one transaction per tick), in both durability modes; target 20,000 events/s;
 * - filter queries over 1,000,000 local events (by user, by server and tool, by decision, by time
 *   window, newest 100 each); target under 50 ms;
 * - hub ingest: several devices posting signed 1,000-event batches at once to a hub over a
 *   throwaway PostgreSQL (started here unless `databaseUrl` is given); target 10,000 events/s.
 *
 * `auditBench()` returns the figures; bench/run.ts decides how to print them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadDeviceKey } from '../src/core/audit/device-key.js';
import type { AuditRecord } from '../src/core/ports.js';
import { MemorySecretStore } from '../src/core/secrets.js';
import { sha256Hex, startHub } from '../src/hub/server.js';
import { HubClient } from '../src/node/audit/hub-client.js';
import type { Durability } from '../src/node/audit/schema.js';
import { SqliteAuditStore } from '../src/node/audit/sqlite-store.js';
import { freePort } from './lib/proc.js';

export interface AuditBenchOptions {
  /** Events appended per durability mode (default 200,000). */
  appendEvents?: number;
  /** Events in the query benchmark's log (default 1,000,000). */
  queryEvents?: number;
  /** Devices posting at once, and events per device (default 4 × 25,000). */
  hubDevices?: number;
  hubEventsPerDevice?: number;
  /** An empty PostgreSQL database for the hub; a throwaway cluster is started when absent. */
  databaseUrl?: string;
}

export interface AuditBenchResult {
  append: { durability: Durability; events: number; eventsPerSecond: number }[];
  query: { events: number; queries: { name: string; ms: number; rows: number }[] };
  hubIngest: { devices: number; events: number; batchSize: number; eventsPerSecond: number } | { skipped: string };
  targets: { appendPerSecond: 20_000; queryMs: 50; hubIngestPerSecond: 10_000 };
}

function record(i: number): AuditRecord {
  const outcome = i % 2 === 1;
  return {
    type: outcome ? 'call.outcome' : 'call.attempt',
    at: new Date(Date.UTC(2026, 0, 1) + i * 50).toISOString(),
    callId: `00000000-0000-4000-8000-${String(i >> 1).padStart(12, '0')}`,
    user: `os:user${i % 50}`,
    client: ['cursor', 'claude-code', 'vscode', 'agent'][i % 4]!,
    clientVerified: true,
    server: `server${i % 20}`,
    kind: 'tool',
    name: `tool${i % 30}`,
    argsShape: { path: 'string', limit: 'number' },
    argsDigest: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    ...(outcome
      ? {
          decision: i % 97 === 1 ? 'denied' : 'ok',
          latencyMs: 3,
          policyMode: 'unmanaged',
          resultDigest: 'sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae',
        }
      : {}),
  } as AuditRecord;
}

async function appendRate(durability: Durability, events: number): Promise<{ durability: Durability; events: number; eventsPerSecond: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-audit-'));
  const store = new SqliteAuditStore({ file: join(dir, 'audit.db'), durability });
  try {
    const t0 = performance.now();
    // Bursts of 64 per tick: many calls in flight, each appending and waiting for durability.
    for (let i = 0; i < events; i += 64) {
      for (let j = i; j < Math.min(events, i + 64); j++) store.append(record(j));
      await store.durable();
    }
    return { durability, events, eventsPerSecond: Math.round(events / ((performance.now() - t0) / 1000)) };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function queryTimes(events: number): Promise<AuditBenchResult['query']> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-audit-q-'));
  const store = new SqliteAuditStore({ file: join(dir, 'audit.db'), batchMax: 20_000 });
  try {
    for (let i = 0; i < events; i += 20_000) {
      for (let j = i; j < Math.min(events, i + 20_000); j++) store.append(record(j));
      await store.durable();
    }
    const mid = new Date(Date.UTC(2026, 0, 1) + (events / 2) * 50).toISOString();
    const end = new Date(Date.UTC(2026, 0, 1) + (events / 2 + 2000) * 50).toISOString();
    const cases = [
      { name: 'user', filter: { user: 'os:user7' } },
      { name: 'server + tool', filter: { server: 'server3', tool: 'tool13' } },
      { name: 'decision = denied', filter: { decision: 'denied' as const } },
      { name: 'one user, denied', filter: { user: 'os:user1', decision: 'denied' as const } },
      { name: '100 s time window', filter: { from: mid, to: end } },
      { name: 'client, next page', filter: { client: 'agent', afterSeq: Math.floor(events / 3) } },
    ];
    const queries = cases.map(({ name, filter }) => {
      store.query({ ...filter, limit: 100 }); // warm the page cache once
      const t = performance.now();
      const rows = store.query({ ...filter, limit: 100 }).length;
      return { name, ms: Number((performance.now() - t).toFixed(2)), rows };
    });
    return { events, queries };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function hubIngest(devices: number, perDevice: number, databaseUrl: string | undefined): Promise<AuditBenchResult['hubIngest']> {
  let cluster: { url: string; stop(): Promise<void> } | undefined;
  if (!databaseUrl) {
    try {
      cluster = await throwawayPostgres();
    } catch (error) {
      return { skipped: `no PostgreSQL to run against: ${(error as Error).message}` };
    }
    databaseUrl = cluster.url;
  }
  const secret = 'bench-enrolment-secret';
  const hub = await startHub(
    { databaseUrl, host: '127.0.0.1', port: 0, adminTokenHashes: [], enrolmentSecretHashes: [sha256Hex(secret)] },
    { log: () => undefined },
  );
  const dirs: string[] = [];
  const stores: SqliteAuditStore[] = [];
  try {
    const batchSize = 1000;
    const senders = [];
    for (let d = 0; d < devices; d++) {
      const dir = mkdtempSync(join(tmpdir(), 'gh-bench-hub-'));
      dirs.push(dir);
      const store = new SqliteAuditStore({ file: join(dir, 'audit.db'), batchMax: 20_000 });
      stores.push(store);
      for (let i = 0; i < perDevice; i++) store.append(record(i));
      await store.durable();
      const key = await loadDeviceKey(new MemorySecretStore(), store.device, { create: true });
      const client = new HubClient({ url: hub.url, key, timeoutMs: 60_000 });
      await client.enrol(secret);
      const batches = [];
      for (let after = 0; after < perDevice; after += batchSize) batches.push({ device: store.device, ...store.readBatch(after, batchSize) });
      senders.push({ client, batches });
    }
    const t0 = performance.now();
    await Promise.all(
      senders.map(async ({ client, batches }) => {
        for (const b of batches) await client.sendBatch(b);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { devices, events: devices * perDevice, batchSize, eventsPerSecond: Math.round((devices * perDevice) / seconds) };
  } finally {
    for (const s of stores) s.close();
    await hub.close();
    await cluster?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** initdb + postgres on a free loopback port in a temp dir, as the postgres user when run as root. */
async function throwawayPostgres(): Promise<{ url: string; stop(): Promise<void> }> {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a))[0] : undefined;
  if (!version) throw new Error('PostgreSQL is not installed');
  const bin = join(root, version, 'bin');
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-pg-'));
  let user: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    user = {
      uid: Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout),
      gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout),
    };
    chownSync(dir, user.uid, user.gid);
  }
  const data = join(dir, 'data');
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], {
    ...(user ?? {}),
    cwd: dir,
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  // Durable settings, as a production hub would run (fsync on).
  const child: ChildProcess = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'], {
    ...(user ?? {}),
    cwd: dir,
    stdio: 'ignore',
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.end();
      break;
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGINT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function auditBench(options: AuditBenchOptions = {}): Promise<AuditBenchResult> {
  const appendEvents = options.appendEvents ?? 200_000;
  return {
    append: [await appendRate('process-crash', appendEvents), await appendRate('power-loss', appendEvents)],
    // queryEvents 0: the queries are measured by bench/scenarios/auditscale.ts instead (at 10k, 1M and 10M events).
    query: options.queryEvents === 0 ? { events: 0, queries: [] } : await queryTimes(options.queryEvents ?? 1_000_000),
    hubIngest: await hubIngest(options.hubDevices ?? 4, options.hubEventsPerDevice ?? 25_000, options.databaseUrl),
    targets: { appendPerSecond: 20_000, queryMs: 50, hubIngestPerSecond: 10_000 },
  };
}
