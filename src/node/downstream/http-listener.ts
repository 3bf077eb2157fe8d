/**
 * Streamable HTTP on 127.0.0.1: `/mcp` for the aggregate, `/mcp/<server>` for one server alone,
 * `/mcp?view=search` for the search view (find_tools, call_tool; docs/search.md).
 *
 * Before any MCP parsing, every request must pass, in order: a loopback Host (DNS rebinding),
 * no foreign Origin (403, as the spec requires: a web page in the user's browser must not reach
 * this), a client bearer token (401; only then is an unknown server name a 404, so that server
 * names cannot be probed without one), and a body under the size limit (413). Then 2025-era traffic
 * is served by a sessionful transport per client session, and 2026-07-28 traffic statelessly.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createMcpHandler,
  isLegacyRequest,
  WebStandardStreamableHTTPServerTransport,
  type McpHttpHandler,
} from '@modelcontextprotocol/server';
import { RpcErrorCode, errorMessage } from '../../common/errors.js';
import { SERVER_NAME_PATTERN } from '../../common/names.js';
import { ToolViewSchema, type ToolView } from '../../common/config.js';
import type { Scope } from '../../core/gateway.js';
import type { ListKind, Logger } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import type { LiveSession, SessionHost } from './sessions.js';
import { readBodyLimited } from '../http-body.js';

export interface HttpListenerOptions {
  port: number;
  maxMessageBytes: number;
  sessions: SessionHost;
  logger: Logger;
  /** The principal behind a bearer token, or undefined for an unknown or revoked token. */
  authenticate(token: string): Principal | undefined;
  serverExists(name: string): boolean;
  onListChanged(listener: (kind: ListKind, scope: Scope) => void): () => void;
  /** MCP authorization: the OAuth paths (metadata, registration, authorize, token), after the Host and Origin checks. */
  oauth?: {
    handle(req: IncomingMessage, res: ServerResponse, url: URL, origin: string): Promise<boolean>;
    resourceMetadataUrl(origin: string, path: string): string;
  };
}

interface LegacySession {
  transport: WebStandardStreamableHTTPServerTransport;
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

export class HttpListener {
  private server: HttpServer | undefined;
  private port = 0;
  private legacy = new Map<string, LegacySession>();
  private modern = new Map<string, McpHttpHandler>();
  private unsubscribe: (() => void) | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: HttpListenerOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error) => {
        this.options.logger.log('error', 'http.unhandled', { error: errorMessage(error) });
        if (!res.headersSent) jsonError(res, 500, null, RpcErrorCode.InternalError, 'internal error');
        else res.destroy();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 0; // SSE streams stay open; idle sockets are closed by keepAliveTimeout.
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 100;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    this.sweeper = setInterval(() => this.sweep(Date.now() - LEGACY_SESSION_IDLE_MS), 60_000);
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

  private allowedHosts(): Set<string> {
    return new Set([`127.0.0.1:${this.port}`, `localhost:${this.port}`]);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // 1. Host: a DNS-rebinding page reaches 127.0.0.1 under a foreign host name.
    if (!this.allowedHosts().has((req.headers.host ?? '').toLowerCase())) {
      return jsonError(res, 403, null, RpcErrorCode.InvalidRequest, 'Forbidden: Host must be 127.0.0.1 or localhost on this port');
    }
    // 2. Origin: browsers send it on cross-origin requests; no web page may call Gatehouse.
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedOrigin(origin)) {
      return jsonError(res, 403, null, RpcErrorCode.InvalidRequest, 'Forbidden: Origin not allowed');
    }
    const url = new URL(req.url ?? '/', this.url);
    if (this.options.oauth && (await this.options.oauth.handle(req, res, url, this.url))) return;
    const match = /^\/mcp(?:\/([^/]+))?\/?$/.exec(url.pathname);
    if (!match) return jsonError(res, 404, null, RpcErrorCode.InvalidRequest, 'Not found: MCP is served at /mcp and /mcp/<server>');
    const serverName = match[1] === undefined ? undefined : decodeURIComponent(match[1]);
    if (serverName !== undefined && !SERVER_NAME_PATTERN.test(serverName)) {
      return jsonError(res, 404, null, RpcErrorCode.InvalidRequest, `Not found: no server named "${serverName}" is configured`);
    }
    // 3. Credential.
    const auth = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const principal = bearer ? this.options.authenticate(bearer) : undefined;
    if (!principal) {
      res.setHeader(
        'WWW-Authenticate',
        this.options.oauth ? `Bearer realm="gatehouse", resource_metadata="${this.options.oauth.resourceMetadataUrl(this.url, url.pathname)}"` : 'Bearer realm="gatehouse"',
      );
      return jsonError(res, 401, null, RpcErrorCode.Unauthorized, bearer ? 'Unauthorized: unknown or revoked client token' : 'Unauthorized: a client bearer token is required');
    }
    // Only a client with a credential learns which servers are configured.
    if (serverName !== undefined && !this.options.serverExists(serverName)) {
      return jsonError(res, 404, null, RpcErrorCode.InvalidRequest, `Not found: no server named "${serverName}" is configured`);
    }
    const viewParam = url.searchParams.get('view');
    const viewChoice = viewParam === null ? { success: true as const, data: undefined } : ToolViewSchema.safeParse(viewParam);
    if (!viewChoice.success) return jsonError(res, 400, null, RpcErrorCode.InvalidRequest, 'Bad request: view must be "search" or "aggregate"');
    const requestedView = viewChoice.data;
    if (serverName !== undefined && requestedView === 'search') {
      return jsonError(res, 400, null, RpcErrorCode.InvalidRequest, 'Bad request: a single-server view cannot also be the search view; use /mcp?view=search');
    }
    // 4. Body size, before anything parses it.
    let body: Buffer | undefined;
    if (req.method === 'POST') {
      const read = await readBodyLimited(req, this.options.maxMessageBytes);
      if (read === undefined) return jsonError(res, 413, null, RpcErrorCode.RequestTooLarge, `Payload too large: the limit is ${this.options.maxMessageBytes} bytes`);
      body = read;
    } else if (req.method !== 'GET' && req.method !== 'DELETE') {
      res.setHeader('Allow', 'GET, POST, DELETE');
      return jsonError(res, 405, null, RpcErrorCode.InvalidRequest, 'Method not allowed');
    }
    const scope: Scope = serverName !== undefined ? { server: serverName } : {};
    const abort = new AbortController();
    // Only a client that goes away before its answer is written cancels; a normal close does not.
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const request = new Request(url, {
      method: req.method,
      headers: toHeaders(req),
      ...(body !== undefined ? { body: new Uint8Array(body) } : {}),
      signal: abort.signal,
    });
    let parsed: unknown;
    if (body !== undefined) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return jsonError(res, 400, null, RpcErrorCode.ParseError, 'Parse error: the body is not JSON');
      }
    }
    const response = (await isLegacyRequest(request, parsed, { maxRequestBodySize: this.options.maxMessageBytes }))
      ? await this.serveLegacy(request, parsed, principal, scope, requestedView)
      : await this.serveModern(request, parsed, principal, scope, requestedView);
    await writeResponse(res, response);
  }

  private allowedOrigin(origin: string): boolean {
    return origin === `http://127.0.0.1:${this.port}` || origin === `http://localhost:${this.port}`;
  }

  private async serveLegacy(request: Request, parsed: unknown, principal: Principal, scope: Scope, requestedView: ToolView | undefined): Promise<Response> {
    const sessionId = request.headers.get('mcp-session-id');
    if (sessionId) {
      const existing = this.legacy.get(sessionId);
      // A session belongs to the client that opened it, on the view it opened.
      const sameView = existing !== undefined && scopeKey(existing.session.scope) === scopeKey(scope) && existing.requestedView === requestedView;
      if (!existing || existing.tokenClient !== principal.client.id || !sameView) {
        return jsonResponse(404, { jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.InvalidRequest, message: 'Session not found' } });
      }
      existing.lastUsed = Date.now();
      return existing.transport.handleRequest(request, parsed !== undefined ? { parsedBody: parsed } : undefined);
    }
    const session = this.options.sessions.open(principal, scope, 'http', 'legacy', requestedView);
    let entry: LegacySession | undefined;
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
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
      maxRequestBodySize: this.options.maxMessageBytes,
    });
    transport.onclose = () => {
      if (transport.sessionId) this.legacy.delete(transport.sessionId);
      this.options.sessions.close(session);
    };
    const server = this.options.sessions.serverFor(session);
    await server.connect(transport);
    const response = await transport.handleRequest(request, parsed !== undefined ? { parsedBody: parsed } : undefined);
    if (!entry) {
      // Not an initialize: nothing to keep.
      this.options.sessions.close(session);
      void transport.close().catch(() => undefined);
    }
    return response;
  }

  private serveModern(request: Request, parsed: unknown, principal: Principal, scope: Scope, requestedView: ToolView | undefined): Promise<Response> {
    const key = `${scopeKey(scope)}|${requestedView ?? ''}`;
    let handler = this.modern.get(key);
    if (!handler) {
      handler = createMcpHandler(
        (ctx) => {
          const p = (ctx.authInfo?.extra as { principal?: Principal } | undefined)?.principal;
          if (!p) throw new Error('request reached the MCP handler without a principal');
          const session = this.options.sessions.open(p, scope, 'http', 'modern', requestedView);
          const server = this.options.sessions.serverFor(session);
          const previous = server.onclose;
          server.onclose = () => {
            previous?.();
            this.options.sessions.close(session);
          };
          return server;
        },
        {
          legacy: 'reject',
          maxRequestBodySize: this.options.maxMessageBytes,
          onerror: (error) => this.options.logger.log('debug', 'http.mcp_error', { error: errorMessage(error) }),
        },
      );
      this.modern.set(key, handler);
    }
    return handler.fetch(request, {
      authInfo: { token: 'verified', clientId: principal.client.id, scopes: [], extra: { principal } },
      ...(parsed !== undefined ? { parsedBody: parsed } : {}),
    });
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
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

function scopeKey(scope: Scope): string {
  return scope.server ?? '';
}

function toHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return headers;
}


function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function jsonError(res: ServerResponse, status: number, id: string | number | null, code: number, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }));
}

async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.setHeader(name, value));
  if (!response.body) {
    res.end();
    return;
  }
  res.flushHeaders();
  const reader = response.body.getReader();
  res.once('close', () => void reader.cancel().catch(() => undefined));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once('drain', resolve));
    }
  } catch {
    // The client went away mid-stream.
  } finally {
    res.end();
  }
}
