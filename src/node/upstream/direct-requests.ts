/**
 * Governed requests to a stdio server, sent and answered without the SDK client's request pipeline:
 * the other half of the socket's direct path (`downstream/direct-calls.ts`).
 *
 * The SDK client passed each answer through a zod type guard per layer before it reached the
 * request that waited for it. Here the line transport offers each parsed message first to the
 * requests sent from here (by their ids, and their progress tokens), and the answer is decoded and
 * checked by the connection's era codec, the very functions the SDK would call, so a result is
 * accepted or refused exactly as before. What the SDK client did around a request is done the same
 * way: the progress token is the request id, the timeout restarts on progress up to a total of four
 * timeouts, a cancellation or a timeout sends `notifications/cancelled` upstream, and a closed
 * connection fails every request in flight with the SDK's own errors, so `explain()` in
 * `connector.ts` words them as before. On a 2026-07-28 connection the request carries the client's
 * `_meta` envelope as the SDK client adds it, and an answer that is not a complete result (a server
 * asking for input) is handed to the SDK client's own multi-round-trip engine, which asks and
 * retries as it always did. Everything else on the connection (the handshake, lists, pings, the
 * server's own requests and notifications) stays with the SDK client.
 */
import { ProtocolError, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { isPlainObject } from '../../common/objects.js';

type Validation = { ok: true; value: unknown } | { ok: false; reason: string; message?: string };
type Decoded = { kind: 'complete'; result: unknown } | { kind: 'invalid'; error: Error } | { kind: string };

/** What of the era codec this uses: the SDK client's own decode and check of a result. */
export interface ResultCodec {
  decodeResult(method: string, raw: unknown): Decoded;
  validateResult(method: string, raw: unknown): Validation;
}

export interface DirectRequestOptions {
  signal: AbortSignal;
  /** Gatehouse is stopping: cancelled as for `signal`. */
  stop?: AbortSignal | undefined;
  /** An answer that is neither a complete result nor an invalid one (`input_required`): who resolves it. */
  onNonComplete?: (decoded: Decoded) => Promise<Record<string, unknown>>;
  timeoutMs: number;
  /** The longest a request may run when progress keeps restarting its timeout. */
  maxTotalTimeoutMs: number;
  onProgress?: (progress: { progress: number; total?: number; message?: string }) => void;
}

interface InFlight {
  answered(message: Readonly<Record<string, unknown>>): void;
  progressed?(params: Record<string, unknown>): void;
  fail(error: Error): void;
  /** Gives up on the request: the server is told, the caller gets the reason. */
  cancel(reason: unknown): void;
}

export class DirectRequests {
  private readonly inFlight = new Map<number, InFlight>();
  private closed = false;
  /** The stop signal this connection listens to, once for all its requests, not once per request. */
  private stopListener: { stop: AbortSignal; onStop: () => void } | undefined;

  /**
   * `nextId` hands out the ids of requests sent from here. The connector draws them from the SDK
   * client's own counter, so that the two never collide and a server sees the same numbering as
   * before: the progress token of a request is its id, a number, as the SDK client sends it.
   */
  constructor(
    private readonly wire: { send(message: Record<string, unknown>): Promise<void> },
    private readonly codec: ResultCodec,
    private readonly nextId: () => number,
    /** Adds the connection's outbound `_meta` envelope to a message (2026-07-28); the message as it is otherwise. */
    private readonly envelope: (message: Record<string, unknown>) => Record<string, unknown> = (message) => message,
  ) {}

  /** Takes an answer or a progress notification of a request sent from here (true), or leaves the message to the SDK (false). */
  take(message: Readonly<Record<string, unknown>>): boolean {
    if (message.method === undefined) {
      // An answer that comes after its request was cancelled or timed out goes to the SDK client, which reports it as unknown, as before.
      const request = typeof message.id === 'number' ? this.inFlight.get(message.id) : undefined;
      if (!request) return false;
      request.answered(message);
      return true;
    }
    if (message.method !== 'notifications/progress' || !isPlainObject(message.params)) return false;
    const token = message.params.progressToken;
    const request = typeof token === 'number' ? this.inFlight.get(token) : undefined;
    if (!request?.progressed) return false;
    request.progressed(message.params);
    return true;
  }

  /** Fails every request in flight, as the SDK client does when its connection closes; later requests fail at once. */
  close(): void {
    this.closed = true;
    this.unlistenForStop();
    for (const request of [...this.inFlight.values()]) request.fail(new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed'));
  }

  /**
   * Cancels every request in flight when `stop` is aborted, with its reason. The listener goes when the
   * connection closes: the signal outlives every connection of the daemon's run.
   */
  private listenForStop(stop: AbortSignal): void {
    this.unlistenForStop();
    const onStop = (): void => {
      for (const request of [...this.inFlight.values()]) request.cancel(stop.reason);
    };
    stop.addEventListener('abort', onStop, { once: true });
    this.stopListener = { stop, onStop };
  }

  private unlistenForStop(): void {
    if (!this.stopListener) return;
    this.stopListener.stop.removeEventListener('abort', this.stopListener.onStop);
    this.stopListener = undefined;
  }

  request(method: string, params: Record<string, unknown>, options: DirectRequestOptions): Promise<Record<string, unknown>> {
    const { signal, stop } = options;
    if (this.closed) return Promise.reject(new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed'));
    if (signal.aborted) return Promise.reject(asSdkError(signal.reason));
    if (stop?.aborted) return Promise.reject(asSdkError(stop.reason));
    if (stop && stop !== this.stopListener?.stop) this.listenForStop(stop);
    const id = this.nextId();
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const startedAt = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const settle = (): void => {
        this.inFlight.delete(id);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (error: Error): void => {
        settle();
        reject(error);
      };
      const cancel = (reason: unknown): void => {
        if (!this.inFlight.has(id)) return;
        settle();
        this.wire
          .send(this.envelope({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: String(reason) } }))
          .catch(() => undefined);
        reject(asSdkError(reason));
      };
      const onAbort = (): void => cancel(signal.reason);
      const onTimeout = (): void => cancel(new SdkError(SdkErrorCode.RequestTimeout, 'Request timed out', { timeout: options.timeoutMs }));
      const request: InFlight = {
        fail,
        cancel,
        answered: (message) => {
          settle();
          const error = message.error;
          if (error !== undefined) {
            const { code, message: text, data } = isPlainObject(error) ? error : {};
            reject(ProtocolError.fromError(code as number, text as string, data));
            return;
          }
          try {
            const decoded = this.codec.decodeResult(method, message.result);
            if (decoded.kind === 'invalid' && 'error' in decoded) return reject(decoded.error);
            if (decoded.kind !== 'complete' || !('result' in decoded)) {
              if (options.onNonComplete) return void options.onNonComplete(decoded).then(resolve, reject);
              return reject(new SdkError(SdkErrorCode.UnsupportedResultType, `Unsupported result type '${decoded.kind}' for ${method}`));
            }
            const checked = this.codec.validateResult(method, decoded.result);
            if (checked.ok) return resolve(checked.value as Record<string, unknown>);
            const problem = checked.reason === 'invalid' ? (checked.message ?? 'invalid') : `not-in-era: ${method}`;
            reject(new SdkError(SdkErrorCode.InvalidResult, `Invalid result for ${method}: ${problem}`));
          } catch (thrown) {
            reject(thrown instanceof Error ? thrown : new Error(String(thrown)));
          }
        },
      };
      const onProgress = options.onProgress;
      if (onProgress) {
        request.progressed = (params) => {
          if (Date.now() - startedAt >= options.maxTotalTimeoutMs) {
            cancel(new SdkError(SdkErrorCode.RequestTimeout, 'Maximum total timeout exceeded', { maxTotalTimeout: options.maxTotalTimeoutMs }));
            return;
          }
          clearTimeout(timer);
          timer = setTimeout(onTimeout, options.timeoutMs);
          const { progressToken: _token, ...progress } = params;
          onProgress(progress as Parameters<typeof onProgress>[0]);
        };
      }
      this.inFlight.set(id, request);
      signal.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(onTimeout, options.timeoutMs);
      const meta = isPlainObject(params._meta) ? params._meta : undefined;
      const sent = onProgress ? { ...params, _meta: { ...meta, progressToken: id } } : params;
      this.wire
        .send(this.envelope({ method, params: sent, jsonrpc: '2.0', id }))
        .catch((error: unknown) => fail(error instanceof Error ? error : new Error(String(error))));
    });
  }
}

/** As the SDK client words a reason to give up: an SDK error as it is, anything else as a timeout with its text. */
function asSdkError(reason: unknown): Error {
  return reason instanceof SdkError ? reason : new SdkError(SdkErrorCode.RequestTimeout, String(reason));
}
