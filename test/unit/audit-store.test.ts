/**
 * The local SQLite audit store (src/node/audit/sqlite-store.ts): append-only, hash-chained,
 * batched per tick, signed checkpoints, fail-closed on a full disk and recovery, queries, and
 * pruning that keeps the chain verifiable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDeviceKey } from '../../src/core/audit/device-key.js';
import { chain, type GovernedCall } from '../../src/core/chain.js';
import type { AuditRecord } from '../../src/core/ports.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { auditStage } from '../../src/core/stages.js';
import { queryPlan, seqRange } from '../../src/node/audit/query.js';
import { optimizeQueries, ZONE_BITS } from '../../src/node/audit/schema.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';
import { verifyAuditFile } from '../../src/node/audit/verify-file.js';

const dirs: string[] = [];
const stores: SqliteAuditStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function newFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-audit-unit-'));
  dirs.push(dir);
  return join(dir, 'audit.db');
}

function open(file: string, options: Partial<ConstructorParameters<typeof SqliteAuditStore>[0]> = {}): SqliteAuditStore {
  const store = new SqliteAuditStore({ file, retryIntervalMs: 20, ...options });
  stores.push(store);
  return store;
}

const call = (i: number, extra: Partial<AuditRecord> = {}): AuditRecord => ({
  type: 'call.outcome',
  at: new Date(Date.UTC(2026, 10, 26, 9, 0, 0, i)).toISOString(),
  callId: `call-${i}`,
  user: i % 2 ? 'os:alice' : 'os:bob',
  client: 'cursor',
  server: i % 3 ? 'memory' : 'files',
  kind: 'tool',
  name: i % 3 ? 'read_graph' : 'read_text_file',
  decision: i % 5 ? 'ok' : 'denied',
  ...extra,
});

const rows = (file: string) =>
  new Database(file, { readonly: true }).prepare('SELECT seq, body FROM events ORDER BY seq').all() as { seq: number; body: string }[];

describe('the SQLite audit store', () => {
  it('writes a burst of appends in one transaction at the end of the tick, chained in order', async () => {
    const file = newFile();
    const store = open(file);
    let commits = 0;
    store.events.on('commit', () => commits++);
    for (let i = 1; i <= 500; i++) store.append(call(i));
    expect(store.committed).toBe(0);
    await store.durable();
    expect(commits).toBe(1);
    expect(store.committed).toBe(500);
    const report = verifyAuditFile(file);
    expect(report.problems).toEqual([]);
    expect(report.events).toBe(500);
  });

  it('continues the same chain, on the same device, after a restart', async () => {
    const file = newFile();
    const first = open(file);
    first.append(call(1));
    await first.durable();
    const device = first.device;
    first.close();
    stores.length = 0;
    const second = open(file);
    expect(second.device).toBe(device);
    second.append(call(2));
    await second.durable();
    expect(rows(file).map((r) => JSON.parse(r.body).seq)).toEqual([1, 2]);
    expect(verifyAuditFile(file).ok).toBe(true);
  });

  it('refuses UPDATE and DELETE of events, and of checkpoints, at the database itself', async () => {
    const file = newFile();
    const store = open(file);
    store.append(call(1));
    await store.durable();
    const db = store.database;
    expect(() => db.prepare("UPDATE events SET user = 'os:mallory'").run()).toThrow(/append-only: UPDATE is refused/);
    expect(() => db.prepare('DELETE FROM events').run()).toThrow(/only events the hub has acknowledged may be pruned/);
    expect(() => db.prepare('DELETE FROM checkpoints').run()).not.toThrow(); // nothing to delete yet, so no row trigger fires
  });

  it('fails closed when the disk is full, then recovers, losing nothing that was appended', async () => {
    const file = newFile();
    const store = open(file);
    store.append(call(0));
    await store.durable();
    // A real "database or disk is full" from SQLite: no page may be added.
    const pages = store.database.pragma('page_count', { simple: true }) as number;
    store.database.pragma(`max_page_count = ${pages}`);
    const big = 'x'.repeat(64 * 1024);
    store.append(call(1, { reason: big }));
    await expect(store.durable()).rejects.toThrow(/audit log cannot be written \(database or disk is full\); calls are refused/);
    expect(() => store.append(call(2))).toThrow(/calls are refused/);
    expect(store.status()).toMatchObject({ healthy: false, error: 'database or disk is full' });

    // The audit stage turns that into a refused call: the handler never runs.
    let reached = false;
    const handler = chain(auditStage(store, { now: () => Date.now(), setTimeout: () => ({}), clearTimeout: () => undefined }))(async () => {
      reached = true;
      return { kind: 'ok', result: {} };
    });
    const governed = {
      id: 'c',
      kind: 'tool',
      server: 'memory',
      name: 'x',
      principal: { user: { id: 'u' }, client: { name: 'c', verified: false } },
      context: {},
      facts: {},
    } as unknown as GovernedCall;
    await expect(handler(governed)).rejects.toThrow(/calls are refused/);
    expect(reached).toBe(false);

    store.database.pragma('max_page_count = 1073741823');
    await new Promise((r) => setTimeout(r, 100));
    expect(store.status().healthy).toBe(true);
    store.append(call(3));
    await store.durable();
    const types = rows(file).map((r) => JSON.parse(r.body));
    expect(types.map((e) => e.callId ?? e.type)).toEqual(['call-0', 'call-1', 'audit.recovered', 'call-3']);
    expect(types[2].detail.refusedAppends).toBe(2);
    expect(verifyAuditFile(file).ok).toBe(true);
  });

  it('refuses to go on when another process has written to the same log', async () => {
    const file = newFile();
    const store = open(file);
    store.append(call(1));
    await store.durable();
    const intruder = new Database(file);
    intruder.prepare("INSERT INTO events (seq, id, at, type, hash, body) VALUES (2, 'x', 'x', 'x', 'x', 'x')").run();
    intruder.close();
    store.append(call(2));
    await expect(store.durable()).rejects.toThrow(/another process wrote to the audit log/);
  });

  it('signs a checkpoint every N events once the device key is there, and refuses a different key later', async () => {
    const file = newFile();
    const secrets = new MemorySecretStore();
    const store = open(file, { checkpointEvery: 10 });
    for (let i = 1; i <= 5; i++) store.append(call(i));
    await store.durable();
    expect(store.status().signing.state).toBe('pending');
    store.setDeviceKey(await loadDeviceKey(secrets, store.device, { create: true }));
    await store.durable();
    for (let i = 6; i <= 30; i++) store.append(call(i));
    await store.durable();
    store.checkpointNow();
    const checkpoints = store.database.prepare('SELECT seq FROM checkpoints ORDER BY seq').all() as { seq: number }[];
    expect(checkpoints.length).toBeGreaterThanOrEqual(2);
    expect(checkpoints.at(-1)!.seq).toBe(store.committed);
    const report = verifyAuditFile(file);
    expect(report.problems).toEqual([]);
    expect(report.checkpoints.verified).toBe(checkpoints.length);

    const other = await loadDeviceKey(new MemorySecretStore(), store.device, { create: true });
    store.setDeviceKey(other);
    expect(store.status().signing).toMatchObject({ state: 'unavailable', error: expect.stringMatching(/not the one this audit log was signed with/) });
  });

  it('answers filtered queries from the hashed bodies, newest page last', async () => {
    const file = newFile();
    const store = open(file);
    for (let i = 1; i <= 60; i++) store.append(call(i));
    await store.durable();
    const denied = store.query({ decision: 'denied', server: 'files' });
    expect(denied.map((e) => e.event.callId)).toEqual(['call-15', 'call-30', 'call-45', 'call-60']);
    expect(store.query({ user: 'os:alice', tool: 'read_graph', limit: 2 }).map((e) => e.event.callId)).toEqual(['call-55', 'call-59']);
    expect(store.query({ afterSeq: 58 }).map((e) => e.event.seq)).toEqual([59, 60]);
    const window = store.query({ from: call(10).at, to: call(13).at });
    expect(window.map((e) => e.event.callId)).toEqual(['call-10', 'call-11', 'call-12']);
  });

  // Issue 12, finding 9: `audit query --tool crm__refund` and `--user sam@example.test` found nothing.
  it("accepts the names people see: the aggregate's <server>__<tool>, an e-mail, a subject, an OS account name", async () => {
    const file = newFile();
    const store = open(file, { indexIntervalMs: 3_600_000 });
    const sam = 'oidc:https://idp.example.test#u-4711';
    store.append({ type: 'identity.signed_in', at: call(0).at, user: sam, detail: { displayName: 'sam@example.test', groups: ['crm-support'] } });
    for (let i = 1; i <= 6; i++) store.append(call(i, { user: i % 2 ? sam : 'os:alice', server: 'crm', name: i % 3 ? 'refund' : 'search_contacts' }));
    await store.durable();
    for (const indexed of [false, true]) {
      if (indexed) store.indexNow();
      const callIds = (filter: Parameters<typeof store.query>[0]) => store.query({ type: 'call.outcome', ...filter }).map((e) => e.event.callId);
      expect(callIds({ tool: 'crm__refund' })).toEqual(['call-1', 'call-2', 'call-4', 'call-5']);
      expect(callIds({ tool: 'refund' })).toEqual(['call-1', 'call-2', 'call-4', 'call-5']);
      expect(callIds({ tool: 'memory__refund' })).toEqual([]);
      expect(callIds({ user: 'sam@example.test' })).toEqual(['call-1', 'call-3', 'call-5']);
      expect(callIds({ user: 'u-4711' })).toEqual(['call-1', 'call-3', 'call-5']);
      expect(callIds({ user: sam, tool: 'crm__refund' })).toEqual(['call-1', 'call-5']);
      expect(callIds({ user: 'alice' })).toEqual(['call-2', 'call-4', 'call-6']);
      expect(callIds({ user: 'nobody@example.test' })).toEqual([]);
    }
  });

  it('finds events whether or not the background indexer has reached them yet', async () => {
    const file = newFile();
    const store = open(file, { indexIntervalMs: 3_600_000 });
    for (let i = 1; i <= 30; i++) store.append(call(i));
    await store.durable();
    const unindexed = store.query({ decision: 'denied', server: 'files' }).map((e) => e.event.callId);
    expect(unindexed).toEqual(['call-15', 'call-30']);
    store.indexNow();
    for (let i = 31; i <= 60; i++) store.append(call(i));
    await store.durable();
    // Half indexed, half in the tail: one answer, in order, no duplicates.
    expect(store.query({ decision: 'denied', server: 'files' }).map((e) => e.event.callId)).toEqual(['call-15', 'call-30', 'call-45', 'call-60']);
    expect(store.query({ afterSeq: 28, limit: 4 }).map((e) => e.event.seq)).toEqual([29, 30, 31, 32]);
    // Each part is limited on its own before the merge: a page that spans both still has the newest matches.
    expect(store.query({ decision: 'denied', server: 'files', limit: 3 }).map((e) => e.event.callId)).toEqual(['call-30', 'call-45', 'call-60']);
    expect(store.query({ decision: 'denied', server: 'files', afterSeq: 20, limit: 2 }).map((e) => e.event.callId)).toEqual(['call-30', 'call-45']);
    store.indexNow();
    expect(store.query({ decision: 'denied', server: 'files' }).map((e) => e.event.callId)).toEqual(['call-15', 'call-30', 'call-45', 'call-60']);
  });

  it('gives the query planner statistics for its indexes from recent events, so that a selective filter drives the query (issue 13)', async () => {
    const file = newFile();
    const store = open(file);
    for (let i = 1; i <= 60; i++) store.append(call(i));
    await store.durable();
    store.indexNow();
    store.optimizeNow();
    const stats = new Map(
      (store.database.prepare("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'events_index'").all() as { idx: string | null; stat: string }[]).map((r) => [
        r.idx,
        r.stat,
      ]),
    );
    // 60 events: two users (30 events each), two decisions, two servers.
    expect(stats.get('events_index_user')).toBe('60 30 1');
    expect(stats.get('events_index_decision')).toBe('60 30 1');
    expect(stats.get('events_index_server')).toBe('60 30 30 1');
    expect(stats.get(null)).toBe('60');
    const plan = (
      store.database
        .prepare("EXPLAIN QUERY PLAN SELECT seq FROM events_index WHERE user = 'os:alice' AND decision = 'denied' ORDER BY seq DESC LIMIT 5")
        .all() as { detail: string }[]
    )
      .map((r) => r.detail)
      .join(' ');
    expect(plan).toMatch(/USING (COVERING )?INDEX events_index_(user|decision)/);
    store.close();
  });

  /** Event i at second `seconds[i - 1]` of the day, one user in 7 and one denial in 11 (3 zones and a bit). */
  async function timedLog(seconds: (i: number) => number, count = 3500) {
    const file = newFile();
    const store = open(file, { indexIntervalMs: 3_600_000 });
    const time = (s: number) => new Date(Date.UTC(2026, 10, 26) + s * 1000).toISOString();
    for (let i = 1; i <= count; i++) {
      store.append(call(i, { at: time(seconds(i)), user: i % 7 ? 'os:bob' : 'os:alice', decision: i % 11 ? 'ok' : 'denied' }));
      if (i % 500 === 0) await store.durable();
    }
    await store.durable();
    store.indexNow();
    // What each filter must return: every event checked by hand, newest 100, oldest first.
    const all = store.query({ limit: 10_000 }).map((e) => e.event);
    const expected = (filter: { from?: number; to?: number; user?: string; decision?: string }) =>
      all
        .filter((e) => (filter.from === undefined || e.at >= time(filter.from)) && (filter.to === undefined || e.at < time(filter.to)))
        .filter((e) => (filter.user === undefined || e.user === filter.user) && (filter.decision === undefined || e.decision === filter.decision))
        .slice(-100)
        .map((e) => e.seq);
    const actual = (filter: { from?: number; to?: number; user?: string; decision?: 'denied' }) =>
      store
        .query({ ...filter, from: filter.from === undefined ? undefined : time(filter.from), to: filter.to === undefined ? undefined : time(filter.to) })
        .map((e) => e.event.seq);
    return { store, time, expected, actual };
  }

  it('reads a time bound as a range of sequence numbers from the zones, so that --to alone reads no more of the log than it returns (issue 13)', async () => {
    const { store, time } = await timedLog((i) => i);
    const zone = 2 ** ZONE_BITS;
    // Times rise with the sequence numbers: --to 1500 s ends in the zone of event 1500, --from 2500 s starts in the zone of event 2500.
    expect(seqRange(store.database, { to: time(1500) })).toEqual({ lo: 0, hi: 2 * zone - 1 });
    expect(seqRange(store.database, { from: time(2500) })).toEqual({ lo: 2 * zone, hi: Number.MAX_SAFE_INTEGER });
    expect(seqRange(store.database, { from: time(9000) })).toEqual({ lo: 1, hi: 0 });
    expect(seqRange(store.database, { user: 'os:alice' })).toBeUndefined();
    // The page is read through the primary key within the range, or the user's index within it: never a scan of the log, never a sort of every match.
    const plan = queryPlan(store.database, { to: time(1500) }).join(' | ');
    expect(plan).toMatch(/SEARCH i USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/);
    expect(plan).not.toMatch(/SCAN i\b|events_index_at/);
    expect(queryPlan(store.database, { user: 'os:alice', from: time(500), to: time(1500) }).join(' | ')).toMatch(
      /SEARCH i USING INDEX events_index_user \(user=\? AND seq>\? AND seq<\?\)/,
    );
  });

  it('finds every event of a time window after the clock was set back, including the ones behind the newest time', async () => {
    // Seconds 1-2000, then the clock goes back 1,500 s for 1,000 events, then on from 3000: zones 2 and 3 hold earlier times than zone 1.
    const { store, expected, actual } = await timedLog((i) => (i <= 2000 ? i : i <= 3000 ? i - 1500 : i));
    expect(store.database.prepare('SELECT zone FROM events_zones WHERE late = 1 ORDER BY zone').all()).toEqual([{ zone: 1 }, { zone: 2 }]);
    for (const filter of [
      { to: 800 },
      { to: 1200 },
      { to: 1600 },
      { from: 700, to: 900 },
      { from: 1400, to: 1600 },
      { from: 1900 },
      { from: 3200 },
      { to: 1300, user: 'os:alice' },
      { from: 600, to: 1700, user: 'os:alice', decision: 'denied' as const },
    ]) {
      expect(actual(filter), JSON.stringify(filter)).toEqual(expected(filter));
      expect(actual(filter).length, JSON.stringify(filter)).toBeGreaterThan(0);
    }
  });

  it("reads one user's denials from an index of the decisions that are not ok, not by walking the user's calls (issue 13)", async () => {
    const { store, expected, actual } = await timedLog((i) => i);
    expect(actual({ user: 'os:alice', decision: 'denied' })).toEqual(expected({ user: 'os:alice', decision: 'denied' }));
    expect(queryPlan(store.database, { user: 'os:alice', decision: 'denied' }).join(' | ')).toMatch(
      /SEARCH i USING (COVERING )?INDEX events_index_user_decision \(user=\? AND decision=\?\)/,
    );
    // A decision alone still reads its own index in order.
    expect(queryPlan(store.database, { decision: 'denied' }).join(' | ')).toMatch(/INDEX events_index_decision \(decision=\?\)/);
  });

  it('reads the newest page of every event from the index in order, never by scanning and sorting the log, whatever the statistics say (issue 13)', async () => {
    const { store, expected, actual } = await timedLog((i) => i);
    const db = store.database;
    optimizeQueries(db);
    // The statistics of a log of 10,000,000 events: they describe the index, and nothing describes `events`
    // (a first page with no filter scanned all 12.6 GB of such a log and sorted it, seconds a page).
    db.prepare(
      "UPDATE sqlite_stat1 SET stat = CASE WHEN idx IS NULL THEN '10000000' ELSE '10000000' || substr(stat, instr(stat, ' ')) END WHERE tbl = 'events_index'",
    ).run();
    db.exec('ANALYZE sqlite_schema');
    const plan = queryPlan(db, {}).join(' | ');
    expect(plan).toMatch(/SCAN i\b.*SEARCH e USING INTEGER PRIMARY KEY \(rowid=\?\)/);
    expect(plan).not.toMatch(/SCAN e\b/);
    expect(actual({})).toEqual(expected({}));
  });

  it('zones a log written before zones existed when a writer opens it, and answers the same', async () => {
    const { store, time } = await timedLog((i) => i);
    const file = store.file;
    const before = store.query({ to: time(1500) }).map((e) => e.event.seq);
    const zones = store.database.prepare('SELECT * FROM events_zones ORDER BY zone').all();
    store.close();
    // As schema 2 left it: no zones, no index of the decisions that are not ok.
    const old = new Database(file);
    old.exec('DROP TABLE events_zones; DROP INDEX events_index_user_decision; PRAGMA user_version = 2;');
    old.close();
    const reopened = open(file, { indexIntervalMs: 3_600_000 });
    expect(reopened.database.pragma('user_version', { simple: true })).toBe(3);
    expect(reopened.database.prepare('SELECT * FROM events_zones ORDER BY zone').all()).toEqual(zones);
    expect(reopened.query({ to: time(1500) }).map((e) => e.event.seq)).toEqual(before);
    expect(queryPlan(reopened.database, { user: 'os:bob', decision: 'denied' }).join(' | ')).toMatch(/events_index_user_decision/);
    // Time bounds read the zones: the index of every event's time is gone.
    expect(reopened.database.prepare("SELECT name FROM sqlite_master WHERE name = 'events_index_at'").all()).toEqual([]);
  });

  it("leaves copying the WAL into the database to the store's one-second sync, with SQLite's own checkpoint only as a backstop", () => {
    const store = open(newFile());
    expect(store.database.pragma('wal_autocheckpoint', { simple: true })).toBe(16384);
    expect(store.database.pragma('journal_size_limit', { simple: true })).toBe(64 * 1024 * 1024);
    expect(store.database.pragma('synchronous', { simple: true })).toBe(1);
  });

  it("keeps the writer's page cache at 4 MB, not the 16 MB better-sqlite3 builds in, which a load window filled with pages never read again (issue 13)", () => {
    const plain = new Database(':memory:');
    expect(plain.pragma('cache_size', { simple: true })).toBe(-16000);
    plain.close();
    const store = open(newFile());
    expect(store.database.pragma('cache_size', { simple: true })).toBe(-4000);
  });

  it('prunes only what the hub acknowledged, up to a checkpoint, and the rest still verifies from the anchor', async () => {
    const file = newFile();
    const store = open(file, { checkpointEvery: 10 });
    store.setDeviceKey(await loadDeviceKey(new MemorySecretStore(), store.device, { create: true }));
    for (let i = 1; i <= 40; i++) store.append(call(i));
    await store.durable();
    expect(store.prune('2100-01-01T00:00:00Z')).toEqual({ pruned: 0 });
    store.recordHubAck(25);
    const result = store.prune('2100-01-01T00:00:00Z');
    expect(result.anchor!.seq).toBeLessThanOrEqual(25);
    expect(result.pruned).toBe(result.anchor!.seq);
    expect(() => store.database.prepare('DELETE FROM events WHERE seq = 30').run()).toThrow(/append-only/);
    const report = verifyAuditFile(file);
    expect(report.problems).toEqual([]);
    expect(report.firstSeq).toBe(result.anchor!.seq + 1);
  });
});
