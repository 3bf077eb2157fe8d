/**
 * Reading a stream of text lines with a cap on a line's length: a server's stderr, a sandbox's
 * trace. A line longer than `maxLine` is handed to `onOversized` (its head) once and the rest of
 * it skipped up to its end, so one endless line cannot grow the daemon's memory.
 */
import type { Readable } from 'node:stream';

export interface LineReader {
  maxLine: number;
  onLine(line: string): void;
  /** The first `maxLine` characters of a line that was too long; the rest of that line is skipped. */
  onOversized?(head: string): void;
}

/** Reads until the stream ends, fails or closes; the promise settles then (never rejects). A final line without a newline counts. */
export function readLines(stream: Readable, reader: LineReader): Promise<void> {
  let pending = '';
  let skipping = false;
  stream.setEncoding('utf8');
  return new Promise((resolve) => {
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let start = 0;
      let nl: number;
      while ((nl = pending.indexOf('\n', start)) !== -1) {
        const line = pending.slice(start, nl > start && pending.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
        start = nl + 1;
        if (skipping) skipping = false;
        else reader.onLine(line);
      }
      pending = start === 0 ? pending : pending.slice(start);
      if (pending.length > reader.maxLine) {
        if (!skipping) reader.onOversized?.(pending.slice(0, reader.maxLine));
        skipping = true;
        pending = '';
      }
    });
    stream.once('end', () => {
      if (pending !== '' && !skipping) reader.onLine(pending);
      pending = '';
      resolve();
    });
    stream.on('error', () => resolve());
    stream.once('close', () => resolve());
  });
}
