/**
 * A record of the approval requests that are waiting, kept where a crash cannot erase it
 * (src/node/approvals/sqlite-journal.ts), so that a daemon that stopped or died while requests
 * waited finds them when it starts again, refuses them and audits that. A waiting request is never
 * carried over: its client's connection ended with the daemon.
 */

export interface PendingRecord {
  id: string;
  callId: string;
  digest: string;
  user: string;
  client: string;
  server: string;
  kind: 'tool' | 'prompt' | 'resource';
  name: string;
  /** Why approval was asked, as shown to the person. */
  reasons: string[];
  askedAt: number;
  deadline: number;
}

export interface PendingJournal {
  /** Throws when the record cannot be kept; the call is then refused. */
  add(record: PendingRecord): void;
  remove(id: string): void;
  /** Requests left by an earlier run, read when the journal was opened. Each is returned once. */
  leftovers(): PendingRecord[];
}

export class MemoryJournal implements PendingJournal {
  readonly records = new Map<string, PendingRecord>();

  constructor(private left: PendingRecord[] = []) {}

  add(record: PendingRecord): void {
    this.records.set(record.id, record);
  }

  remove(id: string): void {
    this.records.delete(id);
  }

  leftovers(): PendingRecord[] {
    const out = this.left;
    this.left = [];
    return out;
  }
}
