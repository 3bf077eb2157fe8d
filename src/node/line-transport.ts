/**
 * An MCP transport over a pair of byte streams carrying newline-delimited JSON-RPC: a child's
 * stdio, a unix socket, a named pipe. One implementation for upstream children and downstream
 * socket clients, so that both enforce the same message-size limit and treat garbage the same way.
 */
import type { Readable, Writable } from 'node:stream';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/client';
import { serializeLine } from './downstream/wire-json.js';

export interface LineTransportOptions {
  /** Largest accepted line, in bytes. A longer one is discarded and reported, and the stream stays usable. */
  maxMessageBytes: number;
  /** A line that is not a JSON-RPC message (a server printing to stdout, a client sending junk). */
  onGarbage?: (line: string, problem: string) => void;
  /** A line over the limit; `id` is set when the start of the line revealed a message id; `head` is that start (up to 256 bytes). */
  onOversized?: (bytes: number, id: string | number | undefined, head: string) => void;
  /** Bytes already read from `input` before the transport took over (the rest of a hello line's chunk). */
  prefix?: Buffer;
  /**
   * Deliver each response one microtask late. The SDK runs notification handlers in a microtask
   * but settles responses at once, so a progress notification read together with its response
   * would otherwise reach a request that has already ended, and be dropped.
   */
  responsesAfterNotifications?: boolean;
  /**
   * Offered each message before `onmessage`: one it returns true for was served by the caller and is
   * not delivered (the socket's direct `tools/call` path, `downstream/direct-calls.ts`).
   */
  take?: (message: JSONRPCMessage) => boolean;
}

export class LineTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T) => void) | undefined;

  private chunks: Buffer[] = [];
  private buffered = 0;
  /** True while discarding the rest of an oversized line. */
  private discarding = false;
  private discardedBytes = 0;
  private discardHead = '';
  private closed = false;
  private started = false;
  private corked = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly options: LineTransportOptions,
  ) {}

  async start(): Promise<void> {
    if (this.started) throw new Error('LineTransport already started');
    this.started = true;
    this.input.on('data', this.onData);
    this.input.on('error', this.onStreamError);
    this.output.on('error', this.onStreamError);
    this.input.on('end', this.onEnd);
    this.input.on('close', this.onEnd);
    if (this.options.prefix && this.options.prefix.length > 0) this.onData(this.options.prefix);
    this.input.resume();
  }

  private readonly onStreamError = (error: Error): void => {
    this.onerror?.(error);
    this.onEnd();
  };

  private readonly onEnd = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    this.onclose?.();
  };

  private detach(): void {
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('close', this.onEnd);
  }

  private readonly onData = (chunk: Buffer | string): void => {
    let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    while (data.length > 0) {
      const nl = data.indexOf(0x0a);
      const part = nl === -1 ? data : data.subarray(0, nl);
      if (this.discarding) {
        this.discardedBytes += part.length;
      } else if (this.buffered + part.length > this.options.maxMessageBytes) {
        this.discarding = true;
        this.discardHead = Buffer.concat([...this.chunks, part])
          .subarray(0, 256)
          .toString('utf8');
        this.discardedBytes = this.buffered + part.length;
        this.chunks = [];
        this.buffered = 0;
      } else if (part.length > 0) {
        this.chunks.push(part);
        this.buffered += part.length;
      }
      if (nl === -1) return;
      if (this.discarding) {
        this.options.onOversized?.(this.discardedBytes, idFromHead(this.discardHead), this.discardHead);
        this.discarding = false;
        this.discardedBytes = 0;
        this.discardHead = '';
      } else {
        const line = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [];
        this.buffered = 0;
        this.deliver(line);
      }
      data = data.subarray(nl + 1);
    }
  };

  private deliver(raw: Buffer): void {
    // A CRLF line ends in a carriage return; taking it off the bytes spares scanning the text for it.
    const end = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.length - 1 : raw.length;
    if (end === 0) return;
    // `toString()` without a range takes Node's fast path; a range goes through argument checks.
    const text = (end === raw.length ? raw : raw.subarray(0, end)).toString();
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      // A blank line is no message (and no garbage); only a failed parse pays for finding that out.
      if (text.trim() !== '') this.options.onGarbage?.(text, 'not JSON');
      return;
    }
    if (!isJsonRpcMessage(message)) {
      this.options.onGarbage?.(text, 'not a JSON-RPC 2.0 message');
      return;
    }
    if (this.options.responsesAfterNotifications && !('method' in message)) {
      queueMicrotask(() => this.dispatch(message));
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: JSONRPCMessage): void {
    try {
      if (this.options.take?.(message)) return;
      this.onmessage?.(message);
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw new Error('connection closed');
    const line = serializeLine(message);
    // Messages written in the same tick leave in one write: under load that is one syscall, not one per message.
    if (!this.corked) {
      this.corked = true;
      this.output.cork();
      process.nextTick(() => {
        this.corked = false;
        this.output.uncork();
      });
    }
    await new Promise<void>((resolve, reject) => {
      const done = (error: Error | null | undefined): void => (error ? reject(error) : undefined);
      let ok: boolean;
      if (typeof line === 'string') ok = this.output.write(line, done);
      else {
        // A kept list's parts, in the same cork: one write to the system.
        for (let i = 0; i < line.length - 1; i++) this.output.write(line[i]);
        ok = this.output.write(line[line.length - 1], done);
      }
      if (ok) resolve();
      else this.output.once('drain', resolve);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    if (!this.output.writableEnded) this.output.end();
    this.onclose?.();
  }
}

function isJsonRpcMessage(value: unknown): value is JSONRPCMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return false;
  if (typeof m.method === 'string') return true;
  return 'id' in m && ('result' in m || 'error' in m);
}

/** Best effort: the id of a request whose line was too long to read whole. */
function idFromHead(head: string): string | number | undefined {
  const match = /"id"\s*:\s*("(?:[^"\\]|\\.){0,128}"|-?\d{1,16})/.exec(head);
  if (!match?.[1]) return undefined;
  try {
    return JSON.parse(match[1]) as string | number;
  } catch {
    return undefined;
  }
}
