/**
 * The approval requests that are waiting, in SQLite (`approvals.db` in the state directory): a row
 * is written before the person is asked and deleted once the request is decided. Rows found when
 * the journal opens were left by a daemon that stopped or died meanwhile; the broker refuses and
 * audits them (`ApprovalBroker.recover`). Nothing here can approve anything.
 */
import Database from 'better-sqlite3';
import { openPrivateDb } from '../private-db.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { PendingJournal, PendingRecord } from '../../core/approvals/journal.js';

export const APPROVALS_DB_FILE = 'approvals.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pending (
  id TEXT PRIMARY KEY,
  asked_at INTEGER NOT NULL,
  body TEXT NOT NULL
) STRICT;
`;

export class SqliteApprovalJournal implements PendingJournal {
  private readonly db: Database.Database;
  private left: PendingRecord[];
  private readonly insert: Database.Statement;
  private readonly delete: Database.Statement;

  constructor(readonly file: string) {
    try {
      this.db = openPrivateDb(file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(SCHEMA);
    } catch (error) {
      throw new GatehouseError('approvals_unavailable', `cannot open the approvals database ${file}: ${errorMessage(error)}`, { cause: error });
    }
    this.left = [];
    for (const row of this.db.prepare('SELECT id, body FROM pending ORDER BY asked_at, id').all() as { id: string; body: string }[]) {
      try {
        this.left.push(JSON.parse(row.body) as PendingRecord);
      } catch {
        // An unreadable row still stood for a request that was never approved.
        this.left.push({
          id: row.id,
          callId: '',
          digest: '',
          user: '',
          client: '',
          server: '',
          kind: 'tool',
          name: '',
          reasons: ['(unreadable record)'],
          askedAt: 0,
          deadline: 0,
        });
      }
    }
    this.insert = this.db.prepare('INSERT INTO pending (id, asked_at, body) VALUES (?, ?, ?)');
    this.delete = this.db.prepare('DELETE FROM pending WHERE id = ?');
  }

  add(record: PendingRecord): void {
    try {
      this.insert.run(record.id, record.askedAt, JSON.stringify(record));
    } catch (error) {
      throw new GatehouseError('approvals_unavailable', `cannot record the approval request in ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
  }

  remove(id: string): void {
    this.delete.run(id);
  }

  leftovers(): PendingRecord[] {
    const out = this.left;
    this.left = [];
    return out;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
