/**
 * Rate-limit and quota state in SQLite (`quotas.db` in the state directory), so that a restart
 * resets nothing. The daemon is the only writer (the daemon lock), so the values are read from a
 * copy in memory and every change is written through, in one transaction, before the call goes on:
 * a change that cannot be written throws, nothing of it is applied, and the call fails closed.
 * WAL with synchronous=NORMAL: a committed change survives the process being killed.
 */
import Database from 'better-sqlite3';
import { openPrivateDb } from '../private-db.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { QuotaStore, QuotaTx } from '../../core/quotas/store.js';

export const QUOTA_DB_FILE = 'quotas.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS counters (
  key TEXT PRIMARY KEY,
  value REAL NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
`;

interface Entry {
  value: number;
  expiresAt: number;
}

export class SqliteQuotaStore implements QuotaStore {
  private readonly db: Database.Database;
  private readonly values = new Map<string, Entry>();
  private readonly upsert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly writeAll: (writes: Map<string, Entry>) => void;

  constructor(
    readonly file: string,
    now = Date.now(),
  ) {
    try {
      this.db = openPrivateDb(file);
    } catch (error) {
      throw new GatehouseError('quotas_unavailable', `cannot open the quota database ${file}: ${errorMessage(error)}`, { cause: error });
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(SCHEMA);
      this.db.prepare('DELETE FROM counters WHERE expires_at <= ?').run(now);
      for (const row of this.db.prepare('SELECT key, value, expires_at FROM counters').iterate() as Iterable<{
        key: string;
        value: number;
        expires_at: number;
      }>) {
        this.values.set(row.key, { value: row.value, expiresAt: row.expires_at });
      }
    } catch (error) {
      this.db.close();
      throw new GatehouseError('quotas_unavailable', `cannot read the quota database ${file}: ${errorMessage(error)}`, { cause: error });
    }
    this.upsert = this.db.prepare(
      'INSERT INTO counters (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
    );
    this.remove = this.db.prepare('DELETE FROM counters WHERE expires_at <= ?');
    this.writeAll = this.db.transaction((writes: Map<string, Entry>) => {
      for (const [key, entry] of writes) this.upsert.run(key, entry.value, entry.expiresAt);
    });
  }

  update(fn: (tx: QuotaTx) => boolean): boolean {
    const writes = new Map<string, Entry>();
    const commit = fn({
      get: (key) => (writes.get(key) ?? this.values.get(key))?.value,
      set: (key, value, expiresAt) => void writes.set(key, { value, expiresAt: Math.ceil(expiresAt) }),
    });
    if (!commit) return false;
    if (writes.size === 0) return true;
    try {
      this.writeAll(writes);
    } catch (error) {
      throw new GatehouseError('quotas_unavailable', `cannot record quota use in ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
    for (const [key, entry] of writes) this.values.set(key, entry);
    return true;
  }

  *entries(): Iterable<[string, number]> {
    for (const [key, entry] of this.values) yield [key, entry.value];
  }

  sweep(now: number): void {
    for (const [key, entry] of this.values) if (entry.expiresAt <= now) this.values.delete(key);
    this.remove.run(now);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
