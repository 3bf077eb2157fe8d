/**
 * Hand-made HTTP requests to the daemon's MCP endpoint, for what an SDK client never sends: no
 * token, a foreign Host or Origin, an oversized body, a stolen session id. Uses `node:http` rather
 * than fetch, because fetch will not send a Host header of the caller's choosing.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { MODERN_VERSION, type Era } from './clients.js';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the body with chunked encoding, without a Content-Length. */
  chunked?: boolean;
}

export function rawRequest(url: string, options: RawRequest = {}): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.body !== undefined && !options.chunked) headers['content-length'] = String(Buffer.byteLength(options.body));
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: options.method ?? 'POST', headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) {
      if (options.chunked) {
        // Several writes, so the server sees the body arrive in pieces.
        const data = Buffer.from(options.body);
        const piece = 16 * 1024;
        for (let at = 0; at < data.length; at += piece) req.write(data.subarray(at, at + piece));
      } else req.write(options.body);
    }
    req.end();
  });
}

/** The JSON-RPC message in a response body, whether sent as JSON or as the first SSE `data:` line. */
export function rpcOf(response: RawResponse): { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string } } {
  const text = response.body.trim();
  if (text.startsWith('{')) return JSON.parse(text) as ReturnType<typeof rpcOf>;
  const messages = text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trim())
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as ReturnType<typeof rpcOf> & { method?: string });
  // A server may send requests and notifications on a call's stream before its answer (the everything server asks for roots): the answer is what counts.
  const answer = messages.find((m) => m.method === undefined && ('result' in m || 'error' in m)) ?? messages[0];
  if (!answer) throw new Error(`no JSON-RPC message in: ${text.slice(0, 300)}`);
  return answer;
}

const CLIENT_INFO = { name: 'raw-http-test', version: '1.0.0' };

/** The headers an SDK client of that era sends with a request (without the credential). */
export function mcpHeaders(era: Era, method?: string): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (era === 'modern') {
    headers['mcp-protocol-version'] = MODERN_VERSION;
    if (method) headers['mcp-method'] = method;
  }
  return headers;
}

/** The request that opens a conversation in that era: `initialize` (2025) or `server/discover` (2026-07-28). */
export function openingRequest(era: Era): string {
  if (era === 'legacy') {
    return JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: CLIENT_INFO },
    });
  }
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: modernMeta() } });
}

/** A request of that era for `method` (2026-07-28 requests carry the per-request `_meta` envelope). */
export function rpcRequest(era: Era, method: string, params: Record<string, unknown> = {}, id: number = 2): string {
  const withMeta = era === 'modern' ? { ...params, _meta: modernMeta() } : params;
  return JSON.stringify({ jsonrpc: '2.0', id, method, params: withMeta });
}

function modernMeta(): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
    'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
    'io.modelcontextprotocol/clientCapabilities': {},
  };
}

/** A request whose answer is read as it arrives: an SSE stream a test reacts to before it ends. */
export interface StreamedRequest {
  /** The status and headers (in the order sent, as name/value pairs), once they arrive. */
  head: Promise<{ status: number; rawHeaders: string[] }>;
  /** The body so far. */
  body(): string;
  /** The first JSON-RPC message of an SSE `data:` line that `accept` takes, once it has arrived. */
  next(accept: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** The whole body, once the response ends. */
  done: Promise<string>;
  /** Closes the connection, as a client that goes away does. */
  destroy(): void;
}

export function streamRequest(url: string, options: { headers: Record<string, string>; body: string }): StreamedRequest {
  const target = new URL(url);
  let text = '';
  let wake: (() => void) | undefined;
  let head!: (value: { status: number; rawHeaders: string[] }) => void;
  let finish!: (body: string) => void;
  let fail!: (error: Error) => void;
  const headPromise = new Promise<{ status: number; rawHeaders: string[] }>((resolve) => (head = resolve));
  const done = new Promise<string>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  done.catch(() => undefined);
  const req = request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: 'POST',
      headers: { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) },
      agent: false,
    },
    (res) => {
      head({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        wake?.();
      });
      res.on('end', () => finish(text));
      res.on('error', fail);
    },
  );
  req.on('error', fail);
  req.end(options.body);
  const messages = (): Record<string, unknown>[] =>
    text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);
  return {
    head: headPromise,
    body: () => text,
    done,
    destroy: () => req.destroy(),
    async next(accept, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages().find(accept);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no such message within ${timeoutMs} ms; body so far: ${text.slice(0, 500)}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
    },
  };
}
