/**
 * Reading a request body with a size limit, for every HTTP server of the daemon (MCP endpoint,
 * pairing/approval page, OAuth server). A body over the limit is refused as soon as it is known to
 * be: by its declared length before anything is read, or by the bytes that arrive; what was read is
 * dropped and nothing more is kept.
 */
import type { IncomingMessage } from 'node:http';

export type BodyRead = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'aborted' };

/**
 * The body, or why there is none: over `limit` bytes, or the connection closed before the body ended
 * (the client went away, or the server's request deadline closed it). Never rejects.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyRead> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      resolve({ ok: false, reason: 'too_large' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyRead): void => {
      if (settled) return;
      settled = true;
      chunks.length = 0;
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) return settle({ ok: false, reason: 'too_large' });
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!settled) {
        settled = true;
        resolve({ ok: true, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      }
    });
    // 'close' without 'end': the body never finished.
    req.on('close', () => settle({ ok: false, reason: 'aborted' }));
    req.on('error', () => settle({ ok: false, reason: 'aborted' }));
  });
}

/** The body, or undefined when it is over `limit` bytes; rejects when the connection closes before the body ends. */
export async function readBodyLimited(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const read = await readBody(req, limit);
  if (read.ok) return read.body;
  if (read.reason === 'too_large') return undefined;
  throw new Error('the connection closed before the request body was complete');
}
