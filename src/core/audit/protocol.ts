/**
 * What a device and the hub say to each other. Devices sign every request (see
 * `deviceRequestPayload`); batches are idempotent on (device, seq), so the sender may repeat one
 * as often as it needs to.
 *
 *   POST /v1/enrol                      enrol a device key (Bearer: an enrolment secret)
 *   GET  /v1/devices/{device}           the hub's ack for this device (device-signed)
 *   POST /v1/devices/{device}/events    a batch (device-signed)
 *   GET  /v1/bundle                     the current signed policy bundle, with ETag (device-signed)
 *   GET  /v1/admin/events?…             admin query (Bearer: an admin token)
 *   GET  /v1/admin/devices, /v1/admin/flags, PUT /v1/admin/bundle, POST /v1/admin/devices/{d}/revoke
 */
import type { Checkpoint, SealedEvent } from './event.js';
import { isDeviceId, isHash } from './event.js';

export const MAX_BATCH_EVENTS = 5000;
export const MAX_BATCH_BYTES = 16 * 1024 * 1024;
export const MAX_EVENT_BYTES = 256 * 1024;

export interface BatchRequest {
  device: string;
  events: SealedEvent[];
  checkpoints: Checkpoint[];
}

export type FlagKind = 'gap' | 'fork' | 'broken_link' | 'bad_hash' | 'bad_signature' | 'malformed' | 'checkpoint_mismatch';

export interface IntegrityFlag {
  kind: FlagKind;
  seq: number;
  message: string;
}

export interface BatchResponse {
  device: string;
  /** The highest sequence number up to which the hub holds every event, each linked to the one before. */
  acked: number;
  accepted: number;
  duplicates: number;
  /** Integrity problems this batch revealed (also kept on the hub for admins). */
  flags: IntegrityFlag[];
}

export interface DeviceState {
  device: string;
  acked: number;
  ackedHash: string;
  /** The newest checkpoint the hub holds for this device (0: none). */
  checkpoint: number;
  status: 'active' | 'revoked';
}

export interface HubErrorBody {
  error: { code: string; message: string; seq?: number };
}

export class ProtocolError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly seq?: number,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Checks a batch's shape (not its hashes or signatures): every problem names where it is. */
export function parseBatch(value: unknown, device: string): BatchRequest {
  const bad = (message: string, seq?: number): never => {
    throw new ProtocolError(400, 'malformed_batch', message, seq);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) bad('the batch must be a JSON object');
  const v = value as Record<string, unknown>;
  if (v.device !== device) bad(`the batch names device ${JSON.stringify(v.device)} but was posted for ${device}`);
  if (!Array.isArray(v.events)) bad('events must be an array');
  const events = v.events as unknown[];
  const checkpoints = v.checkpoints === undefined ? [] : v.checkpoints;
  if (!Array.isArray(checkpoints)) bad('checkpoints must be an array');
  if (events.length === 0 && (checkpoints as unknown[]).length === 0) bad('the batch holds neither events nor checkpoints');
  if (events.length > MAX_BATCH_EVENTS)
    throw new ProtocolError(413, 'batch_too_large', `a batch holds at most ${MAX_BATCH_EVENTS} events, this one ${events.length}`);
  if ((checkpoints as unknown[]).length > MAX_BATCH_EVENTS)
    throw new ProtocolError(413, 'batch_too_large', `a batch holds at most ${MAX_BATCH_EVENTS} checkpoints`);
  let previous = 0;
  const parsed: SealedEvent[] = events.map((e, i) => {
    if (e === null || typeof e !== 'object') bad(`events[${i}] must be an object`);
    const { seq, hash, body } = e as Record<string, unknown>;
    if (!Number.isSafeInteger(seq) || (seq as number) < 1) bad(`events[${i}].seq must be a positive integer`);
    if (!isHash(hash)) bad(`events[${i}].hash must be 64 lower-case hex digits`, seq as number);
    if (typeof body !== 'string' || body.length === 0) bad(`events[${i}].body must be a non-empty string`, seq as number);
    if ((body as string).length > MAX_EVENT_BYTES)
      throw new ProtocolError(413, 'event_too_large', `events[${i}] (seq ${String(seq)}) is larger than ${MAX_EVENT_BYTES} bytes`, seq as number);
    if ((seq as number) <= previous)
      bad(`events[${i}].seq ${String(seq)} is not above the one before (${previous}): events must be in ascending order`, seq as number);
    previous = seq as number;
    return { seq: seq as number, hash: hash as string, body: body as string };
  });
  const parsedCheckpoints: Checkpoint[] = (checkpoints as unknown[]).map((c, i) => {
    if (c === null || typeof c !== 'object') bad(`checkpoints[${i}] must be an object`);
    const { seq, hash, at, keyId, signature } = c as Record<string, unknown>;
    if (!Number.isSafeInteger(seq) || (seq as number) < 1) bad(`checkpoints[${i}].seq must be a positive integer`);
    if (!isHash(hash)) bad(`checkpoints[${i}].hash must be 64 lower-case hex digits`);
    if (typeof at !== 'string' || typeof keyId !== 'string' || typeof signature !== 'string') bad(`checkpoints[${i}] needs at, keyId and signature strings`);
    return { device, seq: seq as number, hash: hash as string, at: at as string, keyId: keyId as string, signature: signature as string };
  });
  return { device, events: parsed, checkpoints: parsedCheckpoints };
}

export function assertDeviceId(device: string): void {
  if (!isDeviceId(device)) throw new ProtocolError(400, 'malformed_device', `"${device.slice(0, 80)}" is not a device id`);
}

/** `Authorization: Gatehouse-Device device=…, ts=…, sig=…` */
export function formatDeviceAuthorization(device: string, ts: number, sig: string): string {
  return `Gatehouse-Device device=${device}, ts=${ts}, sig=${sig}`;
}

export function parseDeviceAuthorization(header: string | undefined): { device: string; ts: number; sig: string } | undefined {
  if (!header) return undefined;
  const m = /^Gatehouse-Device device=([a-z0-9_]+), ts=(\d{1,16}), sig=([A-Za-z0-9_-]{86})$/.exec(header.trim());
  if (!m) return undefined;
  return { device: m[1]!, ts: Number(m[2]), sig: m[3]! };
}
