/**
 * Streamable HTTP on 127.0.0.1: `/mcp` for the aggregate, `/mcp/<server>` for one server alone,
 * `/mcp?view=search` for the search view (find_tools, call_tool; docs/search.md).
 *
 * Before any MCP parsing, every request must pass, in order: a loopback Host (DNS rebinding),
 * no foreign Origin (403, as the spec requires: a web page in the user's browser must not reach
 * this), a client bearer token (401; only then is an unknown server name a 404, so that server
 * names cannot be probed without one), and a body under the size limit (413). Then 2025-era traffic
 * is served by a sessionful transport per client session, and 2026-07-28 traffic statelessly.
 *
 * Any local process can open connections here, so connections are bounded too: a cap on how many are
 * open (past it the oldest one that has not sent a whole request yet makes room), a deadline for a
 * request's headers and one for its body (Node's own, checked every second), and every refusal closes
 * its connection, so that a client refused before its body was read cannot keep trickling it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  classifyInboundRequest,
  createMcpHandler,
  PROTOCOL_VERSION_META_KEY,
  type AuthInfo,
  type JSONRPCMessage,
  type McpHttpHandler,
  SdkError,
  SdkErrorCode,
} from '@modelcontextprotocol/server';
import { RpcErrorCode, errorMessage } from '../../common/errors.js';
import { SERVER_NAME_PATTERN } from '../../common/names.js';
import { ToolViewSchema, type ToolView } from '../../common/config.js';
import type { Scope } from '../../core/gateway.js';
import type { ListKind, Logger } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import { DirectCalls, eraOf, serveCall } from './direct-calls.js';
import { HttpSessionTransport } from './http-session.js';
import { DEFAULT_KEPT_SERVER_LIMITS, KeptServers, keptServerKey, type KeptServerLimits } from './kept-servers.js';
import type { DownstreamServer } from './mcp-server.js';
import { ModernAnswer, modernCall, type ModernCall } from './modern-calls.js';
import type { LiveSession, SessionHost } from './sessions.js';
import { readBody } from '../http-body.js';
import { isPlainObject } from '../../common/objects.js';

/** Bounds on connections (`listen.http` in the config, docs/configuration.md). */
export interface HttpConnectionLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpConnectionLimits = { maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 };

export interface HttpListenerOptions {
  port: number;
  maxMessageBytes: number;
  limits?: HttpConnectionLimits;
  /** Bounds on the SDK servers kept between 2026-07-28 requests (kept-servers.ts). */
  keptServers?: KeptServerLimits;
  sessions: SessionHost;
  logger: Logger;
  /** The principal behind a bearer token, or undefined for an unknown or revoked token. */
  authenticate(token: string): Principal | undefined;
  /** Whether `name` is a configured server this caller may see something of (a hidden one answers as an unknown one). */
  serverExists(name: string, principal: Principal): boolean;
  onListChanged(listener: (kind: ListKind, scope: Scope) => void): () => void;
  /** MCP authorization: the OAuth paths (metadata, registration, authorize, token), after the Host and Origin checks. */
  oauth?: {
    handle(req: IncomingMessage, res: ServerResponse, url: URL, origin: string): Promise<boolean>;
    resourceMetadataUrl(origin: string, path: string): string;
  };
}

interface LegacySession {
  transport: HttpSessionTransport;
  session: LiveSession;
  tokenClient: string;
  /** The view the client asked for when it opened the session (`?view=`), if any. */
  requestedView: ToolView | undefined;
  lastUsed: number;
}

/** A 2025-era HTTP session unused this long is closed (clients rarely send DELETE). */
export const LEGACY_SESSION_IDLE_MS = 30 * 60_000;
/** Sessions one client may hold; opening one more closes its least recently used. */
export const LEGACY_SESSIONS_PER_CLIENT = 16;

/** What the listener knows of one connection, for the connection cap. */
interface Connection {
  /** Requests being served on it now (a 2025-era GET stream stays in progress while it is open). */
  active: number;
  /** Whether it ever delivered a whole request's headers: a connection that never did is the first to make room. */
  served: boolean;
}

export class HttpListener {
  private server: HttpServer | undefined;
  private port = 0;
  private hosts = new Set<string>();
  private connections = new Map<Socket, Connection>();
  /** Connections closed to stay under the cap, for status and tests. */
  private evicted = 0;
  private legacy = new Map<string, LegacySession>();
  private modern = new Map<string, McpHttpHandler>();
  private readonly kept: KeptServers<DownstreamServer>;
  private unsubscribe: (() => void) | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: HttpListenerOptions) {
    this.kept = new KeptServers((binding) => options.sessions.keptServer(binding), options.keptServers ?? DEFAULT_KEPT_SERVER_LIMITS);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const limits = this.options.limits ?? DEFAULT_HTTP_LIMITS;
    const server = createServer(
      {
        // Node checks the header and request deadlines this often; a second is precise enough for deadlines of seconds.
        connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
        headersTimeout: limits.headersTimeoutMs,
        // Receiving the request (headers and body) only: a response may stream for as long as it needs (SSE).
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: 5_000,
        maxHeaderSize: 16 * 1024,
      },
      (req, res) => {
        this.track(req, res);
        this.handle(req, res).catch((error) => {
          // A client that went away mid-request is not an error of Gatehouse's.
          const gone = req.socket.destroyed || res.destroyed;
          this.options.logger.log(gone ? 'debug' : 'error', gone ? 'http.client_gone' : 'http.unhandled', { error: errorMessage(error) });
          if (!res.headersSent && !gone) jsonError(res, 500, null, RpcErrorCode.InternalError, 'internal error');
          else res.destroy();
        });
      },
    );
    server.maxHeadersCount = 100;
    server.on('connection', (socket: Socket) => this.admit(socket, limits.maxConnections));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.hosts = new Set([`127.0.0.1:${this.port}`, `localhost:${this.port}`]);
    this.server = server;
    this.sweeper = setInterval(() => {
      this.sweep(Date.now() - LEGACY_SESSION_IDLE_MS);
      this.kept.sweep(Date.now() - (this.options.keptServers ?? DEFAULT_KEPT_SERVER_LIMITS).idleMs);
    }, 60_000);
    this.sweeper.unref();
    this.unsubscribe = this.options.onListChanged((kind, scope) => {
      // Every view of that scope: the aggregate's change also reaches the search view (its pinned tools may have changed).
      for (const [key, handler] of this.modern) {
        if (!key.startsWith(`${scopeKey(scope)}|`)) continue;
        if (kind === 'tools') handler.notify.toolsChanged();
        else if (kind === 'prompts') handler.notify.promptsChanged();
        else handler.notify.resourcesChanged();
      }
    });
  }

  /**
   * A new connection over the cap makes room by closing, oldest first, a connection that has never
   * delivered a whole request (a silent or slow one: what a slowloris holds), else one that is idle
   * between requests (its client reconnects when it needs to); when every connection is serving a
   * request, the new one is closed. A request in progress, a GET stream included, is never cut.
   */
  private admit(socket: Socket, cap: number): void {
    this.connections.set(socket, { active: 0, served: false });
    socket.once('close', () => this.connections.delete(socket));
    if (this.connections.size <= cap) return;
    let victim: Socket = socket;
    let idle: Socket | undefined;
    for (const [other, state] of this.connections) {
      if (other === socket || state.active > 0) continue;
      if (!state.served) {
        victim = other;
        idle = undefined;
        break;
      }
      idle ??= other;
    }
    if (idle) victim = idle;
    this.evicted++;
    this.connections.delete(victim);
    victim.destroy();
    if (this.evicted === 1 || this.evicted % 1000 === 0)
      this.options.logger.log('warn', 'http.connection_limit', { maxConnections: cap, closed: this.evicted });
  }

  /** Marks a connection as serving a request until the response is done or the connection closes. */
  private track(req: IncomingMessage, res: ServerResponse): void {
    const state = this.connections.get(req.socket);
    if (!state) return;
    state.served = true;
    state.active++;
    res.once('close', () => state.active--);
  }

  /** Connections open now, and how many were closed to stay under the cap. */
  connectionStats(): { open: number; evicted: number } {
    return { open: this.connections.size, evicted: this.evicted };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // 1. Host: a DNS-rebinding page reaches 127.0.0.1 under a foreign host name.
    if (!this.hosts.has((req.headers.host ?? '').toLowerCase())) {
      return refuse(req, res, 403, RpcErrorCode.InvalidRequest, 'Forbidden: Host must be 127.0.0.1 or localhost on this port');
    }
    // 2. Origin: browsers send it on cross-origin requests; no web page may call Gatehouse.
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedOrigin(origin)) {
      return refuse(req, res, 403, RpcErrorCode.InvalidRequest, 'Forbidden: Origin not allowed');
    }
    const url = new URL(req.url ?? '/', this.url);
    if (this.options.oauth && (await this.options.oauth.handle(req, res, url, this.url))) return;
    const match = /^\/mcp(?:\/([^/]+))?\/?$/.exec(url.pathname);
    if (!match) return refuse(req, res, 404, RpcErrorCode.InvalidRequest, 'Not found: MCP is served at /mcp and /mcp/<server>');
    // Decoded without throwing: a malformed escape (`/mcp/%E0`) names no server, like any other non-name.
    const serverName = match[1] === undefined ? undefined : safeDecode(match[1]);
    // 3. Credential, before anything that depends on which servers exist.
    const auth = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const principal = bearer ? this.options.authenticate(bearer) : undefined;
    if (!principal) {
      res.setHeader(
        'WWW-Authenticate',
        this.options.oauth
          ? `Bearer realm="gatehouse", resource_metadata="${this.options.oauth.resourceMetadataUrl(this.url, url.pathname)}"`
          : 'Bearer realm="gatehouse"',
      );
      return refuse(
        req,
        res,
        401,
        RpcErrorCode.Unauthorized,
        bearer ? 'Unauthorized: unknown or revoked client token' : 'Unauthorized: a client bearer token is required',
      );
    }
    // Only a client with a credential learns which servers are configured.
    if (serverName !== undefined && (serverName === null || !SERVER_NAME_PATTERN.test(serverName) || !this.options.serverExists(serverName, principal))) {
      return refuse(req, res, 404, RpcErrorCode.InvalidRequest, `Not found: no server named "${serverName ?? match[1]}" is configured`);
    }
    const viewParam = url.searchParams.get('view');
    const viewChoice = viewParam === null ? { success: true as const, data: undefined } : ToolViewSchema.safeParse(viewParam);
    if (!viewChoice.success) return refuse(req, res, 400, RpcErrorCode.InvalidRequest, 'Bad request: view must be "search" or "aggregate"');
    const requestedView = viewChoice.data;
    if (serverName !== undefined && requestedView === 'search') {
      return refuse(req, res, 400, RpcErrorCode.InvalidRequest, 'Bad request: a single-server view cannot also be the search view; use /mcp?view=search');
    }
    // 4. Body size, before anything parses it.
    let body: Buffer | undefined;
    if (req.method === 'POST') {
      const read = await readBody(req, this.options.maxMessageBytes);
      if (!read.ok) {
        // A client that went away, or whose body outlived the request deadline (Node answers that with 408): nothing to answer.
        if (read.reason === 'aborted') return;
        return refuse(req, res, 413, RpcErrorCode.RequestTooLarge, `Payload too large: the limit is ${this.options.maxMessageBytes} bytes`);
      }
      body = read.body;
    } else if (req.method !== 'GET' && req.method !== 'DELETE') {
      res.setHeader('Allow', 'GET, POST, DELETE');
      return refuse(req, res, 405, RpcErrorCode.InvalidRequest, 'Method not allowed');
    }
    const scope: Scope = serverName ? { server: serverName } : {};
    let parsed: unknown;
    if (body !== undefined) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return jsonError(res, 400, null, RpcErrorCode.ParseError, 'Parse error: the body is not JSON');
      }
    }
    // 5. The era, from the method, the headers and the body, as the SDK's entry decides it.
    if (isLegacy(req, parsed)) return this.serveLegacy(req, res, parsed, principal, scope, requestedView);
    // A well-formed tools/call is served without the SDK's handler when its server is already bound to the era (modern-calls.ts).
    const call = modernCall(req.headers, parsed);
    const lent = call ? this.lend(principal, scope, requestedView) : undefined;
    if (call && lent && (await this.serveModernCall(res, call, lent))) return;
    const abort = new AbortController();
    // Only a client that goes away before its answer is written cancels (a `subscriptions/listen` stream ends then).
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    // Without the body: the handler is given it parsed (and never reads it again with `legacy: 'reject'`).
    const request = new Request(url, { method: req.method, headers: toHeaders(req), signal: abort.signal });
    await writeResponse(res, await this.serveModern(request, parsed, principal, scope, requestedView, lent));
  }

  /** An error in an MCP exchange that its client was told of, or that only ends the exchange: logged for debugging. */
  private readonly reportMcpError = (error: unknown): void => this.options.logger.log('debug', 'http.mcp_error', { error: errorMessage(error) });

  private allowedOrigin(origin: string): boolean {
    return origin === `http://127.0.0.1:${this.port}` || origin === `http://localhost:${this.port}`;
  }

  /** 2025-era traffic: one session per client `initialize`, served on Node's objects by its own transport. */
  private async serveLegacy(
    req: IncomingMessage,
    res: ServerResponse,
    parsed: unknown,
    principal: Principal,
    scope: Scope,
    requestedView: ToolView | undefined,
  ): Promise<void> {
    const authInfo: AuthInfo = { token: 'verified', clientId: principal.client.id, scopes: [], extra: { principal } };
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const existing = this.legacy.get(sessionId);
      // A session belongs to the client that opened it, on the view it opened.
      const sameView = existing !== undefined && scopeKey(existing.session.scope) === scopeKey(scope) && existing.requestedView === requestedView;
      if (!existing || existing.tokenClient !== principal.client.id || !sameView) {
        return jsonError(res, 404, null, RpcErrorCode.InvalidRequest, 'Session not found');
      }
      existing.lastUsed = Date.now();
      return existing.transport.handle(req, res, parsed, authInfo);
    }
    const session = this.options.sessions.open(principal, scope, 'http', 'legacy', requestedView);
    let entry: LegacySession | undefined;
    // Well-formed calls skip the SDK's request pipeline once the handshake has ended (direct-calls.ts); everything else is the SDK's.
    const direct = new DirectCalls(
      session,
      { send: (message, related) => transport.send(message as JSONRPCMessage, { relatedRequestId: related }) },
      this.reportMcpError,
    );
    const transport: HttpSessionTransport = new HttpSessionTransport({
      sessionIdGenerator: () => randomUUID(),
      take: (message, gone) => direct.take(message, gone),
      onsessioninitialized: (id) => {
        entry = { transport, session, tokenClient: principal.client.id, requestedView, lastUsed: Date.now() };
        const opened = entry;
        session.disconnect = (reason) => this.closeLegacy(id, opened, reason);
        this.evictBeyondLimit(principal.client.id);
        this.legacy.set(id, entry);
      },
      onsessionclosed: (id) => {
        this.legacy.delete(id);
        this.options.sessions.close(session);
      },
    });
    transport.onerror = this.reportMcpError;
    transport.onclose = () => {
      direct.close();
      if (transport.sessionId) this.legacy.delete(transport.sessionId);
      this.options.sessions.close(session);
    };
    const server = this.options.sessions.serverFor(session);
    direct.pinned(server);
    await server.connect(transport);
    await transport.handle(req, res, parsed, authInfo);
    if (!entry) {
      // Not an initialize: nothing to keep.
      this.options.sessions.close(session);
      void transport.close().catch(() => undefined);
    }
  }

  /**
   * A session opened for one 2026-07-28 request, and a server kept for its principal, scope and view
   * (kept-servers.ts) lent to it: ended once, when the request's exchange ends.
   */
  private lend(principal: Principal, scope: Scope, requestedView: ToolView | undefined): Lent {
    const session = this.options.sessions.open(principal, scope, 'http', 'modern', requestedView);
    const lease = this.kept.take(keptServerKey(principal, scope, session, this.options.sessions.instructionsFor(principal)), session);
    const server = lease.server;
    session.servers.add(server);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      session.servers.delete(server);
      this.options.sessions.close(session);
      lease.release();
    };
    return { server, session, end };
  }

  /**
   * Serves a well-formed 2026-07-28 `tools/call` on the server lent to it, without the SDK's handler,
   * and returns true; or returns false, leaving the lent server to the SDK's handler, when the server
   * is not yet bound to the request's revision or the SDK's era codec refuses its envelope (the SDK
   * words that refusal).
   */
  private async serveModernCall(res: ServerResponse, call: ModernCall, lent: Lent): Promise<boolean> {
    const { server, session, end } = lent;
    const era = eraOf(server);
    if (!era || era.codec.era !== call.revision || era.codec.checkInboundEnvelope({ envelope: call.envelope }) !== undefined) return false;
    const answer = new ModernAnswer(res);
    const controller = new AbortController();
    const closed = (): SdkError => new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed');
    // A client that goes away before its answer cancels the call, as the SDK's exchange closing does.
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(closed());
      answer.close();
      end();
    });
    // The session ended by the daemon (its client's credential revoked) cancels the call and ends the exchange, as closing the
    // SDK's server ends its exchange then.
    session.disconnect = () => {
      controller.abort(closed());
      answer.abandon();
    };
    const { signal } = controller;
    await serveCall(server, era, call, { signal, gone: () => signal, send: (message) => answer.send(message) }, this.reportMcpError);
    end();
    return true;
  }

  /**
   * 2026-07-28 traffic: the SDK's handler (one per scope and view) checks the request and serves it
   * with a server kept for this principal, scope and view (kept-servers.ts), bound to a session opened
   * for this request alone and closed when its exchange ends. `lent` is a server already lent to the
   * request (the direct path left it to the handler); it ends with the request if the handler never
   * asks for it.
   */
  private async serveModern(
    request: Request,
    parsed: unknown,
    principal: Principal,
    scope: Scope,
    requestedView: ToolView | undefined,
    lent?: Lent,
  ): Promise<Response> {
    const key = `${scopeKey(scope)}|${requestedView ?? ''}`;
    let handler = this.modern.get(key);
    if (!handler) {
      handler = createMcpHandler(
        (ctx) => {
          const extra = ctx.authInfo?.extra as ModernRequest | undefined;
          if (!extra?.principal) throw new Error('request reached the MCP handler without a principal');
          const served = extra.lent ?? this.lend(extra.principal, scope, requestedView);
          delete extra.lent;
          served.server.onclose = served.end;
          extra.served = served;
          return served.server;
        },
        {
          legacy: 'reject',
          maxRequestBodySize: this.options.maxMessageBytes,
          onerror: this.reportMcpError,
        },
      );
      this.modern.set(key, handler);
    }
    const modern: ModernRequest = { principal, ...(lent ? { lent } : {}) };
    try {
      return await handler.fetch(request, {
        authInfo: { token: 'verified', clientId: principal.client.id, scopes: [], extra: modern as unknown as Record<string, unknown> },
        ...(parsed !== undefined ? { parsedBody: parsed } : {}),
      });
    } finally {
      // A server the handler never connected (a `subscriptions/listen` stream is served without it) has no exchange to end.
      if (modern.served && modern.served.server.transport === undefined) modern.served.end();
      // Nor has one it never asked for (it refused the request first).
      modern.lent?.end();
    }
  }

  /** Closes 2025-era sessions not used since `before`. */
  sweep(before: number): void {
    for (const [id, entry] of this.legacy) {
      if (entry.lastUsed < before) this.closeLegacy(id, entry, 'idle');
    }
  }

  private evictBeyondLimit(client: string): void {
    const own = [...this.legacy.entries()].filter(([, e]) => e.tokenClient === client).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [id, entry] of own.slice(0, Math.max(0, own.length - LEGACY_SESSIONS_PER_CLIENT + 1))) this.closeLegacy(id, entry, 'session limit');
  }

  private closeLegacy(id: string, entry: LegacySession, why: string): void {
    this.legacy.delete(id);
    this.options.sessions.close(entry.session);
    void entry.transport.close().catch(() => undefined);
    this.options.logger.log('info', 'http.session_closed', { client: entry.session.principal.client.name, reason: why });
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.unsubscribe?.();
    for (const { transport } of this.legacy.values()) await transport.close().catch(() => undefined);
    this.legacy.clear();
    for (const handler of this.modern.values()) await handler.close().catch(() => undefined);
    this.modern.clear();
    this.kept.clear();
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

/** A server lent to one 2026-07-28 request, the session opened for the request, and how that session ends. */
interface Lent {
  server: DownstreamServer;
  session: LiveSession;
  end(): void;
}

/** What the listener passes through the SDK's handler to its server factory for one 2026-07-28 request. */
interface ModernRequest {
  principal: Principal;
  /** A server already lent to the request, for the factory to use. */
  lent?: Lent;
  /** The server lent to the request, and how its session ends, once the factory ran. */
  served?: Lent;
}

function scopeKey(scope: Scope): string {
  return scope.server ?? '';
}

/**
 * Whether a request is 2025-era traffic: any GET or DELETE, and a POST the SDK's own classifier calls
 * legacy (`initialize`, envelope-less requests, notifications, responses, batches). The same decision
 * as the SDK's `isLegacyRequest`, made on Node's headers without building a WHATWG request.
 */
function isLegacy(req: IncomingMessage, parsed: unknown): boolean {
  if (req.method !== 'POST' || parsed === undefined) return true;
  if (claimsModernEnvelope(parsed)) return false;
  const first = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const headers = { protocolVersionHeader: first('mcp-protocol-version'), mcpMethodHeader: first('mcp-method'), mcpNameHeader: first('mcp-name') };
  const defined = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Partial<typeof headers>;
  return classifyInboundRequest({ httpMethod: 'POST', ...defined, body: parsed }).kind === 'legacy';
}

/**
 * A single message, not a response and not `initialize`, whose `_meta` carries the 2026-07-28 envelope
 * claim: the SDK's classifier never calls that legacy (it is modern, or a rejection the modern handler
 * answers), so the common case skips a second classification; anything else is classified in full.
 */
function claimsModernEnvelope(body: unknown): boolean {
  if (!isPlainObject(body) || 'result' in body || 'error' in body || body.method === 'initialize') return false;
  const params = body.params;
  if (!isPlainObject(params)) return false;
  const meta = params._meta;
  return isPlainObject(meta) && PROTOCOL_VERSION_META_KEY in meta;
}

/**
 * The headers the SDK's handler reads (the media types and the era's `Mcp-*` headers), for its WHATWG
 * request. The rest stay out: the client's bearer token was checked already and has no business in
 * the request handed on to the server and its handlers, and copying every header cost each request.
 */
function toHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || !(name.startsWith('mcp-') || name === 'content-type' || name === 'accept')) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return headers;
}

function jsonError(res: ServerResponse, status: number, id: string | number | null, code: number, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }));
}

/**
 * A refusal before the request was served: answered, then the connection is closed, so that a client
 * refused before its body was read (no token, too large) cannot keep the connection by trickling it.
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, code: number, message: string): void {
  res.setHeader('connection', 'close');
  jsonError(res, status, null, code, message);
  if (!req.complete) res.once('finish', () => req.socket.destroySoon());
}

/** `decodeURIComponent`, or null for a malformed escape. */
function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/**
 * Copies a WHATWG response onto the Node one, in as few packets as the answer allows: every write to
 * loopback is a syscall that also wakes the client, and each one cost a 2026-07-28 call more than the
 * rest of the HTTP layer together (the profile in BENCHMARKS.md's method). A JSON answer (the SDK
 * builds it whole) leaves as one packet with a `content-length`. An event stream stays corked while
 * its next chunk is already there, so that a short one (the headers, the result's event and the end
 * of the stream) is one packet too; when the stream waits for more (progress during a call, a
 * `subscriptions/listen` stream, a GET), what was written leaves at once, and a stream that stays open
 * gets its headers at once with `flushHeaders`. Settles when the body is done or the client goes away,
 * whichever comes first: a client that stops reading and then disconnects while a write waits for
 * 'drain' must not leave this waiting forever.
 */
export async function writeResponse(res: ServerResponse, response: Response, options: { flushHeaders?: boolean } = {}): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.setHeader(name, value));
  if (!response.body) {
    res.end();
    return;
  }
  if (!isEventStream(response.headers.get('content-type'))) {
    const whole = Buffer.from(await response.arrayBuffer());
    res.setHeader('content-length', whole.byteLength);
    res.end(whole);
    return;
  }
  if (options.flushHeaders) res.flushHeaders();
  const reader = response.body.getReader();
  let gone = res.destroyed;
  let wake: (() => void) | undefined;
  const onClose = (): void => {
    gone = true;
    wake?.();
    void reader.cancel().catch(() => undefined);
  };
  res.once('close', onClose);
  res.cork();
  let corked = true;
  try {
    let next = reader.read();
    while (!gone) {
      // Corked, a chunk that is already there joins what waits to be sent; otherwise what waits leaves now.
      if (corked && !(await settlesThisTurn(next))) {
        corked = false;
        res.uncork();
      }
      const { done, value } = await next;
      if (done || gone) break;
      if (!corked) {
        corked = true;
        res.cork();
      }
      const room = res.write(value);
      next = reader.read();
      if (!room && !gone) {
        corked = false;
        res.uncork();
        await new Promise<void>((resolve) => {
          wake = resolve;
          res.once('drain', resolve);
        });
        res.off('drain', wake!);
        wake = undefined;
      }
    }
  } catch {
    // The stream failed or was cancelled because the client went away.
  } finally {
    res.off('close', onClose);
    if (gone) void reader.cancel().catch(() => undefined);
    // Ended while corked: the last event and the end of the stream leave together.
    res.end();
    if (corked) res.uncork();
  }
}

function isEventStream(contentType: string | null): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === 'text/event-stream';
}

/** Whether `promise` settles before the event loop's next turn (a chunk already queued in the stream does). */
function settlesThisTurn(promise: Promise<unknown>): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setImmediate(() => resolve(false));
    promise.then(
      () => {
        clearImmediate(timer);
        resolve(true);
      },
      () => {
        clearImmediate(timer);
        resolve(true);
      },
    );
  });
}
