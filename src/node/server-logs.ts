/**
 * Each server's stderr on disk: `<logDir>/<server>.log`, rotated to `.1`, `.2`, … when it reaches
 * the configured size. Writes are synchronous and small; a server that floods stderr costs disk
 * bounded by `bytes × (kept + 1)`.
 */
import { closeSync, existsSync, fstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerLogSink } from '../core/ports.js';

export class RotatingServerLogs implements ServerLogSink {
  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly kept: number,
  ) {}

  fileOf(server: string): string {
    return join(this.dir, `${server}.log`);
  }

  open(server: string): { write(line: string): void; close(): void } {
    const file = this.fileOf(server);
    let fd = openSync(file, 'a', 0o600);
    let size = fstatSync(fd).size;
    const rotate = (): void => {
      closeSync(fd);
      const oldest = `${file}.${this.kept}`;
      if (existsSync(oldest)) unlinkSync(oldest);
      for (let i = this.kept - 1; i >= 1; i--) {
        if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      }
      renameSync(file, `${file}.1`);
      fd = openSync(file, 'a', 0o600);
      size = 0;
    };
    return {
      write: (line: string) => {
        if (fd < 0) return;
        const text = `${new Date().toISOString()} ${line}\n`;
        try {
          if (size + Buffer.byteLength(text) > this.maxBytes && size > 0) rotate();
          size += writeSync(fd, text);
        } catch {
          // A full disk must not take the supervisor down; the ring buffer still has the line.
        }
      },
      close: () => {
        if (fd >= 0) closeSync(fd);
        fd = -1;
      },
    };
  }
}
