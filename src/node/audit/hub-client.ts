/**
 * The device side of the hub protocol (`src/core/audit/protocol.ts`): every request is signed with
 * the device key, times out, and fails with an error that says what the hub said.
 */
import { hostname } from 'node:os';
import { GatehouseError, errorMessage } from '../../common/errors.js';
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

export class HubClient {
  readonly url: string;
  private readonly key: DeviceKey;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

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
    const response = await this.raw('GET', '/v1/bundle', undefined, etag ? { 'if-none-match': etag } : {});
    if (response.status === 304) return { notModified: true };
    if (response.status === 404) return undefined;
    if (!response.ok) throw await hubError(response, this.url);
    return {
      notModified: false,
      etag: response.headers.get('etag') ?? '',
      bytes: new Uint8Array(await response.arrayBuffer()),
      contentType: response.headers.get('content-type') ?? 'application/octet-stream',
    };
  }

  /** Enrols this device's key with an enrolment secret the hub's admin handed out. */
  async enrol(enrolmentSecret: string): Promise<DeviceState> {
    const at = new Date().toISOString();
    const host = hostname();
    const proof = this.key.sign(enrolmentPayload({ device: this.key.device, publicKey: this.key.publicKey, at, host }));
    const body = JSON.stringify({ device: this.key.device, publicKey: this.key.publicKey, at, host, proof });
    const response = await this.send('POST', '/v1/enrol', body, { authorization: `Bearer ${enrolmentSecret}`, 'content-type': 'application/json' });
    if (!response.ok) throw await hubError(response, this.url);
    return (await response.json()) as DeviceState;
  }

  private async request(method: string, path: string, body?: string, signal?: AbortSignal): Promise<unknown> {
    const response = await this.raw(method, path, body, {}, signal);
    if (!response.ok) throw await hubError(response, this.url);
    return response.json();
  }

  private raw(method: string, path: string, body?: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const ts = Date.now();
    const sig = this.key.sign(deviceRequestPayload(method, path, ts, body ?? ''));
    return this.send(
      method,
      path,
      body,
      {
        ...headers,
        authorization: formatDeviceAuthorization(this.key.device, ts, sig),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      signal,
    );
  }

  private async send(method: string, path: string, body: string | undefined, headers: Record<string, string>, stop?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = stop ? AbortSignal.any([timeout, stop]) : timeout;
    try {
      return await this.fetchImpl(this.url + path, { method, headers, ...(body !== undefined ? { body } : {}), signal });
    } catch (error) {
      if (stop?.aborted) throw new HubError(0, 'stopped', 'the request was abandoned because Gatehouse is stopping');
      const timedOut = timeout.aborted;
      throw new HubError(
        0,
        timedOut ? 'hub_timeout' : 'hub_unreachable',
        timedOut ? `the hub at ${this.url} did not answer within ${this.timeoutMs} ms` : `cannot reach the hub at ${this.url}: ${causeOf(error)}`,
      );
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
