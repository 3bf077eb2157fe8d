/**
 * HTTP for signing in to remote servers: every request to a resource or authorization server has a
 * time limit and every answer a size limit, so that a slow or hostile server can neither hang a
 * sign-in nor fill the daemon's memory. The SDK's auth helpers take this as their `fetchFn`.
 */
import type { FetchLike } from '@modelcontextprotocol/client';
import { GatehouseError, errorMessage } from '../../common/errors.js';

export interface HttpLimits {
  /** Per request, connection to last byte. */
  timeoutMs: number;
  /** Largest answer body read. */
  maxBytes: number;
}

export const AUTH_HTTP_LIMITS: HttpLimits = { timeoutMs: 15_000, maxBytes: 256 * 1024 };

/** A fetch that gives up after `timeoutMs` and refuses answers over `maxBytes` (read fully, then handed on). */
export function boundedFetch(limits: HttpLimits = AUTH_HTTP_LIMITS, base: typeof fetch = fetch): FetchLike {
  return async (url, init) => {
    const timeout = AbortSignal.timeout(limits.timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const response = await base(url, { ...init, signal, redirect: 'manual' });
    const body = await readLimited(response, limits.maxBytes, String(url));
    return new Response(body.length === 0 || [204, 205, 304].includes(response.status) ? null : body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

async function readLimited(response: Response, maxBytes: number, url: string): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new GatehouseError('upstream_auth_oversized', `${origin(url)} answered with ${declared} bytes, over the ${maxBytes}-byte limit for sign-in traffic`);
  }
  if (!response.body) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new GatehouseError('upstream_auth_oversized', `${origin(url)} answered with more than ${maxBytes} bytes, the limit for sign-in traffic`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * POSTs a form to a token, revocation or exchange endpoint and reads the JSON answer. An OAuth error
 * answer becomes a `GatehouseError` whose code is `oauth_<error>` (`oauth_invalid_grant`), with the
 * server's description clipped; a network failure is `upstream_auth_unreachable`.
 */
export async function postForm(fetchFn: FetchLike, url: string, form: URLSearchParams, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
    });
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('upstream_auth_unreachable', `${what}: cannot reach ${origin(url)} (${errorMessage(error)})`, { cause: error });
  }
  const text = await response.text();
  let doc: unknown;
  try {
    doc = text === '' ? {} : JSON.parse(text);
  } catch {
    doc = undefined;
  }
  if (!response.ok) throw oauthError(doc, response.status, what);
  if (doc === undefined) throw new GatehouseError('upstream_auth_failed', `${what}: ${origin(url)} answered with something other than JSON`);
  return doc;
}

/** An OAuth error answer (RFC 6749, 5.2) as a stable code and a short message. */
export function oauthError(doc: unknown, status: number, what: string): GatehouseError {
  const r = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  const error = typeof r.error === 'string' && /^[\x20-\x7e]{1,64}$/.test(r.error) ? r.error : undefined;
  const description = typeof r.error_description === 'string' ? ` (${clean(r.error_description)})` : '';
  if (!error) return new GatehouseError('upstream_auth_failed', `${what}: the server answered HTTP ${status}`);
  return new GatehouseError(`oauth_${error.replace(/[^a-z_]/g, '_')}`, `${what}: ${error}${description}`);
}

/** A server-supplied text made safe to show: printable, one line, short. */
export function clean(text: string, max = 200): string {
  const one = text.replace(/[^\x20-\x7e\u00a0-\uffff]/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the server';
  }
}
