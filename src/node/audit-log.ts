/**
 * The local audit log for the gateway issue: one JSON record per line, appended to a user-only
 * file that Gatehouse only ever opens for appending. Records are written at the end of the tick
 * in which they were made (one write for a burst), and a write that fails makes the next append
 * throw, so that the chain refuses calls rather than run unaudited.
 *
 * The tamper-evident SQLite store of the audit issue replaces this behind the same `AuditSink` port.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { GatehouseError, errorMessage } from '../common/errors.js';
import type { AuditRecord, AuditSink } from '../core/ports.js';

export class JsonlAuditLog implements AuditSink {
  private fd: number;
  private pending: string[] = [];
  private scheduled = false;
  private failure: string | undefined;
  private sequence = 0;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'a+', 0o600);
    // Continue the sequence of an existing file.
    this.sequence = countLines(this.fd);
  }

  get records(): number {
    return this.sequence;
  }

  append(record: AuditRecord): void {
    if (this.failure) throw new GatehouseError('audit_unavailable', `the audit log cannot be written (${this.failure}); calls are refused until it can`);
    this.sequence += 1;
    this.pending.push(JSON.stringify({ seq: this.sequence, ...record }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes everything pending now. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0 || this.fd < 0) return;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    try {
      const buffer = Buffer.from(text, 'utf8');
      let offset = 0;
      while (offset < buffer.length) offset += writeSync(this.fd, buffer, offset);
    } catch (error) {
      this.failure = errorMessage(error);
    }
  }

  close(): void {
    this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

function countLines(fd: number): number {
  const size = fstatSync(fd).size;
  if (size === 0) return 0;
  const buffer = Buffer.alloc(Math.min(size, 1 << 20));
  let lines = 0;
  let position = 0;
  while (position < size) {
    const read = readSync(fd, buffer, 0, buffer.length, position);
    if (read <= 0) break;
    for (let i = 0; i < read; i++) if (buffer[i] === 0x0a) lines++;
    position += read;
  }
  return lines;
}
