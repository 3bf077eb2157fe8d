/**
 * A raw connection to the daemon's local socket, as a test drives it line by line: the hello line,
 * then JSON-RPC lines, with nothing of the SDK in between (bad-input.test.ts, direct-calls.test.ts).
 */
import { createConnection, type Socket } from 'node:net';
import { expect } from 'vitest';
import type { RunningGatehouse } from './gatehouse.js';

export interface RpcMessage {
  jsonrpc?: string;
  id?: number | string | null;
  method?: string;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
  [key: string]: unknown;
}

/** Every connection a test opens; whatever a failed test left open is closed after it. */
export const opened = new Set<Socket>();

/** A raw connection to the local socket that reads newline-delimited lines. */
export class LineSocket {
  readonly lines: string[] = [];
  readonly closed: Promise<void>;
  private buffer = '';
  private wake: (() => void) | undefined;
  private nextId = 1;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => this.wake?.());
  }

  static async connect(path: string): Promise<LineSocket> {
    const socket = createConnection(path);
    opened.add(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new LineSocket(socket);
  }

  /** Connects, says hello, initializes; fails unless welcomed. */
  static async session(gh: RunningGatehouse, hello: Record<string, unknown> = {}): Promise<LineSocket> {
    const s = await LineSocket.connect(gh.socketPath);
    s.write(JSON.stringify({ gatehouse: 'hello', version: 1, client: 'test-client', token: gh.token, ...hello }));
    const reply = JSON.parse(await s.nextLine()) as { gatehouse: string; reason?: string };
    if (reply.gatehouse !== 'welcome') throw new Error(`refused: ${reply.reason}`);
    const init = await s.request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bad-input-test', version: '1.0.0' } });
    expect(init.result?.protocolVersion).toBe('2025-06-18');
    s.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    return s;
  }

  write(line: string): void {
    this.socket.write(line + '\n');
  }

  /** The next line that has not been taken yet (lines are taken in order). */
  async nextLine(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.socket.destroyed) throw new Error('the connection closed');
      if (Date.now() > deadline) throw new Error('no line within the timeout');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** The next JSON-RPC message matching `predicate`, skipping notifications in between. */
  async next(predicate: (m: RpcMessage) => boolean, timeoutMs = 10_000): Promise<RpcMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = JSON.parse(await this.nextLine(Math.max(1, deadline - Date.now()))) as RpcMessage;
      if (predicate(message)) return message;
    }
  }

  async request(method: string, params: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<RpcMessage> {
    const id = this.nextId++;
    this.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return this.next((m) => m.id === id, timeoutMs);
  }

  async echo(text: string): Promise<string> {
    const response = await this.request('tools/call', { name: 'srv__echo', arguments: { text } });
    expect(response.error, 'srv__echo').toBeUndefined();
    return (response.result!.content as { text: string }[])[0]!.text;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
