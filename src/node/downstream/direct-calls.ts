/**
 * `tools/call` on a 2025-era socket session, served without the SDK's request pipeline.
 *
 * Most of what the daemon spent on a socket call outside the audit and the governance stages was
 * the SDK passing one well-formed request through its layers: a zod type guard per layer for the
 * request and again for the response, the request validated twice against its schema, a context
 * object of closures built per request (BENCHMARKS.md). Here the line transport's parsed message
 * goes straight to the same handler the SDK would call (`DownstreamServer.callTool`: pairing, the
 * search view, the gateway), and its result is checked against the same schema the SDK checks it
 * with (the session's era codec) before it is written. The SDK still serves everything else on the
 * connection (the handshake, lists, prompts, resources, server-to-client requests and their
 * responses), and any `tools/call` this path does not take: one before the handshake ends, one
 * that is not well-formed (the SDK words the error), one with an id already in flight.
 *
 * What a client sees is the same either way, byte for byte (test/integration/direct-calls.test.ts
 * runs the same calls through both).
 */
import { RpcErrorCode } from '../../common/errors.js';
import { isPlainObject } from '../../common/objects.js';
import type { RequestMethod } from '@modelcontextprotocol/server';
import type { DownstreamServer, DownstreamSession } from './mcp-server.js';

type RequestId = string | number;
/** A parsed JSON-RPC message, as the line transport delivers it. */
type Message = Readonly<Record<string, unknown>>;
type Validation = { ok: true; value: unknown } | { ok: false; reason: string; message?: string };

/** Where answers go: the connection's transport (its `send` frames and writes one message). */
export interface DirectCallWire {
  send(message: Record<string, unknown>): Promise<void>;
}

export class DirectCalls {
  /** The calls in flight here, by request id: a cancellation of one aborts it. */
  private readonly running = new Map<RequestId, AbortController>();
  /** The server pinned for the connection, once its era is known to be 2025's. */
  private candidate: DownstreamServer | undefined;
  /** The same, once the 2025 handshake has ended (the client said `notifications/initialized`): calls come here from then on. */
  private server: DownstreamServer | undefined;
  /** The era codec's check of a `tools/call` result, which the SDK applies before writing one. */
  private validate: ((raw: unknown) => Validation) | undefined;

  constructor(
    private readonly session: DownstreamSession,
    private readonly wire: DirectCallWire,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The server that answers this connection, once the SDK has pinned it (`serveStdio`'s factory). */
  pinned(server: DownstreamServer): void {
    if (this.session.era === 'legacy') this.candidate = server;
  }

  /** Serves `message` here and returns true, or returns false for the SDK to serve it. */
  take(message: Message): boolean {
    const { method } = message;
    if (method === 'tools/call') {
      const server = this.server;
      const id = message.id;
      if (!server || (typeof id !== 'string' && typeof id !== 'number') || this.running.has(id) || this.session.pairing) return false;
      const params = message.params;
      if (!wellFormed(params)) return false;
      this.serve(server, id, params);
      return true;
    }
    if (method === 'notifications/cancelled') {
      const id = isPlainObject(message.params) ? message.params.requestId : undefined;
      const controller = typeof id === 'string' || typeof id === 'number' ? this.running.get(id) : undefined;
      if (!controller) return false;
      const reason = (message.params as Record<string, unknown>).reason;
      controller.abort(reason);
      return true;
    }
    // The SDK answers the handshake; calls come here from the next message on.
    if (method === 'notifications/initialized') this.handshakeEnded();
    return false;
  }

  /**
   * Calls come here from now on, if the server's era codec can be reached to check results as the
   * SDK does (it is the accessor the SDK keeps for its role classes); if a later SDK drops it, every
   * call stays with the SDK.
   */
  private handshakeEnded(): void {
    const server = this.candidate;
    if (!server || this.session.era !== 'legacy') return;
    const codec = (server as unknown as { _wireCodec?: () => { validateResult?(method: string, raw: unknown): Validation } | undefined })._wireCodec?.();
    if (typeof codec?.validateResult !== 'function') return;
    this.validate = (raw) => codec.validateResult!('tools/call', raw);
    this.server = server;
  }

  /** Aborts every call still running (the connection closed). */
  close(): void {
    for (const controller of this.running.values()) controller.abort(new Error('the connection closed'));
    this.running.clear();
    this.server = undefined;
  }

  private serve(server: DownstreamServer, id: RequestId, params: Record<string, unknown>): void {
    const controller = new AbortController();
    this.running.set(id, controller);
    const { signal } = controller;
    const meta = params._meta as Record<string, unknown> | undefined;
    server
      .callTool(params, {
        signal,
        ...(meta ? { meta } : {}),
        notify: (method, notification) => this.wire.send({ jsonrpc: '2.0', method, params: notification }),
        send: (method, request, requestSignal) =>
          server.request({ method: method as RequestMethod, ...(request ? { params: request } : {}) }, { signal: requestSignal, relatedRequestId: id }),
      })
      .then(
        (result) => {
          if (signal.aborted) return;
          const checked = this.validate!(contentful(result));
          if (!checked.ok) {
            const problem =
              checked.reason === 'invalid' ? `Invalid tools/call result: ${checked.message ?? 'invalid'}` : 'No wire schema for tools/call in the resolved era';
            return this.wire.send(errorResponse(id, checked.reason === 'invalid' ? RpcErrorCode.InvalidParams : RpcErrorCode.InternalError, problem));
          }
          // In the order the SDK writes a response's members, so that both paths write the same bytes.
          return this.wire.send({ result: checked.value, jsonrpc: '2.0', id });
        },
        (error: unknown) => {
          if (signal.aborted) return;
          const { code, message, data } = error as { code?: unknown; message?: unknown; data?: unknown };
          const thrown = typeof code === 'number' && Number.isSafeInteger(code) ? code : RpcErrorCode.InternalError;
          return this.wire.send(errorResponse(id, thrown, typeof message === 'string' ? message : 'Internal error', data));
        },
      )
      .catch((error: unknown) => this.onError(error))
      .finally(() => {
        if (this.running.get(id) === controller) this.running.delete(id);
      });
  }
}

/**
 * A `tools/call` whose params the SDK would accept as they are, by the 2025 schema's rules: a
 * string name, arguments (if any) an object, `_meta` (if any) an object whose progress token (if
 * any) is a string or a number, and nothing that asks for a task. Anything else goes to the SDK,
 * which words the error.
 */
function wellFormed(params: unknown): params is Record<string, unknown> {
  if (!isPlainObject(params) || typeof params.name !== 'string') return false;
  if (params.arguments !== undefined && !isPlainObject(params.arguments)) return false;
  if (params.task !== undefined) return false;
  const meta = params._meta;
  if (meta === undefined) return true;
  if (!isPlainObject(meta)) return false;
  const token = meta.progressToken;
  return token === undefined || typeof token === 'string' || typeof token === 'number';
}

/** A result without `content` gets an empty one, as the SDK's handler wrapper gives it. */
function contentful(result: Record<string, unknown>): Record<string, unknown> {
  if (result.content !== undefined || 'task' in result || 'inputRequests' in result || 'requestState' in result) return result;
  return { ...result, content: [] };
}

/** As the SDK writes a thrown error, with the 2025 wire's code for "resource not found" (-32002 → -32602). */
function errorResponse(id: RequestId, code: number, message: string, data?: unknown): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    error: { code: code === -32002 ? RpcErrorCode.InvalidParams : code, message, ...(data !== undefined ? { data } : {}) },
  };
}
