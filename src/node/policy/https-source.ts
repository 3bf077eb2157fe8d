/**
 * Fetching a bundle from the managed settings' URL: HTTPS only (the bundle is signed, but a
 * plain-text channel would still let anyone on the path hold back new bundles unseen), with
 * `If-None-Match` so an unchanged bundle costs one small response, no redirects, a size cap and
 * a timeout.
 */
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { MAX_BUNDLE_BYTES } from './content.js';

export type FetchResult = { status: 'unchanged' } | { status: 'ok'; body: Buffer; etag?: string };

export interface FetchOptions {
  etag?: string;
  /** PEM of an extra certificate authority, added to Node's own list. */
  ca?: string;
  timeoutMs?: number;
}

export function fetchBundle(url: URL, options: FetchOptions = {}): Promise<FetchResult> {
  if (url.protocol !== 'https:') return Promise.reject(new Error(`${url.origin}: only https:// URLs are used for policy bundles`));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json', ...(options.etag ? { 'if-none-match': options.etag } : {}) },
        ...(options.ca ? { ca: [...rootCertificates, options.ca] } : {}),
        timeout: options.timeoutMs ?? 30_000,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status === 304) {
          res.resume();
          resolve({ status: 'unchanged' });
          return;
        }
        if (status !== 200) {
          res.resume();
          const where = status >= 300 && status < 400 ? ` (to ${String(res.headers.location)}; redirects are not followed)` : '';
          reject(new Error(`${url.href} answered HTTP ${status}${where}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BUNDLE_BYTES) {
            req.destroy(new Error(`${url.href}: the bundle is larger than ${MAX_BUNDLE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          const etag = res.headers.etag;
          resolve({ status: 'ok', body: Buffer.concat(chunks), ...(typeof etag === 'string' ? { etag } : {}) });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url.href}: no answer within ${options.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}
