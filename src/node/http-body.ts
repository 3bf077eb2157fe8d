/**
 * Reading a request body with a size limit, for every HTTP server of the daemon (MCP endpoint,
 * pairing/approval page, OAuth server). A body over the limit is refused as soon as it is known to
 * be: by its declared length before anything is read, or by the bytes that arrive; what was read is
 * dropped and nothing more is kept.
 */
import type { IncomingMessage } from 'node:http';

/** The body, or undefined when it is over `limit` bytes. */
export function readBodyLimited(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}
