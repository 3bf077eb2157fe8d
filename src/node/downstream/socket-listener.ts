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
import type { HelloResult } from '../local-identity.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import { LineTransport } from '../line-transport.js';
import { DirectCalls } from './direct-calls.js';
import { HELLO_VERSION, MAX_HELLO_BYTES, parseHello, type Hello, type HelloReply, type PairingOutcomeLine } from './hello.js';
import type { SessionHost } from './sessions.js';

export interface SocketListenerOptions {
  path: string;
  maxMessageBytes: number;
  sessions: SessionHost;
  logger: Logger;
  /**
   * Resolves a hello into a principal, or says why not, or says that the person is being asked to
   * pair the client (the connection is then served at once, in a pending state, until they answer).
   */
  authenticate(hello: Hello): Promise<HelloResult> | HelloResult;
  /** Whether `--server NAME` names a server; with the caller, whether they may see it (a hidden server answers as an unknown one). */
  serverExists(name: string, principal?: Principal): boolean;
  /** Why this caller can do nothing yet (not signed in, no role), told to the bridge with its welcome. */
  notice?(principal: Principal): string | undefined;
  /** Where the person answers a pairing question, for the pending session's instructions. */
  pairingWhere?: () => string;
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
      return this.refuse(socket, unknownServer(hello.server));
    }
    // Keep what arrives meanwhile (a client may write MCP right behind its hello), within a bound.
    const collect = (chunk: Buffer): void => {
      rest = Buffer.concat([rest, chunk]);
      if (rest.length > this.options.maxMessageBytes + MAX_HELLO_BYTES) socket.destroy();
    };
    socket.on('data', collect);
    socket.resume();
    const auth = await this.options.authenticate(hello);
    socket.off('data', collect);
    socket.pause();
    if (socket.destroyed) return;
    if (auth.ok === false) return this.refuse(socket, auth.reason);
    // A server the caller may not see answers as an unknown one. Not right after pairing: the person just chose this client's
    // scope, and refusing now would leave its new credential with nobody.
    if (hello.server !== undefined && auth.ok === true && auth.credential === undefined && !this.options.serverExists(hello.server, auth.principal)) {
      return this.refuse(socket, unknownServer(hello.server));
    }

    const { sessions } = this.options;
    const scope = hello.server !== undefined ? { server: hello.server } : {};
    // The era is known once the client's opening request arrives; the session records it then.
    const session = sessions.open(auth.principal, scope, 'socket', 'legacy', hello.view);
    // Ended by the daemon (its credential revoked): one last JSON-RPC error, tied to no request, says why; then the line closes.
    session.disconnect = (reason) => {
      if (socket.writable) socket.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.Unauthorized, message: reason } }) + '\n');
      else socket.destroy();
    };
    let welcome: HelloReply;
    if (auth.ok === 'pending') {
      // Answered at once, so that no client times out while a person decides; the session sees nothing until then.
      const where = this.options.pairingWhere?.() ?? 'the Gatehouse pairing page';
      session.pairing = { state: 'pending', client: hello.client, code: auth.code, deadline: new Date(auth.deadline).toISOString(), where };
      welcome = {
        gatehouse: 'welcome',
        version: HELLO_VERSION,
        session: session.id,
        pairing: { code: auth.code, deadline: new Date(auth.deadline).toISOString(), where },
      };
      const detach = auth.attach({
        alive: () => !socket.destroyed && socket.writable,
        deliver: (outcome) => {
          if (socket.destroyed) return;
          // A whole line between MCP messages: the transport writes each message as one line too.
          const line: PairingOutcomeLine = outcome.ok
            ? { gatehouse: 'paired', version: HELLO_VERSION, credential: outcome.credential }
            : { gatehouse: 'refused', version: HELLO_VERSION, code: outcome.code, reason: outcome.reason };
          socket.write(JSON.stringify(line) + '\n');
          if (outcome.ok) sessions.paired(session, outcome.principal);
          else sessions.pairingRefused(session, outcome.code, outcome.reason);
        },
      });
      socket.once('close', detach);
    } else {
      const notice = this.options.notice?.(auth.principal);
      welcome = {
        gatehouse: 'welcome',
        version: HELLO_VERSION,
        session: session.id,
        ...(auth.credential ? { credential: auth.credential } : {}),
        ...(notice !== undefined ? { notice } : {}),
      };
    }
    socket.write(JSON.stringify(welcome) + '\n');

    const sendError = (id: string | number | null, code: number, message: string): void => {
      if (!socket.writable) return;
      socket.write(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }) + '\n');
    };
    const report = (error: unknown): void => this.options.logger.log('debug', 'socket.mcp_error', { session: session.id, error: errorMessage(error) });
    // Well-formed calls of a 2025-era session skip the SDK's request pipeline; everything else is the SDK's.
    const direct = new DirectCalls(session, { send: (message) => transport.send(message as JSONRPCMessage) }, report);
    const transport: LineTransport = new LineTransport(socket, socket, {
      maxMessageBytes: this.options.maxMessageBytes,
      prefix: rest,
      take: (message) => direct.take(message),
      onGarbage: (_line, problem) =>
        sendError(
          null,
          problem === 'not JSON' ? RpcErrorCode.ParseError : RpcErrorCode.InvalidRequest,
          problem === 'not JSON' ? 'Parse error: the line is not JSON' : 'Invalid Request: not a JSON-RPC 2.0 message',
        ),
      onOversized: (bytes, id) =>
        sendError(id ?? null, RpcErrorCode.RequestTooLarge, `message of ${bytes} bytes is over the ${this.options.maxMessageBytes}-byte limit`),
    });
    const handle = serveStdio(
      ({ era }) => {
        session.era = era;
        const server = sessions.serverFor(session);
        direct.pinned(server);
        return server;
      },
      { transport, onerror: report },
    );
    socket.once('close', () => {
      direct.close();
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

/** The one refusal for a server that is not configured and for one the caller may not see. */
function unknownServer(name: string): string {
  return `no server named "${name}" is configured`;
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
