/**
 * A `fetch` that trusts one extra CA, for in-process clients of a hub serving a self-signed
 * certificate (Node's own fetch reads extra CAs only from NODE_EXTRA_CA_CERTS, at process start).
 * Enough of fetch for the hub client: method, headers, a string or bytes body, an abort signal.
 */
import { request } from 'node:https';

export function fetchTrusting(ca: string | Buffer): typeof fetch {
  return ((input: string | URL | Request, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      const req = request(url, { method: init.method ?? 'GET', headers, ca, signal: init.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 500;
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve(new Response(body, { status, headers: out }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (init.body !== undefined && init.body !== null) req.end(typeof init.body === 'string' ? init.body : Buffer.from(init.body as Uint8Array));
      else req.end();
    })) as typeof fetch;
}
