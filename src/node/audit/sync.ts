/**
 * The background sender: reads committed events after the hub's ack, posts them in batches, and
 * moves its cursor only to what the hub acknowledges. The cursor is the hub's own ack (asked for
 * again after every failure and at every start), so a restart, a lost response or a killed
 * daemon neither loses nor duplicates anything: a repeated batch is idempotent at the hub.
 *
 * Failures back off exponentially (with jitter) up to `maxDelayMs`; a refusal (unknown or revoked
 * device, a forged record) waits the longest delay and is shown in `gatehouse status`.
 */
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../core/ports.js';
import type { IntegrityFlag } from '../../core/audit/protocol.js';
import { HubError, type HubClient } from './hub-client.js';
import type { SqliteAuditStore } from './sqlite-store.js';
import type { AuditSyncStatus } from '../../common/status.js';

export interface SyncOptions {
  store: SqliteAuditStore;
  client: HubClient;
  logger?: Logger;
  /** Events per batch (default 1000). */
  batchSize?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** How often to look for new events once caught up (default 1000 ms). */
  idleMs?: number;
}

/** What `gatehouse status` shows of the sender: the shape is declared once, in the status contract. */
export type SyncStatus = AuditSyncStatus;
export type SyncState = AuditSyncStatus['state'];

export class AuditSyncSender {
  private readonly store: SqliteAuditStore;
  private readonly client: HubClient;
  private readonly logger: Logger | undefined;
  private readonly batchSize: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly idleMs: number;
  private cursor: number | undefined;
  /** The newest checkpoint the hub holds. */
  private checkpointCursor = 0;
  private state: SyncState = 'starting';
  private failures = 0;
  private lastSyncAt: number | undefined;
  private lastError: string | undefined;
  private nextAttemptAt: number | undefined;
  private flags: IntegrityFlag[] = [];
  private stopped = false;
  private readonly abort = new AbortController();
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(options: SyncOptions) {
    this.store = options.store;
    this.client = options.client;
    this.logger = options.logger;
    this.batchSize = options.batchSize ?? 1000;
    this.initialDelayMs = options.initialDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.idleMs = options.idleMs ?? 1000;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    this.abort.abort();
    this.wakeUp?.();
    await this.loop;
  }

  status(): SyncStatus {
    const head = this.store.committed;
    const acked = this.cursor ?? this.store.hubAcked();
    const lagRecords = Math.max(0, head - acked);
    const oldest = lagRecords > 0 ? this.store.timeOf(acked + 1) : undefined;
    return {
      hub: this.client.url,
      device: this.store.device,
      state: this.state,
      acked,
      head,
      lagRecords,
      lagSeconds: oldest ? Math.max(0, Math.round((Date.now() - Date.parse(oldest)) / 1000)) : 0,
      ...(this.lastSyncAt ? { lastSyncAt: new Date(this.lastSyncAt).toISOString() } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.nextAttemptAt && this.state !== 'idle' && this.state !== 'sending' ? { nextAttemptAt: new Date(this.nextAttemptAt).toISOString() } : {}),
      ...(this.flags.length > 0 ? { flags: this.flags } : {}),
    };
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.step();
      } catch (error) {
        if (this.stopped) break;
        await this.backOff(error);
      }
    }
  }

  /** One round: learn the ack if unknown, then send one batch or wait for new events. */
  private async step(): Promise<void> {
    if (this.cursor === undefined) {
      const state = await this.client.state(this.abort.signal);
      if (!state)
        throw new HubError(
          404,
          'unknown_device',
          `the hub at ${this.client.url} does not know device ${this.store.device}; enrol it with \`gatehouse audit enrol\``,
        );
      if (state.status === 'revoked') throw new HubError(403, 'device_revoked', `the hub has revoked device ${this.store.device}`);
      const head = this.store.committed;
      const localHash = state.acked === 0 ? state.ackedHash : this.store.hashOf(state.acked);
      if (state.acked > head || localHash !== state.ackedHash) {
        // The hub holds events this log no longer has, or holds them differently: the local log
        // was truncated or rewritten. Send from where this writer took over the log, so that the
        // hub sees the fork where it starts.
        this.cursor = Math.min(state.acked, head, this.store.openedAt);
        this.lastError =
          state.acked > head
            ? `the hub holds events through ${state.acked} but the local audit log ends at ${head}: it was truncated`
            : `the local audit log's event ${state.acked} differs from the one the hub holds: it was rewritten`;
        this.logger?.log('error', 'audit.sync_diverged', { hubAcked: state.acked, localHead: head, error: this.lastError });
      } else this.cursor = state.acked;
      this.checkpointCursor = state.checkpoint ?? 0;
      this.store.recordHubAck(this.cursor);
    }
    const batch = this.store.readBatch(this.cursor, this.batchSize, this.checkpointCursor);
    if (batch.events.length === 0 && batch.checkpoints.length === 0) {
      this.state = 'idle';
      await this.sleep(this.idleMs);
      return;
    }
    this.state = 'sending';
    const response = await this.client.sendBatch({ device: this.store.device, events: batch.events, checkpoints: batch.checkpoints }, this.abort.signal);
    this.flags = response.flags;
    const last = batch.events.length > 0 ? batch.events[batch.events.length - 1]!.seq : this.cursor;
    if (batch.checkpoints.length > 0) this.checkpointCursor = Math.max(this.checkpointCursor, batch.checkpoints[batch.checkpoints.length - 1]!.seq);
    if (response.acked > this.cursor) {
      this.cursor = response.acked;
      this.store.recordHubAck(response.acked);
      this.lastSyncAt = Date.now();
      this.failures = 0;
      if (response.flags.length === 0) this.lastError = undefined;
    }
    if (response.acked < last) {
      const why = response.flags.map((f) => `${f.kind} at ${f.seq}: ${f.message}`).join('; ') || 'no reason given';
      throw new HubError(409, 'not_acknowledged', `the hub acknowledged only through ${response.acked} of a batch ending at ${last} (${why})`);
    }
  }

  private async backOff(error: unknown): Promise<void> {
    this.failures++;
    const refused = error instanceof HubError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429;
    const base = refused ? this.maxDelayMs : Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** Math.min(this.failures - 1, 20));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.state = refused ? 'refused' : 'backing-off';
    this.lastError = errorMessage(error);
    this.nextAttemptAt = Date.now() + delay;
    // Ask the hub for its ack again next time: a response lost in transit may have moved it.
    this.cursor = undefined;
    this.logger?.log(refused ? 'error' : 'warn', 'audit.sync_failed', { error: this.lastError, retryInMs: delay, failures: this.failures });
    await this.sleep(delay);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }
}
