/**
 * The tamper-evident form of an audit record, shared by the desktop store, `gatehouse audit verify`
 * and the hub. docs/audit.md defines it for people who verify a log without Gatehouse.
 *
 * - **Canonical JSON**: UTF-8 JSON with no whitespace, object members sorted by key (UTF-16 code
 *   unit order, as `Array.prototype.sort` compares strings), members whose value is `undefined`
 *   left out, strings and numbers written as ECMAScript's `JSON.stringify` writes them. For the
 *   values Gatehouse records (strings, finite numbers, booleans, null, arrays, objects) this is
 *   RFC 8785 (JCS).
 * - **Event**: an `AuditRecord` plus `v` (format version, 1), `seq` (1, 2, 3, … per device, no
 *   gaps), `id` (a UUID: the event's own id, also in the SIEM), `device` (the device id) and `prev`
 *   (the hash of event `seq - 1`; 64 zeros for event 1).
 * - **Hash**: lower-case hex SHA-256 of the event's canonical JSON (the "body").
 * - **Checkpoint**: the device key's Ed25519 signature over the canonical JSON of
 *   `{ v: 1, purpose: 'gatehouse.audit.checkpoint', device, seq, hash, at, keyId }`, where `hash`
 *   is event `seq`'s hash: it vouches for every event up to `seq`, through the chain.
 */
import { createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, canonicalMember } from '../digest.js';
import type { AuditRecord } from '../ports.js';

export const EVENT_FORMAT = 1;
export const GENESIS_HASH = '0'.repeat(64);
const HASH = /^[0-9a-f]{64}$/;
const DEVICE_ID = /^dev_[0-9a-z]{20,40}$/;

export interface AuditEvent extends AuditRecord {
  v: number;
  seq: number;
  id: string;
  device: string;
  prev: string;
}

/** An event as it is stored and sent: its exact canonical body and the body's hash. */
export interface SealedEvent {
  seq: number;
  hash: string;
  body: string;
}

/** One-shot hashing: every event is hashed once, and the streaming `createHash` costs more than the hash of a short body. */
export function sha256Hex(text: string | Uint8Array): string {
  return hash('sha256', text, 'hex');
}

export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HASH.test(value);
}

export function isDeviceId(value: unknown): boolean {
  return typeof value === 'string' && DEVICE_ID.test(value);
}

/** Where an event sits in its device's chain. */
export interface ChainLink {
  seq: number;
  id: string;
  device: string;
  prev: string;
}

/** Seals one record as event `seq`, chained to `prev`. */
export function sealEvent(record: AuditRecord, link: ChainLink): SealedEvent & { event: AuditEvent } {
  const event = eventOf(record, link);
  const body = recordBody(event, link);
  return { seq: link.seq, hash: sha256Hex(body), body, event };
}

/** The event a record becomes: the chain's members replace any of the record's own of the same name. */
function eventOf(record: AuditRecord, link: ChainLink): AuditEvent {
  return { ...record, v: EVENT_FORMAT, seq: link.seq, id: link.id, device: link.device, prev: link.prev };
}

/**
 * Every member an event may have. Typed as a record of `keyof AuditEvent`, so that a field added to
 * `AuditRecord` must be added here too (until it is, events carrying it take the generic writer).
 */
const EVENT_MEMBERS: Record<keyof AuditEvent, true> = {
  type: true,
  at: true,
  callId: true,
  user: true,
  client: true,
  clientVerified: true,
  server: true,
  kind: true,
  name: true,
  policyMode: true,
  policyVersion: true,
  policyIds: true,
  decision: true,
  stage: true,
  code: true,
  reason: true,
  latencyMs: true,
  argsShape: true,
  argsDigest: true,
  resultDigest: true,
  resultShape: true,
  argsValues: true,
  approval: true,
  quota: true,
  upstream: true,
  detail: true,
  v: true,
  seq: true,
  id: true,
  device: true,
  prev: true,
};
/** The members in canonical order (UTF-16 code units, as `canonicalJson` sorts them), each with its written name. */
const MEMBERS: readonly string[] = Object.keys(EVENT_MEMBERS).sort();
const NAMES: readonly string[] = MEMBERS.map((key) => JSON.stringify(key) + ':');
const RANK = new Map(MEMBERS.map((key, rank) => [key, rank]));
/** The members the chain adds to a record, by rank. */
const LINK_RANKS: readonly number[] = (['v', 'seq', 'id', 'device', 'prev'] as const).map((key) => RANK.get(key)!);
const FROM_LINK: readonly boolean[] = MEMBERS.map((_, rank) => LINK_RANKS.includes(rank));

/** What `JSON.stringify` would call on any plain object: a polluted `Object.prototype.toJSON`, which only the generic writer follows. */
function inheritedToJson(): boolean {
  return typeof ({} as { toJSON?: unknown }).toJSON === 'function';
}

/**
 * `canonicalJson(eventOf(record, link))`, the same bytes, written from the record and the link
 * without copying them into an event and without sorting keys: an event's members come from a known
 * list whose canonical order is computed once, so only which of them a record has is found per
 * record. Each member's value is written by the canonical writer itself. A record outside the known
 * shape (a member not in the list, such as `__proto__`), or a `toJSON` the generic writer would
 * call, takes the generic writer whole, so the two cannot disagree.
 */
function recordBody(record: AuditRecord, link: ChainLink, order = canonicalOrder(Object.keys(record))): string {
  return order && !inheritedToJson() ? writeRecord(order, record, link) : canonicalJson(eventOf(record, link));
}

/** The ranks of the event's members, ascending, for a record with these keys; undefined when one is not a known member. */
function canonicalOrder(keys: readonly string[]): Uint8Array | undefined {
  const ranks = new Uint8Array(keys.length + LINK_RANKS.length);
  let n = 0;
  for (const key of keys) {
    const rank = RANK.get(key);
    if (rank === undefined) return undefined;
    if (!FROM_LINK[rank]) ranks[n++] = rank;
  }
  for (const rank of LINK_RANKS) ranks[n++] = rank;
  return ranks.subarray(0, n).sort();
}

/** The members of the given ranks, each value written by the canonical writer (members it leaves out, such as `undefined`, are skipped). */
function writeRecord(order: Uint8Array, record: AuditRecord, link: ChainLink): string {
  let out = '{';
  for (const rank of order) {
    const key = MEMBERS[rank]!;
    const member = canonicalMember(FROM_LINK[rank] ? linkMember(key, link) : (record as unknown as Record<string, unknown>)[key], key);
    if (member === undefined) continue;
    out += (out.length === 1 ? NAMES[rank]! : ',' + NAMES[rank]!) + member;
  }
  return out + '}';
}

function linkMember(key: string, link: ChainLink): unknown {
  return key === 'v' ? EVENT_FORMAT : link[key as keyof ChainLink];
}

/** How many shapes of record a sealer remembers (a daemon writes about a dozen). */
const SHAPES = 32;

/**
 * Seals records as `sealEvent` does (without building the event object), remembering the canonical order of each shape of record it
 * has seen (the same keys in the same order: a call's attempt, its outcome, a server's state), so
 * that a record's keys are compared with a known list rather than looked up and sorted again. One
 * per writer; records of a shape beyond the first 32 have their order worked out each time.
 */
export class RecordSealer {
  private readonly shapes: { keys: readonly string[]; order: Uint8Array }[] = [];

  seal(record: AuditRecord, link: ChainLink): SealedEvent {
    const body = recordBody(record, link, this.orderOf(Object.keys(record)));
    return { seq: link.seq, hash: sha256Hex(body), body };
  }

  private orderOf(keys: readonly string[]): Uint8Array | undefined {
    for (const shape of this.shapes) if (sameKeys(shape.keys, keys)) return shape.order;
    const order = canonicalOrder(keys);
    if (order && this.shapes.length < SHAPES) this.shapes.push({ keys, order });
    return order;
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export type EventProblem = { code: 'malformed'; message: string } | { code: 'hash_mismatch'; message: string } | { code: 'not_canonical'; message: string };

/**
 * Checks one sealed event on its own: the body parses, is canonical, names the expected device and
 * sequence number, and hashes to `hash`. Chain links are the caller's to check (they need the
 * predecessor).
 */
export function openSealedEvent(
  sealed: SealedEvent,
  expected: { device?: string } = {},
): { ok: true; event: AuditEvent } | { ok: false; problem: EventProblem } {
  if (typeof sealed.body !== 'string') return { ok: false, problem: { code: 'malformed', message: 'the body is not a string' } };
  if (sha256Hex(sealed.body) !== sealed.hash) {
    return {
      ok: false,
      problem: { code: 'hash_mismatch', message: `its content does not match its hash ${short(sealed.hash)}: it was edited after it was written` },
    };
  }
  let event: AuditEvent;
  try {
    event = JSON.parse(sealed.body) as AuditEvent;
  } catch {
    return { ok: false, problem: { code: 'malformed', message: 'the body is not JSON' } };
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event))
    return { ok: false, problem: { code: 'malformed', message: 'the body is not a JSON object' } };
  if (canonicalJson(event) !== sealed.body) return { ok: false, problem: { code: 'not_canonical', message: 'the body is not in canonical JSON form' } };
  if (event.v !== EVENT_FORMAT) return { ok: false, problem: { code: 'malformed', message: `unknown event format v=${String(event.v)}` } };
  if (event.seq !== sealed.seq) return { ok: false, problem: { code: 'malformed', message: `the body says seq ${String(event.seq)}, not ${sealed.seq}` } };
  if (!isHash(event.prev)) return { ok: false, problem: { code: 'malformed', message: 'prev is not a SHA-256 hex digest' } };
  if (typeof event.id !== 'string' || event.id.length < 8 || event.id.length > 64)
    return { ok: false, problem: { code: 'malformed', message: 'id is missing' } };
  if (typeof event.type !== 'string' || typeof event.at !== 'string' || Number.isNaN(Date.parse(event.at))) {
    return { ok: false, problem: { code: 'malformed', message: 'type or at is missing or invalid' } };
  }
  for (const field of ['callId', 'user', 'client', 'server', 'kind', 'name', 'decision', 'stage', 'code'] as const) {
    const value = event[field];
    if (value !== undefined && (typeof value !== 'string' || value.length > 4096)) {
      return { ok: false, problem: { code: 'malformed', message: `${field} must be a string of at most 4096 characters` } };
    }
  }
  if (expected.device !== undefined && event.device !== expected.device) {
    return { ok: false, problem: { code: 'malformed', message: `the event belongs to device ${String(event.device)}, not ${expected.device}` } };
  }
  return { ok: true, event };
}

export function short(hash: string): string {
  return hash.slice(0, 12);
}

// --- Device keys and checkpoints ---------------------------------------------------------------

export interface Checkpoint {
  device: string;
  seq: number;
  /** Hash of event `seq`. */
  hash: string;
  at: string;
  /** Which device key signed (see `keyIdOf`). */
  keyId: string;
  /** Base64url Ed25519 signature over `checkpointPayload`. */
  signature: string;
}

export function checkpointPayload(c: Omit<Checkpoint, 'signature'>): string {
  return canonicalJson({ v: 1, purpose: 'gatehouse.audit.checkpoint', device: c.device, seq: c.seq, hash: c.hash, at: c.at, keyId: c.keyId });
}

/** A device public key travels as the base64url of its 32 raw bytes. */
export function publicKeyFromRaw(raw: string): KeyObject {
  if (!/^[A-Za-z0-9_-]{43}$/.test(raw)) throw new Error('a device public key is 32 bytes in base64url (43 characters)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' });
}

export function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as { crv?: string; x?: string };
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new Error('not an Ed25519 key');
  return jwk.x;
}

/** A short, stable name for a public key: `ed25519:` and 16 hex digits of its SHA-256. */
export function keyIdOf(rawPublic: string): string {
  return 'ed25519:' + sha256Hex(Buffer.from(rawPublic, 'base64url')).slice(0, 16);
}

/** Signs with a device key: the only operation the private half is used for. */
export type Signer = (message: string) => string;

export function ed25519Signer(privateKey: KeyObject): Signer {
  return (message) => sign(null, Buffer.from(message, 'utf8'), privateKey).toString('base64url');
}

export function verifySignature(publicKey: KeyObject, message: string | Uint8Array, signature: string): boolean {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  try {
    return verify(null, typeof message === 'string' ? Buffer.from(message, 'utf8') : message, publicKey, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

export function signCheckpoint(signer: Signer, c: Omit<Checkpoint, 'signature'>): Checkpoint {
  return { ...c, signature: signer(checkpointPayload(c)) };
}

export function verifyCheckpoint(publicKey: KeyObject, c: Checkpoint): boolean {
  return verifySignature(publicKey, checkpointPayload(c), c.signature);
}

/**
 * Device requests to the hub carry `Authorization: Gatehouse-Device device=…, ts=…, sig=…`, where
 * `sig` signs this string: a replayed request is at most a repeat of an idempotent one, and only
 * within the hub's clock window.
 */
export function deviceRequestPayload(method: string, path: string, ts: number, body: string | Uint8Array): string {
  return ['gatehouse-device-request-v1', method.toUpperCase(), path, String(ts), sha256Hex(body)].join('\n');
}

export function enrolmentPayload(e: { device: string; publicKey: string; at: string; host: string }): string {
  return canonicalJson({ v: 1, purpose: 'gatehouse.device.enrol', device: e.device, publicKey: e.publicKey, at: e.at, host: e.host });
}
