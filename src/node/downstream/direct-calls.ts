/**
 * `tools/call` served without the SDK's request pipeline.
 *
 * Most of what the daemon spent on a call outside the audit and the governance stages was the SDK
 * passing one well-formed request through its layers: a zod type guard per layer for the request and
 * again for the response, the request validated twice against its schema, a context object of
 * closures built per request (BENCHMARKS.md). Here a parsed message goes straight to the same handler
 * the SDK would call (`DownstreamServer.callTool`: pairing, the search view, the gateway), and its
 * result is checked and encoded with the server's own era codec, as the SDK checks and encodes it,
 * before it is written.
 *
 * `DirectCalls` does this for a 2025-era session, on the socket and on a 2025 HTTP session alike: the
 * SDK still serves everything else on the connection (the handshake, lists, prompts, resources,
 * server-to-client requests and their responses), and any `tools/call` this path does not take: one
 * before the handshake ends, one that is not well-formed (the SDK words the error), one with an id
 * already in flight. `serveCall` is the part both eras share: a 2026-07-28 HTTP request is served by
 * it too (`modern-calls.ts`).
 *
 * What a client sees is the same either way, byte for byte (test/integration/direct-calls.test.ts
 * and http-direct-calls.test.ts run the same calls through both).
 */
import { SdkError, SdkErrorCode, type RequestMethod } from '@modelcontextprotocol/server';
import { RpcErrorCode } from '../../common/errors.js';
import { isPlainObject } from '../../common/objects.js';
import type { DownstreamServer, DownstreamSession } from './mcp-server.js';

export type RequestId = string | number;
/** A parsed JSON-RPC message, as a transport delivers it. */
type Message = Readonly<Record<string, unknown>>;
type Validation = { ok: true; value: unknown } | { ok: false; reason: string; message?: string };

/** The members of the SDK's era codec that serving a call uses, as the SDK's dispatch uses them. */
export interface EraCodec {
  /** The wire era it speaks: `2025-11-25` or `2026-07-28`. */
  readonly era: string;
  validateResult(method: string, raw: unknown): Validation;
  /** The result as the era writes it (2026-07-28: `resultType`, the server's identity in `_meta`). */
  encodeResult(method: string, result: unknown, serverInfo?: unknown): unknown;
  encodeErrorCode(code: number): number;
  /** Why a request's lifted `_meta` envelope is refused, or undefined. */
  checkInboundEnvelope(material: { envelope?: Record<string, unknown> }): string | undefined;
}

/** A server's era codec and the identity it stamps on results, as its SDK dispatch would use them. */
export interface ServerEra {
  codec: EraCodec;
  serverInfo: unknown;
}

/**
 * The era the SDK serves `server` in now, read through the accessors the SDK keeps for its role
 * classes (`_wireCodec()`, `_outboundServerInfo()`), or undefined when this SDK does not keep them
 * reachable: then every call stays with the SDK.
 */
export function eraOf(server: DownstreamServer): ServerEra | undefined {
  const internals = server as unknown as { _wireCodec?: () => Partial<EraCodec> | undefined; _outboundServerInfo?: () => unknown };
  if (typeof internals._wireCodec !== 'function' || typeof internals._outboundServerInfo !== 'function') return undefined;
  const codec = internals._wireCodec();
  if (
    typeof codec?.era !== 'string' ||
    typeof codec.validateResult !== 'function' ||
    typeof codec.encodeResult !== 'function' ||
    typeof codec.encodeErrorCode !== 'function' ||
    typeof codec.checkInboundEnvelope !== 'function'
  ) {
    return undefined;
  }
  return { codec: codec as EraCodec, serverInfo: internals._outboundServerInfo() };
}

/** `_meta` keys the SDK lifts out of every request before its handler sees it: the 2026-07-28 envelope. */
const ENVELOPE_KEYS = [
  'io.modelcontextprotocol/protocolVersion',
  'io.modelcontextprotocol/clientInfo',
  'io.modelcontextprotocol/clientCapabilities',
  'io.modelcontextprotocol/logLevel',
] as const;
const MESSAGE_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);

/** A `tools/call` request as its handler sees it. */
export interface WellFormedCall {
  id: RequestId;
  /** The params as sent. */
  params: Record<string, unknown>;
  /** `_meta` without the envelope, as the SDK hands it to the handler (undefined when nothing is left). */
  meta?: Record<string, unknown>;
  /** The envelope keys the SDK lifts out of `_meta`, if any. */
  envelope?: Record<string, unknown>;
}

/**
 * A `tools/call` that the SDK would dispatch to its handler as it is, by its own rules in both eras:
 * a JSON-RPC request (the SDK's schema is strict: no member beyond `jsonrpc`, `id`, `method` and
 * `params`; an id a string or a safe integer), whose params have a string name, arguments (if any) an
 * object, `_meta` (if any) an object whose progress token (if any) is a string or a safe integer, and
 * nothing that asks for a task or carries a multi-round-trip retry (`inputResponses`, `requestState`).
 * Anything else is undefined: the SDK serves it, and words the error.
 */
export function wellFormedCall(message: unknown): WellFormedCall | undefined {
  if (!isPlainObject(message) || message.method !== 'tools/call' || message.jsonrpc !== '2.0') return undefined;
  for (const key in message) if (!MESSAGE_KEYS.has(key)) return undefined;
  const { id, params } = message;
  if (typeof id !== 'string' && !Number.isSafeInteger(id)) return undefined;
  if (!isPlainObject(params) || typeof params.name !== 'string') return undefined;
  if (params.arguments !== undefined && !isPlainObject(params.arguments)) return undefined;
  if (params.task !== undefined || params.inputResponses !== undefined || params.requestState !== undefined) return undefined;
  const call: WellFormedCall = { id: id as RequestId, params };
  const meta = params._meta;
  if (meta === undefined) return call;
  if (!isPlainObject(meta) || 'io.modelcontextprotocol/related-task' in meta) return undefined;
  const token = meta.progressToken;
  if (token !== undefined && typeof token !== 'string' && !Number.isSafeInteger(token)) return undefined;
  let rest: Record<string, unknown> | undefined;
  for (const key of ENVELOPE_KEYS) {
    if (!(key in meta)) continue;
    rest ??= { ...meta };
    (call.envelope ??= {})[key] = meta[key];
    delete rest[key];
  }
  const handed = rest ?? meta;
  if (rest === undefined || Object.keys(rest).length > 0) call.meta = handed;
  return call;
}

/** Where one call's messages go, and what tells it to stop. */
export interface CallExchange {
  /** Aborted when the client cancels the call or its connection ends. */
  signal: AbortSignal;
  /** Over HTTP: aborted when the request's connection closes before its answer is written. */
  gone?: () => AbortSignal;
  /** Writes one message of this call: a notification, a server-to-client request, or its answer. */
  send(message: Record<string, unknown>): Promise<void>;
}

/**
 * Runs `call` on `server`'s `tools/call` handler and writes its answer as the SDK's dispatch would:
 * the result normalised (a result without `content` gets an empty one), checked and encoded with the
 * era's codec, in the order the SDK writes a response's members; a thrown error with the era's code.
 * Nothing is written once the call is aborted. Never rejects: a failure to write goes to `onError`.
 */
export async function serveCall(
  server: DownstreamServer,
  era: ServerEra,
  call: WellFormedCall,
  exchange: CallExchange,
  onError: (error: unknown) => void,
): Promise<void> {
  const { id } = call;
  const { signal } = exchange;
  const { codec } = era;
  try {
    let result: Record<string, unknown>;
    try {
      result = await server.callTool(call.params, {
        signal,
        ...(call.meta ? { meta: call.meta } : {}),
        ...(call.envelope ? { envelope: call.envelope } : {}),
        ...(exchange.gone ? { gone: exchange.gone } : {}),
        notify: (method, params) => exchange.send({ jsonrpc: '2.0', method, params }),
        send: (method, params, requestSignal) =>
          server.request({ method: method as RequestMethod, ...(params ? { params } : {}) }, { signal: requestSignal, relatedRequestId: id }),
      });
    } catch (error) {
      if (signal.aborted) return;
      // Read as the SDK reads a thrown value (a null one fails here as it fails there, and nothing is answered).
      const { code, message, data } = error as { code?: unknown; message?: unknown; data?: unknown };
      const thrown = Number.isSafeInteger(code) ? (code as number) : RpcErrorCode.InternalError;
      return await exchange.send(errorResponse(id, codec.encodeErrorCode(thrown), message ?? 'Internal error', data));
    }
    if (signal.aborted) return;
    const checked = codec.validateResult('tools/call', contentful(result));
    if (!checked.ok) {
      const invalid = checked.reason === 'invalid';
      const problem = invalid ? `Invalid tools/call result: ${checked.message ?? 'invalid'}` : 'No wire schema for tools/call in the resolved era';
      return await exchange.send(errorResponse(id, codec.encodeErrorCode(invalid ? RpcErrorCode.InvalidParams : RpcErrorCode.InternalError), problem));
    }
    let encoded: unknown;
    try {
      encoded = codec.encodeResult('tools/call', checked.value, era.serverInfo);
    } catch (error) {
      // As the SDK answers a result it cannot encode (a `resultType` the era does not allow for the method).
      onError(error);
      return await exchange.send(errorResponse(id, RpcErrorCode.InternalError, 'Internal error'));
    }
    // In the order the SDK writes a response's members, so that both paths write the same bytes.
    await exchange.send({ result: encoded, jsonrpc: '2.0', id });
  } catch (error) {
    onError(error);
  }
}

/** Where a session's answers go: its transport, which frames and writes a message for the call it belongs to. */
export interface DirectCallWire {
  /** `related` is the id of the call the message belongs to (a notification's, a server-to-client request's, or the answer's own). */
  send(message: Record<string, unknown>, related: RequestId): Promise<void>;
}

/** `tools/call` on one 2025-era session (a socket connection, a 2025 HTTP session), beside the SDK that serves the rest. */
export class DirectCalls {
  /** The calls in flight here, by request id: a cancellation of one aborts it. */
  private readonly running = new Map<RequestId, AbortController>();
  /** The server pinned for the connection, once its era is known to be 2025's. */
  private candidate: DownstreamServer | undefined;
  /** The same, once the 2025 handshake has ended (the client said `notifications/initialized`): calls come here from then on. */
  private server: DownstreamServer | undefined;
  /** The server's era codec, which the SDK checks and encodes results with. */
  private era: ServerEra | undefined;

  constructor(
    private readonly session: DownstreamSession,
    private readonly wire: DirectCallWire,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The server that answers this connection, once the SDK has pinned it. */
  pinned(server: DownstreamServer): void {
    if (this.session.era === 'legacy') this.candidate = server;
  }

  /**
   * Serves `message` here and returns true, or returns false for the SDK to serve it. Over HTTP,
   * `gone` is the signal of the request that carried it: aborted when its connection closes before
   * the answer is written (made when first asked for).
   */
  take(message: Message, gone?: () => AbortSignal): boolean {
    const { method } = message;
    if (method === 'tools/call') {
      const server = this.server;
      if (!server || this.session.pairing) return false;
      const call = wellFormedCall(message);
      if (!call || this.running.has(call.id)) return false;
      this.serve(server, call, gone);
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

  /** Calls come here from now on, if the server's era codec can be reached to check and encode results as the SDK does. */
  private handshakeEnded(): void {
    const server = this.candidate;
    if (!server || this.session.era !== 'legacy') return;
    const era = eraOf(server);
    if (!era) return;
    this.era = era;
    this.server = server;
  }

  /** Aborts every call still running (the connection closed), as the SDK aborts its handlers then. */
  close(): void {
    if (this.running.size > 0) {
      const closed = new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed');
      for (const controller of this.running.values()) controller.abort(closed);
    }
    this.running.clear();
    this.server = undefined;
  }

  private serve(server: DownstreamServer, call: WellFormedCall, gone: (() => AbortSignal) | undefined): void {
    const { id } = call;
    const controller = new AbortController();
    this.running.set(id, controller);
    const exchange: CallExchange = {
      signal: controller.signal,
      ...(gone ? { gone } : {}),
      send: (message) => this.wire.send(message, id),
    };
    void serveCall(server, this.era!, call, exchange, this.onError).finally(() => {
      if (this.running.get(id) === controller) this.running.delete(id);
    });
  }
}

/** A result without `content` gets an empty one, as the SDK's handler wrapper gives it. */
function contentful(result: Record<string, unknown>): Record<string, unknown> {
  if (result.content !== undefined || 'task' in result || 'inputRequests' in result || 'requestState' in result) return result;
  return { ...result, content: [] };
}

/** As the SDK writes an error response (the code already in the era's form). */
function errorResponse(id: RequestId, code: number, message: unknown, data?: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code, message, ...(data !== undefined ? { data } : {}) } };
}
