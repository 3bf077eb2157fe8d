/**
 * The local endpoint for bridges: a unix domain socket in a user-only directory (mode 0600), or a
 * named pipe on Windows. Each connection opens with a hello line, then speaks MCP (either era:
 * the SDK's serving entry picks the era from the opening request) as newline-delimited JSON-RPC.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server as NetServer, type Socket } from 'node:net';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { RpcErrorCode, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import { LineTransport } from '../line-transport.js';
import { HELLO_VERSION, MAX_HELLO_BYTES, parseHello, type Hello, type HelloReply } from './hello.js';
import type { SessionHost } from './sessions.js';

export interface SocketListenerOptions {
  path: string;
  maxMessageBytes: number;
  sessions: SessionHost;
  logger: Logger;
  /**
   * Resolves a hello into a principal, or says why not. May wait for the person to pair the client
   * (`onPairing` is told the pairing code; `signal` aborts when the bridge goes away).
   */
  authenticate(
    hello: Hello,
    context: { signal: AbortSignal; onPairing: (code: string) => void },
  ): Promise<{ ok: true; principal: Principal; credential?: string } | { ok: false; reason: string }> | { ok: true; principal: Principal; credential?: string } | { ok: false; reason: string };
  /** How long a pairing may wait, for the line that tells the bridge (ms). */
  pairingDeadlineMs?: number;
  serverExists(name: string): boolean;
}

export class SocketListener {
  private server: NetServer | undefined;
  private sockets = new Set<Socket>();

  constructor(private readonly options: SocketListenerOptions) {}

  async listen(): Promise<void> {
    const { path } = this.options;
    if (process.platform !== 'win32' && existsSync(path)) {
      if (await isLive(path)) throw new Error(`another Gatehouse daemon is already listening on ${path}`);
      unlinkSync(path);
    }
    const server = createServer((socket) => this.accept(socket));
    server.maxConnections = 256;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (process.platform !== 'win32') chmodSync(path, 0o600);
    this.server = server;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const nl = buffered.indexOf(0x0a);
      // Over the limit whether or not the line's end came in the same chunk.
      if (nl === -1 ? buffered.length > MAX_HELLO_BYTES : nl > MAX_HELLO_BYTES) {
        socket.off('data', onData);
        clearTimeout(deadline);
        this.refuse(socket, `the hello line is over ${MAX_HELLO_BYTES} bytes`);
        return;
      }
      if (nl === -1) return;
      socket.off('data', onData);
      clearTimeout(deadline);
      socket.pause();
      const rest = buffered.subarray(nl + 1);
      this.greet(socket, buffered.subarray(0, nl).toString('utf8'), rest).catch((error: unknown) => {
        this.options.logger.log('error', 'socket.hello_failed', { error: errorMessage(error) });
        if (!socket.destroyed) this.refuse(socket, 'internal error');
      });
    };
    socket.on('data', onData);
    // A deadline counted from the connection, not an idle timeout: trickling bytes does not extend it.
    const deadline = setTimeout(() => {
      socket.off('data', onData);
      if (this.sockets.has(socket)) this.refuse(socket, 'no hello within 10 seconds');
    }, 10_000);
    socket.once('close', () => clearTimeout(deadline));
  }

  private refuse(socket: Socket, reason: string): void {
    const reply: HelloReply = { gatehouse: 'refused', version: HELLO_VERSION, reason };
    socket.end(JSON.stringify(reply) + '\n');
    this.options.logger.log('warn', 'socket.refused', { reason });
  }

  private async greet(socket: Socket, line: string, first: Buffer): Promise<void> {
    let rest = first;
    socket.setTimeout(0);
    const parsed = parseHello(line);
    if (!parsed.ok) return this.refuse(socket, parsed.reason);
    const hello = parsed.hello;
    if (hello.server !== undefined && !this.options.serverExists(hello.server)) {
      return this.refuse(socket, `no server named "${hello.server}" is configured`);
    }
    // A bridge that goes away while the person is asked withdraws its request.
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    socket.once('close', onClose);
    // Keep what arrives meanwhile (a client may write MCP right behind its hello), within a bound.
    const collect = (chunk: Buffer): void => {
      rest = Buffer.concat([rest, chunk]);
      if (rest.length > this.options.maxMessageBytes + MAX_HELLO_BYTES) socket.destroy();
    };
    socket.on('data', collect);
    socket.resume();
    const auth = await this.options.authenticate(hello, {
      signal: gone.signal,
      onPairing: (code) => {
        const note: HelloReply = { gatehouse: 'pairing', version: HELLO_VERSION, code, deadline: new Date(Date.now() + (this.options.pairingDeadlineMs ?? 120_000)).toISOString() };
        if (socket.writable) socket.write(JSON.stringify(note) + '\n');
      },
    });
    socket.off('close', onClose);
    socket.off('data', collect);
    socket.pause();
    if (socket.destroyed) return;
    if (!auth.ok) return this.refuse(socket, auth.reason);

    const { sessions } = this.options;
    const scope = hello.server !== undefined ? { server: hello.server } : {};
    // The era is known once the client's opening request arrives; the session records it then.
    const session = sessions.open(auth.principal, scope, 'socket', 'legacy', hello.view);
    // Ended by the daemon (its credential revoked): one last JSON-RPC error, tied to no request, says why; then the line closes.
    session.disconnect = (reason) => {
      if (socket.writable) socket.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.Unauthorized, message: reason } }) + '\n');
      else socket.destroy();
    };
    const welcome: HelloReply = { gatehouse: 'welcome', version: HELLO_VERSION, session: session.id, ...(auth.credential ? { credential: auth.credential } : {}) };
    socket.write(JSON.stringify(welcome) + '\n');

    const sendError = (id: string | number | null, code: number, message: string): void => {
      if (!socket.writable) return;
      socket.write(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }) + '\n');
    };
    const transport = new LineTransport(socket, socket, {
      maxMessageBytes: this.options.maxMessageBytes,
      prefix: rest,
      onGarbage: (_line, problem) => sendError(null, problem === 'not JSON' ? RpcErrorCode.ParseError : RpcErrorCode.InvalidRequest, problem === 'not JSON' ? 'Parse error: the line is not JSON' : 'Invalid Request: not a JSON-RPC 2.0 message'),
      onOversized: (bytes, id) => sendError(id ?? null, RpcErrorCode.RequestTooLarge, `message of ${bytes} bytes is over the ${this.options.maxMessageBytes}-byte limit`),
    });
    const handle = serveStdio(
      ({ era }) => {
        session.era = era;
        return sessions.serverFor(session);
      },
      { transport, onerror: (error) => this.options.logger.log('debug', 'socket.mcp_error', { session: session.id, error: errorMessage(error) }) },
    );
    socket.once('close', () => {
      sessions.close(session);
      void handle.close().catch(() => undefined);
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (process.platform !== 'win32' && existsSync(this.options.path)) {
      try {
        unlinkSync(this.options.path);
      } catch {
        // Already gone.
      }
    }
  }
}

/** Whether something accepts connections on `path` (a daemon already running there). */
export function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
