/**
 * The headless console of `gatehouse daemon --ui`: the built console (dist/renderer) on
 * 127.0.0.1, and its WebSocket (`/api/ws`) into the daemon's `ConsoleHub`.
 *
 * Who gets in: whoever types a sign-in code at `/login`. The code is random, held here as a hash
 * only, shown by the caller on the daemon's terminal beside the address (never logged, never
 * written to a file, never in an address: so never in a browser's or opener's command line), and
 * traded once for a session: an HttpOnly SameSite=Strict cookie, plus a session token handed to
 * the page in the redirect's fragment, which the page keeps in its own origin's storage and sends
 * as the WebSocket's first message. Browsers send cookies to every port of 127.0.0.1, so the
 * cookie alone is not enough: the token (never sent automatically) is what a local server on
 * another port cannot obtain. Ten wrong codes void every code waiting; `gatehouse console` shows
 * a new one.
 *
 * The console cannot answer the human channel's questions: nothing it serves reaches the desk.
 *
 * Every request: Host must be this listener (`127.0.0.1:<port>` or `localhost:<port>`: DNS
 * rebinding), only GET and HEAD for files, the WebSocket upgrade needs our Origin exactly (CSRF,
 * cross-site WebSocket hijacking), and every page carries the CSP of src/common/csp.ts.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import type { WebSocketServer, WebSocket } from 'ws';
import { contentSecurityPolicy } from '../../common/csp.js';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../core/ports.js';
import { codeHash, newCode, sameCode } from '../human/codes.js';
import { sendFormPage } from '../human/html.js';
import { readBodyLimited } from '../http-body.js';
import type { ConsoleHub } from './hub.js';

export const SESSION_COOKIE = 'gh_console';
/** How long a session lasts without the daemon restarting. */
const SESSION_MS = 12 * 60 * 60 * 1000;
/** A sign-in code issued after the first one (`newLoginCode`) is good for this long. */
const LATER_KEY_MS = 10 * 60 * 1000;
const MAX_KEYS = 8;
/** Wrong codes, in all, after which every waiting code is void. */
const MAX_WRONG_CODES = 10;
const MAX_LOGIN_FORM_BYTES = 4096;
const MAX_SESSIONS = 32;
/** Largest WebSocket message from the page (a server's config, a secret value). */
const MAX_MESSAGE_BYTES = 256 * 1024;
const HELLO_TIMEOUT_MS = 10_000;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

export interface ConsoleServerOptions {
  hub: ConsoleHub;
  /** The built console (index.html and assets/). */
  staticDir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  logger: Logger;
  now?: () => number;
}

interface LoginKey {
  hash: Buffer;
  expiresAt: number;
  used: boolean;
}

interface Session {
  cookieHash: Buffer;
  tokenHash: Buffer;
  expiresAt: number;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function same(value: string, hash: Buffer): boolean {
  const got = sha256(value);
  return got.length === hash.length && timingSafeEqual(got, hash);
}

function page(title: string, text: string): string {
  const escape = (t: string) => t.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1><p>${escape(text)}</p></body></html>`;
}

export class ConsoleServer {
  private server: Server | undefined;
  /** Made at the first upgrade a person's page asks for: a daemon nobody opens the console of never loads `ws` (about 1 MB of heap). */
  private wss: WebSocketServer | undefined;
  private port = 0;
  private keys: LoginKey[] = [];
  private wrongCodes = 0;
  private sessions: Session[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly now: () => number;
  private readonly staticRoot: string;

  constructor(private readonly options: ConsoleServerOptions) {
    this.now = options.now ?? Date.now;
    this.staticRoot = resolve(options.staticDir);
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error) => {
        this.options.logger.log('error', 'console.request_failed', { error: errorMessage(error) });
        if (!res.headersSent) this.send(res, 500, page('Error', 'Something went wrong; see the daemon log.'));
        else res.destroy();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as Socket, head));
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen({ host: '127.0.0.1', port: this.options.port ?? 0 }, () => {
        server.off('error', fail);
        done();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /**
   * A new one-time sign-in code and the address to type it at. The first code stays good until it
   * is used; later ones (asked for with `gatehouse console`) for ten minutes. The caller shows both
   * to the person only (the daemon's terminal).
   */
  newLoginCode(): { url: string; code: string } {
    const code = newCode();
    const first = this.keys.length === 0 && this.sessions.length === 0;
    this.keys = this.keys.filter((k) => !k.used && k.expiresAt > this.now()).slice(-(MAX_KEYS - 1));
    this.keys.push({ hash: codeHash(code), expiresAt: first ? Number.POSITIVE_INFINITY : this.now() + LATER_KEY_MS, used: false });
    return { url: `${this.origin}/login`, code };
  }

  /** Voids every waiting code (one could not be shown, or too many wrong ones were typed). */
  forgetLoginCodes(): void {
    this.keys = [];
    this.wrongCodes = 0;
  }

  async close(): Promise<void> {
    if (this.wss) {
      for (const client of this.wss.clients) client.terminate();
      this.wss.close();
    }
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((done) => server.close(() => done()));
  }

  // --- HTTP ----------------------------------------------------------------------------------

  private hostAllowed(req: IncomingMessage): boolean {
    const host = (req.headers.host ?? '').toLowerCase();
    return host === `127.0.0.1:${this.port}` || host === `localhost:${this.port}`;
  }

  private originAllowed(origin: string | undefined): boolean {
    return origin === this.origin || origin === `http://localhost:${this.port}`;
  }

  private send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': contentSecurityPolicy(),
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(body);
  }

  private session(req: IncomingMessage): Session | undefined {
    const now = this.now();
    this.sessions = this.sessions.filter((s) => s.expiresAt > now);
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [name, ...rest] = part.trim().split('=');
      if (name !== SESSION_COOKIE) continue;
      const value = rest.join('=');
      const found = this.sessions.find((s) => same(value, s.cookieHash));
      if (found) return found;
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.hostAllowed(req)) return this.send(res, 403, page('Forbidden', 'This address is not the Gatehouse console.'));
    // A request another site's page makes (an image, a script, a form) is refused whatever it carries.
    const fetchSite = req.headers['sec-fetch-site'];
    if (fetchSite === 'cross-site') return this.send(res, 403, page('Forbidden', 'Cross-site request refused.'));
    let url: URL;
    try {
      url = new URL(req.url ?? '/', this.origin);
    } catch {
      return this.send(res, 400, page('Bad request', 'The address is not valid.'));
    }
    if (url.pathname === '/login') return this.login(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return this.send(res, 405, page('Method not allowed', 'The console only serves files; everything else goes over its WebSocket.'), { allow: 'GET, HEAD' });
    }
    if (!this.session(req)) return this.send(res, 303, '', { location: '/login' });
    return this.file(url.pathname, req, res);
  }

  private loginForm(res: ServerResponse, status: number, note = ''): void {
    sendFormPage(
      res,
      status,
      'Sign in to the Gatehouse console',
      `${note}<p>Type the sign-in code shown in the terminal where <code>gatehouse daemon --ui</code> runs. ` +
        'Each code works once; <code>gatehouse console</code> shows a new one there.</p>' +
        '<form method="post" action="/login"><p><label>Code <input type="text" name="code" autocomplete="off" autocapitalize="characters" ' +
        'spellcheck="false" maxlength="16" required autofocus></label></p><div class="actions"><button class="primary">Sign in</button></div></form>',
    );
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' || req.method === 'HEAD') return this.loginForm(res, 200);
    if (req.method !== 'POST') return this.send(res, 405, page('Method not allowed', 'Sign in with the form.'), { allow: 'GET, HEAD, POST' });
    const origin = req.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin)) return this.send(res, 403, page('Forbidden', 'Cross-site request refused.'));
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
      return this.send(res, 415, page('Unsupported', 'Sign in with the form.'));
    const body = await readBodyLimited(req, MAX_LOGIN_FORM_BYTES);
    if (body === undefined) return this.send(res, 413, page('Too large', 'Sign in with the form.'));
    const typed = new URLSearchParams(body.toString('utf8')).get('code') ?? '';
    const now = this.now();
    const found = this.keys.find((k) => !k.used && k.expiresAt > now && sameCode(typed, k.hash));
    if (!found) {
      this.wrongCodes++;
      this.options.logger.log('warn', 'console.wrong_code', { attempts: this.wrongCodes });
      if (this.wrongCodes >= MAX_WRONG_CODES) {
        this.forgetLoginCodes();
        return this.loginForm(
          res,
          403,
          '<p class="note bad">Too many wrong codes: every waiting code is void. Run <code>gatehouse console</code> for a new one.</p>',
        );
      }
      return this.loginForm(res, 403, '<p class="note bad">That code is wrong, used or expired.</p>');
    }
    found.used = true;
    this.wrongCodes = 0;
    const cookie = randomBytes(32).toString('base64url');
    const token = randomBytes(32).toString('base64url');
    this.sessions = [...this.sessions.slice(-(MAX_SESSIONS - 1)), { cookieHash: sha256(cookie), tokenHash: sha256(token), expiresAt: now + SESSION_MS }];
    this.options.logger.log('info', 'console.signed_in', { sessions: this.sessions.length });
    // The token travels in the fragment: it never reaches a server, a log or a Referer.
    sendFormPage(res, 303, 'Signed in', '', {
      location: `/#session=${token}`,
      'set-cookie': `${SESSION_COOKIE}=${cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MS / 1000}`,
    });
  }

  private async file(pathname: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let relative: string;
    try {
      relative = decodeURIComponent(pathname === '/' ? '/index.html' : pathname);
    } catch {
      return this.send(res, 400, page('Bad request', 'The path is not valid.'));
    }
    const target = resolve(join(this.staticRoot, relative));
    if (!target.startsWith(this.staticRoot + sep) || relative.includes('\0')) return this.send(res, 404, page('Not found', 'No such file.'));
    const type = TYPES[extname(target)];
    const info = await stat(target).catch(() => undefined);
    if (!type || !info?.isFile()) {
      if (pathname === '/')
        return this.send(res, 500, page('Console not built', 'The console files are missing: run `npm run build` in the Gatehouse checkout.'));
      return this.send(res, 404, page('Not found', 'No such file.'));
    }
    const body = await readFile(target);
    this.send(res, 200, req.method === 'HEAD' ? '' : body, { 'content-type': type, 'content-length': String(body.length) });
  }

  // --- WebSocket -----------------------------------------------------------------------------

  private refuseUpgrade(socket: Socket, status: number, reason: string): void {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', this.origin);
    if (!this.hostAllowed(req)) return this.refuseUpgrade(socket, 403, 'Forbidden');
    if (!this.originAllowed(req.headers.origin)) return this.refuseUpgrade(socket, 403, 'Forbidden');
    if (url.pathname !== '/api/ws') return this.refuseUpgrade(socket, 404, 'Not Found');
    const session = this.session(req);
    if (!session) return this.refuseUpgrade(socket, 401, 'Unauthorized');
    if (!this.wss) {
      const ws = createRequire(import.meta.url)('ws') as { WebSocketServer: typeof WebSocketServer };
      this.wss = new ws.WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, session));
  }

  private serve(ws: WebSocket, session: Session): void {
    let unsubscribe: (() => void) | undefined;
    let alive = true;
    const send = (message: unknown): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    const hello = setTimeout(() => ws.close(4401, 'no session token'), HELLO_TIMEOUT_MS);
    const heartbeat = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, 30_000);
    heartbeat.unref();
    ws.on('pong', () => (alive = true));
    ws.on('close', () => {
      clearTimeout(hello);
      clearInterval(heartbeat);
      unsubscribe?.();
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text only');
      let message: { type?: unknown; token?: unknown; id?: unknown; method?: unknown; params?: unknown };
      try {
        message = JSON.parse(data.toString()) as typeof message;
      } catch {
        return ws.close(1007, 'not JSON');
      }
      if (message === null || typeof message !== 'object') return ws.close(1007, 'not an object');
      if (!unsubscribe) {
        // The first message proves the page holds the session's token, not only its cookie.
        if (message.type !== 'hello' || typeof message.token !== 'string' || !same(message.token, session.tokenHash) || session.expiresAt <= this.now()) {
          return ws.close(4401, 'the session token is missing or wrong: open a new login link');
        }
        clearTimeout(hello);
        unsubscribe = this.options.hub.subscribe((event) => send({ event }));
        send({ welcome: true });
        return;
      }
      const id = message.id;
      if (typeof id !== 'number' && typeof id !== 'string') return ws.close(1007, 'a request needs an id');
      void this.options.hub.call(message.method, message.params).then((answer) => send({ id, ...answer }));
    });
  }
}
