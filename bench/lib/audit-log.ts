/**
 * Large local audit logs for the query benchmarks, made fast and made real: every event is a call
 * record shaped like the ones the audit stage writes, sealed into the hash chain with the store's own
 * `sealEvent` (so `gatehouse audit verify` accepts the file), inserted in large transactions straight
 * into the store's schema (bypassing `append`'s per-tick batching, which exists for latency, not bulk),
 * then indexed by the store's own background pass. 10,000,000 events take about two minutes here.
 *
 * Logs are kept under a cache directory between runs, keyed by size and format, so that the 10M log
 * is made once per machine (`--fresh-audit` makes them again).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GENESIS_HASH, sealEvent, sha256Hex } from '../../src/core/audit/event.js';
import type { AuditRecord } from '../../src/core/ports.js';
import { indexPending, openForWriting, optimizeQueries, readMeta, SCHEMA_VERSION } from '../../src/node/audit/schema.js';

/** Bumped whenever the generated content changes, so that a cached log of another make is not reused. */
const FORMAT = 1;
export const START = Date.UTC(2026, 0, 1);
/** One event every 50 ms: 10M events span about 5.8 days. */
export const STEP_MS = 50;
export const USERS = 50;
export const SERVERS = 20;
export const TOOLS = 30;
export const CLIENTS = ['cursor', 'claude-code', 'vscode', 'agent'] as const;

/** Event `i` (0-based): attempts and outcomes alternate; one outcome in 97 is a denial; one event in 5,000 is a server state change. */
export function syntheticRecord(i: number): AuditRecord {
  const at = new Date(START + i * STEP_MS).toISOString();
  if (i % 5000 === 4999) return { type: 'server.state', at, server: `server${i % SERVERS}`, detail: { restarts: 0, state: 'ready' } };
  const outcome = i % 2 === 1;
  const base: AuditRecord = {
    type: outcome ? 'call.outcome' : 'call.attempt',
    at,
    callId: `00000000-0000-4000-8000-${String(i >> 1).padStart(12, '0')}`,
    user: `os:user${i % USERS}`,
    client: CLIENTS[i % CLIENTS.length]!,
    clientVerified: true,
    server: `server${i % SERVERS}`,
    kind: 'tool',
    name: `tool${i % TOOLS}`,
    argsShape: { limit: 'number', path: 'string' },
    argsDigest: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  };
  if (!outcome) return base;
  const denied = i % 97 === 1;
  return {
    ...base,
    policyMode: 'unmanaged',
    decision: denied ? 'denied' : 'ok',
    ...(denied
      ? { stage: 'policy', code: 'policy_denied', reason: 'not permitted' }
      : {
          resultDigest: 'sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae',
          resultShape: { content: [{ text: 'string', type: 'string' }] },
        }),
    latencyMs: 3,
  };
}

/**
 * The sealed event for record `i`, built with its keys already in canonical (sorted) order, so that
 * `JSON.stringify` writes the canonical body without the generic key sort: the same bytes as the
 * store's `sealEvent`, at a fraction of the cost. `auditLog` checks that they are the same bytes.
 */
function fastSeal(r: AuditRecord, link: { seq: number; id: string; device: string; prev: string }): { hash: string; body: string } {
  const ordered: Record<string, unknown> = {};
  const all = { ...r, v: 1, seq: link.seq, id: link.id, device: link.device, prev: link.prev } as Record<string, unknown>;
  for (const key of keyOrder(all)) ordered[key] = all[key];
  const body = JSON.stringify(ordered);
  return { hash: sha256Hex(body), body };
}

/** Sorted key lists, one per shape of record (a handful), computed once. */
const orders = new Map<string, string[]>();
function keyOrder(value: Record<string, unknown>): string[] {
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  const id = keys.join(',');
  let sorted = orders.get(id);
  if (!sorted) orders.set(id, (sorted = [...keys].sort()));
  return sorted;
}

export interface GeneratedLog {
  file: string;
  events: number;
  /** Time spent making it in this run (0 when it came from the cache). */
  generateMs: number;
  /** Of which the background index pass. */
  indexMs: number;
  cached: boolean;
}

/** A log of `events` events at `<dir>/audit-<events>.db`, made now or taken from an earlier run. */
export function auditLog(dir: string, events: number, options: { fresh?: boolean; log?: (line: string) => void } = {}): GeneratedLog {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `audit-${events}-f${FORMAT}-s${SCHEMA_VERSION}.db`);
  if (options.fresh) for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
  // A log cached by an older schema is migrated as a daemon would migrate a user's log, and renamed.
  for (let older = SCHEMA_VERSION - 1; older >= 2 && !options.fresh && !existsSync(file); older--) {
    const old = join(dir, `audit-${events}-f${FORMAT}-s${older}.db`);
    if (!existsSync(old)) continue;
    const t0 = performance.now();
    const db = openForWriting(old, 'process-crash');
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    options.log?.(`  audit log of ${events.toLocaleString('en-US')} events: schema ${older} migrated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const suffix of ['-wal', '-shm']) rmSync(old + suffix, { force: true });
    renameSync(old, file);
  }
  if (existsSync(file)) {
    // As the daemon's store keeps them: planner statistics, current (a no-op when they are).
    const db = openForWriting(file, 'process-crash');
    optimizeQueries(db);
    db.close();
    return { file, events, generateMs: 0, indexMs: 0, cached: true };
  }
  const partial = `${file}.partial`;
  for (const suffix of ['', '-wal', '-shm']) rmSync(partial + suffix, { force: true });
  const t0 = performance.now();
  const db = openForWriting(partial, 'process-crash');
  const device = readMeta(db).get('device')!;
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    'INSERT INTO events (seq, id, at, type, call_id, user, client, server, name, decision, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const setMeta = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  // Indexes are built once at the end (a sort), not row by row: the store's pass then finds them current.
  const indexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events_index' AND sql IS NOT NULL").all() as {
    name: string;
    sql: string;
  }[];
  for (const index of indexes) db.exec(`DROP INDEX ${index.name}`);
  let prev = GENESIS_HASH;
  const batch = 50_000;
  for (let start = 0; start < events; start += batch) {
    const end = Math.min(events, start + batch);
    db.transaction(() => {
      for (let i = start; i < end; i++) {
        const r = syntheticRecord(i);
        const link = { seq: i + 1, id: randomUUID(), device, prev };
        const sealed = fastSeal(r, link);
        // Nested values (shapes) are sorted by hand in syntheticRecord; the store's own sealing must agree.
        if (i < 100 || i % 100_003 === 0) {
          const reference = sealEvent(r, link);
          if (reference.body !== sealed.body) throw new Error(`the generator's canonical form differs from sealEvent's at event ${i + 1}`);
        }
        prev = sealed.hash;
        insert.run(
          link.seq,
          link.id,
          r.at,
          r.type,
          r.callId ?? null,
          r.user ?? null,
          r.client ?? null,
          r.server ?? null,
          r.name ?? null,
          r.decision ?? null,
          sealed.hash,
          sealed.body,
        );
      }
      setMeta.run('head_seq', String(end));
      setMeta.run('head_hash', prev);
    })();
    if (options.log && end % 1_000_000 === 0)
      options.log(
        `  audit log: ${end.toLocaleString('en-US')} of ${events.toLocaleString('en-US')} events sealed (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
  }
  const i0 = performance.now();
  while (indexPending(db, 1_000_000) > 0) {
    // The store's own background pass, in larger steps.
  }
  for (const index of indexes) db.exec(index.sql);
  optimizeQueries(db);
  const indexMs = performance.now() - i0;
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  for (const suffix of ['-wal', '-shm']) rmSync(partial + suffix, { force: true });
  renameSync(partial, file);
  return { file, events, generateMs: performance.now() - t0, indexMs, cached: false };
}
