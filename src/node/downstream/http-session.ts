/**
 * A 2025-era Streamable HTTP session (protocol revision 2025-11-25 and earlier), served straight on
 * Node's request and response objects: the transport between the HTTP listener and the session's SDK
 * server. It does what the SDK's web-standard transport does for a session (the same status codes and
 * messages), without turning every request into a WHATWG `Request`, every answer into a `Response`
 * stream and every message into a zod parse: that glue cost a 2025-era HTTP call about twice what a
 * socket call cost (BENCHMARKS.md).
 *
 * A POST that carries requests is answered with an SSE stream, as the SDK answers it (a client, or the
 * conformance suite, sees the same wire either way); its headers leave with its first event, so that a
 * short answer (headers, the result, the end) is one packet. Messages not related to a request go to
 * the session's one GET stream, when the client holds one open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  isJsonContentType,
  SUPPORTED_PROTOCOL_VERSIONS,
  type AuthInfo,
  type JSONRPCMessage,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/server';
import { RpcErrorCode } from '../../common/errors.js';
import { serializeLine } from './wire-json.js';

type RequestId = string | number;

/** At most this many messages in one POSTed batch (as the SDK). */
const MAX_BATCH = 100;
/** An SSE comment this often keeps idle streams open through proxies and client timeouts (as the SDK). */
const KEEP_ALIVE_MS = 15_000;

/** One POST that carries requests: its response stream, and which of its requests are answered. */
interface Exchange {
  res: ServerResponse;
  ids: RequestId[];
  answered: Set<RequestId>;
  /** The stream's headers are written (with its first event). */
  started: boolean;
  keepAlive?: NodeJS.Timeout;
  done: boolean;
}

export interface HttpSessionTransportOptions {
  sessionIdGenerator: () => string;
  /**
   * Offered each POSTed message before `onmessage`, with the signal of the request that carried it
   * (see `post`): one it returns true for was served by the caller and is not delivered (a 2025
   * session's direct `tools/call` path, `direct-calls.ts`). Its answers come back through `send`,
   * related to their request as the SDK's are.
   */
  take?: (message: Readonly<Record<string, unknown>>, gone?: () => AbortSignal) => boolean;
  onsessioninitialized?: (id: string) => void;
  /** The client ended the session (DELETE). */
  onsessionclosed?: (id: string) => void;
  keepAliveMs?: number;
}

export class HttpSessionTransport implements Transport {
  sessionId?: string;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: Transport['onmessage'];

  private started = false;
  private initialized = false;
  private closed = false;
  private supported: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
  private exchanges = new Map<RequestId, Exchange>();
  private standalone: { res: ServerResponse; keepAlive?: NodeJS.Timeout } | undefined;

  constructor(private readonly options: HttpSessionTransportOptions) {}

  async start(): Promise<void> {
    if (this.started) throw new Error('HttpSessionTransport already started');
    this.started = true;
  }

  setSupportedProtocolVersions(versions: string[]): void {
    this.supported = versions;
  }

  /**
   * Serves one HTTP request of this session; `body` is the parsed POST body. Resolves once the request
   * is dispatched: answers are written as the server sends them.
   */
  async handle(req: IncomingMessage, res: ServerResponse, body: unknown, authInfo: AuthInfo): Promise<void> {
    if (this.closed) return this.error(res, 404, -32001, 'Session not found');
    if (req.method === 'POST') return this.post(req, res, body, authInfo);
    if (req.method === 'GET') return this.get(req, res);
    if (req.method === 'DELETE') return this.delete(req, res);
    res.setHeader('Allow', 'GET, POST, DELETE');
    return this.error(res, 405, -32000, 'Method not allowed.');
  }

  private post(req: IncomingMessage, res: ServerResponse, body: unknown, authInfo: AuthInfo): void {
    const accept = header(req, 'accept') ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return this.error(res, 406, -32000, 'Not Acceptable: Client must accept both application/json and text/event-stream');
    }
    if (!isJsonContentType(header(req, 'content-type') ?? null))
      return this.error(res, 415, -32000, 'Unsupported Media Type: Content-Type must be application/json');
    if (Array.isArray(body) && body.length > MAX_BATCH) return this.error(res, 400, -32600, `Invalid Request: Batch must not exceed ${MAX_BATCH} messages`);
    const messages = Array.isArray(body) ? body : [body];
    if (messages.length === 0 || !messages.every(isJsonRpcMessage))
      return this.error(res, 400, RpcErrorCode.ParseError, 'Parse error: Invalid JSON-RPC message');
    const opening = messages.some((m) => (m as { method?: unknown }).method === 'initialize' && 'id' in m);
    if (opening) {
      if (this.initialized) return this.error(res, 400, -32600, 'Invalid Request: Server already initialized');
      if (messages.length > 1) return this.error(res, 400, -32600, 'Invalid Request: Only one initialization request is allowed');
      this.sessionId = this.options.sessionIdGenerator();
      this.initialized = true;
      this.options.onsessioninitialized?.(this.sessionId);
    } else {
      const refused = this.checkSession(req);
      if (refused) return this.error(res, refused.status, refused.code, refused.message);
    }
    const requests = messages.filter((m): m is JSONRPCMessage & { id: RequestId } => 'method' in m && 'id' in m);
    if (requests.length === 0) {
      // Notifications and responses only: accepted, nothing to answer.
      res.writeHead(202).end();
      for (const m of messages) this.deliver(m, { authInfo }, undefined);
      return;
    }
    const exchange: Exchange = { res, ids: requests.map((r) => r.id), answered: new Set(), started: false, done: false };
    for (const id of exchange.ids) this.exchanges.set(id, exchange);
    // The request's signal, as the SDK's transport gives it (`ctx.http.req.signal`): aborted when the client goes away
    // before its answer, so that what waits for it (an approval) is withdrawn. Made when first asked for: almost no call
    // asks (only one that waits for a person does), and a controller per request was a measurable part of a call.
    let gone: AbortController | undefined;
    let left = false;
    res.once('close', () => {
      if (exchange.done) return;
      // The client went away before every answer: nothing more can reach it.
      left = true;
      gone?.abort();
      this.finish(exchange);
    });
    const signal = (): AbortSignal => {
      if (!gone) {
        gone = new AbortController();
        if (left) gone.abort();
      }
      return gone.signal;
    };
    const request = {
      get signal(): AbortSignal {
        return signal();
      },
    } as unknown as Request;
    for (const m of messages) this.deliver(m, { authInfo, request }, signal);
  }

  private get(req: IncomingMessage, res: ServerResponse): void {
    if (!(header(req, 'accept') ?? '').includes('text/event-stream'))
      return this.error(res, 406, -32000, 'Not Acceptable: Client must accept text/event-stream');
    const refused = this.checkSession(req);
    if (refused) return this.error(res, refused.status, refused.code, refused.message);
    if (this.standalone) return this.error(res, 409, -32000, 'Conflict: Only one SSE stream is allowed per session');
    this.startSse(res);
    res.flushHeaders();
    const stream: { res: ServerResponse; keepAlive?: NodeJS.Timeout } = { res, keepAlive: this.keepAlive(res) };
    this.standalone = stream;
    res.once('close', () => {
      clearInterval(stream.keepAlive);
      if (this.standalone === stream) this.standalone = undefined;
    });
  }

  private delete(req: IncomingMessage, res: ServerResponse): void {
    const refused = this.checkSession(req);
    if (refused) return this.error(res, refused.status, refused.code, refused.message);
    try {
      if (this.sessionId) this.options.onsessionclosed?.(this.sessionId);
      res.writeHead(200).end();
    } finally {
      void this.close();
    }
  }

  /** The session id and protocol version a request after `initialize` must carry. */
  private checkSession(req: IncomingMessage): { status: number; code: number; message: string } | undefined {
    if (!this.initialized) return { status: 400, code: -32000, message: 'Bad Request: Server not initialized' };
    const id = header(req, 'mcp-session-id');
    if (!id) return { status: 400, code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' };
    if (id !== this.sessionId) return { status: 404, code: -32001, message: 'Session not found' };
    const version = header(req, 'mcp-protocol-version');
    if (version !== undefined && !this.supported.includes(version)) {
      return { status: 400, code: -32000, message: `Bad Request: Unsupported protocol version: ${version} (supported versions: ${this.supported.join(', ')})` };
    }
    return undefined;
  }

  private deliver(message: unknown, extra: { authInfo: AuthInfo; request?: Request }, gone: (() => AbortSignal) | undefined): void {
    try {
      if (this.options.take?.(message as Record<string, unknown>, gone)) return;
      this.onmessage?.(message as JSONRPCMessage, extra);
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const isAnswer = !('method' in message) && 'id' in message;
    const related = isAnswer ? (message as { id: RequestId }).id : options?.relatedRequestId;
    if (related === undefined) {
      // Not related to a request: the session's GET stream, if the client holds one.
      if (this.standalone) this.event(this.standalone.res, message);
      return;
    }
    const exchange = this.exchanges.get(related);
    if (!exchange || exchange.done) {
      if (isAnswer) {
        this.onerror?.(new Error(`Response for request ID ${String(related)} is undeliverable: the client's request is gone`));
        return;
      }
      throw new Error(`No connection established for request ID: ${String(related)}`);
    }
    if (!exchange.started) {
      exchange.started = true;
      this.startSse(exchange.res);
      exchange.keepAlive = this.keepAlive(exchange.res);
    }
    this.event(exchange.res, message);
    if (isAnswer) {
      exchange.answered.add(related);
      if (exchange.ids.every((i) => exchange.answered.has(i))) this.finish(exchange);
    }
  }

  /** Ends the exchange's stream and forgets it. */
  private finish(exchange: Exchange): void {
    exchange.done = true;
    clearInterval(exchange.keepAlive);
    for (const id of exchange.ids) if (this.exchanges.get(id) === exchange) this.exchanges.delete(id);
    const { res } = exchange;
    if (res.destroyed || res.writableEnded) return;
    if (!exchange.started) this.startSse(res);
    // Closed before every request was answered (the session ended): the stream ends, as the SDK's does.
    res.end();
  }

  private startSse(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...this.sessionHeader(),
    });
  }

  /** One SSE event; events written in the same tick leave in one packet. */
  private event(res: ServerResponse, message: JSONRPCMessage): void {
    if (res.destroyed || res.writableEnded) return;
    if (!res.writableCorked) {
      res.cork();
      process.nextTick(() => res.uncork());
    }
    // The message's line (JSON holds no raw newline) ends the data field; a blank line ends the event.
    const line = serializeLine(message);
    if (typeof line === 'string') res.write(`event: message\ndata: ${line}\n`);
    else {
      res.write('event: message\ndata: ');
      for (const part of line) res.write(part);
      res.write('\n');
    }
  }

  private keepAlive(res: ServerResponse): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (!res.destroyed && !res.writableEnded) res.write(': keepalive\n\n');
    }, this.options.keepAliveMs ?? KEEP_ALIVE_MS);
    timer.unref();
    return timer;
  }

  private sessionHeader(): Record<string, string> {
    return this.sessionId !== undefined ? { 'mcp-session-id': this.sessionId } : {};
  }

  private error(res: ServerResponse, status: number, code: number, message: string): void {
    const text = JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const exchange of new Set(this.exchanges.values())) this.finish(exchange);
    this.exchanges.clear();
    const standalone = this.standalone;
    this.standalone = undefined;
    if (standalone) {
      clearInterval(standalone.keepAlive);
      standalone.res.end();
    }
    this.onclose?.();
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A JSON-RPC 2.0 request, notification or response, by shape; the SDK's server checks each method's params. */
function isJsonRpcMessage(value: unknown): value is JSONRPCMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return false;
  if ('id' in m && typeof m.id !== 'string' && typeof m.id !== 'number') return false;
  if (typeof m.method === 'string') return true;
  return 'id' in m && ('result' in m || 'error' in m);
}
