/**
 * The local, tamper-evident audit store behind the `AuditSink` port.
 *
 * `append` seals each record into the hash chain at once (in order, in memory) and queues it; the
 * queue is written in one transaction at the end of the event-loop tick, or sooner when it reaches
 * `batchMax`. `durable()` settles when what was appended so far is committed, so the audit stage
 * can hold a call until its attempt, and later its outcome, are on disk.
 *
 * A failed write (a full disk, an I/O error, another writer) keeps the queued records, rejects
 * every waiting `durable()`, and makes every later `append` throw, so that calls are refused
 * rather than run unaudited. A timer retries the write; once it succeeds the store records an
 * `audit.recovered` event saying how long it was unavailable, and accepts calls again.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { DeviceKey } from '../../core/audit/device-key.js';
import { GENESIS_HASH, RecordSealer, signCheckpoint, type AuditEvent, type Checkpoint, type SealedEvent } from '../../core/audit/event.js';
import type { AuditFilter } from '../../core/audit/filter.js';
import type { AuditRecord, AuditSink, Logger } from '../../core/ports.js';
import { indexPending, openForWriting, optimizeQueries, readMeta, ZONE_BITS, type Db, type Durability } from './schema.js';
import { queryEvents, type QueriedEvent } from './query.js';

export interface SqliteAuditStoreOptions {
  /** How often new events are copied into the query index (default 1 s). */
  indexIntervalMs?: number;
  file: string;
  /** Default `process-crash` (see docs/audit.md for the measurements behind the choice). */
  durability?: Durability;
  /** Sign a checkpoint at least every this many events (default 1000)… */
  checkpointEvery?: number;
  /** …and every this many ms while new events arrive (default 5 minutes). */
  checkpointIntervalMs?: number;
  /** How often a failed store retries its write (default 1000 ms). */
  retryIntervalMs?: number;
  /** Write at once when this many events are queued (default 4096). */
  batchMax?: number;
  /**
   * With `process-crash` durability, how often the WAL is synced to disk (a passive WAL checkpoint)
   * when something was committed since the last time (default 1000 ms): this bounds what a power
   * cut can take back.
   */
  syncIntervalMs?: number;
  logger?: Logger;
}

export interface AuditStoreStatus {
  file: string;
  device: string;
  /** Last sequence number appended (committed or queued). */
  records: number;
  committed: number;
  healthy: boolean;
  error?: string;
  unavailableSince?: string;
  signing: { state: 'ok' | 'pending' | 'unavailable'; keyId?: string; error?: string };
  lastCheckpoint?: { seq: number; at: string };
  hubAcked: number;
  prunedThrough: number;
}

/**
 * A sealed event waiting for its transaction, with its indexed columns read from the record when it
 * was sealed (a record changed by its caller afterwards changes neither its body nor its columns).
 */
interface Queued extends SealedEvent {
  id: string;
  at: string;
  type: string;
  callId: string | null;
  user: string | null;
  client: string | null;
  server: string | null;
  name: string | null;
  decision: string | null;
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class SqliteAuditStore implements AuditSink {
  readonly file: string;
  readonly device: string;
  /** `commit` (committed seq) after every successful write; `failure` (message) when a write fails. */
  readonly events = new EventEmitter();
  private readonly db: Db;
  private readonly logger: Logger | undefined;
  private readonly checkpointEvery: number;
  private readonly retryIntervalMs: number;
  private readonly batchMax: number;
  private readonly sealer = new RecordSealer();

  private headSeq: number;
  private headHash: string;
  private committedSeq: number;
  private committedHash: string;
  private queue: Queued[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private failure: { message: string; since: number; refused: number } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private indexTimer: NodeJS.Timeout | undefined;
  private optimizeTimer: NodeJS.Timeout | undefined;
  private unsynced = false;
  private key: DeviceKey | undefined;
  private signingError: string | undefined;
  private lastCheckpoint: { seq: number; at: string } | undefined;
  private closed = false;
  /** Problems noticed at open (a head or checkpoint beyond the last event). */
  readonly startupWarnings: string[] = [];
  /** The last event the log held when this writer opened it. */
  readonly openedAt: number;

  private readonly stmt: {
    insert: import('better-sqlite3').Statement;
    setMeta: import('better-sqlite3').Statement;
    maxSeq: import('better-sqlite3').Statement;
    insertCheckpoint: import('better-sqlite3').Statement;
  };
  /** One batch in one transaction; made once (better-sqlite3 builds a wrapper per `transaction()` call). */
  private readonly writeBatch: (batch: Queued[]) => void;

  constructor(options: SqliteAuditStoreOptions) {
    this.file = options.file;
    this.logger = options.logger;
    this.checkpointEvery = options.checkpointEvery ?? 1000;
    this.retryIntervalMs = options.retryIntervalMs ?? 1000;
    this.batchMax = options.batchMax ?? 4096;
    this.db = openForWriting(options.file, options.durability ?? 'process-crash');
    const meta = readMeta(this.db);
    this.device = meta.get('device')!;
    const last = this.db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    const anchorSeq = Number(meta.get('anchor_seq') ?? 0);
    this.headSeq = last?.seq ?? anchorSeq;
    this.headHash = last?.hash ?? meta.get('anchor_hash') ?? GENESIS_HASH;
    this.committedSeq = this.headSeq;
    this.committedHash = this.headHash;
    this.openedAt = this.headSeq;
    const recordedHead = Number(meta.get('head_seq') ?? 0);
    if (recordedHead > this.headSeq) {
      this.startupWarnings.push(
        `the audit log ends at event ${this.headSeq} but its writer had recorded event ${recordedHead}: events were removed behind Gatehouse's back (run gatehouse audit verify)`,
      );
    }
    const cp = this.db.prepare('SELECT seq, at FROM checkpoints ORDER BY seq DESC LIMIT 1').get() as { seq: number; at: string } | undefined;
    if (cp) this.lastCheckpoint = cp;
    if (cp && cp.seq > this.headSeq) {
      this.startupWarnings.push(
        `a signed checkpoint vouches for event ${cp.seq} but the audit log ends at event ${this.headSeq}: it was truncated (run gatehouse audit verify)`,
      );
    }
    this.stmt = {
      insert: this.db.prepare(
        'INSERT INTO events (seq, id, at, type, call_id, user, client, server, name, decision, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      setMeta: this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      maxSeq: this.db.prepare('SELECT max(seq) AS seq FROM events'),
      insertCheckpoint: this.db.prepare('INSERT OR IGNORE INTO checkpoints (seq, at, hash, key_id, signature) VALUES (?, ?, ?, ?, ?)'),
    };
    this.writeBatch = this.db.transaction((batch: Queued[]) => {
      const last = batch[batch.length - 1]!;
      const max = (this.stmt.maxSeq.get() as { seq: number | null }).seq ?? 0;
      if (max !== this.committedSeq && !(max === 0 && this.committedSeq === this.anchorSeq())) {
        throw new GatehouseError('audit_conflict', `another process wrote to the audit log (it holds event ${max}, this writer expected ${this.committedSeq})`);
      }
      for (const q of batch) this.stmt.insert.run(q.seq, q.id, q.at, q.type, q.callId, q.user, q.client, q.server, q.name, q.decision, q.hash, q.body);
      this.stmt.setMeta.run('head_seq', String(last.seq));
      this.stmt.setMeta.run('head_hash', last.hash);
      if (this.key && last.seq - (this.lastCheckpoint?.seq ?? 0) >= this.checkpointEvery) this.insertCheckpoint(last.seq, last.hash);
    });
    const interval = options.checkpointIntervalMs ?? 300_000;
    this.checkpointTimer = setInterval(() => this.checkpointNow(), interval);
    this.checkpointTimer.unref();
    // Query indexes are kept off the append path: a background pass copies new events into them.
    this.indexTimer = setInterval(() => this.indexNow(), options.indexIntervalMs ?? 1000);
    this.indexTimer.unref();
    // Planner statistics: soon after opening (a log that grew while the daemon was away), then hourly.
    this.optimizeTimer = setTimeout(() => {
      this.optimizeNow();
      this.optimizeTimer = setInterval(() => this.optimizeNow(), 3_600_000);
      this.optimizeTimer.unref();
    }, 10_000);
    this.optimizeTimer.unref();
    if ((options.durability ?? 'process-crash') === 'process-crash') {
      this.syncTimer = setInterval(() => this.syncToDisk(), options.syncIntervalMs ?? 1000);
      this.syncTimer.unref();
    }
  }

  /** Brings the query index up to the committed head (derived data: a failure is logged, never fatal). */
  indexNow(): void {
    if (this.closed || this.failure) return;
    try {
      while (indexPending(this.db) > 0) {
        // Keep going until caught up; each pass is one short transaction.
      }
    } catch (error) {
      this.logger?.log('warn', 'audit.index_failed', { error: errorMessage(error) });
    }
  }

  /** Refreshes the query planner's statistics (derived data: a failure is logged, never fatal). */
  optimizeNow(): void {
    if (this.closed || this.failure) return;
    try {
      optimizeQueries(this.db);
    } catch (error) {
      this.logger?.log('warn', 'audit.optimize_failed', { error: errorMessage(error) });
    }
  }

  /** Makes what was committed survive a power cut too (WAL synced by a passive checkpoint). */
  private syncToDisk(): void {
    if (!this.unsynced || this.closed || this.failure) return;
    this.unsynced = false;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch (error) {
      this.logger?.log('warn', 'audit.sync_to_disk_failed', { error: errorMessage(error) });
    }
  }

  /**
   * Calls whose attempt is on record but whose outcome is not, since the last time a daemon
   * started: what was in flight when the previous daemon was killed or crashed. One pass over
   * the previous run's events, newest start backwards; each returned event is the attempt.
   */
  unfinishedCalls(): AuditEvent[] {
    this.flush();
    const started = this.db.prepare("SELECT seq FROM events WHERE type = 'audit.started' ORDER BY seq DESC LIMIT 1").get() as { seq: number } | undefined;
    const rows = this.db.prepare("SELECT type, call_id, body FROM events WHERE seq > ? AND type IN ('call.attempt', 'call.outcome') ORDER BY seq");
    const open = new Map<string, string>();
    for (const row of rows.iterate(started?.seq ?? 0) as Iterable<{ type: string; call_id: string | null; body: string }>) {
      if (row.call_id === null) continue;
      if (row.type === 'call.attempt') open.set(row.call_id, row.body);
      else open.delete(row.call_id);
    }
    return [...open.values()].map((body) => JSON.parse(body) as AuditEvent);
  }

  // --- AuditSink -----------------------------------------------------------------------------

  append(record: AuditRecord): void {
    if (this.closed) throw new GatehouseError('audit_unavailable', 'the audit log is closed');
    if (this.failure) {
      this.failure.refused++;
      throw this.unavailable();
    }
    const seq = this.headSeq + 1;
    const id = randomUUID();
    const sealed = this.sealer.seal(record, { seq, id, device: this.device, prev: this.headHash });
    this.headSeq = seq;
    this.headHash = sealed.hash;
    this.queue.push({
      seq,
      hash: sealed.hash,
      body: sealed.body,
      id,
      at: record.at,
      type: record.type,
      callId: record.callId ?? null,
      user: record.user ?? null,
      client: record.client ?? null,
      server: record.server ?? null,
      name: record.name ?? null,
      decision: record.decision ?? null,
    });
    if (this.queue.length >= this.batchMax) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  durable(): Promise<void> {
    if (this.failure) return Promise.reject(this.unavailable());
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  // --- Writing -------------------------------------------------------------------------------

  /** Writes every queued event now, in one transaction. Never throws; a failure is kept and reported. */
  flush(): void {
    if (this.queue.length === 0 || this.closed) return;
    const batch = this.queue;
    try {
      this.write(batch);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.queue = [];
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
    if (this.failure) this.recovered();
    this.events.emit('commit', this.committedSeq);
  }

  private write(batch: Queued[]): void {
    const last = batch[batch.length - 1]!;
    this.writeBatch(batch);
    this.unsynced = true;
    this.committedSeq = last.seq;
    this.committedHash = last.hash;
  }

  private insertCheckpoint(seq: number, hash: string): void {
    const key = this.key!;
    const at = new Date().toISOString();
    const c = signCheckpoint(key.sign, { device: this.device, seq, hash, at, keyId: key.keyId });
    this.stmt.insertCheckpoint.run(c.seq, c.at, c.hash, c.keyId, c.signature);
    this.lastCheckpoint = { seq, at };
  }

  /** Signs a checkpoint for the committed head now, if there is anything new to vouch for. */
  checkpointNow(): void {
    if (this.closed || !this.key || this.failure) return;
    this.flush();
    if (this.failure || this.committedSeq === 0 || this.committedSeq <= (this.lastCheckpoint?.seq ?? 0)) return;
    try {
      this.insertCheckpoint(this.committedSeq, this.committedHash);
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown): void {
    const message = errorMessage(error);
    const waiters = this.waiters;
    this.waiters = [];
    if (!this.failure) {
      this.failure = { message, since: Date.now(), refused: 0 };
      this.logger?.log('error', 'audit.unavailable', {
        error: message,
        queued: this.queue.length,
        note: 'calls are refused until the audit log can be written',
      });
      this.events.emit('failure', message);
    } else this.failure.message = message;
    for (const w of waiters) w.reject(this.unavailable());
    if (!this.retryTimer && !this.closed) {
      this.retryTimer = setInterval(() => this.flushOrProbe(), this.retryIntervalMs);
      this.retryTimer.unref();
    }
  }

  private flushOrProbe(): void {
    if (this.queue.length > 0) this.flush();
    else {
      // Nothing queued: the failure came from a checkpoint; try one again.
      try {
        if (this.key && this.committedSeq > (this.lastCheckpoint?.seq ?? 0)) this.insertCheckpoint(this.committedSeq, this.committedHash);
        this.recovered();
      } catch (error) {
        this.fail(error);
      }
    }
  }

  private recovered(): void {
    const failure = this.failure;
    if (!failure) return;
    this.failure = undefined;
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    this.logger?.log('warn', 'audit.recovered', { unavailableMs: Date.now() - failure.since, refusedAppends: failure.refused });
    this.append({
      type: 'audit.recovered',
      at: new Date().toISOString(),
      reason: failure.message,
      detail: { unavailableSince: new Date(failure.since).toISOString(), refusedAppends: failure.refused },
    });
  }

  private unavailable(): GatehouseError {
    return new GatehouseError(
      'audit_unavailable',
      `the audit log cannot be written (${this.failure?.message ?? 'unknown error'}); calls are refused until it can`,
    );
  }

  private anchorSeq(): number {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'anchor_seq'").get() as { value: string } | undefined;
    return Number(row?.value ?? 0);
  }

  // --- The device key ------------------------------------------------------------------------

  /**
   * Gives the store the device key (read from the keychain), or the reason there is none. The first
   * key is recorded in `meta` and as an `audit.device_key` event; a different key later is refused.
   */
  setDeviceKey(key: DeviceKey | undefined, error?: string): void {
    if (!key) {
      this.key = undefined;
      this.signingError = error;
      return;
    }
    const meta = readMeta(this.db);
    const known = meta.get('public_key');
    if (known && known !== key.publicKey) {
      this.key = undefined;
      this.signingError = `the keychain's device key (${key.keyId}) is not the one this audit log was signed with (${meta.get('key_id')}); checkpoints are not signed`;
      this.logger?.log('error', 'audit.device_key_mismatch', { error: this.signingError });
      return;
    }
    this.key = key;
    this.signingError = undefined;
    if (!known) {
      try {
        this.stmt.setMeta.run('public_key', key.publicKey);
        this.stmt.setMeta.run('key_id', key.keyId);
        this.append({ type: 'audit.device_key', at: new Date().toISOString(), detail: { device: this.device, publicKey: key.publicKey, keyId: key.keyId } });
      } catch (error) {
        this.fail(error);
      }
    }
    this.checkpointNow();
  }

  get deviceKey(): DeviceKey | undefined {
    return this.key;
  }

  // --- Reading (the sync sender, status, retention) ------------------------------------------

  get committed(): number {
    return this.committedSeq;
  }

  /**
   * Committed events after `afterSeq`, and the checkpoints after `checkpointsAfter` (default: the
   * same) that vouch for events up to the last one returned (or up to the committed head).
   */
  readBatch(afterSeq: number, limit: number, checkpointsAfter = afterSeq): { events: SealedEvent[]; checkpoints: Checkpoint[] } {
    const events = this.db.prepare('SELECT seq, hash, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as SealedEvent[];
    const through = events.length > 0 ? events[events.length - 1]!.seq : this.committedSeq;
    const checkpoints = (
      this.db
        .prepare('SELECT seq, at, hash, key_id AS keyId, signature FROM checkpoints WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 1000')
        .all(checkpointsAfter, through) as Omit<Checkpoint, 'device'>[]
    ).map((c) => ({ ...c, device: this.device }));
    return { events, checkpoints };
  }

  /** The hash of event `seq`, if the log holds it. */
  hashOf(seq: number): string | undefined {
    return (this.db.prepare('SELECT hash FROM events WHERE seq = ?').get(seq) as { hash: string } | undefined)?.hash;
  }

  /** When event `seq` was recorded (for the sync lag in seconds). */
  timeOf(seq: number): string | undefined {
    return (this.db.prepare('SELECT at FROM events WHERE seq = ?').get(seq) as { at: string } | undefined)?.at;
  }

  hubAcked(): number {
    return Number(readMeta(this.db).get('hub_acked_seq') ?? 0);
  }

  recordHubAck(seq: number): void {
    if (this.closed) return;
    try {
      this.stmt.setMeta.run('hub_acked_seq', String(seq));
      this.stmt.setMeta.run('hub_acked_at', new Date().toISOString());
    } catch (error) {
      this.logger?.log('warn', 'audit.ack_not_recorded', { error: errorMessage(error) });
    }
  }

  query(filter: AuditFilter): QueriedEvent[] {
    return queryEvents(this.db, filter);
  }

  /** See `pruneAcknowledged`. */
  prune(before: string): PruneResult {
    this.flush();
    const result = pruneAcknowledged(this.db, before);
    if (result.pruned > 0) this.logger?.log('info', 'audit.pruned', { through: result.anchor?.seq, pruned: result.pruned });
    return result;
  }

  status(): AuditStoreStatus {
    const meta = readMeta(this.db);
    return {
      file: this.file,
      device: this.device,
      records: this.headSeq,
      committed: this.committedSeq,
      healthy: !this.failure,
      ...(this.failure ? { error: this.failure.message, unavailableSince: new Date(this.failure.since).toISOString() } : {}),
      signing: this.key
        ? { state: 'ok', keyId: this.key.keyId }
        : this.signingError
          ? { state: 'unavailable', error: this.signingError }
          : { state: 'pending' },
      ...(this.lastCheckpoint ? { lastCheckpoint: this.lastCheckpoint } : {}),
      hubAcked: Number(meta.get('hub_acked_seq') ?? 0),
      prunedThrough: Number(meta.get('anchor_seq') ?? 0),
    };
  }

  /** Writes what is queued, signs a last checkpoint, and closes. */
  close(): void {
    if (this.closed) return;
    this.flush();
    if (!this.failure) this.checkpointNow();
    this.indexNow();
    this.optimizeNow();
    this.closed = true;
    if (this.retryTimer) clearInterval(this.retryTimer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.indexTimer) clearInterval(this.indexTimer);
    if (this.optimizeTimer) clearTimeout(this.optimizeTimer);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(new GatehouseError('audit_unavailable', 'the audit log was closed before these events could be written'));
    this.db.close();
  }

  /** For tests and benchmarks only: the raw database handle. */
  get database(): Db {
    return this.db;
  }
}

export interface PruneResult {
  pruned: number;
  anchor?: { seq: number; hash: string };
}

/**
 * Deletes events the hub has acknowledged and that were recorded before `before`, up to the newest
 * signed checkpoint among them, which becomes the anchor the remaining chain is verified from.
 * Safe beside a running writer: it never touches events the writer's head depends on.
 */
export function pruneAcknowledged(db: Db, before: string): PruneResult {
  const meta = readMeta(db);
  const acked = Number(meta.get('hub_acked_seq') ?? 0);
  const anchorSeq = Number(meta.get('anchor_seq') ?? 0);
  const limit = db.prepare('SELECT max(seq) AS seq FROM events WHERE seq <= ? AND at < ?').get(acked, before) as { seq: number | null };
  const cp = db.prepare('SELECT seq, hash FROM checkpoints WHERE seq <= ? ORDER BY seq DESC LIMIT 1').get(limit.seq ?? 0) as
    { seq: number; hash: string } | undefined;
  if (!cp || cp.seq <= anchorSeq) return { pruned: 0 };
  const setMeta = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  const run = db.transaction(() => {
    setMeta.run('prunable_through', String(cp.seq));
    setMeta.run('anchor_seq', String(cp.seq));
    setMeta.run('anchor_hash', cp.hash);
    db.prepare('DELETE FROM events_index WHERE seq <= ?').run(cp.seq);
    // Zones wholly pruned; a zone partly pruned keeps bounds that still hold for what is left.
    db.prepare(`DELETE FROM events_zones WHERE zone < ((? + 1) >> ${ZONE_BITS})`).run(cp.seq);
    return db.prepare('DELETE FROM events WHERE seq <= ?').run(cp.seq).changes;
  });
  return { pruned: run(), anchor: cp };
}
