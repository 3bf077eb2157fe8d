/** Reading capped text lines from a stream (src/node/lines.ts): a server's stderr, a sandbox's trace. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readLines } from '../../src/node/lines.js';

async function read(chunks: string[], maxLine = 10): Promise<{ lines: string[]; oversized: string[] }> {
  const stream = new PassThrough();
  const lines: string[] = [];
  const oversized: string[] = [];
  const done = readLines(stream, { maxLine, onLine: (l) => lines.push(l), onOversized: (h) => oversized.push(h) });
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await done;
  return { lines, oversized };
}

describe('readLines', () => {
  it('splits lines across chunks, drops a carriage return before the newline, and keeps a last line without one', async () => {
    expect((await read(['one\ntw', 'o\r\nthree\n\nfour'])).lines).toEqual(['one', 'two', 'three', '', 'four']);
  });

  it('hands the head of a line past the cap over once, skips the rest of it, and goes on with the next', async () => {
    const { lines, oversized } = await read(['short\n0123456789abc', 'defghijklmnop', 'qrstuvwxyz\nafter\n']);
    expect(oversized).toEqual(['0123456789abc'.slice(0, 10)]);
    expect(lines).toEqual(['short', 'after']);
  });

  it('settles when the stream fails, and survives a second failure', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    const done = readLines(stream, { maxLine: 100, onLine: (l) => lines.push(l) });
    stream.write('kept\n');
    stream.emit('error', new Error('first'));
    stream.emit('error', new Error('second'));
    await done;
    expect(lines).toEqual(['kept']);
  });
});
