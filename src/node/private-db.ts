/**
 * Opening a SQLite database that only its owner may read: the audit log, the approval journal and
 * the quota counts say what the user's agents did and are about to do. The directory is already
 * user-only (0700); the files are made 0600 too, so that a permissive parent (a home restored from
 * a backup, a directory someone widened) still does not expose them. SQLite gives its `-wal` and
 * `-shm` files the mode of the database file, so creating that file 0600 first covers all three;
 * files an older version left wider are narrowed.
 */
import { chmodSync, closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

const SUFFIXES = ['', '-wal', '-shm', '-journal'];

/** Creates `file` 0600 when it is missing and narrows it and its companions to 0600 when wider. */
export function makePrivateDbFiles(file: string): void {
  if (process.platform === 'win32') return;
  closeSync(openSync(file, 'a', 0o600));
  for (const suffix of SUFFIXES) {
    try {
      chmodSync(file + suffix, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** A writable database in WAL mode whose files (database, -wal, -shm) only the user may read. */
export function openPrivateDb(file: string): Database.Database {
  makePrivateDbFiles(file);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    // The -wal and -shm files exist now; narrow them too, whatever mode they were made with.
    makePrivateDbFiles(file);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
