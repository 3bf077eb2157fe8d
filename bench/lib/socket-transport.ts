/**
 * What `gatehouse connect` carries, spoken directly: one hello line on the daemon's unix socket,
 * the welcome line back, then MCP as newline-delimited JSON-RPC (the daemon's own LineTransport).
 */
import { createConnection, type Socket } from 'node:net';
import type { Transport } from '@modelcontextprotocol/client';
import { LineTransport } from '../../src/node/line-transport.js';

export async function openSocketTransport(socketPath: string, client: string, token: string | undefined): Promise<Transport> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  socket.write(JSON.stringify({ gatehouse: 'hello', version: 1, client, ...(token ? { token } : {}) }) + '\n');
  const { line, rest } = await new Promise<{ line: string; rest: Buffer }>((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no welcome from the daemon within 10 s')), 10_000);
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      const nl = buffer.indexOf(0x0a);
      if (nl === -1) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      resolve({ line: buffer.subarray(0, nl).toString('utf8'), rest: buffer.subarray(nl + 1) });
    };
    socket.on('data', onData);
  });
  const reply = JSON.parse(line) as { gatehouse: string; reason?: string };
  if (reply.gatehouse !== 'welcome') {
    socket.destroy();
    throw new Error(`the daemon refused the benchmark client: ${reply.reason ?? line}`);
  }
  return new LineTransport(socket, socket, { maxMessageBytes: 64 * 1024 * 1024, prefix: rest }) as Transport;
}

/** A plain NDJSON connection on a unix socket, with no hello (the bare proxy's socket). */
export async function openLineTransport(socketPath: string): Promise<Transport> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  return new LineTransport(socket, socket, { maxMessageBytes: 64 * 1024 * 1024 }) as Transport;
}

/**
 * A bare JSON-RPC line client on the socket, for measuring what the daemon costs without an SDK
 * client's own parsing and validation on the receiving end (used for the large tools/list).
 */
export class RawSocketClient {
  private buffer: Buffer[] = [];
  private waiting: ((line: Buffer) => void) | undefined;
  private nextId = 1;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      let data = chunk;
      for (;;) {
        const nl = data.indexOf(0x0a);
        if (nl === -1) {
          this.buffer.push(data);
          return;
        }
        this.buffer.push(data.subarray(0, nl));
        const line = Buffer.concat(this.buffer);
        this.buffer = [];
        data = data.subarray(nl + 1);
        const waiter = this.waiting;
        this.waiting = undefined;
        waiter?.(line);
      }
    });
  }

  static async open(socketPath: string, client: string, token: string | undefined): Promise<RawSocketClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const raw = new RawSocketClient(socket);
    socket.write(JSON.stringify({ gatehouse: 'hello', version: 1, client, ...(token ? { token } : {}) }) + '\n');
    const welcome = JSON.parse((await raw.next()).toString('utf8')) as { gatehouse: string; reason?: string };
    if (welcome.gatehouse !== 'welcome') throw new Error(`refused: ${welcome.reason ?? ''}`);
    const init = await raw.request('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'gatehouse-bench-raw', version: '1.0.0' },
    });
    if (!init.includes('"result"')) throw new Error(`initialize failed: ${init.slice(0, 300)}`);
    raw.socket.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
    return raw;
  }

  private next(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer within 30 s')), 30_000);
      this.waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }

  /** Sends one request and resolves with the raw answer line (unparsed, as text). */
  async request(method: string, params: Record<string, unknown>): Promise<string> {
    const answer = this.next();
    this.socket.write(JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }) + '\n');
    return (await answer).toString('utf8');
  }

  /** Sends one request and resolves with the byte length of the answer, without decoding it. */
  async requestBytes(method: string, params: Record<string, unknown>): Promise<number> {
    const answer = this.next();
    this.socket.write(JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }) + '\n');
    return (await answer).length;
  }

  close(): void {
    this.socket.destroy();
  }
}
