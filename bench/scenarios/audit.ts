/**
 * Audit append rate of the store the daemon uses (`SqliteAuditStore`: every record sealed into the
 * hash chain, then written in one transaction per event-loop tick), the way the audit stage uses
 * it: append, then wait for `durable()`. Records are shaped like the attempt/outcome pair the chain
 * writes for every call, appended in bursts of `burst` (calls in flight at once), in both
 * durability modes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../src/core/ports.js';
import type { Durability } from '../../src/node/audit/schema.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';

export interface AuditRun {
  durability: Durability;
  records: number;
  burst: number;
  recordsPerSecond: number;
}

export interface AuditResult {
  runs: AuditRun[];
}

function record(i: number): AuditRecord {
  const outcome = i % 2 === 1;
  return {
    type: outcome ? 'call.outcome' : 'call.attempt',
    at: new Date().toISOString(),
    callId: `00000000-0000-4000-8000-${String(i >> 1).padStart(12, '0')}`,
    user: 'os:bench',
    client: 'bench',
    clientVerified: true,
    server: 'fixture',
    kind: 'tool',
    name: 'echo',
    argsShape: { text: 'string' },
    argsDigest: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    ...(outcome ? { decision: 'ok' as const, latencyMs: 1, resultDigest: 'sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae' } : {}),
  } as AuditRecord;
}

async function run(durability: Durability, records: number, burst: number, maxMs: number): Promise<AuditRun> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-audit-'));
  const store = new SqliteAuditStore({ file: join(dir, 'audit.db'), durability });
  try {
    for (let i = 0; i < 2000; i += burst) {
      for (let j = 0; j < burst; j++) store.append(record(i + j));
      await store.durable();
    }
    const t0 = performance.now();
    let done = 0;
    while (done < records && performance.now() - t0 < maxMs) {
      for (let j = 0; j < burst; j++) store.append(record(done + j));
      await store.durable();
      done += burst;
    }
    return { durability, records: done, burst, recordsPerSecond: done / ((performance.now() - t0) / 1000) };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function auditScenario(records: number, burst: number, maxMs: number): Promise<AuditResult> {
  return {
    runs: [await run('process-crash', records, burst, maxMs), await run('power-loss', records, burst, maxMs), await run('process-crash', records, 1, maxMs)],
  };
}
