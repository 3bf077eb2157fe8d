/**
 * Gatehouse's side of one sandbox's network: the egress proxy that the relay inside hands every
 * connection to, and the decoy sockets that stand where Gatehouse's own sockets, the session bus
 * and the agents' sockets are. Each listens on a unix socket of its own, bound into that one
 * sandbox, so the socket a request arrives on says which server made it.
 *
 * The proxy is the only place the allow-list is checked. A request is one JSON line, `{"host",
 * "port"}`, answered with `{"ok":true}` followed by the raw stream, or `{"ok":false,"reason"}`. A
 * listed host name is resolved here, on the host, and refused when it resolves to a loopback or
 * unspecified address (list the loopback address itself to allow that). `{"report":"dns","name"}`
 * records a name the sandbox's DNS stub refused. Everything is audited through `SandboxEvents`.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, createServer, connect, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';
import { formatDestination, type Destination } from '../../common/sandbox.js';
import { isAllowed } from '../../core/sandbox/egress.js';
import type { SandboxEvents } from '../../core/sandbox/events.js';

export type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface Decoy {
  /** Where the decoy listens on the host (bound into the sandbox at `inside`). */
  socketPath: string;
  inside: string;
  /** What stands there for real: "Gatehouse's control socket", "the session bus". */
  what: string;
}

export interface EgressProxyOptions {
  server: string;
  /** The egress socket; absent when the sandbox has no allow-list. */
  socketPath?: string;
  destinations: readonly Destination[];
  decoys: readonly Decoy[];
  events: SandboxEvents;
  lookup?: Lookup;
  connectTimeoutMs?: number;
  /** Connections open at once through this sandbox's proxy; more are refused. */
  maxConnections?: number;
  /** Also serve HTTP CONNECT on a loopback port (`connectPort`), for servers that use HTTPS_PROXY. */
  httpConnect?: boolean;
}

const MAX_REQUEST = 1024;
const REQUEST_TIMEOUT_MS = 5_000;

export class EgressProxy {
  readonly #servers: Server[] = [];
  readonly #connections = new Set<Socket>();
  readonly #lookup: Lookup;

  constructor(private readonly options: EgressProxyOptions) {
    this.#lookup = options.lookup ?? ((host) => dnsLookup(host, { all: true }));
  }

  /** The HTTP CONNECT port on 127.0.0.1, once listening with `httpConnect`. */
  connectPort: number | undefined;

  async listen(): Promise<void> {
    if (this.options.socketPath !== undefined) await this.#listenOn(this.options.socketPath, (socket) => this.#onRequest(socket));
    if (this.options.httpConnect) {
      const server = await this.#listenOn({ host: '127.0.0.1', port: 0 }, (socket) => this.#onConnectRequest(socket));
      this.connectPort = (server.address() as { port: number }).port;
    }
    for (const decoy of this.options.decoys) {
      await this.#listenOn(decoy.socketPath, (socket) => {
        this.options.events.denied(this.options.server, 'socket', decoy.inside, `tried to connect to ${decoy.what}, which no server may reach`);
        socket.destroy();
      });
    }
  }

  async close(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    await Promise.all(this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    const paths = [this.options.socketPath, ...this.options.decoys.map((d) => d.socketPath)].filter((p): p is string => p !== undefined);
    await Promise.all(paths.map((p) => rm(p, { force: true })));
  }

  #listenOn(where: string | { host: string; port: number }, onConnection: (socket: Socket) => void): Promise<Server> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      socket.on('error', () => undefined);
      onConnection(socket);
    });
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(where, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  }

  #onRequest(socket: Socket): void {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), REQUEST_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const nl = buffered.indexOf(0x0a);
      if (nl === -1) {
        if (buffered.length > MAX_REQUEST) socket.destroy();
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      void this.#handle(socket, buffered.subarray(0, nl).toString('utf8'), buffered.subarray(nl + 1));
    };
    socket.on('data', onData);
    socket.resume();
  }

  async #handle(socket: Socket, line: string, rest: Buffer): Promise<void> {
    const { server, events } = this.options;
    let request: { host?: unknown; port?: unknown; report?: unknown; name?: unknown };
    try {
      request = JSON.parse(line) as typeof request;
    } catch {
      socket.destroy();
      return;
    }
    if (request.report === 'dns' && typeof request.name === 'string') {
      events.denied(server, 'dns', request.name.slice(0, 253), 'looked up a name that is not on the allow-list');
      socket.end();
      return;
    }
    const host = typeof request.host === 'string' ? request.host.toLowerCase().slice(0, 253) : undefined;
    const port = typeof request.port === 'number' && Number.isInteger(request.port) ? request.port : undefined;
    if (host === undefined || port === undefined) {
      socket.destroy();
      return;
    }
    await this.#open(host, port, socket, rest, {
      accepted: () => socket.write(JSON.stringify({ ok: true }) + '\n'),
      refused: (reason) => this.#refuse(socket, reason),
    });
  }

  /** HTTP CONNECT, for servers that take a proxy from HTTPS_PROXY (macOS, where no relay runs). */
  #onConnectRequest(socket: Socket): void {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), REQUEST_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffered.length > 8 * MAX_REQUEST) socket.destroy();
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const requestLine = buffered.subarray(0, buffered.indexOf('\r\n')).toString('latin1');
      const match = /^CONNECT (\[[^\]]+\]|[^\s:]+):(\d{1,5}) HTTP\/1\.[01]$/.exec(requestLine);
      if (!match) {
        socket.end('HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nGatehouse relays HTTPS (CONNECT) only\n');
        return;
      }
      const host = match[1]!.replace(/^\[|\]$/g, '').toLowerCase();
      void this.#open(host, Number(match[2]), socket, buffered.subarray(end + 4), {
        accepted: () => socket.write('HTTP/1.1 200 Connection Established\r\n\r\n'),
        refused: (reason) => {
          if (!socket.destroyed) socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`);
        },
      });
    };
    socket.on('data', onData);
    socket.resume();
  }

  /** The allow-list, the name check and the connection: one path for every front end. */
  async #open(host: string, port: number, socket: Socket, rest: Buffer, answer: { accepted(): void; refused(reason: string): void }): Promise<void> {
    const { server, events, destinations } = this.options;
    const max = this.options.maxConnections ?? 256;
    const target = formatDestination({ host, port });
    if (!isAllowed(destinations, host, port)) {
      events.denied(server, 'network', target, 'not on the allow-list');
      answer.refused(`${target} is not on this server's allow-list`);
      return;
    }
    if (this.#connections.size >= max) {
      answer.refused(`more than ${max} connections at once`);
      return;
    }
    this.#connections.add(socket);
    socket.once('close', () => this.#connections.delete(socket));
    let addresses = [host];
    if (isIP(host) === 0) {
      let found: { address: string }[];
      try {
        found = await this.#lookup(host);
      } catch (error) {
        answer.refused(`cannot resolve ${host}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        return;
      }
      const local = found.find((a) => isLocalAddress(a.address));
      if (local || found.length === 0) {
        events.denied(server, 'network', target, `resolves to ${local?.address ?? 'no address'}; only a listed loopback address may reach this machine`);
        answer.refused(`${host} resolves to a local address`);
        return;
      }
      // Connect to the addresses checked here, never to the name again: a second lookup could answer otherwise.
      addresses = found.map((a) => a.address);
    }
    let upstream: Socket;
    try {
      upstream = await connectFirst(addresses, port, this.options.connectTimeoutMs ?? 15_000);
    } catch (error) {
      answer.refused(`cannot connect to ${target}: ${(error as Error).message}`);
      return;
    }
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    events.egress(server, target);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    answer.accepted();
    if (rest.length > 0) upstream.write(rest);
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
  }

  #refuse(socket: Socket, reason: string): void {
    if (socket.destroyed) return;
    socket.end(JSON.stringify({ ok: false, reason }) + '\n');
  }
}

/** Tries each address in turn (an unreachable IPv6 address must not hide a working IPv4 one) within `timeoutMs` in all. */
async function connectFirst(addresses: readonly string[], port: number, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  let last: Error = new Error('no address');
  for (const address of addresses) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const upstream = connect({ host: address, port, allowHalfOpen: true });
        const timer = setTimeout(() => upstream.destroy(new Error('connect timed out')), left);
        upstream.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        upstream.once('connect', () => {
          clearTimeout(timer);
          upstream.removeAllListeners('error');
          resolve(upstream);
        });
      });
    } catch (error) {
      last = error as Error;
    }
  }
  throw last;
}

/** Loopback, unspecified and IPv4-mapped loopback addresses: what a listed host name must not resolve to. */
export function isLocalAddress(address: string): boolean {
  const a = address.toLowerCase();
  if (a === '::1' || a === '::' || a === '0.0.0.0') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return /^127\./.test(v4) || v4 === '0.0.0.0';
}
