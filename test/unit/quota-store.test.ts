/**
 * The quota store's contract, run against the in-memory store and the SQLite one: changes apply
 * all or nothing, expired values are swept, and (SQLite) what was stored is there after the store
 * is opened again, as after a daemon restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryQuotaStore, type QuotaStore } from '../../src/core/quotas/store.js';
import { SqliteQuotaStore } from '../../src/node/quotas/sqlite-quota-store.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-quota-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const stores: [string, () => QuotaStore][] = [
  ['memory', () => new MemoryQuotaStore()],
  ['SQLite', () => new SqliteQuotaStore(join(dir, `q${++n}.db`))],
];

describe.each(stores)('the %s quota store', (_name, open) => {
  it('applies what a committed update sets, and reads its own writes inside the update', () => {
    const store = open();
    expect(
      store.update((tx) => {
        tx.set('a', 1, Date.now() + 60_000);
        tx.set('a', (tx.get('a') ?? 0) + 1, Date.now() + 60_000);
        return true;
      }),
    ).toBe(true);
    expect([...store.entries()]).toEqual([['a', 2]]);
  });

  it('applies nothing of an update that returns false', () => {
    const store = open();
    store.update((tx) => (tx.set('a', 1, Date.now() + 60_000), true));
    expect(store.update((tx) => (tx.set('a', 5, Date.now() + 60_000), tx.set('b', 1, Date.now() + 60_000), false))).toBe(false);
    expect([...store.entries()]).toEqual([['a', 1]]);
  });

  it('forgets values whose time is over when swept', () => {
    const store = open();
    const now = Date.now();
    store.update((tx) => (tx.set('old', 1, now - 1), tx.set('new', 2, now + 60_000), true));
    store.sweep(now);
    expect([...store.entries()]).toEqual([['new', 2]]);
  });
});

describe('the SQLite quota store', () => {
  it('keeps counters across a restart, and drops the expired ones when it opens', () => {
    const file = join(dir, 'restart.db');
    const first = new SqliteQuotaStore(file);
    const now = Date.now();
    first.update((tx) => (tx.set('["q","writes-per-day"]', 7, now + 86_400_000), tx.set('["r","per-tool"]', now + 1500.5, now - 1), true));
    first.close();
    const second = new SqliteQuotaStore(file, now);
    expect([...second.entries()]).toEqual([['["q","writes-per-day"]', 7]]);
    second.close();
  });

  it('throws and applies nothing when the database cannot be written (the call then fails closed)', () => {
    const file = join(dir, 'readonly.db');
    const store = new SqliteQuotaStore(file);
    store.update((tx) => (tx.set('a', 1, Date.now() + 60_000), true));
    // Another connection holds the write lock, and the store is told not to wait: its write cannot commit.
    const other = new Database(file);
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    (store as unknown as { db: Database.Database }).db.pragma('busy_timeout = 0');
    expect(() => store.update((tx) => (tx.set('a', 2, Date.now() + 60_000), true))).toThrow(/cannot record quota use/);
    expect([...store.entries()]).toEqual([['a', 1]]);
    other.exec('ROLLBACK');
    other.close();
    store.close();
  });

  it('refuses to start on a file that is not a database, with the file named', () => {
    const file = join(dir, 'not-a-db.db');
    writeFileSync(file, 'this is not SQLite'.repeat(100));
    expect(() => new SqliteQuotaStore(file)).toThrow(new RegExp(`quota database ${file}`));
  });
});
