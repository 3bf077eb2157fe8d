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

/** 2: the query indexes moved from `events` to the derived `events_index` table. */
export const SCHEMA_VERSION = 2;

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
CREATE INDEX IF NOT EXISTS events_index_at ON events_index(at);
CREATE INDEX IF NOT EXISTS events_index_user ON events_index(user, seq);
CREATE INDEX IF NOT EXISTS events_index_client ON events_index(client, seq);
CREATE INDEX IF NOT EXISTS events_index_server ON events_index(server, name, seq);
CREATE INDEX IF NOT EXISTS events_index_decision ON events_index(decision, seq);
-- Each filter alone reads its matches newest first straight from an index, without sorting them;
-- sign-ins are few, and \`--user\` with a name people see resolves it through them (query.ts).
CREATE INDEX IF NOT EXISTS events_index_server_seq ON events_index(server, seq);
CREATE INDEX IF NOT EXISTS events_index_name ON events_index(name, seq);
CREATE INDEX IF NOT EXISTS events_index_type ON events_index(type, seq);
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
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new GatehouseError('audit_unavailable', `the audit database ${file} was written by a newer Gatehouse (schema ${version})`);
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
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

/** Copies up to `limit` not-yet-indexed events into `events_index`; returns how many. */
export function indexPending(db: Db, limit = 5000): number {
  return db
    .prepare(
      `INSERT INTO events_index (seq, at, type, user, client, server, name, decision)
       SELECT seq, at, type, user, client, server, name, decision FROM events
       WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM events_index) ORDER BY seq LIMIT ?`,
    )
    .run(limit).changes;
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
