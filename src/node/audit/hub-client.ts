/**
 * The device side of the hub protocol (`src/core/audit/protocol.ts`): every request is signed with
 * the device key, times out, and fails with an error that says what the hub said.
 */
import { hostname } from 'node:os';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import { LinkedSignals } from '../linked-signals.js';
import type { DeviceKey } from '../../core/audit/device-key.js';
import { deviceRequestPayload, enrolmentPayload } from '../../core/audit/event.js';
import { formatDeviceAuthorization, type BatchRequest, type BatchResponse, type DeviceState, type HubErrorBody } from '../../core/audit/protocol.js';

export class HubError extends GatehouseError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
    this.name = 'HubError';
  }
}

export interface HubClientOptions {
  url: string;
  key: DeviceKey;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** One request to the hub and how its answer is read. */
interface Exchange<T> {
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** Gatehouse stopping: the exchange is abandoned. */
  stop?: AbortSignal;
  read(response: Response): Promise<T>;
}

export class HubClient {
  readonly url: string;
  private readonly key: DeviceKey;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly linked = new LinkedSignals();

  constructor(options: HubClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.key = options.key;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** The hub's ack for this device, or `undefined` when the hub does not know it. */
  async state(signal?: AbortSignal): Promise<DeviceState | undefined> {
    try {
      return (await this.request('GET', `/v1/devices/${this.key.device}`, undefined, signal)) as DeviceState;
    } catch (error) {
      if (error instanceof HubError && error.status === 404) return undefined;
      throw error;
    }
  }

  async sendBatch(batch: BatchRequest, signal?: AbortSignal): Promise<BatchResponse> {
    return (await this.request('POST', `/v1/devices/${this.key.device}/events`, JSON.stringify(batch), signal)) as BatchResponse;
  }

  /** The signed policy bundle the hub publishes; `notModified` when it still has `etag`. */
  async fetchBundle(etag?: string): Promise<{ notModified: true } | { notModified: false; etag: string; bytes: Uint8Array; contentType: string } | undefined> {
    return this.signed({
      method: 'GET',
      path: '/v1/bundle',
      headers: etag ? { 'if-none-match': etag } : {},
      read: async (response) => {
        if (response.status === 304) return { notModified: true as const };
        if (response.status === 404) return undefined;
        if (!response.ok) throw await hubError(response, this.url);
        return {
          notModified: false as const,
          etag: response.headers.get('etag') ?? '',
          bytes: new Uint8Array(await response.arrayBuffer()),
          contentType: response.headers.get('content-type') ?? 'application/octet-stream',
        };
      },
    });
  }

  /** Enrols this device's key with an enrolment secret the hub's admin handed out. */
  async enrol(enrolmentSecret: string): Promise<DeviceState> {
    const at = new Date().toISOString();
    const host = hostname();
    const proof = this.key.sign(enrolmentPayload({ device: this.key.device, publicKey: this.key.publicKey, at, host }));
    const body = JSON.stringify({ device: this.key.device, publicKey: this.key.publicKey, at, host, proof });
    return this.send({
      method: 'POST',
      path: '/v1/enrol',
      body,
      headers: { authorization: `Bearer ${enrolmentSecret}`, 'content-type': 'application/json' },
      read: async (response) => {
        if (!response.ok) throw await hubError(response, this.url);
        return (await response.json()) as DeviceState;
      },
    });
  }

  private request(method: string, path: string, body?: string, stop?: AbortSignal): Promise<unknown> {
    return this.signed({
      method,
      path,
      ...(body !== undefined ? { body } : {}),
      ...(stop ? { stop } : {}),
      read: async (response) => {
        if (!response.ok) throw await hubError(response, this.url);
        return response.json();
      },
    });
  }

  /** An exchange signed with the device key. */
  private signed<T>(exchange: Exchange<T>): Promise<T> {
    const { method, path, body } = exchange;
    const ts = Date.now();
    const sig = this.key.sign(deviceRequestPayload(method, path, ts, body ?? ''));
    const headers = {
      ...exchange.headers,
      authorization: formatDeviceAuthorization(this.key.device, ts, sig),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    };
    return this.send({ ...exchange, headers });
  }

  /**
   * Sends a request and reads its answer with `read`, both within the time limit and until `stop`
   * (Gatehouse stopping): a hub that sends its headers and then stalls is given up on too.
   */
  private async send<T>({ method, path, body, headers, stop, read }: Exchange<T>): Promise<T> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    // The sync's stop signal lives as long as the daemon: linked, not `AbortSignal.any` (see linked-signals.ts).
    const link = stop ? this.linked.link(timeout, stop) : undefined;
    let answered = false;
    try {
      const response = await this.fetchImpl(this.url + path, { method, headers, ...(body !== undefined ? { body } : {}), signal: link?.signal ?? timeout });
      answered = true;
      return await read(response);
    } catch (error) {
      if (stop?.aborted) throw new HubError(0, 'stopped', 'the request was abandoned because Gatehouse is stopping');
      const timedOut = timeout.aborted;
      // What reading the answer found (the hub's own refusal, an answer that is not JSON) is told as it is.
      if (answered && !timedOut) throw error;
      throw new HubError(
        0,
        timedOut ? 'hub_timeout' : 'hub_unreachable',
        timedOut ? `the hub at ${this.url} did not answer within ${this.timeoutMs} ms` : `cannot reach the hub at ${this.url}: ${causeOf(error)}`,
      );
    } finally {
      link?.done();
    }
  }
}

async function hubError(response: Response, url: string): Promise<HubError> {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as HubErrorBody;
    if (body?.error?.code) code = body.error.code;
    if (body?.error?.message) message = body.error.message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new HubError(response.status, code, `the hub at ${url} refused: ${message}`);
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  return cause ? errorMessage(cause) : errorMessage(error);
}
