/**
 * The local audit database: SQLite in WAL mode. `events` is append-only (triggers refuse UPDATE,
 * and refuse DELETE of anything the hub has not acknowledged), every row keeps the exact hashed
 * body beside indexed copies of the fields queries filter on, and `checkpoints` holds the signed
 * heads. `meta` holds the device id, its public key, the writer's head and the pruning anchor.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { openPrivateDb } from '../private-db.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';

export type Db = Database.Database;

/**
 * 2: the query indexes moved from `events` to the derived `events_index` table.
 * 3: time zones (`events_zones`) and one user's non-ok decisions (`events_index_user_decision`).
 */
export const SCHEMA_VERSION = 3;

/** Events per time zone: zone `z` holds sequence numbers `z << ZONE_BITS` to `((z + 1) << ZONE_BITS) - 1`. */
export const ZONE_BITS = 10;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  at TEXT NOT NULL,
  type TEXT NOT NULL,
  call_id TEXT,
  user TEXT,
  client TEXT,
  server TEXT,
  name TEXT,
  decision TEXT,
  hash TEXT NOT NULL,
  body TEXT NOT NULL
) STRICT;
DROP INDEX IF EXISTS events_at;
DROP INDEX IF EXISTS events_user;
DROP INDEX IF EXISTS events_client;
DROP INDEX IF EXISTS events_server;
DROP INDEX IF EXISTS events_decision;
-- Derived data for queries, filled in the background so that appending a call's events updates
-- no secondary index on the hot path. Not evidence: verification reads only events and checkpoints.
CREATE TABLE IF NOT EXISTS events_index (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  type TEXT NOT NULL,
  user TEXT,
  client TEXT,
  server TEXT,
  name TEXT,
  decision TEXT
) STRICT;
-- Time bounds read the zones below (schema 3), not an index of every event's time.
DROP INDEX IF EXISTS events_index_at;
CREATE INDEX IF NOT EXISTS events_index_user ON events_index(user, seq);
CREATE INDEX IF NOT EXISTS events_index_client ON events_index(client, seq);
CREATE INDEX IF NOT EXISTS events_index_server ON events_index(server, name, seq);
CREATE INDEX IF NOT EXISTS events_index_decision ON events_index(decision, seq);
-- Each filter alone reads its matches newest first straight from an index, without sorting them;
-- sign-ins are few, and \`--user\` with a name people see resolves it through them (query.ts).
CREATE INDEX IF NOT EXISTS events_index_server_seq ON events_index(server, seq);
CREATE INDEX IF NOT EXISTS events_index_name ON events_index(name, seq);
CREATE INDEX IF NOT EXISTS events_index_type ON events_index(type, seq);
-- One user's denials, errors and failures, newest first, without walking the user's ok calls
-- (23.8 ms over 10,000,000 events through either single-column index). Queries name the same
-- literal condition so that the planner may use it (query.ts).
CREATE INDEX IF NOT EXISTS events_index_user_decision ON events_index(user, decision, seq) WHERE decision <> 'ok';
-- A time bound turned into a range of sequence numbers: per block of 1,024 indexed events, the
-- earliest time in it and the latest time in it or any block before (so \`max_at\` never falls and
-- one index seek finds where a time starts). \`late\` marks a block holding a time earlier than some
-- block before it (a clock set back): the only blocks past that point a \`--to\` must also read.
-- Derived, conservative bounds: a query still checks \`at\` on every row (query.ts).
CREATE TABLE IF NOT EXISTS events_zones (
  zone INTEGER PRIMARY KEY,
  min_at TEXT NOT NULL,
  max_at TEXT NOT NULL,
  late INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_zones_max ON events_zones(max_at, zone);
CREATE INDEX IF NOT EXISTS events_zones_late ON events_zones(zone) WHERE late = 1;
CREATE TABLE IF NOT EXISTS checkpoints (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  hash TEXT NOT NULL,
  key_id TEXT NOT NULL,
  signature TEXT NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE is refused'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
WHEN OLD.seq > CAST(COALESCE((SELECT value FROM meta WHERE key = 'prunable_through'), '0') AS INTEGER)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only: only events the hub has acknowledged may be pruned'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only: UPDATE is refused'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only: DELETE is refused'); END;
`;

export const TRIGGERS = ['events_no_update', 'events_no_delete', 'checkpoints_no_update', 'checkpoints_no_delete'];

export type Durability = 'process-crash' | 'power-loss';

/**
 * Opens (creating when needed) the database for the one writer. `process-crash`: WAL with
 * synchronous=NORMAL, so a committed transaction survives the process being killed, and the OS
 * writes it out on its own schedule; `power-loss`: synchronous=FULL, an fsync at every commit.
 */
export function openForWriting(file: string, durability: Durability): Db {
  let db: Db;
  try {
    db = openPrivateDb(file);
  } catch (error) {
    throw new GatehouseError('audit_unavailable', `cannot open the audit database ${file}: ${errorMessage(error)}`, { cause: error });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'power-loss' ? 'FULL' : 'NORMAL'}`);
    // Commits go to the WAL; copying it into the database is the store's timer's work (a passive
    // checkpoint every second). SQLite's own checkpoint every 1,000 pages ran inside a commit,
    // with its syncs, several times a second during a burst (a third of the append rate here).
    // This one is a backstop only; the WAL file is cut back to the same size after a checkpoint.
    db.pragma('wal_autocheckpoint = 16384');
    db.pragma('journal_size_limit = 67108864');
    db.pragma('busy_timeout = 5000');
    // A 4 MB page cache. better-sqlite3 builds SQLite with 16 MB per connection, and the daemon's
    // writer filled it with pages of new events it never reads again: 17 MB of the daemon's
    // resident memory after 13,000 calls, which the allocator kept once freed. Appends touch the
    // tails of the table and its indexes; with 4 MB the append rate was the same as with 16 at
    // 100,000 and 1,000,000 events, while SQLite's own 2 MB was up to 7 % slower in bursts of 16
    // over the benchmark's log of 50 users (whose index pass touches more tails than one user's).
    db.pragma('cache_size = -4000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new GatehouseError('audit_unavailable', `the audit database ${file} was written by a newer Gatehouse (schema ${version})`);
    }
    db.transaction(() => {
      db.exec(SCHEMA);
      // A log written before the zones existed: zone what is already indexed (about 6 s over 10,000,000 events here).
      if (version < 3) updateZones(db, 0);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    const insertMeta = db.prepare('INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)');
    insertMeta.run('device', newDeviceId());
    insertMeta.run('created_at', new Date().toISOString());
  } catch (error) {
    db.close();
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('audit_unavailable', `cannot prepare the audit database ${file}: ${errorMessage(error)}`, { cause: error });
  }
  return db;
}

/**
 * Gives the query planner statistics for the query indexes, from the newest 100,000 events: how
 * many events share a user, a client, a server, a tool, a decision or a type. Without them SQLite
 * cannot tell a selective filter from a broad one and may walk the wrong index (a user's denied
 * calls took 2 s over 10,000,000 events). `ANALYZE` itself reads whole indexes (30 s and more on such
 * a log) or, sampled, learns nothing from the first rows; this reads one recent slice in tens of
 * milliseconds. Derived data, like the index: never evidence.
 */
export function optimizeQueries(db: Db): void {
  const bounds = db.prepare('SELECT COALESCE(MAX(seq), 0) AS hi, COALESCE(MIN(seq), 0) AS lo FROM events_index').get() as { hi: number; lo: number };
  const total = bounds.hi > 0 ? bounds.hi - bounds.lo + 1 : 0;
  if (total === 0) return;
  const d = db
    .prepare(
      `SELECT count(*) AS n, count(DISTINCT user) AS user, count(DISTINCT client) AS client, count(DISTINCT server) AS server,
              count(DISTINCT name) AS name, count(DISTINCT server || char(0) || name) AS serverName, count(DISTINCT decision) AS decision,
              count(DISTINCT type) AS type, count(decision <> 'ok' OR NULL) AS notOk,
              count(DISTINCT CASE WHEN decision <> 'ok' THEN user END) AS notOkUser,
              count(DISTINCT CASE WHEN decision <> 'ok' THEN user || char(0) || decision END) AS notOkUserDecision
         FROM (SELECT user, client, server, name, decision, type FROM events_index ORDER BY seq DESC LIMIT 100000)`,
    )
    .get() as Record<'n' | 'user' | 'client' | 'server' | 'name' | 'serverName' | 'decision' | 'type' | 'notOk' | 'notOkUser' | 'notOkUserDecision', number>;
  // Events per distinct value, scaled from the slice to the whole index (at least 1).
  const perOf = (rows: number, distinct: number) => Math.max(1, Math.round(rows / Math.max(1, distinct)));
  const per = (distinct: number) => perOf(total, distinct);
  const notOk = Math.max(1, Math.round((total * d.notOk) / Math.max(1, d.n)));
  const stats: [string, string][] = [
    ['events_index_user', `${total} ${per(d.user)} 1`],
    ['events_index_client', `${total} ${per(d.client)} 1`],
    ['events_index_server', `${total} ${per(d.server)} ${per(d.serverName)} 1`],
    ['events_index_server_seq', `${total} ${per(d.server)} 1`],
    ['events_index_name', `${total} ${per(d.name)} 1`],
    ['events_index_decision', `${total} ${per(d.decision)} 1`],
    ['events_index_type', `${total} ${per(d.type)} 1`],
    // Only the non-ok decisions: scaled from their share of the slice.
    ['events_index_user_decision', `${notOk} ${perOf(notOk, d.notOkUser)} ${perOf(notOk, d.notOkUserDecision)} 1`],
  ];
  // ANALYZE of the small `meta` table creates SQLite's statistics table when there is none yet.
  if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").get()) db.exec('ANALYZE meta');
  db.transaction(() => {
    db.prepare("DELETE FROM sqlite_stat1 WHERE tbl = 'events_index'").run();
    const insert = db.prepare("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('events_index', ?, ?)");
    for (const [idx, stat] of stats) insert.run(idx, stat);
    insert.run(null, String(total));
  })();
  // The planner reads the statistics when it loads the schema: load it again.
  db.exec('ANALYZE sqlite_schema');
}

/**
 * Copies up to `limit` not-yet-indexed events into `events_index`, and their times into the zones; returns how many.
 *
 * The default covers more than a second of the fastest appends in one transaction. Each pass touches
 * the same few hot pages of every index (one per user, client, server and tool, at the end of its
 * run of sequence numbers), and every commit writes each of them to the WAL again: passes of 5,000
 * wrote them seven times a second and cost 10.4 µs per event over a 1,000,000-event log, one pass
 * 6.0 µs. The store's pass runs until it has caught up either way, so a larger transaction holds the
 * event loop no longer; it only commits less often.
 */
export function indexPending(db: Db, limit = 65_536): number {
  return db.transaction(() => {
    const indexed = (db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM events_index').get() as { seq: number }).seq;
    const copied = db
      .prepare(
        `INSERT INTO events_index (seq, at, type, user, client, server, name, decision)
         SELECT seq, at, type, user, client, server, name, decision FROM events WHERE seq > ? ORDER BY seq LIMIT ?`,
      )
      .run(indexed, limit).changes;
    if (copied > 0) updateZones(db, indexed);
    return copied;
  })();
}

/**
 * Folds the times of the indexed events after `afterSeq` into their zones, in zone order, carrying
 * the latest time so far forward. Events are only ever added after the last one, so only the last
 * zone and new ones change (and every zone, when a log is zoned for the first time).
 */
export function updateZones(db: Db, afterSeq: number): void {
  const fresh = db
    .prepare(`SELECT seq >> ${ZONE_BITS} AS zone, min(at) AS min, max(at) AS max FROM events_index WHERE seq > ? GROUP BY seq >> ${ZONE_BITS} ORDER BY zone`)
    .all(afterSeq) as { zone: number; min: string; max: string }[];
  if (fresh.length === 0) return;
  const before = db.prepare('SELECT zone, min_at AS min, max_at AS max FROM events_zones WHERE zone <= ? ORDER BY zone DESC LIMIT 2').all(fresh[0]!.zone) as {
    zone: number;
    min: string;
    max: string;
  }[];
  // The zone being extended (if any), and the latest time of every zone before it.
  const current = before[0]?.zone === fresh[0]!.zone ? before[0] : undefined;
  const previous = current ? before[1] : before[0];
  let latest = previous?.max ?? '';
  const upsert = db.prepare(
    'INSERT INTO events_zones (zone, min_at, max_at, late) VALUES (?, ?, ?, ?) ON CONFLICT(zone) DO UPDATE SET min_at = excluded.min_at, max_at = excluded.max_at, late = excluded.late',
  );
  for (const z of fresh) {
    const min = current && z.zone === current.zone && current.min < z.min ? current.min : z.min;
    const ownMax = current && z.zone === current.zone && current.max > z.max ? current.max : z.max;
    const late = min < latest ? 1 : 0;
    latest = ownMax > latest ? ownMax : latest;
    upsert.run(z.zone, min, latest, late);
  }
}

/** Opens an existing database for reading only (the CLI, while the daemon may be writing). */
export function openForReading(file: string): Db {
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    // Fails here, with a clear error, when the file is not a database or is damaged.
    db.prepare("SELECT value FROM meta WHERE key = 'device'").get();
    return db;
  } catch (error) {
    throw new GatehouseError('audit_unreadable', `cannot read the audit database ${file}: ${errorMessage(error)}`, { cause: error });
  }
}

export function readMeta(db: Db): Map<string, string> {
  const rows = db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[];
  return new Map(rows.map((r) => [r.key, r.value]));
}

/** `dev_` and 26 characters of base32: 130 random bits. */
export function newDeviceId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(26);
  let out = 'dev_';
  for (const b of bytes) out += alphabet[b & 31];
  return out;
}
