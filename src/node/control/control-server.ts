/**
 * The daemon's side of the control API: a user-only socket, one JSON request per line, each parsed
 * against the contract in src/common/control-api.ts before anything acts on it.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import {
  ControlEnvelopeSchema,
  ControlRequests,
  MAX_CONTROL_LINE,
  isControlMethod,
  type ControlMethod,
  type ControlResponse,
} from '../../common/control-api.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { z } from 'zod';

export type ControlHandlers = {
  [M in ControlMethod]: (params: z.output<(typeof ControlRequests)[M]>) => Promise<unknown>;
};

export class ControlServer {
  private server: Server | undefined;
  private sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly handlers: ControlHandlers,
  ) {}

  async listen(): Promise<void> {
    if (process.platform !== 'win32' && existsSync(this.path)) unlinkSync(this.path);
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (process.platform !== 'win32') chmodSync(this.path, 0o600);
    this.server = server;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        void this.answer(line).then((response) => socket.writable && socket.write(JSON.stringify(response) + '\n'));
      }
      if (buffer.length > MAX_CONTROL_LINE) {
        socket.end(JSON.stringify({ id: null, error: { code: 'too_large', message: `a control request is at most ${MAX_CONTROL_LINE} bytes` } }) + '\n');
        buffer = '';
      }
    });
  }

  /** Parses and runs one request line; never throws. */
  async answer(line: string): Promise<ControlResponse> {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return { id: null, error: { code: 'parse_error', message: 'the request is not JSON' } };
    }
    const envelope = ControlEnvelopeSchema.safeParse(value);
    if (!envelope.success) return { id: null, error: { code: 'invalid_request', message: 'a request is {"id", "method", "params"}' } };
    const { id, method, params } = envelope.data;
    if (!isControlMethod(method)) return { id, error: { code: 'unknown_method', message: `unknown method "${method}"` } };
    const parsed = ControlRequests[method].safeParse(params ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { id, error: { code: 'invalid_params', message: `${issue?.path.join('.') || 'params'}: ${issue?.message ?? 'invalid'}` } };
    }
    try {
      const handler = this.handlers[method] as (p: unknown) => Promise<unknown>;
      return { id, result: await handler(parsed.data) };
    } catch (error) {
      return { id, error: { code: error instanceof GatehouseError ? error.code : 'failed', message: errorMessage(error) } };
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (process.platform !== 'win32' && existsSync(this.path)) {
      try {
        unlinkSync(this.path);
      } catch {
        // Already gone.
      }
    }
  }
}
